"""How much each image says about each coordinate of a made landscape (``--example adk-2d``).

For held-out particles of a trained run, the image loss (sum over pixels of the squared
difference from the normalised data, noise sd ≈ 1 per pixel) of the true conformation is compared
with the same particle rendered with one domain at the other end of its coordinate (same pose,
shift, CTF; the run's renderer and calibration). ΔSS / 2 is the log-likelihood ratio of the two.

If the loss grows quadratically with the coordinate, ΔSS ≈ k Δc² for a full flip (|Δc| ≈ 1), the
Fisher information of one image about the coordinate is k, an ideal per-particle estimate has
variance ≈ 1/k, and no read-out of any latent can exceed R² ≈ var(c) / (var(c) + 1/k), |r| ≈ √R².
An approximate bound (the loss is not exactly quadratic, k varies between particles), printed
beside the run's own linear R² of each coordinate on z.

Usage:
  python benchmarks/closure_information.py RUN SIM [--particles 512]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.train.run import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("sim", help="the simulation directory (particles.star, ground_truth.npz with coordinates)")
    ap.add_argument("--particles", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    model = run.model.eval()
    particles = read_particles(f"{args.sim}/particles.star")
    with np.load(f"{args.sim}/ground_truth.npz") as g:
        frame, ca, coordinates, names = g["frame"], g["ca"], g["coordinates"], [str(n) for n in g["coordinate_names"]]
    grid = int(round(np.sqrt(len(ca))))
    idx = run.validation_indices()[: args.particles]
    batch = ParticleDataset(particles, indices=idx, downsample_box=model.renderer.settings.box).get_batch(np.arange(len(idx)))
    data = batch.prepared_images(run.calibration.invert_data)

    def loss(frames):
        with torch.no_grad():
            render = model.render(torch.as_tensor(ca[frames], dtype=torch.float32), batch.rotations, batch.shifts_angstrom, batch.ctf)
        return ((render - data) ** 2).sum((-2, -1)).numpy()

    f = frame[idx]
    i, j = f // grid, f % grid
    truth = loss(f)
    evaluation = Path(args.run) / "evaluation.json"
    r2 = {}
    if evaluation.is_file():
        latent = json.loads(evaluation.read_text()).get("latent_coordinates", {})
        r2 = {c["name"]: c["linear_r2"] for c in latent.get("coordinates", [])}
    print(f"{args.run}: {len(idx)} held-out particles, {model.renderer.settings.box} px\n")
    print("| coordinate | ΔSS of the other end (mean ± sd) | truth better | bound on R² | bound on |r| | the run's linear R² on z |")
    print("|---|---|---|---|---|---|")
    for c, (name, other) in enumerate(zip(names, ((grid - 1 - i) * grid + j, i * grid + (grid - 1 - j)))):
        delta_c = np.abs(coordinates[other, c] - coordinates[f, c])
        far = delta_c > 0.5
        d = loss(other) - truth
        k = float(np.mean(d[far] / delta_c[far] ** 2))
        var_c = float(np.var(coordinates[:, c]))
        bound = var_c / (var_c + 1.0 / k) if k > 0 else 0.0
        run_r2 = f"{r2[name]:.2f}" if name in r2 else "—"
        print(f"| {name} | {d[far].mean():.1f} ± {d[far].std():.1f} | {np.mean(d[far] > 0):.2f} | {bound:.2f} | {np.sqrt(bound):.2f} | {run_r2} |")


if __name__ == "__main__":
    main()
