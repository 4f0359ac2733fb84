"""Analyse a trained latent space: PCA, PC traversals, k-means clusters, and particle subsets.

Computes the latent of every particle the run was trained on (or of --particles; or reads --z, a
z.npy from cryogeom predict or from an earlier analysis) and writes into -o (default RUN/analysis):
pca.json and pca.png (explained variance; PC1 vs PC2 density; PC histograms), pcs.npy (PC scores),
pc1_traversal.pdb ... (conformations from the 5th to the 95th percentile of each PC, the others at
the mean; none for a PC after the first that carries under 1 % of the variance of z: it is flat,
and it is said so), labels.npy, clusters.json, cluster_centres.pdb and cluster_nearest.pdb (MODEL i+1 is
cluster i; clusters are numbered from 0, largest first), z.npy (when computed) and analysis.json.
Every PDB is a Cα trace in the base structure's frame, one MODEL per conformation. In ChimeraX:
`open pc1_traversal.pdb` then `mseries #1` (or `mseries slider #1`) plays it; or
`open pc1_traversal.pdb coordsets true` then `coordset #1` (or `coordset slider #1`).

--select EXPR -o-star OUT.star writes the particles of a latent region as a subset of the RELION
.star (every column kept): conditions joined by commas must all hold; cluster=3,5 means cluster 3
or 5; pcK<X, pcK<=X, pcK>X, pcK>=X compare PC scores (latent units, as in pcs.npy and pca.png);
junk<P, junk>=P and score>S select by the run's per-particle junk probability and score.
Re-running with the same settings and latents rewrites identical outputs; other settings need
--force (or another -o), as does an existing OUT.star.

Examples:
  cryogeom analyze run/
  cryogeom analyze run/ --z run/analysis/z.npy --select cluster=3 -o-star cluster3.star
  cryogeom analyze run/ --z run/analysis/z.npy --select "pc1>0.2,pc2<0" -o-star open.star
  cryogeom analyze run/ --z run/analysis/z.npy --select "junk<0.5" -o-star clean.star
"""

from __future__ import annotations

import argparse

