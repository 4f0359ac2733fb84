"""ParticleDataset items and batches, DataLoader workers, lazy/large stacks, mean-preserving downsampling."""

from __future__ import annotations

import pickle
import resource
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.rotations import random_rotations
from cryogeom.particles import ImageStack, ParticleDataset, downsample_images, read_particles, write_relion

DATA = Path(__file__).parent / "data" / "particles"


@pytest.fixture(scope="module")
def written_set(tmp_path_factory):
    """40 random 20-px particles written as RELION files (two optics groups)."""
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(7)
    n, box = 40, 20
    images = rng.normal(size=(n, box, box)).astype(np.float32)
    ctf = {
        "defocus_u_angstrom": rng.uniform(1e4, 2e4, n),
        "defocus_v_angstrom": rng.uniform(1e4, 2e4, n),
        "astigmatism_angle_deg": rng.uniform(-90, 90, n),
        "voltage_kv": np.where(np.arange(n) < 20, 300.0, 200.0),
        "cs_mm": 2.7,
        "amplitude_contrast": 0.07,
        "phase_shift_deg": 0.0,
    }
    write_relion(
        root / "p.star",
        root / "p.mrcs",
        images,
        rotations=random_rotations(n, rng),
        shifts_angstrom=rng.normal(size=(n, 2)),
        ctf=ctf,
        pixel_size_angstrom=1.5,
    )
    return read_particles(root / "p.star"), images


def test_item_fields(written_set):
    ps, images = written_set
    ds = ParticleDataset(ps, indices=[5, 30, 2])
    assert len(ds) == 3
    item = ds[1]
    assert item["index"].item() == 30 and item["index"].dtype == torch.int64
    assert item["image"].shape == (20, 20) and item["image"].dtype == torch.float32
    np.testing.assert_array_equal(item["image"].numpy(), images[30])
    np.testing.assert_allclose(item["rotation"].numpy(), ps.rotations[30], atol=1e-6)
    np.testing.assert_allclose(item["shift_angstrom"].numpy(), ps.shifts_angstrom[30], atol=1e-6)
    # ctf columns follow CTFParams.as_tensor(); CTFParams.stack inverts it.
    ctf = CTFParams.stack(item["ctf"][None].double())
    assert ctf.voltage_kv.item() == 200.0
    np.testing.assert_allclose(ctf.defocus_u_angstrom.numpy(), ps.defocus_u_angstrom[[30]], rtol=1e-6)
    torch.testing.assert_close(item["ctf"].double(), ps.ctf(torch.tensor([30]), dtype=torch.float64).as_tensor()[0], rtol=1e-6, atol=0)
    assert item["pixel_size_angstrom"].item() == pytest.approx(1.5)
    assert ds[-1]["index"].item() == 2
    with pytest.raises(IndexError):
        ds[3]


def test_batch_equals_items_and_float64(written_set):
    ps, _ = written_set
    ds = ParticleDataset(ps, downsample_box=11, dtype=torch.float64)
    positions = [17, 3, 39, 3, 0]  # unsorted, with a repeat
    batch = ds[positions]
    assert batch["image"].shape == (5, 11, 11) and batch["image"].dtype == torch.float64
    assert batch["rotation"].dtype == torch.float64
    for row, position in enumerate(positions):
        item = ds[position]
        for key in batch:
            torch.testing.assert_close(batch[key][row], item[key], rtol=1e-6, atol=1e-6)
    # Downsampled: pixel size p * D / D', images equal downsample_images of the originals.
    np.testing.assert_allclose(batch["pixel_size_angstrom"].numpy(), 1.5 * 20 / 11)
    expected = downsample_images(ps.read_images(positions).double(), 11)
    torch.testing.assert_close(batch["image"], expected, rtol=1e-5, atol=1e-5)


def test_dataloader_workers_match_in_process(written_set):
    ps, _ = written_set
    ds = ParticleDataset(ps, indices=np.arange(3, 35), downsample_box=16)
    ps.read_images([0])  # the parent has its memory maps open before the workers fork
    reference = [ds[i] for i in range(len(ds))]

    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    got = [{k: v[j] for k, v in batch.items()} for batch in loader for j in range(len(batch["index"]))]
    assert len(got) == len(reference)
    for a, b in zip(got, reference):
        for key in a:
            torch.testing.assert_close(a[key], b[key])

    # The copy-free form: a BatchSampler hands whole index lists to dataset[...].
    loader = DataLoader(ds, sampler=BatchSampler(SequentialSampler(ds), 8, drop_last=False), batch_size=None, num_workers=2)
    images = torch.cat([batch["image"] for batch in loader])
    torch.testing.assert_close(images, torch.stack([r["image"] for r in reference]))


