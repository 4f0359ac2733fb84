"""RELION .star reading (3.0; 3.1 with two optics groups) and writing (round trip, subsets)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.rotations import euler_to_matrix, random_rotations
from cryogeom.particles import read_particles, write_relion, write_star_subset

DATA = Path(__file__).parent / "data" / "particles"


def expected_pixels(stack_id: int, frame: int) -> np.ndarray:
    """The hand-made stacks' pattern (make_corpus.py): 10 s + k + 0.01 (8 y + x)."""
    return 10 * stack_id + frame + 0.01 * np.arange(64).reshape(8, 8)


# ---------------------------------------------------------------------------------------------
# Reading hand-made files
# ---------------------------------------------------------------------------------------------
def test_relion30_values_per_particle():
    ps = read_particles(DATA / "relion30.star")
    assert ps.n == 3 and ps.box == 8
    # Pixel size from rlnDetectorPixelSize (um) * 1e4 / rlnMagnification = 5e4 / 4e4.
    np.testing.assert_allclose(ps.pixel_size_angstrom, 1.25)
    np.testing.assert_allclose(ps.rotations[0], euler_to_matrix(10.0, 20.0, 30.0), atol=1e-12)
    np.testing.assert_allclose(ps.rotations[1], euler_to_matrix(-120.0, 170.0, -45.0), atol=1e-12)
    # rlnOriginX/Y are in pixels in RELION 3.0; shift = -origin * pixel size.
    np.testing.assert_allclose(ps.shifts_angstrom, [[-1.5 * 1.25, 2.0 * 1.25], [0.0, -3.25 * 1.25], [0.5 * 1.25, 0.0]])
    np.testing.assert_allclose(ps.voltage_kv, [300, 200, 300])
    np.testing.assert_allclose(ps.cs_mm, [2.7, 2.0, 2.7])
    np.testing.assert_allclose(ps.amplitude_contrast, [0.1, 0.07, 0.1])
    np.testing.assert_allclose(ps.defocus_u_angstrom, [15000.0, 21000.5, 18000.0])
    np.testing.assert_allclose(ps.astigmatism_angle_deg, [45.0, -10.0, 0.0])
    np.testing.assert_allclose(ps.phase_shift_deg, 0.0)  # no rlnPhaseShift column
    # Images: 2@stack_a, 1@stack_b (int16, x100), 3@stack_a.
    images = ps.read_images().numpy()
    assert images.dtype == np.float32 and images.shape == (3, 8, 8)
    np.testing.assert_allclose(images[0], expected_pixels(1, 1), atol=1e-5)
    np.testing.assert_allclose(images[1], np.round(expected_pixels(2, 0) * 100), atol=1e-5)
    np.testing.assert_allclose(images[2], expected_pixels(1, 2), atol=1e-5)
    assert list(ps.table["rlnMicrographName"]) == ["mics/mic1.mrc", "mics/mic2.mrc", "mics/mic1.mrc"]


def test_relion31_two_optics_groups_take_their_own_values():
    ps = read_particles(DATA / "relion31_two_groups.star")
    group = np.array([1, 2, 1, 2])
    np.testing.assert_allclose(ps.pixel_size_angstrom, np.where(group == 1, 1.0, 2.0))
    np.testing.assert_allclose(ps.voltage_kv, np.where(group == 1, 300.0, 200.0))
    np.testing.assert_allclose(ps.cs_mm, np.where(group == 1, 2.7, 2.0))
    np.testing.assert_allclose(ps.amplitude_contrast, np.where(group == 1, 0.1, 0.07))
    # rlnOriginXAngst is already in Angstrom whatever the group's pixel size.
    np.testing.assert_allclose(ps.shifts_angstrom, [[-1.5, 2.0], [0.0, -3.25], [0.5, 0.0], [-4.0, -4.0]])
    np.testing.assert_allclose(ps.phase_shift_deg, [0.0, 90.0, 0.0, 45.0])
    np.testing.assert_allclose(ps.rotations[3], euler_to_matrix(45.0, 90.0, 180.0), atol=1e-12)
    assert ps.optics_table is not None and len(ps.optics_table) == 2
    images = ps.read_images([3, 0]).numpy()
    np.testing.assert_allclose(images[0], np.round(expected_pixels(2, 0) * 100), atol=1e-5)
    np.testing.assert_allclose(images[1], expected_pixels(1, 0), atol=1e-5)


def test_ctf_params_follow_field_order():
    ps = read_particles(DATA / "relion31_two_groups.star")
    ctf = ps.ctf([1, 2], dtype=torch.float64)
    assert isinstance(ctf, CTFParams)
    np.testing.assert_allclose(ctf.defocus_u_angstrom.numpy(), [21000.5, 18000.0])
    np.testing.assert_allclose(ctf.voltage_kv.numpy(), [200.0, 300.0])
    np.testing.assert_allclose(ctf.as_tensor().numpy(), ps.ctf_array([1, 2]))
    assert ps.ctf_array().shape == (4, 7)


