"""Particle loading throughput: batched reads from a memory-mapped .mrcs, with and without downsampling.

Writes a temporary RELION data set (N random images of D px), then times random training batches
through ``ParticleDataset.get_batch`` (one read per batch, sorted frames) against the naive path
(one ``__getitem__`` per image, collated), and a ``DataLoader`` with workers. Reports images/s.

Usage: python benchmarks/bm_particles_loading.py [--n 20000] [--box 128] [--batch 128] [--down 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from cryogeom.imaging.rotations import random_rotations
from cryogeom.particles import ParticleDataset, read_particles, write_relion


def make_dataset(root: Path, n: int, box: int) -> Path:
    rng = np.random.default_rng(0)
    chunks = (rng.normal(size=(min(1024, n - s), box, box)).astype(np.float32) for s in range(0, n, 1024))
    ctf = {
        "defocus_u_angstrom": rng.uniform(1e4, 2e4, n),
        "defocus_v_angstrom": rng.uniform(1e4, 2e4, n),
        "astigmatism_angle_deg": rng.uniform(-90, 90, n),
        "voltage_kv": 300.0,
        "cs_mm": 2.7,
        "amplitude_contrast": 0.07,
        "phase_shift_deg": 0.0,
    }
    star = root / "bench.star"
    write_relion(star, root / "bench.mrcs", chunks, rotations=random_rotations(n, rng), shifts_angstrom=np.zeros((n, 2)), ctf=ctf, pixel_size_angstrom=1.0)
    return star


def rate(fn, n_batches: int, batch: int) -> float:
    fn()  # warm-up (page cache, FFT plans)
    start = time.perf_counter()
    for _ in range(n_batches):
        fn()
    return n_batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--box", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--down", type=int, default=64)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        star = make_dataset(Path(tmp), args.n, args.box)
        particles = read_particles(star)
        print(f"{args.n} images of {args.box} px ({args.n * args.box**2 * 4 / 1e9:.2f} GB), batch {args.batch}, 1 torch thread")
        for down in (None, args.down):
            ds = ParticleDataset(particles, downsample_box=down)
            label = f"D'={ds.box}"
            batched = rate(lambda: ds.get_batch(rng.choice(len(ds), args.batch, replace=False)), args.batches, args.batch)
            per_item = rate(
                lambda: torch.utils.data.default_collate([ds[int(i)] for i in rng.choice(len(ds), args.batch, replace=False)]),
                max(3, args.batches // 5),
                args.batch,
            )
            print(f"  {label:8s} get_batch: {batched:9.0f} img/s    per-item + collate: {per_item:9.0f} img/s")
            loader = DataLoader(ds, sampler=BatchSampler(RandomSampler(ds), args.batch, drop_last=True), batch_size=None, num_workers=2)
            start, count = time.perf_counter(), 0
            for i, batch in enumerate(loader):
                count += len(batch["index"])
                if i + 1 == args.batches:
                    break
            print(f"  {label:8s} DataLoader(2 workers, BatchSampler): {count / (time.perf_counter() - start):9.0f} img/s (incl. worker start-up)")


if __name__ == "__main__":
    main()
