"""Time EMD-RMSD at the paper's evaluation size: K = 4000 conformations, N = 214 (ADK) and 1181 residues.

Reports, per size, the wall time of the K×K Kabsch-RMSD matrix (:func:`rmsd_matrix`), of the
assignment (:func:`scipy.optimize.linear_sum_assignment`) and of :func:`emd_rmsd` end to end
(best of ``--repeats``), plus the rate in pairs per second.

Data: for N = 214 the ADK closed→open path (MDAnalysisTests PSF + DCD2, 102 frames), K frames
drawn uniformly with 1 Å of noise as "predictions"; other N use a random 3.8 Å chain with a hinge
motion. Timings depend on the load of the machine; the lead reruns benchmarks on a quiet one.

    python benchmarks/bench_emd_rmsd.py                  # K = 4000, N = 214 and 1181
    python benchmarks/bench_emd_rmsd.py --k 500 --n 214  # quick check that it runs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from cryogeom.metrics.emd import emd_rmsd
from cryogeom.metrics.rmsd_matrix import rmsd_matrix
from cryogeom.examples import adk



def hinge_frames(n: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[frames, n, 3]: a random chain (3.8 Å steps) whose second half rotates by up to 60° about a hinge."""
    steps = rng.normal(size=(n, 3))
    chain = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    chain -= chain.mean(0)
    pivot = chain[n // 2]
    out = np.repeat(chain[None], frames, axis=0)
    for i, angle in enumerate(np.linspace(0.0, np.pi / 3, frames)):
        c, s = np.cos(angle), np.sin(angle)
        r = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        out[i, n // 2 :] = (chain[n // 2 :] - pivot) @ r.T + pivot
    return out


def best_time(fn, repeats: int):
    best, value = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4000, help="conformations per set (default 4000)")
    parser.add_argument("--n", type=int, nargs="+", default=[214, 1181], help="residue counts (default 214 1181)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repetitions; the best is reported")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"{'K':>6} {'N':>6} {'rmsd_matrix s':>14} {'Mpairs/s':>9} {'assignment s':>13} {'emd_rmsd s':>11} {'EMD-RMSD Å':>11}")
    for n in args.n:
        frames = adk().ca if n == 214 else hinge_frames(n, 102, rng)  # the built-in ADK path, [102, 214, 3] Å
        truth = frames[rng.integers(0, len(frames), size=args.k)]
        pred = frames[rng.integers(0, len(frames), size=args.k)] + rng.normal(size=truth.shape)
        t_matrix, cost = best_time(lambda: rmsd_matrix(pred, truth), args.repeats)
        t_assign, _ = best_time(lambda: linear_sum_assignment(cost), args.repeats)
        t_emd, value = best_time(lambda: emd_rmsd(pred, truth), args.repeats)
        rate = args.k * args.k / t_matrix / 1e6
        print(f"{args.k:>6} {n:>6} {t_matrix:>14.2f} {rate:>9.2f} {t_assign:>13.2f} {t_emd:>11.2f} {value:>11.3f}")


if __name__ == "__main__":
    main()