def test_pixel_size_override_rescales_pixel_origins():
    ps = read_particles(DATA / "relion30.star", pixel_size_angstrom=2.0)
    np.testing.assert_allclose(ps.pixel_size_angstrom, 2.0)
    np.testing.assert_allclose(ps.shifts_angstrom[0], [-3.0, 4.0])


def test_stacks_found_through_datadir(tmp_path):
    star = tmp_path / "elsewhere" / "particles.star"
    star.parent.mkdir()
    shutil.copy(DATA / "relion31_two_groups.star", star)
    with pytest.raises(InputError, match="not found"):
        read_particles(star)
    ps = read_particles(star, datadir=DATA)
    np.testing.assert_allclose(ps.read_images([0])[0].numpy(), expected_pixels(1, 0), atol=1e-5)


def test_subset_keeps_table_rows_and_metadata():
    ps = read_particles(DATA / "relion31_two_groups.star")
    sub = ps.subset([3, 1])
    assert sub.n == 2 and list(sub.table.index) == [3, 1]
    np.testing.assert_array_equal(sub.rotations, ps.rotations[[3, 1]])
    np.testing.assert_array_equal(sub.pixel_size_angstrom, [2.0, 2.0])
    torch.testing.assert_close(sub.read_images(), ps.read_images([3, 1]))
    mask = np.array([True, False, True, False])
    np.testing.assert_array_equal(ps.subset(mask).defocus_u_angstrom, [15000.0, 18000.0])


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def make_metadata(n: int, rng: np.random.Generator) -> dict:
    return dict(
        rotations=random_rotations(n, rng),
        shifts_angstrom=rng.normal(scale=3.0, size=(n, 2)),
        ctf=CTFParams(
            defocus_u_angstrom=torch.as_tensor(rng.uniform(8000, 25000, n)),
            defocus_v_angstrom=torch.as_tensor(rng.uniform(8000, 25000, n)),
            astigmatism_angle_deg=torch.as_tensor(rng.uniform(-90, 90, n)),
            voltage_kv=torch.as_tensor(np.where(np.arange(n) % 3 == 0, 200.0, 300.0)),
            cs_mm=torch.full((n,), 2.7, dtype=torch.float64),
            amplitude_contrast=torch.full((n,), 0.07, dtype=torch.float64),
            phase_shift_deg=torch.as_tensor(rng.uniform(0, 90, n)),
        ),
    )


@pytest.mark.parametrize("box", [15, 16])
def test_write_read_round_trip(tmp_path, box):
    rng = np.random.default_rng(1)
    n = 23
    images = rng.normal(size=(n, box, box)).astype(np.float32)
    meta = make_metadata(n, rng)
    star, mrcs = tmp_path / "out" / "particles.star", tmp_path / "out" / "stacks" / "particles.mrcs"
    mrcs.parent.mkdir(parents=True)
    write_relion(star, mrcs, images, pixel_size_angstrom=1.7, extra_columns={"rlnClassNumber": np.arange(n) % 4 + 1}, **meta)

    ps = read_particles(star)
    assert ps.n == n and ps.box == box
    np.testing.assert_array_equal(ps.read_images().numpy(), images)  # float32, bit-exact
    np.testing.assert_allclose(ps.rotations, meta["rotations"], atol=1e-6)  # 6 decimals of a degree
    np.testing.assert_allclose(ps.shifts_angstrom, meta["shifts_angstrom"], atol=1e-6)
    np.testing.assert_allclose(ps.ctf_array(), meta["ctf"].as_tensor().numpy(), atol=1e-5)
    np.testing.assert_allclose(ps.pixel_size_angstrom, 1.7)
    assert list(ps.table["rlnClassNumber"]) == list(np.arange(n) % 4 + 1)
    # Two optics groups (200 kV and 300 kV); image names relative to the .star, 1-based.
    assert sorted(ps.optics_table["rlnVoltage"]) == [200.0, 300.0]
    assert ps.table["rlnImageName"].iloc[0] == "000001@stacks/particles.mrcs"
    with mrcfile.open(mrcs, header_only=True) as mrc:
        assert mrc.voxel_size.x == pytest.approx(1.7)
        assert int(mrc.header.ispg) == 0  # an image stack
    assert "# version 30001" in star.read_text()


def test_write_accepts_chunk_iterator(tmp_path):
    rng = np.random.default_rng(2)
    n, box = 10, 12
    images = rng.normal(size=(n, box, box)).astype(np.float32)
    chunks = (torch.from_numpy(images[i : i + 3]) for i in range(0, n, 3))
    write_relion(tmp_path / "p.star", tmp_path / "p.mrcs", chunks, pixel_size_angstrom=1.0, **make_metadata(n, rng))
    np.testing.assert_array_equal(read_particles(tmp_path / "p.star").read_images().numpy(), images)


