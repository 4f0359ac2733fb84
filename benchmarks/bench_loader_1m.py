"""One training pass over a 1,000,000-particle stack: the loader's resident memory stays flat.

Writes a dense (every byte written, no holes) 1,000,000 × 32 × 32 float32 .mrcs stack in chunks
of 10,000 images with plain file writes (no memory map), plus cryoDRGN ``pose.pkl`` and
``ctf.pkl`` (4.1 GB in all), then runs, each in a fresh subprocess:

* ``pread``: the package's data path — ``read_particles`` → ``ParticleDataset`` →
  ``GlobalBatchSampler`` (a random permutation, batch 256) → ``BatchLoader`` with
  ``--workers`` worker processes (0 = in the process) — one full pass, every image read once;
* ``mmap`` (``--mmap-baseline``): the same batches read from a read-only ``numpy.memmap`` of the
  stack, the way the package read before: the contrast.

For each: the file size, the wall time, images/s, the process's peak resident set
(``ru_maxrss``) and that of its worker processes (``RUSAGE_CHILDREN``: the largest child; a
forked worker counts the pages it shares with the parent). Image contents are checked (each
image carries its index in pixel 0). The stack is in the page cache after writing it if memory
allows, so this measures the loader, not the disk. Timings depend on the machine's load; the
lead reruns benchmarks on a quiet machine.

    python benchmarks/bench_loader_1m.py                      # 1,000,000 images, workers 0 and 2
    python benchmarks/bench_loader_1m.py --n 100000 --workers 2 --mmap-baseline
    python benchmarks/bench_loader_1m.py --dir /scratch/bench --keep   # reuse the stack later
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cryogeom.particles.cryodrgn import write_ctf, write_poses

CHUNK = 10_000

_PASS = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
from cryogeom.particles import ParticleDataset, read_particles
from cryogeom.particles.loader import BatchLoader, GlobalBatchSampler

root, mode, workers, batch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kb = lambda who: resource.getrusage(who).ru_maxrss
ps = read_particles(root / "stack.mrcs", poses=root / "pose.pkl", ctf=root / "ctf.pkl")
ds = ParticleDataset(ps)
sampler = GlobalBatchSampler(batch).set_epoch(np.random.default_rng(0).permutation(len(ds)))
before_mb = kb(resource.RUSAGE_SELF) / 1024  # torch, the package and the particle metadata
t0 = time.perf_counter()
checked = 0
if mode == "pread":
    loader = BatchLoader(ds, sampler, num_workers=workers)
    for n_global, b in loader:
        assert np.array_equal(b["image"][:, 0, 0].numpy(), b["index"].numpy().astype(np.float32))
        checked += len(b["index"])
    del loader
else:  # the same batches from a memory map of the stack
    import mrcfile

    data = mrcfile.mmap(root / "stack.mrcs", mode="r").data
    for idx in sampler:
        idx = np.sort(idx)
        images = np.asarray(data[idx], dtype=np.float32)
        assert np.array_equal(images[:, 0, 0], idx.astype(np.float32))
        checked += len(idx)
seconds = time.perf_counter() - t0
print(json.dumps({"checked": checked, "seconds": seconds, "before_mb": before_mb, "self_peak_mb": kb(resource.RUSAGE_SELF) / 1024,
                  "children_peak_mb": kb(resource.RUSAGE_CHILDREN) / 1024}))
"""


def write_stack(root: Path, n: int, box: int) -> Path:
    """A dense n × box × box float32 stack (noise; pixel 0 of image i holds i) and cryoDRGN pickles."""
    import mrcfile

    path = root / "stack.mrcs"
    with mrcfile.new(path, np.zeros((1, box, box), np.float32), overwrite=True) as mrc:
        mrc.set_image_stack()
        mrc.voxel_size = 2.0
        header = mrc.header.copy()
    header.nz = header.mz = n
    noise = np.random.default_rng(0).standard_normal((CHUNK, box, box), dtype=np.float32)
    with open(path, "r+b") as fh:
        fh.write(header.tobytes())
        fh.seek(1024)
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            block = noise[:k].copy()
            block[:, 0, 0] = np.arange(start, start + k, dtype=np.float32)  # exact below 2**24
            fh.write(block.tobytes())
    write_poses(root / "pose.pkl", np.broadcast_to(np.eye(3), (n, 3, 3)), np.zeros((n, 2)))
    write_ctf(root / "ctf.pkl", np.tile([box, 2.0, 15000.0, 15000.0, 0.0, 300.0, 2.7, 0.07, 0.0], (n, 1)))
    return path


def run_pass(root: Path, mode: str, workers: int, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _PASS, str(root), mode, str(workers), str(batch)],
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="particles (default 1,000,000)")
    parser.add_argument("--box", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to run")
    parser.add_argument("--mmap-baseline", action="store_true", help="also read the same batches through a memory map")
    parser.add_argument("--dir", type=Path, help="where to write the stack (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the stack (with --dir: reuse it if present)")
    args = parser.parse_args()
    if args.n >= 2**24:
        parser.error("--n must be below 2**24 (image indices are checked as float32)")

    root = args.dir or Path(tempfile.mkdtemp(prefix="cryogeom_bench_1m_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        stack = root / "stack.mrcs"
        expected = 1024 + args.n * args.box * args.box * 4
        if not (args.keep and stack.is_file() and stack.stat().st_size == expected):
            t0 = time.perf_counter()
            write_stack(root, args.n, args.box)
            print(f"wrote {stack}: {args.n:,} × {args.box}² float32 in {time.perf_counter() - t0:.0f} s")
        size_gb = stack.stat().st_size / 1e9
        blocks_gb = stack.stat().st_blocks * 512 / 1e9
        print(f"file size {size_gb:.2f} GB, allocated on disk {blocks_gb:.2f} GB (dense: equal), batch {args.batch}")
        print()
        print("| read | workers | images | time (s) | images/s | RSS before the pass (MB) | peak RSS, process (MB) | peak RSS, largest worker (MB) | stack (MB) |")
        print("|---|---|---|---|---|---|---|---|---|")
        cases = [("pread", w) for w in args.workers] + ([("mmap", 0)] if args.mmap_baseline else [])
        remainder = args.n % args.batch
        expected = args.n - (remainder if 0 < remainder < 2 else 0)  # a last batch of 1 is left out (BatchNorm)
        for mode, workers in cases:
            r = run_pass(root, mode, workers, args.batch)
            assert r["checked"] == expected, r
            child = f"{r['children_peak_mb']:.0f}" if workers else "–"
            print(f"| {mode} | {workers} | {r['checked']:,} | {r['seconds']:.1f} | {r['checked'] / r['seconds']:,.0f} | "
                  f"{r['before_mb']:.0f} | {r['self_peak_mb']:.0f} | {child} | {size_gb * 1e3:.0f} |")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
