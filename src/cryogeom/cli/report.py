"""Write RUN/report.html: the numbers, figures and output files of a run on one page.

Needs no ground truth, so it works for real data. Rebuilds the figures that need none — loss
curves from RUN/metrics.csv and, when the model and the run's particle file are available, the
latent PCA and particle images beside their renders (on the first K held-out particles) — and
embeds every figure in RUN/figures/, the scores of RUN/evaluation.json if `cryogeom evaluate`
wrote one, the training summary, the configuration and links to the files in RUN/.

Examples:
  cryogeom report run/
  cryogeom report run/ --particles moved/particles.star
  cryogeom report run/ --no-figures      # only rewrite the page from what exists
"""

from __future__ import annotations

import argparse

from cryogeom.cli._types import add_run_particle_args, positive_int


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by cryogeom train")
    add_run_particle_args(p)
    p.add_argument("-k", type=positive_int, default=4000, help="held-out particles for the latent figure (default 4000)")
    p.add_argument("--n-images", type=positive_int, default=8, help="particles shown beside their renders (default 8)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per encoder batch (default: 256)")
    p.add_argument("--no-figures", action="store_true", help="do not rebuild figures; only rewrite report.html")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    import sys

    from cryogeom.errors import InputError
    from cryogeom.evaluate import figures
    from cryogeom.evaluate.evaluation import check_run_particles_and_box, validation_particles
    from cryogeom.evaluate.renders import images_and_renders
    from cryogeom import run_dir as rd
    from cryogeom.evaluate.report import write_report
    from cryogeom.files import check_writable_dir
    from cryogeom.run_dir import read_metrics, read_run_metadata, require_run_dir, run_particles_path

    run_dir = require_run_dir(args.run)
    read_run_metadata(run_dir)  # a damaged config.json is the one error, before anything else
    check_writable_dir(run_dir, "run directory")
    rd.claim(run_dir, rd.REPORT, *([] if args.no_figures else [rd.FIGURES_DIR]))
    metrics = read_metrics(run_dir)
    written = []
    if not args.no_figures:
        z = images = renders = labels = None
        has_model = any((run_dir / name).is_file() for name in (rd.MODEL, rd.CHECKPOINT))
        particles_path = None
        if has_model:
            try:
                particles_path = run_particles_path(run_dir, args.particles)
            except InputError as exc:
                if args.particles is not None:
                    raise
                print(f"cryogeom report: note: {exc}; skipping the latent and render figures", file=sys.stderr)
        if particles_path is not None:
            from cryogeom.particles.read import read_particles
            from cryogeom.train.inference import predict
            from cryogeom.train.run import load_run

            run = load_run(run_dir)
            particles = read_particles(particles_path, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
            indices = validation_particles(run.validation_indices(), args.k)
            check_run_particles_and_box(run, particles, indices)
            z, _ = predict(run, particles, indices, batch_size=args.batch_size, progress=not args.no_progress)
            shown = indices[: args.n_images]
            images, renders = images_and_renders(run, particles, shown)
            labels = [f"#{i}" for i in shown]
        written = figures.run_figures(run_dir / rd.FIGURES_DIR, metrics=metrics, z=z, images=images, renders=renders, labels=labels, quality=rd.read_particle_quality(run_dir))
        if written:
            rd.record(run_dir, rd.FIGURES_DIR)
    report = write_report(run_dir)
    print(f"wrote {report}" + (f" ({len(written)} figures rebuilt in {run_dir / rd.FIGURES_DIR})" if written else ""))
    return 0
