"""How well the network's renderer can explain simulated images of the *true* conformation.

For noiseless simulated particles (``cryogeom simulate --noiseless --normalise none``), the
renderer draws the ground-truth Cα of each particle's frame at its pose, shift and CTF, with each
density model, at the training resolution. For each image the best affine fit ``image ≈ a·render
+ b`` is made; reported are the mean correlation and the unexplained variance 1 − ρ². This is the
floor on the image loss that no conformation can beat: the model-mismatch part of the problem.

Usage: python benchmarks/fidelity.py SIM_DIR [--train-pixel 2.0] [--models ca backbone-sidechain atoms]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.forward import ForwardModel, ForwardSettings
from cryogeom.model.density import build_density
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.structure.read import read_structure
from cryogeom.train.config import Network
from cryogeom.metrics.ground_truth import load_ground_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sim")
    ap.add_argument("--train-pixel", type=float, default=2.0)
    ap.add_argument("--models", nargs="+", default=["ca", "backbone-sidechain", "atoms"])
    ap.add_argument("--pad-factor", type=float, default=2.0)
    ap.add_argument("--oversample", type=int, default=1)
    ap.add_argument("--b-factor", type=float, default=None)
    ap.add_argument("--atom-sigma", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    particles = read_particles(f"{args.sim}/particles.star")
    base = read_structure(f"{args.sim}/base.pdb")
    frame, gt = load_ground_truth(f"{args.sim}/ground_truth.npz")
    pixel = float(particles.pixel_size_angstrom[0])
    box = Network(train_pixel_angstrom=args.train_pixel).train_box(particles.box, pixel)
    ds = ParticleDataset(particles, downsample_box=box)
    batch = ds.get_batch(np.arange(particles.n))
    data = batch["image"].double()
    settings = ForwardSettings(box=box, pixel_size_angstrom=pixel * particles.box / box, pad_factor=args.pad_factor,
                               oversample=args.oversample, b_factor_angstrom2=args.b_factor)
    fm = ForwardModel(settings)
    centre = base.ca_centroid()
    print(f"| density | frames | images | box | mean ρ | 1 − ρ² |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        dens = build_density(base.centred(), model, atom_sigma_angstrom=args.atom_sigma).double()
        ca = torch.as_tensor(gt[frame] - gt[frame].mean(1, keepdims=True))
        with torch.no_grad():
            render = fm(dens(ca), batch["rotation"].double(), batch["shift_angstrom"].double(),
                        CTFParams.stack(batch["ctf"].double()), dens.sigma.double(), dens.mass.double())
        r = render.flatten(1)
        d = data.flatten(1)
        r = r - r.mean(1, keepdim=True)
        d = d - d.mean(1, keepdim=True)
        rho = (r * d).sum(1) / (r.norm(dim=1) * d.norm(dim=1))
        print(f"| {model} | {len(np.unique(frame))} | {particles.n} | {box} | {rho.mean():.4f} | {(1 - rho**2).mean():.4f} |")


if __name__ == "__main__":
    main()
