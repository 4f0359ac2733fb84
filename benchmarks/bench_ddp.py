"""Training throughput with 1 and 2 processes (DDP, gloo on CPU): images/s of ``cryogeom train``.

Simulates a small ADK data set once (``cryogeom simulate``: 17 frames × --per-conf images of
--box px at --pixel Å), then trains on it with the default preset (images Fourier-downsampled to
~2 Å/px), global batch --batch, for --epochs epochs, in three ways:

* 1 process × 1 thread, 1 process × 2 threads (``--threads``);
* 2 processes × 1 thread: ``python -m torch.distributed.run --nproc-per-node=2 -m cryogeom train``.

The same global batch, so the same optimisation steps. Reported: images/s from ``metrics.csv``
(rank 0's wall clock per epoch, data loading included, validation excluded), averaged over the
epochs after the first (which pays for start-up), and the CPU time per image of epochs 2+ (all
processes and threads: a run of --epochs minus a run of 1 epoch), which shows the cost of the
processes' communication even when the machine's load keeps them from running in parallel. Timings depend on the load
of the machine; this one is shared: say so beside any number. The lead reruns benchmarks on a
quiet machine.

    python benchmarks/bench_ddp.py
    python benchmarks/bench_ddp.py --per-conf 60 --epochs 4 --batch 128
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train(sim: Path, run: Path, *, procs: int, threads: int, epochs: int, batch: int) -> tuple[float, float, float]:
    """(images/s averaged over epochs 2.., wall seconds, CPU seconds of all its processes)."""
    cpu0 = children_cpu_seconds()
    cmd = [sys.executable]
    if procs > 1:
        cmd += ["-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port", str(free_port())]
    cmd += [
        "-m", "cryogeom", "train", str(sim / "particles.star"), "--structure", str(sim / "base.pdb"), "-o", str(run),
        "--epochs", str(epochs), "--batch-size", str(batch), "--threads", str(threads), "--no-progress",
    ]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stdout + out.stderr)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    rates = [float(r["images_per_s"]) for r in rows[1:]] or [float(rows[0]["images_per_s"])]
    return sum(rates) / len(rates), wall, children_cpu_seconds() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-conf", type=int, default=40, help="images per frame (17 frames)")
    parser.add_argument("--box", type=int, default=80)
    parser.add_argument("--pixel", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cryogeom_bench_ddp_"))
    try:
        sim = root / "sim"
        subprocess.run(
            [sys.executable, "-m", "cryogeom", "simulate", "--frames", "0:102:6", "--per-conf", str(args.per_conf),
             "--box", str(args.box), "--pixel", str(args.pixel), "--dose", "50", "--seed", "1", "--workers", "2",
             "--quiet", "-o", str(sim)],
            check=True, capture_output=True,
        )  # fmt: skip
        n = 17 * args.per_conf
        print(f"{n} simulated ADK images of {args.box} px at {args.pixel} Å (trained at ~2 Å/px), global batch {args.batch}, "
              f"{args.epochs} epochs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)\n")  # fmt: skip
        n_train = n - min(4000, int(0.1 * n))
        print("| processes × threads | images/s (epochs 2+) | relative to 1 × 1 | wall time of the run (s) | CPU ms per image, steady state |")
        print("|---|---|---|---|---|")
        base = None
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            kw = dict(procs=procs, threads=threads, batch=args.batch)
            rate, wall, cpu = train(sim, root / f"run{procs}x{threads}", epochs=args.epochs, **kw)
            # CPU time of epochs 2.. (all processes, all threads): this run minus a 1-epoch run,
            # which pays the same start-up. Less sensitive to the machine's load than images/s.
            _, _, cpu1 = train(sim, root / f"run{procs}x{threads}_1", epochs=1, **kw)
            per_image = 1e3 * (cpu - cpu1) / ((args.epochs - 1) * n_train)
            base = base or rate
            print(f"| {procs} × {threads} | {rate:.0f} | {rate / base:.2f} | {wall:.0f} | {per_image:.2f} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
