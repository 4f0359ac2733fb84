"""How much a trained run's images say about their poses: a full per-particle pose optimisation.

With the run's network held fixed (each particle's conformation decoded from its latent), every one
of the first ``--k`` true particles gets ``--steps`` Adam steps on its pose correction under the
image likelihood (noise variance 1 per pixel, the prepared images' scale) and the prior of
``cryogeom train --refine-poses`` (2° and 1 Å per axis). Prints the median angle between the true
rotation and the written one, and the refined one every 30 steps, and the image loss at the written
and at the true poses.

  python benchmarks/pose_information.py RUN --data SIM_DIR
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from cryogeom.model.pose_correction import PoseCorrections
from cryogeom.particles.batch import ParticleBatch
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.train.run import load_run


def median_error_deg(true: np.ndarray, rotations: torch.Tensor) -> float:
    relative = np.einsum("nij,nkj->nik", true, rotations.detach().double().numpy())
    return float(np.degrees(np.median(Rotation.from_matrix(relative).magnitude())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="the simulation: particles.star and ground_truth.npz")
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = load_run(a.run)
    model = run.model
    truth = np.load(f"{a.data}/ground_truth.npz")
    written = read_particles(f"{a.data}/particles.star")
    idx = np.flatnonzero(~truth["junk"])[: a.k]
    dataset = ParticleDataset(written, indices=idx, downsample_box=model.renderer.settings.box)
    batch = ParticleBatch(dataset.get_batch(np.arange(len(idx))))
    data = batch.prepared_images(run.calibration.invert_data)
    with torch.no_grad():
        ca = model.decode(model.encode(data, batch.rotations, batch.shifts_angstrom, batch.ctf))
    true_r = truth["rotations"][idx]
    true_c = torch.zeros(len(idx), 5)
    true_c[:, :3] = torch.as_tensor(Rotation.from_matrix(np.einsum("nij,nkj->nik", true_r, written.rotations[idx])).as_rotvec())
    true_c[:, 3:] = torch.as_tensor(truth["shifts_angstrom"][idx] - written.shifts_angstrom[idx])
    with torch.no_grad():
        at_written = float((model.render(ca, batch.rotations, batch.shifts_angstrom, batch.ctf) - data).square().mean())
        at_true = float((model.render(ca, *PoseCorrections.apply(true_c, batch.rotations, batch.shifts_angstrom), batch.ctf) - data).square().mean())
    print(f"image loss per pixel: written poses {at_written:.5f}, true poses {at_true:.5f}")
    print(f"median pose error: written {median_error_deg(true_r, batch.rotations):.3f}°")
    c = torch.zeros(len(idx), 5, requires_grad=True)
    optimiser = torch.optim.Adam([c], lr=0.003)
    for step in range(a.steps):
        rotations, shifts = PoseCorrections.apply(c, batch.rotations, batch.shifts_angstrom)
        nll = (model.render(ca, rotations, shifts, batch.ctf) - data).square().sum(dim=(-2, -1)) / 2
        prior = c[:, :3].square().sum(1) / (2 * math.radians(2) ** 2) + c[:, 3:].square().sum(1) / 2
        optimiser.zero_grad()
        (nll + prior).sum().backward()
        optimiser.step()
        if step % 30 == 29:
            print(f"step {step + 1}: median pose error {median_error_deg(true_r, PoseCorrections.apply(c, batch.rotations, batch.shifts_angstrom)[0]):.3f}°")


if __name__ == "__main__":
    main()
