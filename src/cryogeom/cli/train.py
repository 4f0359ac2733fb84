"""Train the reconstruction network on particle images with known poses and CTF.

Learns, for every particle, a latent z and a Cα conformation X(z) = X0 + T(z) deforming the base
structure X0, by rendering X(z) through the image-formation model and comparing with the image,
regularised by the geometry degradation loss (Prins et al. 2024).

Examples:
  cryogeom train sim/particles.star --structure sim/base.pdb -o run/
  cryogeom train particles.star --structure model.pdb -o run/ --preset paper
  cryogeom train sim/particles.star --structure sim/base.pdb -o run/ --ground-truth sim/ground_truth.npz
  cryogeom train sim/particles.star --structure sim/base.pdb -o run/ --resume
Multi-process (DDP): torchrun --nproc-per-node=2 -m cryogeom train ... (see README)
"""

from __future__ import annotations

import argparse
import sys

import json
from pathlib import Path

from cryogeom.cli._types import nonnegative_float, nonnegative_int, positive_float, positive_int
from cryogeom.errors import InputError


def add_args(p: argparse.ArgumentParser) -> None:
    from cryogeom.train.config import CHOICES, LARGE_PROTEIN_GEOMETRY_K, LARGE_PROTEIN_RESIDUES, PRESETS, TrainConfig  # torch: imported when the parser is built

    d = TrainConfig()  # the default preset; --preset paper changes some (see README)
    o, n, w = d.optimisation, d.network, d.losses
    p.add_argument("particles", help="particles: RELION .star, cryoSPARC .cs, or an .mrcs with --poses/--ctf")
    p.add_argument("--structure", required=True, help="base structure (PDB, mmCIF, GRO, ...; all atoms preferred), fitted into the consensus map")
    p.add_argument("--topology", help="topology for --structure when it is a coordinate file (PSF, ...)")
    p.add_argument("-o", "--output", required=True, help="run directory")
    p.add_argument("--datadir", help="directory the image paths in the particle file are relative to (default: the particle file's own directory)")
    p.add_argument("--poses", help="cryoDRGN pose .pkl (for an .mrcs/.txt particle stack)")
    p.add_argument("--ctf", help="cryoDRGN CTF .pkl (for an .mrcs/.txt particle stack)")
    p.add_argument("--preset", choices=PRESETS, default="default", help="default: fast on CPUs; paper: the paper's settings (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, help=f"epochs of the cosine schedule (default: {o.epochs})")
    p.add_argument("--batch-size", type=positive_int, help=f"images per optimiser step, over all processes (default: {o.batch_size})")
    p.add_argument("--lr", type=positive_float, help=f"learning rate of Adam, decaying to {o.lr_min:g} (default: {o.lr:g}; the decoder's is {o.decoder_lr_scale:g}× that)")
    p.add_argument("--max-minutes", type=positive_float,
                   help="stop after this many minutes of training; the run says so, is checkpointed and --resume continues (default: no limit)")
    p.add_argument("--latent-dim", type=positive_int, help=f"dimensions of the latent z (default: {n.latent_dim})")
    p.add_argument("--encoder", choices=CHOICES["encoder"], help=f"image encoder (default: {n.encoder})")
    p.add_argument("--density", choices=CHOICES["density"], help=f"what is rendered for each residue (default: {n.density})")
    p.add_argument("--train-pixel", type=positive_float,
                   help=f"images are Fourier-cropped to about this pixel size in Å for training, never below the data's own "
                        f"(default: {n.train_pixel_angstrom:g} Å, coarser where the box would exceed {n.max_train_box} pixels; "
                        f"--set train_pixel_angstrom=null --set max_train_box=null keeps full resolution)")
    p.add_argument("--geometry-weight", "--alpha", dest="geometry_weight", type=nonnegative_float,
                   help=f"α: weight of the geometry degradation loss, 0 switches it off (default: {w.geometry_weight:g})")
    p.add_argument("--bond-weight", "--beta", dest="bond_weight", type=nonnegative_float, help=f"β: weight of the bond-length loss (default: {w.bond_weight:g})")
    p.add_argument("--centering-weight", "--gamma", dest="centering_weight", type=nonnegative_float, help=f"γ: weight of the centering loss (default: {w.centering_weight:g})")
    p.add_argument("--chain-weight", type=nonnegative_float,
                   help=f"δ: weight of the chain loss, the geometry loss over residues 1-{w.chain_window} bonds apart (the chain's local fold); 0 switches it off (default: {w.chain_weight:g})")
    p.add_argument("--geometry-k", type=positive_int,
                   help=f"k-nearest-neighbour geometry loss, O(kN) pairs (default: all pairs up to {LARGE_PROTEIN_RESIDUES} residues, "
                        f"k = {LARGE_PROTEIN_GEOMETRY_K} above; --set geometry_k=null: all pairs always)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference-channel", dest="reference_channel", action="store_const", const=True,
                     help="the encoder also sees the base structure rendered at the particle's pose (default: on)")
    ref.add_argument("--no-reference-channel", dest="reference_channel", action="store_const", const=False)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set any training setting by name (see config.json of a run), e.g. --set decoder_lr_scale=0.3")
    p.add_argument("--seed", type=int, help=f"seed of the weights, the hold-out and the particle order (default: {d.data.seed})")
    p.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: the cores this process may use)")
    p.add_argument("--device", choices=CHOICES["device"], help="where to train: auto takes a CUDA GPU where PyTorch sees one, else the CPU; cuda insists on one (default: auto)")
    p.add_argument("--num-workers", type=nonnegative_int, help="data-loading worker processes (default: 0, load in the main process)")
    polarity = p.add_mutually_exclusive_group()
    polarity.add_argument("--invert-data", dest="invert_data", action="store_const", const=True, help="the data have protein bright (default: detected from the data)")
    polarity.add_argument("--no-invert-data", dest="invert_data", action="store_const", const=False, help="the data have protein dark (default: detected from the data)")
    frame = p.add_argument_group("the consensus map's frame (where the particles rotate, in the --structure's coordinates)")
    where = frame.add_mutually_exclusive_group()
    where.add_argument("--map", metavar="MRC", help="the consensus map the structure was fitted into: the particles rotate about its box centre (origin + D/2 · voxel)")
    where.add_argument("--rotation-centre", nargs="+", metavar="X", help="box: the particles' box centre, (D/2) · pixel Å on each axis, as for a map with zero origin; "
                       "centroid: the structure's Cα centroid (data simulated about it); or X Y Z in Å (default: box)")
    poses = p.add_mutually_exclusive_group()
    poses.add_argument("--refine-poses", dest="pose_refinement", action="store_const", const=True,
                       help="learn a small correction of every particle's pose, held near the input by a prior; writes refined_particles.star "
                            "(default: off: at the signal of small proteins at ~50 e/Å² the images say too little per particle, see BENCHMARKS.md)")
    poses.add_argument("--no-refine-poses", dest="pose_refinement", action="store_const", const=False)
    p.add_argument("--ground-truth", help="ground_truth.npz from cryogeom simulate: score the validation set every epoch")
    p.add_argument("--resume", action="store_true", help="continue the run in the output directory")
    p.add_argument("--force", action="store_true", help="replace the run in the output directory: once the new inputs are read and checked, the files cryogeom wrote there (listed in cryogeom_files.json) are removed; other files stay")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_settings(items: list[str]) -> dict:
    """``--set NAME=VALUE`` items -> {name: value}, typed like the setting."""
    from cryogeom.train.config import SETTINGS, TrainConfig

    defaults = TrainConfig()
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SETTINGS:
            raise InputError(f"--set {item}: expected NAME=VALUE with NAME one of {', '.join(SETTINGS)}")
        default = defaults.get(name)
        try:
            value = json.loads(text) if text.strip().lower() not in ("none", "null") else None
        except json.JSONDecodeError:
            value = text
        if value is not None and isinstance(default, bool) and not isinstance(value, bool):
            raise InputError(f"--set {item}: expected true or false")
        if value is not None and isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(value, (int, float)):
            raise InputError(f"--set {item}: expected a number")
        out[name] = value
    return out


