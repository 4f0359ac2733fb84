"""The whole pipeline on the built-in ADK example: simulate, train, predict, evaluate, report.

Simulates adenylate kinase (214 residues, the 102-frame closed→open path shipped with
MDAnalysisTests) at 50 e/Å², rotating about a point 7 Å from its Cα centroid as a consensus
refinement's particles rotate about its map's centre, trains the network from the first frame (the whole default schedule),
predicts every particle's conformation, scores the held-out particles against the ground truth
(EMD-RMSD, RMSD and the two baselines), analyses the latent space (PC traversals) and writes an
HTML report. Ends by printing the EMD-RMSD and the report's path. Steps already done in OUT
(a finished simulation, a training checkpoint) are reused, so an interrupted demo continues.

Example:
  cryogeom demo -o demo_output
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cryogeom.cli._types import positive_float, positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo_output", help="output directory (default: demo_output)")
    p.add_argument("--per-conf", type=positive_int, default=600, help="images per trajectory frame (default: 600, the paper's size)")
    p.add_argument("--dose", type=positive_float, default=50.0, help="electrons per Å² (default: 50)")
    p.add_argument("--train-minutes", type=positive_float, default=None,
                   help="cap on the training time in minutes (default: none, the whole default schedule of 8 epochs runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation and the training (default: 0)")
    p.add_argument("--quick", action="store_true", help="a tiny run that checks the pipeline in about a minute")


def main(args: argparse.Namespace) -> int:
    from cryogeom import run_dir as rd
    from cryogeom.cli import main as cryogeom
    from cryogeom.evaluate.report import cut_short
    from cryogeom.files import check_writable_dir

    out = Path(args.output)
    check_writable_dir(out, "demo's output directory (-o)")
    sim, run = out / "simulation", out / "run"
    started = time.monotonic()
    # the particles rotate 7 Å from ADK's Cα centroid, as a consensus refinement's do about its
    # map's box centre; base.pdb is in that map's frame
    sim_args = ["--per-conf", str(args.per_conf), "--dose", str(args.dose), "--seed", str(args.seed), "--rotation-centre-offset", "7"]
    train_args = [] if args.train_minutes is None else ["--max-minutes", str(args.train_minutes)]
    if args.quick:
        sim_args = ["--frames", "0:102:17", "--per-conf", "12", "--box", "32", "--pixel", "2.5", "--dose", str(args.dose), "--seed", str(args.seed),
                    "--rotation-centre-offset", "7"]
        train_args = ["--epochs", "2", "--batch-size", "16"]

    def step(title: str, argv: list[str]) -> None:
        print(f"\n== {title}: cryogeom {' '.join(argv)}", flush=True)
        status = cryogeom(argv)
        if status:
            raise SystemExit(status)

    if not (sim / "ground_truth.npz").is_file():
        step("1/5 simulate", ["simulate", *sim_args, "--force", "-o", str(sim)])
    else:
        print(f"== 1/5 simulate: reusing {sim}")
    common = [str(sim / "particles.star")]
    train = ["train", *common, "--structure", str(sim / "base.pdb"), "-o", str(run), "--seed", str(args.seed),
             "--ground-truth", str(sim / "ground_truth.npz"), *train_args]
    if (run / rd.MODEL).is_file():
        print(f"== 2/5 train: reusing {run}")
    else:
        step("2/5 train", train + (["--resume"] if (run / rd.CHECKPOINT).is_file() else []))
    step("3/5 predict", ["predict", str(run), *common, "-o", str(run / "predict"), "--force"])
    step("4/5 analyze", ["analyze", str(run), "--z", str(run / "predict" / "z.npy"), "--force"])
    step("5/5 evaluate", ["evaluate", str(run), "--ground-truth", str(sim / "ground_truth.npz")])
    scores = json.loads((run / rd.EVALUATION).read_text())
    warning = cut_short(rd.read_metrics(run), rd.read_run_metadata(run))
    minutes = (time.monotonic() - started) / 60
    print(
        f"\nEMD-RMSD {scores['emd_rmsd_angstrom']:.2f} Å (mean RMSD {scores['rmsd_angstrom']:.2f} Å; "
        f"base structure {scores['baseline_base_structure_angstrom']:.2f} Å, mean structure "
        f"{scores['baseline_mean_structure_angstrom']:.2f} Å) in {minutes:.1f} min"
    )
    if warning:
        print(f"note: {warning}")
    print(f"report: {(run / rd.REPORT).resolve()}")
    return 0
