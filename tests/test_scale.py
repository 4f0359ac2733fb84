"""Scale: very large proteins (N = 10,000 residues) and very large data sets, in bounded memory.

* the chunked splat (used above a memory budget) equals the one-pass splat, values and
  gradients, and passes gradcheck;
* one forward + backward of render + k-NN geometry loss at N = 10,000 stays within a memory bound
  that does not grow with the batch (subprocess, ``ru_maxrss``);
* a pass over a 50,000-particle stack grows the resident memory by far less than the stack
  (``pread``, not a memory map), in this process and in DataLoader workers;
* the batches, and so the trained weights, do not depend on ``num_workers``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from cryogeom.imaging.projector import MAX_PROFILE_ELEMENTS, splat_gaussians
from cryogeom.particles.cryodrgn import write_ctf, write_poses
from cryogeom.particles.loader import BatchLoader, GlobalBatchSampler

# ---------------------------------------------------------------------------------------------
# the chunked splat


@pytest.mark.parametrize("per_batch_sigma", [False, True])
def test_chunked_splat_equals_one_pass(per_batch_sigma):
    gen = torch.Generator().manual_seed(2)
    batch, points, box = 3, 41, 36
    xyz = (torch.randn(batch, points, 3, dtype=torch.float64, generator=gen) * 5).requires_grad_()
    shape = (batch, points) if per_batch_sigma else (points,)
    sigma = (torch.rand(shape, dtype=torch.float64, generator=gen) + 1.0).requires_grad_()
    mass = (torch.rand(batch, points, dtype=torch.float64, generator=gen) * 10 + 1).requires_grad_()
    upstream = torch.randn(batch, box, box, dtype=torch.float64, generator=gen)

    def render(max_elements):
        image = splat_gaussians(xyz, sigma, mass, box, 0.9, max_profile_elements=max_elements)
        return (image, *torch.autograd.grad((image * upstream).sum(), (xyz, sigma, mass)))

    whole = render(MAX_PROFILE_ELEMENTS)
    for max_elements in (5000, 700):  # chunks of ~20 and ~3 of the 41 points
        for got, want in zip(render(max_elements), whole):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_chunked_splat_gradcheck():
    gen = torch.Generator().manual_seed(3)
    xyz = (torch.randn(2, 5, 3, dtype=torch.float64, generator=gen) * 3).requires_grad_()
    sigma = (torch.rand(5, dtype=torch.float64, generator=gen) + 1).requires_grad_()
    mass = (torch.rand(2, 5, dtype=torch.float64, generator=gen) + 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, s, m: splat_gaussians(p, s, m, 15, 1.0, max_profile_elements=100), (xyz, sigma, mass))


# ---------------------------------------------------------------------------------------------
# N = 10,000 residues

_LARGE_PROTEIN_STEP = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, torch
    from cryogeom.imaging.ctf import CTFParams
    from cryogeom.imaging.forward import ForwardModel, ForwardSettings
    from cryogeom.imaging.rotations import random_rotations
    from cryogeom.losses.geometry import GeometryLoss

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    batch, n, box, pixel = int(sys.argv[1]), 10_000, 128, 1.6
    # A compact chain: a serpentine walk through a cubic lattice of 3.8 Å (every bond 3.8 Å).
    s = int(np.ceil(n ** (1 / 3)))
    y, x = np.divmod(np.arange(s * s), s)
    layer = np.stack([np.where(y % 2, s - 1 - x, x), y], 1)
    ca = np.concatenate([np.column_stack([layer if z % 2 == 0 else layer[::-1], np.full(s * s, z)]) for z in range(s)])[:n] * 3.8
    base = torch.as_tensor(ca - ca.mean(0), dtype=torch.float32)
    geometry = GeometryLoss(base.double(), k=16)
    renderer = ForwardModel(ForwardSettings(box=box, pixel_size_angstrom=pixel))  # canvas 256 px
    rng = np.random.default_rng(0)
    offsets = torch.as_tensor(rng.normal(size=(2 * n, 3)), dtype=torch.float32)  # 2 points per residue
    sigma, mass = torch.full((2 * n,), 1.5), torch.full((2 * n,), 30.0)
    rotations = torch.as_tensor(random_rotations(batch, rng), dtype=torch.float32)
    ctf = CTFParams.stack(torch.tensor([[15000.0, 15000.0, 0.0, 300.0, 2.7, 0.07, 0.0]]).repeat(batch, 1))
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(batch, box, box, generator=gen)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    pred = (base + 0.5 * torch.randn(batch, n, 3, generator=gen)).requires_grad_()
    render = renderer(pred.repeat_interleave(2, dim=1) + offsets, rotations, torch.zeros(batch, 2), ctf, sigma, mass)
    loss = ((render - data) ** 2).mean() + geometry(pred)
    loss.backward()
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"growth_mb": growth_mb, "seconds": time.perf_counter() - t, "finite": bool(torch.isfinite(pred.grad).all()),
                      "grad_norm": pred.grad.norm().item(), "pairs": geometry.n_pairs}))
    """
)


