"""Time the scoring of ``cryogeom evaluate`` at the paper's size: K = 4000 held-out particles, ADK (N = 214).

Without a trained network: "predictions" are the ground-truth frames of K particles drawn
uniformly from the 102-frame ADK path (MDAnalysisTests PSF + DCD2), with 1 Å of noise and a
random rigid motion each. Reports the wall time of each stage of evaluation after prediction:
EMD-RMSD + mean RMSD + both baselines (:func:`score_conformations`), per-residue errors by frame
(:func:`per_residue_errors`), and the two ground-truth figures. Prediction itself is the network's
inference (``cryogeom.train.inference.predict``) and is not timed here. Timings depend on the load
of the machine; the lead reruns benchmarks on a quiet one.

    python benchmarks/bench_evaluate.py            # K = 4000
    python benchmarks/bench_evaluate.py --k 500    # quick check that it runs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cryogeom.evaluate import figures
from cryogeom.evaluate.evaluation import per_residue_errors, score_conformations
from cryogeom.examples import adk
from cryogeom.imaging.rotations import random_rotations



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    path = adk().ca  # the built-in ADK closed→open path, [102, 214, 3] Å
    frames = rng.integers(0, len(path), size=args.k)
    truth = path[frames]
    pred = truth + rng.normal(size=truth.shape)
    pred = pred @ np.swapaxes(random_rotations(args.k, rng), -1, -2) + rng.normal(size=(args.k, 1, 3)) * 20
    z = np.column_stack([frames + rng.normal(size=args.k) * 5, rng.normal(size=(args.k, 7))])

    t0 = time.perf_counter()
    scores = score_conformations(pred, truth, path[0])
    t1 = time.perf_counter()
    per_residue = per_residue_errors(pred, path, frames, path[0])
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        figures.plot_per_residue_errors(per_residue, Path(tmp) / figures.PER_RESIDUE)
        figures.plot_latent_vs_frame(z, frames, Path(tmp) / figures.LATENT_VS_FRAME)
    t3 = time.perf_counter()
    print(f"K = {args.k}, N = {path.shape[1]} residues, {len(np.unique(frames))} frames")
    print(f"  EMD-RMSD {scores.emd_rmsd_angstrom:.3f} Å, mean RMSD {scores.rmsd_angstrom:.3f} Å, "
          f"baselines {scores.baseline_base_structure_angstrom:.3f} / {scores.baseline_mean_structure_angstrom:.3f} Å")
    print(f"  scores (EMD-RMSD, RMSD, baselines) {t1 - t0:7.2f} s")
    print(f"  per-residue errors by frame        {t2 - t1:7.2f} s")
    print(f"  ground-truth figures               {t3 - t2:7.2f} s")
    print(f"  total                              {t3 - t0:7.2f} s")


if __name__ == "__main__":
    main()
