"""cryoSPARC .cs and cryoDRGN .pkl readers agree with the RELION reading of the same particles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryogeom.errors import InputError
from cryogeom.imaging.rotations import euler_to_matrix
from cryogeom.particles import read_particles

DATA = Path(__file__).parent / "data" / "particles"
STAR31 = DATA / "relion31_two_groups.star"
STACK_A = DATA / "stacks" / "stack_a.mrcs"
STACK_B = DATA / "stacks" / "stack_b.mrcs"


def write_cs(path: Path, fields: dict[str, np.ndarray]) -> Path:
    """A .cs file as cryoSPARC writes it: np.save of a structured array (no .npy suffix)."""
    n = len(next(iter(fields.values())))
    dtype = [(k, v.dtype, v.shape[1:]) for k, v in fields.items()]
    records = np.zeros(n, dtype=dtype)
    for k, v in fields.items():
        records[k] = v
    with open(path, "wb") as fh:
        np.save(fh, records)
    return path


def cs_fields_from_relion(ps, blob_paths: list[bytes], blob_idx: list[int]) -> dict[str, np.ndarray]:
    """cryoSPARC fields for the particles of ``ps``, by cryoDRGN's documented relations:
    R_relion = expmap(pose).T and alignments3D/shift (px) = rlnOrigin (px)."""
    n = ps.n
    pose = Rotation.from_matrix(np.swapaxes(ps.rotations, 1, 2)).as_rotvec()
    origin_px = -ps.shifts_angstrom / ps.pixel_size_angstrom[:, None]
    return {
        "uid": np.arange(n, dtype=np.uint64),
        "blob/path": np.array(blob_paths, dtype="S64"),
        "blob/idx": np.array(blob_idx, dtype=np.uint32),
        "blob/shape": np.full((n, 2), 8, dtype=np.uint32),
        "blob/psize_A": ps.pixel_size_angstrom.astype(np.float32),
        "alignments3D/pose": pose.astype(np.float32),
        "alignments3D/shift": origin_px.astype(np.float32),
        "ctf/df1_A": ps.defocus_u_angstrom.astype(np.float32),
        "ctf/df2_A": ps.defocus_v_angstrom.astype(np.float32),
        "ctf/df_angle_rad": np.deg2rad(ps.astigmatism_angle_deg).astype(np.float32),
        "ctf/accel_kv": ps.voltage_kv.astype(np.float32),
        "ctf/cs_mm": ps.cs_mm.astype(np.float32),
        "ctf/amp_contrast": ps.amplitude_contrast.astype(np.float32),
        "ctf/phase_shift_rad": np.deg2rad(ps.phase_shift_deg).astype(np.float32),
    }


# ---------------------------------------------------------------------------------------------
# cryoSPARC
# ---------------------------------------------------------------------------------------------
def test_cryosparc_in_plane_pose_by_hand(tmp_path):
    """Derived by hand: RELION psi = 30° is R = Rz(-30°) (it moves the atoms); cryoSPARC stores
    the transpose, i.e. the axis-angle (0, 0, +30°). A cryoSPARC shift of (+3, -2) px is
    rlnOrigin (+3, -2) px, so the particle centre lands at (-3, +2) px."""
    (tmp_path / "J1").mkdir()
    (tmp_path / "J1" / "stack.mrcs").write_bytes(STACK_A.read_bytes())
    fields = {
        "blob/path": np.array([b">J1/stack.mrcs"]),
        "blob/idx": np.array([2], dtype=np.uint32),
        "blob/shape": np.array([[8, 8]], dtype=np.uint32),
        "blob/psize_A": np.array([1.5], dtype=np.float32),
        "alignments3D/pose": np.array([[0.0, 0.0, np.deg2rad(30.0)]], dtype=np.float32),
        "alignments3D/shift": np.array([[3.0, -2.0]], dtype=np.float32),
        "ctf/df1_A": np.array([15000.0], dtype=np.float32),
        "ctf/df2_A": np.array([14000.0], dtype=np.float32),
        "ctf/df_angle_rad": np.array([np.pi / 4], dtype=np.float32),
        "ctf/accel_kv": np.array([300.0], dtype=np.float32),
        "ctf/cs_mm": np.array([2.7], dtype=np.float32),
        "ctf/amp_contrast": np.array([0.1], dtype=np.float32),
    }
    (tmp_path / "J2").mkdir()
    cs = write_cs(tmp_path / "J2" / "particles.cs", fields)
    ps = read_particles(cs, datadir=tmp_path)  # blob paths are relative to the project directory
    np.testing.assert_allclose(ps.rotations[0], euler_to_matrix(0.0, 0.0, 30.0), atol=1e-6)
    np.testing.assert_allclose(ps.shifts_angstrom[0], [-3.0 * 1.5, 2.0 * 1.5], atol=1e-6)
    np.testing.assert_allclose(ps.astigmatism_angle_deg, 45.0, atol=1e-5)
    np.testing.assert_allclose(ps.phase_shift_deg, 0.0)  # optional field absent
    np.testing.assert_allclose(ps.read_images()[0, 0, 0].item(), 12.0, atol=1e-5)  # blob/idx 2 = 0-based frame
    assert ps.table["blob/path"].iloc[0] == ">J1/stack.mrcs"
    assert "alignments3D/pose[2]" in ps.table.columns


def test_cryosparc_agrees_with_relion_reading(tmp_path):
    relion = read_particles(STAR31)
    for stack in (STACK_A, STACK_B):
        (tmp_path / stack.name).write_bytes(stack.read_bytes())
    fields = cs_fields_from_relion(
        relion, [b">stack_a.mrcs", b">stack_b.mrcs", b">stack_a.mrcs", b">stack_b.mrcs"], [0, 1, 2, 0]
    )
    cs = read_particles(write_cs(tmp_path / "particles.cs", fields))
    np.testing.assert_allclose(cs.rotations, relion.rotations, atol=1e-6)
    np.testing.assert_allclose(cs.shifts_angstrom, relion.shifts_angstrom, atol=1e-5)
    np.testing.assert_allclose(cs.ctf_array(), relion.ctf_array(), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(cs.pixel_size_angstrom, relion.pixel_size_angstrom)
    np.testing.assert_array_equal(cs.read_images().numpy(), relion.read_images().numpy())


def test_cryosparc_shift_uses_alignment_pixel_size(tmp_path):
    """Shifts are in pixels of alignments3D/psize_A when present (e.g. a binned refinement)."""
    relion = read_particles(STAR31)
    (tmp_path / "stack_a.mrcs").write_bytes(STACK_A.read_bytes())
    fields = cs_fields_from_relion(relion.subset([0]), [b"stack_a.mrcs"], [0])
    fields["alignments3D/psize_A"] = np.array([2.0], dtype=np.float32)
    fields["alignments3D/shift"] = fields["alignments3D/shift"] / 2.0
    cs = read_particles(write_cs(tmp_path / "p.cs", fields))
    np.testing.assert_allclose(cs.shifts_angstrom, relion.shifts_angstrom[[0]], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# cryoDRGN
# ---------------------------------------------------------------------------------------------
def write_pkl(path: Path, value, protocol: int = 4) -> Path:
    with open(path, "wb") as fh:
        pickle.dump(value, fh, protocol=protocol)
    return path


def cryodrgn_pickles(ps, tmp_path: Path, protocol: int = 4) -> tuple[Path, Path]:
    """pose.pkl and ctf.pkl as cryoDRGN's parse_pose_star / parse_ctf_star make them:
    rot = R_from_relion(angles) (= RELION's matrix), trans = rlnOrigin (px) / D."""
    origin_px = -ps.shifts_angstrom / ps.pixel_size_angstrom[:, None]
    poses = (ps.rotations.copy(), origin_px / ps.box)
    ctf = np.column_stack([np.full(ps.n, ps.box), ps.pixel_size_angstrom, ps.ctf_array()]).astype(np.float32)
    return write_pkl(tmp_path / "pose.pkl", poses, protocol), write_pkl(tmp_path / "ctf.pkl", ctf, protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cryodrgn_star_plus_pickles_agree_with_relion(tmp_path, protocol):
    relion = read_particles(STAR31)
    poses, ctf = cryodrgn_pickles(relion, tmp_path, protocol)
    drgn = read_particles(STAR31, poses=poses, ctf=ctf)
    np.testing.assert_allclose(drgn.rotations, relion.rotations, atol=1e-12)
    np.testing.assert_allclose(drgn.shifts_angstrom, relion.shifts_angstrom, atol=1e-5)
    np.testing.assert_allclose(drgn.ctf_array(), relion.ctf_array(), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(drgn.pixel_size_angstrom, relion.pixel_size_angstrom)


def test_cryodrgn_mrcs_and_txt_list(tmp_path):
    # A single .mrcs holds all its frames in order: pickles for 3 particles.
    three = read_particles(STAR31).subset([0, 2, 0])
    poses, ctf = cryodrgn_pickles(three, tmp_path)
    ps = read_particles(STACK_A, poses=poses, ctf=ctf)
    assert ps.n == 3
    np.testing.assert_allclose(ps.read_images()[:, 0, 0].numpy(), [10.0, 11.0, 12.0], atol=1e-5)
    np.testing.assert_allclose(ps.shifts_angstrom, three.shifts_angstrom, atol=1e-5)
    # A .txt list of stacks (paths relative to the .txt, or absolute): stack_a (3) then stack_b (2).
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "a.mrcs").write_bytes(STACK_A.read_bytes())
    listing = tmp_path / "stacks.txt"
    listing.write_text(f"stacks/a.mrcs\n{STACK_B}\n")
    five = read_particles(STAR31).subset([0, 1, 2, 3, 0])
    poses, ctf = cryodrgn_pickles(five, tmp_path)
    ps = read_particles(listing, poses=poses, ctf=ctf)
    np.testing.assert_allclose(ps.read_images()[:, 0, 0].numpy(), [10, 11, 12, 2000, 2100], atol=1e-4)
    np.testing.assert_allclose(ps.rotations, five.rotations, atol=1e-12)


def test_cryodrgn_rotation_only_pose_pickle(tmp_path):
    three = read_particles(STAR31).subset([0, 1, 2])
    _, ctf = cryodrgn_pickles(three, tmp_path)
    poses = write_pkl(tmp_path / "rot.pkl", three.rotations)
    ps = read_particles(STACK_A, poses=poses, ctf=ctf)
    np.testing.assert_allclose(ps.shifts_angstrom, 0.0)


def test_pickles_with_wrong_shapes_are_rejected(tmp_path):
    three = read_particles(STAR31).subset([0, 1, 2])
    poses, ctf = cryodrgn_pickles(three, tmp_path)
    bad_ctf = write_pkl(tmp_path / "bad_ctf.pkl", np.zeros((3, 8)))
    with pytest.raises(InputError, match=r"bad_ctf.pkl: CTF array has shape \(3, 8\); expected \(n, 9\)"):
        read_particles(STACK_A, poses=poses, ctf=bad_ctf)
    not_rotation = write_pkl(tmp_path / "scaled.pkl", (three.rotations * 2, np.zeros((3, 2))))
    with pytest.raises(InputError, match="scaled.pkl: pose 0 is not a rotation matrix"):
        read_particles(STACK_A, poses=not_rotation, ctf=ctf)
    with pytest.raises(InputError, match="without"):
        read_particles(STACK_A, poses=poses)
    with pytest.raises(InputError, match="needs poses"):
        read_particles(STACK_A)


def test_written_cryodrgn_pickles_read_back(tmp_path):
    from cryogeom.imaging.rotations import random_rotations
    from cryogeom.particles.cryodrgn import load_ctf, load_poses, write_ctf, write_poses

    rng = np.random.default_rng(3)
    rot, trans = random_rotations(5, rng), rng.uniform(-0.05, 0.05, (5, 2))
    ctf = np.column_stack([np.full(5, 64), np.full(5, 1.3), rng.uniform(1e4, 2e4, (5, 2)), rng.uniform(0, 180, 5),
                           np.full(5, 300.0), np.full(5, 2.7), np.full(5, 0.1), np.zeros(5)])  # fmt: skip
    write_poses(tmp_path / "pose.pkl", rot, trans)
    write_ctf(tmp_path / "ctf.pkl", ctf)
    got_rot, got_trans = load_poses(tmp_path / "pose.pkl", 5)
    np.testing.assert_array_equal(got_rot, rot)
    np.testing.assert_array_equal(got_trans, trans)
    np.testing.assert_array_equal(load_ctf(tmp_path / "ctf.pkl", 5), ctf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctf.pkl", "pose.pkl"]  # no temporary left