def _large_protein_step(batch: int) -> dict:
    # Every allocation of 1 MB or more is its own mmap, returned to the system when freed, so the
    # peak RSS measures the live tensors. (With glibc's default adaptive threshold, freed blocks
    # of up to 32 MB stay in the heap and the peak RSS also grows with the batch through
    # fragmentation: measured 202 / 381 / 837 MB at B = 8 / 24 / 48, see benchmarks/bench_scale.py.)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    out = subprocess.run([sys.executable, "-c", _LARGE_PROTEIN_STEP, str(batch)], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_n10000_render_and_knn_geometry_in_bounded_memory():
    small, large = _large_protein_step(4), _large_protein_step(16)
    for result in (small, large):
        assert result["finite"] and result["grad_norm"] > 0
        assert 10_000 * 8 <= result["pairs"] <= 10_000 * 16  # k-NN: O(kN) pairs, not N(N-1)/2 = 5e7
    # Without chunks the splat's profiles take B·M·(Wx + Wy) float32 values (the 84 Å cube spans
    # ~97 px of 1.6 Å with the 6σ margins): 20,000 · 194 · 4 B = 15.5 MB per image, ~2-4 such
    # tensors alive at the peak: the one-pass splat measured 280 MB at B = 8 and 1,198 MB at B = 32
    # (+38 MB per image). Chunked, the profiles stay under 4 × 64 MB whatever the batch (measured
    # 158 MB at B = 8 and 172 MB at B = 32).
    assert large["growth_mb"] < 300, large
    assert large["growth_mb"] - small["growth_mb"] < 60, (small, large)  # one-pass: ~450 MB more


# ---------------------------------------------------------------------------------------------
# large data sets: streaming a stack


def _write_cryodrgn_set(root: Path, n: int, box: int, chunk: int = 5000) -> Path:
    """n random images written in chunks (no memory map) with cryoDRGN pose and CTF pickles."""
    path = root / "stack.mrcs"
    with mrcfile.new(path, np.zeros((1, box, box), np.float32)) as mrc:
        mrc.set_image_stack()
        mrc.voxel_size = 2.0
        header = mrc.header.copy()
    header.nz = header.mz = n
    rng = np.random.default_rng(0)
    with open(path, "r+b") as fh:
        fh.write(header.tobytes())
        fh.seek(1024)
        for start in range(0, n, chunk):
            fh.write(rng.normal(size=(min(chunk, n - start), box, box)).astype(np.float32).tobytes())
    write_poses(root / "pose.pkl", np.broadcast_to(np.eye(3), (n, 3, 3)), np.zeros((n, 2)))
    write_ctf(root / "ctf.pkl", np.tile([box, 2.0, 15000.0, 15000.0, 0.0, 300.0, 2.7, 0.07, 0.0], (n, 1)))
    return path


