"""Throughput of `cryogeom simulate`: all-atom ADK (3,341 atoms) at D = 80, 1 Å/px, 50 e/Å², ice on.

Times the whole data-set writer (rendering on W worker processes, .mrcs/.star/.npz writing) for
a few hundred images and prints one Markdown table row:

    | simulate (all-atom ADK, D=80, ice, 2 workers) | images/s | s per image per worker | CPU ms per image |

"CPU ms per image" is the user + system time of this process and its worker processes over the
run, divided by the number of images: unlike images/s it hardly depends on what else the machine is
running (the load average at the start is printed too). An untimed warm-up of 8 images comes
first; ``--repeat R`` runs R times and reports the best.

``--system cftr`` renders the large protein instead: chain A of CFTR (PDB 6MSM, 1,181 residues,
9,466 heavy atoms, from MDAnalysisTests), one conformation, default D = 160 at 1 Å/px.

Usage: .venv/bin/python benchmarks/bench_simulate.py [--system adk|cftr] [--images 256] [--workers 2]
       [--box D] [--pixel A] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings

import numpy as np


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its waited-for children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _system(name: str):
    """``(label, atom positions [F, A, 3], elements [A], Cα [F, N, 3])`` of a benchmark system."""
    from cryogeom.structure.read import read_structure, read_trajectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "adk":
            from MDAnalysisTests.datafiles import DCD2, PSF

            trajectory = read_trajectory(PSF, DCD2)
            atoms = np.stack([trajectory.atom_positions(f) for f in range(len(trajectory.ca))])
            return "all-atom ADK", atoms, trajectory.structure.atom_elements, np.asarray(trajectory.ca)
        from MDAnalysisTests.datafiles import PDB_CHECK_RIGHTHAND_PA

        structure = read_structure(PDB_CHECK_RIGHTHAND_PA, select="chainID A and protein")
        return "CFTR chain A", np.asarray(structure.atom_positions)[None], structure.atom_elements, np.asarray(structure.ca)[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=("adk", "cftr"), default="adk")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--box", type=int, default=None)
    parser.add_argument("--pixel", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from cryogeom.simulate.dataset import write_dataset
    from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, SimulationConfig, draw_particles

    label, atoms, elements, ca = _system(args.system)
    box = args.box or (80 if args.system == "adk" else 160)
    ensemble = AtomicEnsemble.from_frames(atoms, elements, ca)
    frames = np.arange(ensemble.n_frames)
    config = SimulationConfig(box=box, pixel_size_angstrom=args.pixel)
    formation = ImageFormation(ensemble, config)
    per_conf = max(1, -(-args.images // len(frames)))
    params = draw_particles(len(frames), per_conf, config, seed=0)[: args.images]
    # An untimed run of a few images first pays the one-time costs (lazy imports, e.g. sympy on the
    # first torch.broadcast_shapes), so that the table reports the steady throughput of long runs.
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, formation, params[:8], seed=0, trajectory_frames=frames, ground_truth_ca_angstrom=ensemble.ca_angstrom, workers=1)
    load = os.getloadavg()[0]
    best_seconds, best_cpu = float("inf"), float("inf")
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu = time.perf_counter(), _cpu_seconds()
            write_dataset(tmp, formation, params, seed=0, trajectory_frames=frames, ground_truth_ca_angstrom=ensemble.ca_angstrom, workers=args.workers)
            best_seconds = min(best_seconds, time.perf_counter() - start)
            best_cpu = min(best_cpu, _cpu_seconds() - cpu)
    rate = len(params) / best_seconds
    print(f"load average at start: {load:.2f} on {os.cpu_count()} cores")
    print("| benchmark | images/s | s per image per worker | CPU ms per image |")
    print("|---|---|---|---|")
    print(
        f"| simulate ({label} {ensemble.atoms_angstrom.shape[1]} atoms, D={box} at {args.pixel:g} Å, ice, CTF canvas "
        f"{formation.padded_box}, {args.workers} workers, {len(params)} images) | {rate:.1f} | {args.workers / rate:.4f} "
        f"| {1e3 * best_cpu / len(params):.2f} |"
    )


if __name__ == "__main__":
    main()
