"""Throughput of `cryogeom simulate`: all-atom ADK (3,341 atoms) at D = 80, 1 Å/px, 50 e/Å², ice on.

Times the whole data-set writer (rendering on W worker processes, .mrcs/.star/.npz writing) for
a few hundred images and prints one Markdown table row:

    | simulate (all-atom ADK, D=80, ice, 2 workers) | images/s | s per image per worker |

Usage: .venv/bin/python benchmarks/bench_simulate.py [--images 256] [--workers 2] [--box 80]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--box", type=int, default=80)
    args = parser.parse_args()

    from MDAnalysisTests.datafiles import DCD2, PSF

    from cryogeom.simulate.dataset import write_dataset
    from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, SimulationConfig, draw_particles
    from cryogeom.structure.io import read_trajectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trajectory = read_trajectory(PSF, DCD2)
    frames = np.arange(len(trajectory.ca))
    ensemble = AtomicEnsemble.from_trajectory(trajectory, frames)
    config = SimulationConfig(box=args.box)
    formation = ImageFormation(ensemble, config)
    per_conf = max(1, -(-args.images // len(frames)))
    params = draw_particles(len(frames), per_conf, config, seed=0)[: args.images]
    ca = trajectory.ca - trajectory.ca.mean(axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_dataset(tmp, formation, params, seed=0, trajectory_frames=frames, ground_truth_ca_angstrom=ca, workers=args.workers)
        seconds = time.perf_counter() - start
    rate = len(params) / seconds
    print("| benchmark | images/s | s per image per worker |")
    print("|---|---|---|")
    print(
        f"| simulate (all-atom ADK {ensemble.atoms_angstrom.shape[1]} atoms, D={args.box}, ice, CTF canvas "
        f"{formation.padded_box}, {args.workers} workers, {len(params)} images) | {rate:.1f} | {args.workers / rate:.3f} |"
    )


if __name__ == "__main__":
    main()