def test_dataset_pickles_without_pixels(written_set):
    ps, _ = written_set
    ds = ParticleDataset(ps)
    ds[0]  # open the memory maps
    stack_bytes = ps.n * ps.box * ps.box * 4
    # The image source pickles as file names and frame numbers: a few bytes per particle.
    assert len(pickle.dumps(ps.images)) < 1000 + 20 * ps.n < stack_bytes / 20
    blob = pickle.dumps(ds)
    assert len(blob) < stack_bytes / 2
    copy = pickle.loads(blob)
    torch.testing.assert_close(copy[[4, 9]]["image"], ds[[4, 9]]["image"])


def test_many_stack_files_with_few_open_maps():
    ps = read_particles(DATA / "relion30.star")
    ps.images.files.max_open = 1  # stack_a and stack_b alternate: maps are closed and re-opened
    first = ps.read_images().clone()
    for _ in range(3):
        torch.testing.assert_close(ps.read_images([2, 1, 0]), first[[2, 1, 0]])
    assert len(ps.images.files._open) == 1


def test_stack_larger_than_memory_reads_lazily(tmp_path):
    """A 28 GB sparse stack (more than this machine's memory) opens and reads a few images."""
    n, box = 430_000, 128
    path = tmp_path / "huge.mrcs"
    with mrcfile.new(path, np.zeros((1, box, box), dtype=np.float32)) as mrc:
        mrc.set_image_stack()
        mrc.voxel_size = 1.0
        header = mrc.header.copy()
    header.nz = n
    header.mz = n
    with open(path, "r+b") as fh:
        fh.write(header.tobytes())
    try:
        with open(path, "r+b") as fh:
            fh.truncate(1024 + n * box * box * 4)
    except OSError:
        pytest.skip("this filesystem cannot hold a sparse 28 GB file")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stack = ImageStack.from_stack_files([path])
    assert len(stack) == n and stack.box == box
    with open(path, "r+b") as fh:  # a recognisable pixel in the last image
        fh.seek(1024 + ((n - 1) * box * box + 5) * 4)
        fh.write(np.float32(3.5).tobytes())
    images = stack.read([n - 1, 0, 123_456])
    assert images.shape == (3, box, box)
    assert images[0, 0, 5].item() == 3.5 and images.abs().sum().item() == 3.5
    growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert growth_kb < 500_000  # far below the 28 GB stack


# ---------------------------------------------------------------------------------------------
# Mean-preserving Fourier-crop downsampling
# ---------------------------------------------------------------------------------------------
def gaussian_image(box: int, pixel_size: float, sigma: float, centre=(0.0, 0.0)) -> torch.Tensor:
    """exp(-|r - centre|² / 2σ²) sampled at pixel j ↦ (j - box // 2) · pixel_size (grid.py)."""
    x = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel_size
    return torch.exp(-((x[None, :] - centre[0]) ** 2 + (x[:, None] - centre[1]) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("box, box_out", [(64, 32), (64, 33), (65, 32), (65, 33), (64, 40), (48, 48)])
def test_downsample_keeps_band_limited_gaussian_and_mean(box, box_out):
    pixel, sigma, centre = 1.0, 4.0, (1.3, -2.1)
    image = gaussian_image(box, pixel, sigma, centre)
    out = downsample_images(image[None], box_out)[0]
    # The same Gaussian sampled on the coarse grid (pixel p D / D', centre at box_out // 2).
    expected = gaussian_image(box_out, pixel * box / box_out, sigma, centre)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-8)
    assert out.mean().item() == pytest.approx(image.mean().item(), abs=1e-12)


@pytest.mark.parametrize("box, box_out", [(20, 10), (21, 10), (20, 9)])
def test_downsample_preserves_mean_of_any_image(box, box_out):
    image = torch.rand(3, box, box, dtype=torch.float64) + 2.0
    out = downsample_images(image, box_out)
    torch.testing.assert_close(out.mean(dim=(-1, -2)), image.mean(dim=(-1, -2)), rtol=0, atol=1e-12)
