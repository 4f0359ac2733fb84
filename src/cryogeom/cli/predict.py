"""Predict the latent and the Cα conformation of every particle with a trained network.

Writes OUT/z.npy ([n, d] latents), OUT/ca.npy ([n, N, 3] Cα in Å, in .star order, in the base
structure's coordinate frame), and the same conformations as a trajectory, OUT/conformations.dcd
with OUT/topology.pdb, which ChimeraX, VMD and PyMOL open (ChimeraX: open topology.pdb, then
open conformations.dcd structureModel #1).

Example:
  cryogeom predict run/ sim/particles.star -o run/predict/
"""

from __future__ import annotations

import argparse

from cryogeom.cli._types import positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by cryogeom train")
    p.add_argument("particles", help="particles (.star, .cs, or .mrcs with --poses/--ctf)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--datadir", help="directory the image paths in the particle file are relative to")
    p.add_argument("--poses", help="cryoDRGN pose .pkl")
    p.add_argument("--ctf", help="cryoDRGN CTF .pkl")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per encoder batch (default: 256)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from cryogeom.errors import InputError
    from cryogeom.files import check_output_dir, save_npy
    from cryogeom.particles.read import read_particles
    from cryogeom.structure.write import write_dcd, write_pdb
    from cryogeom.train.inference import predict
    from cryogeom.train.run import load_run

    out = check_output_dir(args.output, ["z.npy", "ca.npy", "conformations.dcd", "topology.pdb"], force=args.force)
    run = load_run(args.run)
    particles = read_particles(args.particles, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
    z, ca = predict(run, particles, batch_size=args.batch_size, progress=not args.no_progress)
    bad = ~(np.isfinite(z).all(axis=1) & np.isfinite(ca).all(axis=(1, 2)))
    if bad.any():
        raise InputError(
            f"{Path(args.run)}: its network gives non-finite conformations for {int(bad.sum())} of {len(z)} particles "
            f"(first: particle {int(np.flatnonzero(bad)[0]) + 1}); nothing was written"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name, array in (("z.npy", z), ("ca.npy", ca)):
        save_npy(out / name, array)
    write_pdb(out / "topology.pdb", run.base.with_coordinates(run.base.ca))
    write_dcd(out / "conformations.dcd", ca)
    print(f"predicted {len(z)} particles: {out / 'z.npy'}, {out / 'ca.npy'}, {out / 'conformations.dcd'} (+ {out / 'topology.pdb'})")
    return 0
