"""Score a trained run against ground truth: EMD-RMSD, RMSD, baselines, figures and an HTML report.

On the run's held-out particles (the first K of RUN/validation_indices.npy; K = 4000 as in the
paper, or all if fewer) predicts each conformation and compares it with the ground-truth frame
the particle was simulated from: mean RMSD (each to its own frame, Kabsch), EMD-RMSD (optimal
one-to-one pairing, paper appendix G) and two baselines (the base structure, and the mean
ground-truth structure, predicted for every particle). Prints a table and writes
RUN/evaluation.json, RUN/figures/*.png (per-residue errors, latent PCA, loss curves, images
beside renders) and RUN/report.html.

Examples:
  cryogeom evaluate run/ --ground-truth sim/ground_truth.npz
  cryogeom evaluate run/ --ground-truth sim/ground_truth.npz --particles sim/particles.star -k 1000
"""

from __future__ import annotations

import argparse

from cryogeom.cli._types import add_run_particle_args, positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by cryogeom train")
    p.add_argument("--ground-truth", required=True, help="ground_truth.npz written by cryogeom simulate with the particles")
    add_run_particle_args(p)
    p.add_argument("-k", type=positive_int, default=4000, help="validation particles to score (default 4000, as in the paper)")
    p.add_argument("--n-images", type=positive_int, default=8, help="particles shown beside their renders (default 8)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per encoder batch (default: 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    import time

    from cryogeom import run_dir as rd
    from cryogeom.evaluate import figures
    from cryogeom.evaluate.evaluation import evaluate_run, evaluation_record, format_table
    from cryogeom.evaluate.renders import images_and_renders
    from cryogeom.evaluate.report import write_report
    from cryogeom.files import check_writable_dir
    from cryogeom.particles.read import read_particles
    from cryogeom.run_dir import read_metrics, require_run_dir, run_particles_path
    from cryogeom.train.run import load_run

    start = time.perf_counter()
    # Everything that can fail on bad input happens before anything is written.
    run = load_run(args.run)
    run_dir = require_run_dir(args.run)
    check_writable_dir(run_dir, "run directory")
    rd.claim(run_dir, rd.EVALUATION, rd.FIGURES_DIR, rd.REPORT)
    metrics = read_metrics(run_dir)
    particles_path = run_particles_path(run_dir, args.particles)
    particles = read_particles(particles_path, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
    evaluation = evaluate_run(run, particles, args.ground_truth, k=args.k, batch_size=args.batch_size, progress=not args.no_progress)

    t0 = time.perf_counter()
    shown = evaluation.indices[: args.n_images]
    images, renders = images_and_renders(run, particles, shown)
    labels = [f"#{i} (frame {f})" for i, f in zip(shown, evaluation.frames[: args.n_images])]
    figures_dir = run_dir / rd.FIGURES_DIR
    written = figures.ground_truth_figures(evaluation, figures_dir)
    written += figures.run_figures(figures_dir, metrics=metrics, z=evaluation.z, images=images, renders=renders, labels=labels, quality=rd.read_particle_quality(run_dir))
    rd.record(run_dir, rd.FIGURES_DIR)
    evaluation.timings_seconds["figures"] = time.perf_counter() - t0
    evaluation.timings_seconds["total"] = time.perf_counter() - start

    record = evaluation_record(
        evaluation, run_dir=run_dir, particles_path=particles_path, ground_truth_path=args.ground_truth,
        figures=[p.relative_to(run_dir).as_posix() for p in written],
    )
    rd.write_json(run_dir, rd.EVALUATION, record)
    report = write_report(run_dir)
    print(format_table(evaluation.scores, evaluation.k, evaluation.n_residues))
    if evaluation.latent is not None:
        lat = evaluation.latent
        print("latent PCs, share of z's variance: " + ", ".join(f"PC{i + 1} {100 * v:.1f} %" for i, v in enumerate(lat.variance_fraction[:4])))
        for name, pc, r, r2 in zip(lat.names, lat.best_pc, lat.best_abs_r, lat.linear_r2):
            print(f"  {name}: |r| = {r:.2f} with PC{pc + 1}; linear fit on z R² = {r2:.2f}")
    t = evaluation.timings_seconds
    print(f"took {t['total']:.1f} s (predict {t['predict']:.1f} s, scores {t['scores']:.1f} s, figures {t['figures']:.1f} s)")
    print(f"wrote {run_dir / rd.EVALUATION}, {len(written)} figures in {figures_dir}, {report}")
    return 0