def test_write_refuses_to_overwrite_and_writes_nothing_on_error(tmp_path):
    rng = np.random.default_rng(3)
    n, box = 4, 8
    images = rng.normal(size=(n, box, box)).astype(np.float32)
    meta = make_metadata(n, rng)
    star, mrcs = tmp_path / "p.star", tmp_path / "p.mrcs"
    write_relion(star, mrcs, images, pixel_size_angstrom=1.0, **meta)
    before = (star.read_bytes(), mrcs.read_bytes())
    with pytest.raises(InputError, match="exists"):
        write_relion(star, mrcs, images * 2, pixel_size_angstrom=1.0, **meta)
    assert (star.read_bytes(), mrcs.read_bytes()) == before
    write_relion(star, mrcs, images * 2, pixel_size_angstrom=1.0, overwrite=True, **meta)
    np.testing.assert_array_equal(read_particles(star).read_images().numpy(), images * 2)

    # Failures part-way (too few images; a NaN image) leave no file behind, not even a temporary one.
    for bad_images in (images[:3], np.where(np.arange(n)[:, None, None] == 2, np.nan, images)):
        with pytest.raises(InputError):
            write_relion(tmp_path / "q.star", tmp_path / "q.mrcs", bad_images, pixel_size_angstrom=1.0, **meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mrcs", "p.star"]


def test_star_subset_keeps_columns_text_and_optics(tmp_path):
    src = DATA / "relion31_two_groups.star"
    dst = tmp_path / "subset.star"
    write_star_subset(src, [3, 1], dst)
    original = starfile.read(src, always_dict=True, parse_as_string=["rlnOriginXAngst", "rlnAngleRot"])
    subset = starfile.read(dst, always_dict=True, parse_as_string=["rlnOriginXAngst", "rlnAngleRot"])
    assert list(subset["particles"].columns) == list(original["particles"].columns)
    drop = lambda df: df.drop(columns=["rlnImageName"])  # noqa: E731 - image paths are rewritten, see below
    assert drop(subset["particles"]).to_dict("records") == drop(original["particles"].iloc[[3, 1]]).to_dict("records")
    assert subset["optics"].equals(original["optics"])
    assert subset["particles"]["rlnOriginXAngst"].tolist() == ["4.000000", "0.000000"]  # text unchanged

    # Reading the subset from where it lies (no datadir) gives the same particles.
    ps = read_particles(src)
    sub = read_particles(dst)
    np.testing.assert_array_equal(sub.rotations, ps.rotations[[3, 1]])
    np.testing.assert_array_equal(sub.pixel_size_angstrom, ps.pixel_size_angstrom[[3, 1]])
    torch.testing.assert_close(sub.read_images(), ps.read_images([3, 1]))

    with pytest.raises(InputError, match="exists"):
        write_star_subset(src, [0], dst)
    with pytest.raises(InputError, match=r"indices: must be in \[0, 4\)"):
        write_star_subset(src, [4], tmp_path / "other.star")
    assert not (tmp_path / "other.star").exists()


def test_subset_of_set_round_trips_through_table_index(tmp_path):
    ps = read_particles(DATA / "relion30.star")
    sub = ps.subset([2, 0])
    write_star_subset(ps.source_path, sub.table.index, tmp_path / "s.star")
    again = read_particles(tmp_path / "s.star")
    np.testing.assert_array_equal(again.defocus_u_angstrom, sub.defocus_u_angstrom)
    np.testing.assert_allclose(again.shifts_angstrom, sub.shifts_angstrom)


@pytest.mark.parametrize("absolute", [False, True])
def test_a_subset_written_elsewhere_finds_every_image(tmp_path, monkeypatch, absolute):
    src = DATA / "relion31_two_groups.star"
    dst = tmp_path / "deep" / "er" / "subset.star"
    dst.parent.mkdir(parents=True)
    write_star_subset(src, [3, 1, 0], dst, absolute_paths=absolute)
    names = starfile.read(dst, always_dict=True)["particles"]["rlnImageName"]
    assert all(Path(n.split("@")[1]).is_absolute() == absolute for n in names)
    monkeypatch.chdir(tmp_path)  # wherever the reader runs
    sub = read_particles(dst)
    torch.testing.assert_close(sub.read_images(), read_particles(src).read_images([3, 1, 0]))
    for name in names:  # each stack opens from the subset's own directory, as cryoDRGN resolves it
        number, stack = name.split("@")
        assert (dst.parent / stack).is_file() and int(number) >= 1


def test_a_subset_read_by_cryodrgns_parser(tmp_path, monkeypatch):
    """cryoDRGN (where installed) opens a subset written into another folder, every image found."""
    source = pytest.importorskip("cryodrgn.source")
    src = DATA / "relion31_two_groups.star"
    dst = tmp_path / "elsewhere" / "subset.star"
    dst.parent.mkdir()
    write_star_subset(src, [2, 0], dst)
    monkeypatch.chdir(tmp_path)
    images = source.ImageSource.from_file(str(dst)).images()
    torch.testing.assert_close(torch.as_tensor(np.asarray(images)), read_particles(src).read_images([2, 0]))
