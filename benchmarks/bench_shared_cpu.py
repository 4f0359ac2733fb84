"""Training throughput on a quiet machine and beside another CPU-bound process, per thread setting.

Each measurement runs in a fresh process (so that OpenMP settings take effect): it builds the
trainer (not timed), takes --warmup steps, then times --steps training steps of the default preset
(read, forward, backward, Adam), with the trainer's thread tuner around each step as in training
(its probe windows included), and prints images/s. Each variant is measured quiet, then while a
competitor runs: a second ``cryogeom train`` on the same data with one thread (the common case of
a shared workstation or cluster node), started before and killed after the measurement.

Usage:
  python benchmarks/bench_shared_cpu.py SIMDIR [--steps 400] [--variants default threads2 threads1 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = r"""
import json, sys, tempfile, time
from cryogeom.particles.read import read_particles
from cryogeom.structure.read import read_structure
from cryogeom.train.config import preset
from cryogeom.train.loop import Trainer
sim, steps, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
threads = None if threads == "auto" else int(threads)
import torch
tr = Trainer(preset("default", epochs=1, threads=threads), read_particles(f"{sim}/particles.star"),
             read_structure(f"{sim}/base.pdb"), tempfile.mkdtemp(), progress=False, log=lambda *a, **k: None)
bs, idx = tr.config.optimisation.batch_size, tr.train_idx
def step(i):  # as Trainer.fit takes a step: the thread tuner (if any) around it
    if tr.tuner is not None:
        tr.tuner.before_step(i)
    t = time.perf_counter()
    tr.step(idx[(i * bs) % (len(idx) - bs):][:bs])
    if tr.tuner is not None:
        tr.tuner.after_step(i, time.perf_counter() - t)
for i in range(warmup):
    step(i)
t0 = time.perf_counter()
for i in range(warmup, warmup + steps):
    step(i)
dt = time.perf_counter() - t0
print(json.dumps({"images_per_s": steps * bs / dt, "threads": torch.get_num_threads()}))
"""

#: name -> (threads argument, extra environment)
VARIANTS = {
    "default": ("auto", {}),
    "threads2": ("2", {}),
    "threads1": ("1", {}),
    "passive": ("auto", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "active": ("auto", {"OMP_WAIT_POLICY": "ACTIVE"}),
    "spin1k": ("auto", {"GOMP_SPINCOUNT": "1000"}),
    "spin10k": ("auto", {"GOMP_SPINCOUNT": "10000"}),
    "spin30k": ("auto", {"GOMP_SPINCOUNT": "30000"}),
}


def measure(sim: str, steps: int, warmup: int, threads: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, sim, str(steps), str(warmup), threads],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sim", help="a cryogeom simulate directory (particles.star, base.pdb)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start\n")
    print("| variant | threads | quiet images/s | beside a 1-thread cryogeom train, images/s | kept |")
    print("|---|---|---|---|---|")
    for name in args.variants:
        threads, env = VARIANTS[name]
        quiet = measure(args.sim, args.steps, args.warmup, threads, env)
        with tempfile.TemporaryDirectory() as tmp:
            competitor = subprocess.Popen(
                [sys.executable, "-m", "cryogeom", "train", f"{args.sim}/particles.star", "--structure", f"{args.sim}/base.pdb",
                 "-o", str(Path(tmp) / "other"), "--threads", "1", "--epochs", "100", "--no-progress"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
            try:
                time.sleep(20)  # its set-up done, it is training
                shared = measure(args.sim, args.steps, args.warmup, threads, env)
            finally:
                competitor.kill()
                competitor.wait()
        kept = shared["images_per_s"] / quiet["images_per_s"]
        print(f"| {name} | {quiet['threads']} | {quiet['images_per_s']:.0f} | {shared['images_per_s']:.0f} | {100 * kept:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