_ONE_PASS = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import numpy as np
    from cryogeom.particles import ParticleDataset, read_particles
    from cryogeom.particles.loader import BatchLoader, GlobalBatchSampler

    root, workers = Path(sys.argv[1]), int(sys.argv[2])
    ps = read_particles(root / "stack.mrcs", poses=root / "pose.pkl", ctf=root / "ctf.pkl")
    ds = ParticleDataset(ps)
    sampler = GlobalBatchSampler(256).set_epoch(np.random.default_rng(0).permutation(len(ds)))
    loader = BatchLoader(ds, sampler, num_workers=workers)
    first = next(iter(loader))  # start-up (and the workers' fork) before the baseline
    kb = lambda who: resource.getrusage(who).ru_maxrss
    before = kb(resource.RUSAGE_SELF)
    count, total = 0, 0.0
    for n_global, batch in loader:
        count += len(batch["image"])
        total += float(batch["image"][:, 0, 0].sum())
    del loader
    print(json.dumps({"count": count, "self_growth_mb": (kb(resource.RUSAGE_SELF) - before) / 1024,
                      "self_mb": kb(resource.RUSAGE_SELF) / 1024, "children_mb": kb(resource.RUSAGE_CHILDREN) / 1024}))
    """
)


@pytest.fixture(scope="module")
def stack_50k(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack50k")
    _write_cryodrgn_set(root, 50_000, 32)
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_one_pass_over_a_large_stack_keeps_resident_memory_flat(stack_50k, workers):
    size_mb = (stack_50k / "stack.mrcs").stat().st_size / 2**20
    assert size_mb > 190  # 50,000 × 32 × 32 float32
    out = subprocess.run([sys.executable, "-c", _ONE_PASS, str(stack_50k), str(workers)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["count"] == 50_000
    # A memory map would add the whole file (~195 MB) to the resident memory of whoever reads it.
    assert result["self_growth_mb"] < 0.1 * size_mb, result
    if workers:
        # A worker's peak RSS counts the pages it shares with the parent (fork) plus its own reads.
        assert result["children_mb"] < result["self_mb"] + 0.1 * size_mb, result


def test_batches_do_not_depend_on_num_workers(stack_50k):
    from cryogeom.particles import ParticleDataset, read_particles

    ps = read_particles(stack_50k / "stack.mrcs", poses=stack_50k / "pose.pkl", ctf=stack_50k / "ctf.pkl")
    ds = ParticleDataset(ps.subset(np.arange(300)), downsample_box=20)
    order = np.random.default_rng(1).permutation(len(ds))
    runs = []
    for workers in (0, 2):
        sampler = GlobalBatchSampler(32, rank=1, world_size=2).set_epoch(order, start_batch=2)
        loader = BatchLoader(ds, sampler, num_workers=workers)
        runs.append(list(loader))
        sampler.set_epoch(order[::-1], start_batch=0)  # the same (persistent) workers, a new epoch
        runs[-1] += list(loader)
    assert len(runs[0]) == len(runs[1]) == 8 + 10
    for (n_a, a), (n_b, b) in zip(*runs):
        assert n_a == n_b
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # rank 1's shares: the second half of each global batch of the epoch's order
    np.testing.assert_array_equal(runs[0][0][1]["index"].numpy(), order[2 * 32 + 16 : 3 * 32])


@pytest.mark.slow
def test_training_does_not_depend_on_num_workers(tiny_dataset, tmp_path):
    from cryogeom.particles.read import read_particles
    from cryogeom.structure.read import read_structure
    from cryogeom.train.config import preset
    from cryogeom.train.loop import Trainer

    weights = []
    for workers in (0, 2):
        config = preset("default", epochs=1, batch_size=16, seed=2, threads=1)
        config.runtime.num_workers = workers
        trainer = Trainer(config, read_particles(tiny_dataset / "particles.star"), read_structure(tiny_dataset / "base.pdb"),
                          tmp_path / f"w{workers}", progress=False, log=lambda *a: None)  # fmt: skip
        trainer.fit()
        weights.append(torch.load(tmp_path / f"w{workers}" / "model.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