from cryogeom.cli._types import nonnegative_int, positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by cryogeom train")
    p.add_argument("--particles", help="particles (default: the file the run was trained on, from RUN/config.json)")
    p.add_argument("--z", help="latents z.npy [n, d] in particle-file order (from cryogeom predict or an earlier analysis); skips the encoder")
    p.add_argument("-o", "--output", help="output directory (default RUN/analysis)")
    p.add_argument("--pcs", type=positive_int, default=3, help="principal components to traverse and plot (default 3)")
    p.add_argument("--traversal-points", type=positive_int, default=10, help="conformations per traversal (default 10, at least 2)")
    p.add_argument("--clusters", type=positive_int, default=10, help="k of k-means (default 10)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="k-means seed (default 0)")
    p.add_argument("--select", metavar="EXPR", help='latent region or quality to export, e.g. cluster=3, cluster=3,5, "pc1<-0.5", "pc1>0.2,pc2<0", "junk<0.5" (clean), "junk>=0.5" (junk)')
    p.add_argument("-o-star", "--output-star", dest="output_star", metavar="OUT.star", help="where --select writes the .star subset")
    p.add_argument("--datadir", help="directory the image paths in the particle file are relative to")
    p.add_argument("--absolute-paths", action="store_true",
                   help="write absolute image paths into OUT.star (default: relative to OUT.star's own directory)")
    p.add_argument("--poses", help="cryoDRGN pose .pkl (with an .mrcs particle stack)")
    p.add_argument("--ctf", help="cryoDRGN CTF .pkl (with an .mrcs particle stack)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per encoder batch (default: 256)")
    p.add_argument("--maps", action="store_true",
                   help="also reconstruct a map from the particles of each cluster (and of --select), without the network, and "
                        "compare each with its state's model and the base structure by FSC (analysis/maps/, maps_fsc.png)")
    p.add_argument("--force", action="store_true", help="overwrite an existing analysis or OUT.star")
    p.add_argument("--no-progress", action="store_true")


def _particle_file(args: argparse.Namespace, run, needed: bool) -> tuple[str | None, int | None]:
    """(particle file, its particle count if known from the run) — --particles, else the file the
    run was trained on (RUN/config.json). ``needed``: the file itself will be read."""
    import json
    from pathlib import Path

    from cryogeom import run_dir as rd
    from cryogeom.errors import InputError

    if args.particles is not None:
        return args.particles, None
    config = run.path / rd.CONFIG
    try:
        meta = json.loads(config.read_text())
    except (OSError, ValueError):
        meta = {}
    path, n = meta.get("particles"), meta.get("n_particles")
    if needed and path is None:
        raise InputError(f"{config}: names no particle file; give --particles")
    if needed and not Path(path).is_file():
        raise InputError(f"{path}: the particle file the run was trained on is not found; give --particles")
    return path, n


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from cryogeom.analysis.latent_analysis import AnalysisSettings, analyze_latents, check_outputs, write_analysis
    from cryogeom.analysis.latents import count_star_particles, load_latents, predict_latents
    from cryogeom.analysis.selection import parse_selection
    from cryogeom.errors import InputError
    from cryogeom.particles.read import read_particles
    from cryogeom.particles.relion_writer import write_star_subset
    from cryogeom import files
    from cryogeom import run_dir as rd
    from cryogeom.train.run import load_run

    # Cheap checks first: nothing is computed for a command that would fail at the end.
    selection = parse_selection(args.select) if args.select is not None else None
    if selection is not None and args.output_star is None:
        raise InputError("--select: needs -o-star OUT.star, the file to write the selected particles to")
    if args.output_star is not None and selection is None:
        raise InputError("-o-star: given without --select EXPR (which particles to write)")
    star_out = Path(args.output_star) if args.output_star is not None else None
    if star_out is not None:
        if star_out.suffix != ".star":
            raise InputError(f"-o-star {star_out}: expected a .star file name")
        if star_out.exists() and not args.force:
            raise InputError(f"-o-star {star_out}: file exists; use --force to overwrite it")
        if not star_out.parent.is_dir():
            raise InputError(f"-o-star {star_out}: directory {star_out.parent} does not exist")
    if args.traversal_points < 2:
        raise InputError(f"--traversal-points: expected at least 2, got {args.traversal_points}")

    run = load_run(args.run)
    out = Path(args.output) if args.output is not None else run.path / rd.ANALYSIS_DIR
    if args.output is None:
        rd.claim(run.path, rd.ANALYSIS_DIR)
    files.check_writable_dir(out, "analysis directory")
    settings = AnalysisSettings(n_pcs=args.pcs, n_points=args.traversal_points, n_clusters=args.clusters, seed=args.seed)
    latent_dim = int(run.config.network.latent_dim)
    if args.pcs > latent_dim:
        raise InputError(f"--pcs: expected 1 to {latent_dim} (the run's latent dimension), got {args.pcs}")
    check_outputs(out, settings, force=args.force)

    particles_path, trained_n = _particle_file(args, run, needed=args.z is None or selection is not None or args.maps)
    if star_out is not None and star_out.exists() and star_out.resolve() == Path(particles_path).resolve():
        raise InputError(f"-o-star {star_out}: is the particle file itself; choose another name")
    if selection is not None and Path(particles_path).suffix.lower() != ".star":
        raise InputError(
            f"--select: writes a subset of a RELION .star, but the particles are {particles_path}; "
            "select from labels.npy / pcs.npy of the analysis instead"
        )

    if args.z is not None:
        if selection is not None or (args.particles is not None and Path(args.particles).suffix.lower() == ".star"):
            n_expected = count_star_particles(particles_path)  # metadata only
        elif args.particles is not None:
            n_expected = read_particles(particles_path, datadir=args.datadir, poses=args.poses, ctf=args.ctf).n
        else:
            n_expected = trained_n
        z = load_latents(args.z, latent_dim, n_expected)
        source = {"latents": str(args.z)}
    else:
        particles = read_particles(particles_path, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
        if particles.n == 0:
            raise InputError(f"{particles_path}: holds no particles")
        z = predict_latents(run, particles, batch_size=args.batch_size, progress=not args.no_progress)
        source = {"latents": "computed", "particles": str(particles_path)}

    analysis = analyze_latents(z, settings)
    keep = None
    if selection is not None:
        quality = rd.read_particle_quality(run.path) if selection.needs_quality else None
        keep = selection.mask(analysis.pc_scores, analysis.clusters.labels, analysis.clusters.k, quality=quality)
        if not keep.any():
            raise InputError(f"--select {selection.text!r}: matches none of the {len(z)} particles")
    check_outputs(out, settings, z, force=args.force)

    out.mkdir(parents=True, exist_ok=True)
    if args.z is None:
        files.save_npy(out / "z.npy", z)
    write_analysis(analysis, run, out, **source)
    if out.resolve() == (run.path / rd.ANALYSIS_DIR).resolve():
        rd.record(run.path, rd.ANALYSIS_DIR)

    ratio = analysis.pca.explained_variance_ratio
    shown = ", ".join(f"PC{i + 1} {100 * r:.1f}%" for i, r in enumerate(ratio[: settings.n_pcs]))
    print(f"analysed {len(z)} latents ({latent_dim}-dimensional): explained variance {shown}")
    print(f"k-means: {analysis.clusters.k} clusters of sizes {', '.join(map(str, analysis.clusters.sizes))}")
    for i in analysis.flat:
        print(f"PC{i + 1} carries {100 * ratio[i]:.3g}% of the variance of z: flat, no traversal written")
    traversals = ", ".join(f"{t.name}_traversal.pdb" for t in analysis.traversals)
    print(f"wrote {out}: pca.json, pca.png, pcs.npy, {traversals}, labels.npy, clusters.json, cluster_centres.pdb, cluster_nearest.pdb")
    if selection is not None:
        write_star_subset(particles_path, np.flatnonzero(keep), star_out, overwrite=args.force, datadir=args.datadir,
                          absolute_paths=args.absolute_paths)
        print(f"selected {int(keep.sum())} of {len(z)} particles ({selection}): {star_out}")
    if args.maps:
        from cryogeom.analysis.decode import decode_latents
        from cryogeom.analysis.state_maps import cluster_maps

        if args.z is not None:
            particles = read_particles(particles_path, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
        centres = decode_latents(run, analysis.clusters.centres)
        selected_ca = decode_latents(run, z[keep].mean(axis=0, keepdims=True))[0] if keep is not None else None
        results = cluster_maps(run, particles, analysis.clusters.labels, centres, out, selection=keep, selection_ca=selected_ca,
                               progress=not args.no_progress)
        for r in results:
            verdict = "model fits better than the base structure" if r["supported"] else "model does not fit better than the base structure"
            print(f"map {r['file']}: {r['n_particles']} particles, FSC = 0.143 at {r['resolution_angstrom']:.2f} Å; "
                  f"mean FSC model {r['mean_fsc_model_vs_map']:.3f} vs base {r['mean_fsc_base_vs_map']:.3f}: {verdict}")
    return 0