def _rotation_centre(args, particles):
    """The ``rotation_centre`` setting of --map / --rotation-centre (None: the configuration's)."""
    import numpy as np

    if args.map is not None:
        from cryogeom.structure.map_frame import map_rotation_centre

        return [float(c) for c in map_rotation_centre(args.map, particles.box, float(np.median(particles.pixel_size_angstrom)))]
    words = args.rotation_centre
    if words is None:
        return None
    if len(words) == 1 and words[0] in ("box", "centroid"):
        return words[0]
    try:
        values = [float(w) for w in words]
    except ValueError:
        values = []
    if len(values) != 3 or not all(np.isfinite(values)):
        raise InputError(f"--rotation-centre {' '.join(words)}: expected box, centroid or three numbers X Y Z (Å)")
    return values


def main(args: argparse.Namespace) -> int:
    from cryogeom import run_dir as rd
    from cryogeom.particles.read import read_particles
    from cryogeom.structure.read import read_structure
    from cryogeom.train.config import preset
    from cryogeom.train.distributed import Distributed
    from cryogeom.train.loop import Trainer, TrainingDiverged

    if args.resume and args.force:
        raise InputError("--resume and --force: choose one")
    config = preset(
        args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_minutes=args.max_minutes,
        latent_dim=args.latent_dim,
        encoder=args.encoder,
        density=args.density,
        train_pixel_angstrom=args.train_pixel,
        geometry_weight=args.geometry_weight,
        bond_weight=args.bond_weight,
        centering_weight=args.centering_weight,
        geometry_k=args.geometry_k,
        chain_weight=args.chain_weight,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        num_workers=args.num_workers,
        invert_data=args.invert_data,
        reference_channel=args.reference_channel,
        pose_refinement=args.pose_refinement,
    )
    config = config.replace(**parse_settings(args.set))
    config.check()
    run_dir = Path(args.output)
    rd.check_run_dir(run_dir, resume=args.resume, force=args.force)  # before reading anything large
    particles = read_particles(args.particles, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
    if particles.n == 0:
        raise InputError(f"{args.particles}: holds no particles")
    base = read_structure(args.structure, topology=args.topology)
    centre = _rotation_centre(args, particles)
    if centre is not None:
        config = config.replace(rotation_centre=centre)
    dist = Distributed.from_environment(config.runtime.device)
    try:
        trainer = Trainer(
            config, particles, base, run_dir, resume=args.resume, force=args.force, ground_truth=args.ground_truth,
            progress=not args.no_progress, command_line=["cryogeom"] + sys.argv[1:], distributed=dist,
        )
        if dist.rank == 0:
            print(f"cryogeom train: computing on {dist.describe()}", file=sys.stderr)
        result = trainer.fit()
    except TrainingDiverged as exc:
        print(f"cryogeom train: stopped: {exc}", file=sys.stderr)
        return 1
    if dist.rank == 0:
        epochs, done = trainer.config.optimisation.epochs, result["state"]["epoch"]
        cut = "" if done >= epochs else f" (training cut short by --max-minutes: {done} of {epochs} epochs; continue with --resume)"
        print(f"trained model: {run_dir / rd.MODEL}{cut}")
    return 0
