"""Training throughput (images/s) of the presets on one data set, side by side.

For each preset, builds the trainer on the particles (calibration included, not timed), runs
--warmup steps, then times --steps full training steps (data read, forward, backward, Adam) at
the preset's batch size. Prints a Markdown row per preset.

Usage:
  python benchmarks/bench_training.py /tmp/adk50 --presets default paper
  python benchmarks/bench_training.py /tmp/cftr --presets default \
      --variant "3 Å:train_pixel_angstrom=3" --variant "k=32:geometry_k=32"   # the default, changed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

import torch

from cryogeom.particles.read import read_particles
from cryogeom.structure.read import read_structure
from cryogeom.train.config import preset
from cryogeom.train.loop import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sim", help="directory with particles.star and base.pdb")
    ap.add_argument("--presets", nargs="+", default=["default", "paper"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL:NAME=VALUE,NAME=VALUE — the first preset with these settings changed (JSON values)")
    args = ap.parse_args()
    particles = read_particles(f"{args.sim}/particles.star")
    base = read_structure(f"{args.sim}/base.pdb")
    print(f"{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {args.threads or torch.get_num_threads()}; {particles.n} particles of {particles.box} px\n")
    print("| preset | encoder input | density | batch | s/step | images/s |")
    print("|---|---|---|---|---|---|")
    cases = [(name, name, {}) for name in args.presets]
    for variant in args.variant:
        label, _, settings = variant.partition(":")
        changed = {k: json.loads(v) for k, v in (item.split("=", 1) for item in settings.split(",") if item)}
        cases.append((f"{args.presets[0]}, {label}", args.presets[0], changed))
    for name, preset_name, changed in cases:
        run = tempfile.mkdtemp(prefix="bench_training_")
        try:
            cfg = preset(preset_name, epochs=1, threads=args.threads).replace(**changed)
            tr = Trainer(cfg, particles, base, run, progress=False, log=lambda *a, **k: None)
            bs = cfg.optimisation.batch_size
            idx = tr.train_idx
            for i in range(args.warmup):
                tr.step(idx[i * bs:(i + 1) * bs])
            t0 = time.perf_counter()
            for i in range(args.warmup, args.warmup + args.steps):
                tr.step(idx[i * bs:(i + 1) * bs])
            dt = (time.perf_counter() - t0) / args.steps
            box = tr.model.renderer.settings.box
            print(f"| {name} | {box} px at {tr.model.renderer.settings.pixel_size_angstrom:.2f} Å | {cfg.network.density} | {bs} | {dt:.3f} | {bs / dt:.0f} |", flush=True)
        finally:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
