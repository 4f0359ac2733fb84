"""Reconstruct a map from particles with known poses and CTF (no network): half maps, FSC, full map.

A direct Fourier reconstruction (CTF-weighted insertion, Wiener/Tikhonov division) of the
particles, split into two half sets at random (fixed by --seed). Writes OUT/half1.mrc, half2.mrc,
map.mrc (voxel size of the particles; origin so that structures in the particles' frame — or, for
a run, the run's PDB and DCD files — overlay it in ChimeraX) and fsc.csv (unmasked, and inside a
soft sphere of 0.8 box diameters), and prints the resolutions at FSC = 0.143.

PARTICLES is a particle file, or a run directory with --select (the particles of a latent
region of the run's analysis, as `cryogeom analyze --select` takes them; the run's own polarity).

Examples:
  cryogeom reconstruct sim/particles.star -o maps/
  cryogeom reconstruct cluster3.star -o maps/cluster3/
  cryogeom reconstruct run/ --select "cluster=3" -o maps/cluster3/
"""

from __future__ import annotations

import argparse

from cryogeom.cli._types import nonnegative_int, positive_float, positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("particles", help="particles: RELION .star, cryoSPARC .cs, an .mrcs with --poses/--ctf, or a run directory with --select")
    p.add_argument("--select", metavar="EXPR", help='with a run directory: the latent region, e.g. cluster=3 or "pc1<-0.5" (needs RUN/analysis)')
    p.add_argument("-o", "--output", required=True, help="output directory (new, or holding an earlier reconstruction with --force)")
    p.add_argument("--datadir", help="directory the image paths in the particle file are relative to (default: the file's own)")
    p.add_argument("--poses", help="cryoDRGN pose .pkl (for an .mrcs/.txt particle stack)")
    p.add_argument("--ctf", help="cryoDRGN CTF .pkl (for an .mrcs/.txt particle stack)")
    polarity = p.add_mutually_exclusive_group()
    polarity.add_argument("--invert-data", dest="invert", action="store_const", const=True,
                          help="the images have protein bright, as RELION writes them (default)")
    polarity.add_argument("--no-invert-data", dest="invert", action="store_const", const=False, help="the images have protein dark (raw contrast)")
    p.add_argument("--tikhonov", type=positive_float, default=1e-2, help="Wiener term, relative to the mean CTF² weight (default: 0.01)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the half-set split (default: 0)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images read at once (default: 256)")
    p.add_argument("--force", action="store_true", help="replace the maps of an earlier reconstruction in OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_polarity(run_dir) -> bool:
    """The contrast polarity the run detected (its calibration.json): True = protein bright."""
    import json
    from pathlib import Path

    from cryogeom import run_dir as rd
    from cryogeom.errors import InputError

    path = Path(run_dir) / rd.CALIBRATION
    try:
        return bool(json.loads(path.read_text())["invert_data"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: missing or unreadable; give --invert-data or --no-invert-data") from None


def main(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import numpy as np

    from cryogeom import files
    from cryogeom.errors import InputError
    from cryogeom.particles.read import read_particles
    from cryogeom.reconstruct.maps import reconstruct, write_map

    out = files.check_output_dir(args.output, ["map.mrc", "half1.mrc", "half2.mrc", "fsc.csv"], force=args.force)
    indices, invert, centre = None, args.invert, None
    source = Path(args.particles)
    if source.is_dir():
        from cryogeom import run_dir as rd
        from cryogeom.analysis.selection import parse_selection

        if args.select is None:
            raise InputError(f"{source}: is a directory; give --select EXPR to reconstruct a latent region of this run")
        selection = parse_selection(args.select)
        analysis = source / rd.ANALYSIS_DIR
        for name in ("labels.npy", "pcs.npy"):
            if not (analysis / name).is_file():
                raise InputError(f"{analysis / name}: missing; run cryogeom analyze {source} first")
        labels, scores = np.load(analysis / "labels.npy"), np.load(analysis / "pcs.npy")
        particles = read_particles(rd.run_particles_path(source), datadir=args.datadir, poses=args.poses, ctf=args.ctf)
        if len(labels) != particles.n:
            raise InputError(f"{analysis / 'labels.npy'}: labels {len(labels)} particles but the run's particle file holds {particles.n}")
        keep = selection.mask(scores, labels, int(labels.max()) + 1)
        indices = np.flatnonzero(keep)
        meta = rd.read_run_metadata(source)  # a run directory, readable
        if invert is None:
            invert = _run_polarity(source)
        # the map's centre voxel at the run's rotation centre, so that it overlays the run's PDBs
        centre = meta.get("rotation_centre_angstrom")
        if centre is None:  # runs from before the rotation centre was recorded rendered about the base's Cα centroid
            from cryogeom.structure.read import read_structure

            centre = read_structure(source / rd.BASE).ca_centroid()
    else:
        if args.select is not None:
            raise InputError("--select: needs a run directory (with its analysis) as PARTICLES")
        particles = read_particles(args.particles, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
    started = time.perf_counter()
    rec = reconstruct(particles, indices, invert=True if invert is None else invert, batch_size=args.batch_size,
                      seed=args.seed, tikhonov=args.tikhonov, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    for name, volume in (("half1.mrc", rec.half1), ("half2.mrc", rec.half2), ("map.mrc", rec.full)):
        write_map(out / name, volume, rec.pixel_size_angstrom, centre)
    lines = ["frequency_per_angstrom,resolution_angstrom,fsc,fsc_masked"]
    lines += [f"{f:.6f},{(1 / f if f > 0 else float('inf')):.3f},{c:.5f},{m:.5f}"
              for f, c, m in zip(rec.frequencies_per_angstrom, rec.fsc, rec.fsc_masked)]
    files.write_text(out / "fsc.csv", "\n".join(lines) + "\n")
    print(f"reconstructed {rec.n_particles} particles of {particles.box} px at {rec.pixel_size_angstrom:g} Å in {seconds:.1f} s: "
          f"FSC = 0.143 at {rec.resolution_angstrom:.2f} Å (half maps; {rec.resolution_masked_angstrom:.2f} Å masked); "
          f"wrote {out}/map.mrc, half1.mrc, half2.mrc, fsc.csv")
    return 0
