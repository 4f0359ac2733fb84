"""Time-to-accuracy of training on a simulated set: validation EMD-RMSD against minutes.

Simulates (or reuses) ADK at the paper's size (102 frames × 600 images, 50 e/Å²) or, with
``--example cftr``, the large stand-in (200 frames × ``--per-conf`` images, 160 px at 1 Å), trains with the
given settings — the default schedule, stopped at the time budget if it runs longer, or with
``--fill-budget`` a cosine schedule stretched over the whole budget — scoring the 4,000 held-out particles after every epoch
(``cryogeom train --ground-truth``), and prints the curve from the run's metrics.csv as a
Markdown table with the two baselines, then runs ``cryogeom evaluate`` on the finished run (the
final number). Training minutes exclude the validation passes.

Usage:
  python benchmarks/time_to_accuracy.py --data /tmp/adk50 --run /tmp/tta_default --minutes 15
  python benchmarks/time_to_accuracy.py --data /tmp/adk50 --run /tmp/tta_paper --minutes 15 -- --preset paper
  python benchmarks/time_to_accuracy.py --example cftr --per-conf 200 --data /tmp/cftr200 --run /tmp/tta_cftr --minutes 60
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="simulation directory (created if missing)")
    ap.add_argument("--run", required=True, help="run directory (overwritten)")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--dose", type=float, default=50.0)
    ap.add_argument("--example", choices=("adk", "adk-2d", "cftr"), default="adk", help="the built-in example simulated (default: adk)")
    ap.add_argument("--per-conf", type=int, help="images per frame (default: simulate's)")
    ap.add_argument("--fill-budget", action="store_true", help="train until the budget ends, the learning rate decaying over it")
    ap.add_argument("train_args", nargs="*", help="extra arguments for cryogeom train (after --)")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "cryogeom"]
    data = Path(args.data)
    if not (data / "ground_truth.npz").is_file():
        extra = ["--box", "160"] if args.example == "cftr" else []
        extra += ["--per-conf", str(args.per_conf)] if args.per_conf else []
        subprocess.run([*exe, "simulate", "--example", args.example, "--dose", str(args.dose), *extra, "--quiet", "--force",
                        "-o", str(data)], check=True)
    started = time.strftime("%Y-%m-%d %H:%M")
    cmd = [*exe, "train", str(data / "particles.star"), "--structure", str(data / "base.pdb"), "-o", args.run, "--force",
           "--ground-truth", str(data / "ground_truth.npz"), "--max-minutes", str(args.minutes),
           *(["--epochs", "1000"] if args.fill_budget else []), "--no-progress", *args.train_args]
    subprocess.run(cmd, check=True)
    rows = list(csv.DictReader(open(Path(args.run) / "metrics.csv")))
    print(f"\n{started}, {platform.node()}, {platform.machine()}, command: cryogeom {' '.join(cmd[3:])}\n")
    print("| training min | epoch | images/s | val RMSD (Å) | val EMD-RMSD (Å) | base structure (Å) | mean structure (Å) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {float(r['train_minutes']):.1f} | {r['epoch']} | {float(r['images_per_s']):.0f} | {float(r['val_rmsd']):.2f} | "
              f"{float(r['val_emd_rmsd']):.2f} | {float(r['baseline_base_structure']):.2f} | {float(r['baseline_mean_structure']):.2f} |")
    print(flush=True)
    subprocess.run([*exe, "evaluate", args.run, "--ground-truth", str(data / "ground_truth.npz"), "--no-progress"], check=True)


if __name__ == "__main__":
    main()
