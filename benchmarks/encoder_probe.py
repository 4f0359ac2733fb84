"""How much can the encoder read the conformation from what it sees? A supervised probe.

For a run trained on simulated particles (ground truth known), a fresh encoder of the run's
architecture is trained for a short while to predict each training particle's true frame along the
path (mean squared error, Adam, cosine decay), from exactly the input the run's encoder gets
(:meth:`cryogeom.model.network.Reconstructor.encoder_input`). The correlation of its prediction with
the true frame on held-out particles bounds what an encoder with that input and architecture
extracts in that much training — compare it with the correlation the run's own latent reaches
(``benchmarks/diagnose_accuracy.py``) and with the likelihood's (same script).

    python benchmarks/encoder_probe.py RUN --data SIMDIR [--epochs 1.5] \\
        [--matched-filter on|off] [--canonical-inplane on|off] [--reference-channel on|off]

The three switches override the run's own settings, to compare encoder inputs on the same data.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cryogeom.model.encoder import FastEncoder
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.train.run import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="directory with particles.star and ground_truth.npz")
    ap.add_argument("--epochs", type=float, default=1.5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--held-out", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    onoff = {"on": True, "off": False}
    for name in ("matched-filter", "canonical-inplane", "reference-channel"):
        ap.add_argument(f"--{name}", choices=onoff)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = load_run(args.run)
    model = run.model.eval()
    for name, attr in (("matched_filter", "encoder_matched_filter"), ("canonical_inplane", "encoder_canonical_inplane"), ("reference_channel", "reference_channel")):
        if getattr(args, name) is not None:
            setattr(model, attr, onoff[getattr(args, name)])
    data_dir = Path(args.data)
    particles = read_particles(data_dir / "particles.star")
    with np.load(data_dir / "ground_truth.npz", allow_pickle=False) as g:
        frame_of = g["frame"]
    box = model.renderer.settings.box
    invert = run.calibration.invert_data
    probe = FastEncoder(box, 1, run.config.network.pose_conditioning, in_channels=2 if model.reference_channel else 1)
    model.encoder = probe  # encode() = probe(encoder_input(...))
    training = np.load(Path(args.run) / "training_indices.npy")
    held_out = run.validation_indices()[: args.held_out]
    train_set = ParticleDataset(particles, indices=training, downsample_box=box)
    test_set = ParticleDataset(particles, indices=held_out, downsample_box=box)
    mean, scale = frame_of.mean(), frame_of.std()

    def inputs(dataset, pos):
        b = dataset.get_batch(pos)
        return b.prepared_images(invert), b.rotations, b.shifts_angstrom, b.ctf

    @torch.no_grad()
    def held_out_correlation() -> float:
        probe.eval()
        pred = np.concatenate([model.encode(*inputs(test_set, pos))[:, 0].numpy() for pos in np.array_split(np.arange(len(held_out)), max(1, len(held_out) // 250))])
        probe.train()
        return float(np.corrcoef(pred, frame_of[held_out])[0, 1]) if pred.std() > 0 else float("nan")

    optimizer = torch.optim.Adam(probe.parameters(), lr=args.lr)
    steps = int(args.epochs * len(training) / args.batch_size)
    rng = np.random.default_rng(args.seed)
    order, at, start = rng.permutation(len(training)), 0, time.perf_counter()
    probe.train()
    for step in range(steps):
        if at + args.batch_size > len(order):
            order, at = rng.permutation(len(training)), 0
        pos = np.sort(order[at : at + args.batch_size])
        at += args.batch_size
        target = torch.as_tensor((frame_of[training[pos]] - mean) / scale, dtype=torch.float32)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        loss = ((model.encode(*inputs(train_set, pos))[:, 0] - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = {
        "run": str(Path(args.run).resolve()),
        "matched_filter": model.encoder_matched_filter,
        "canonical_inplane": model.encoder_canonical_inplane,
        "reference_channel": model.reference_channel,
        "epochs": args.epochs,
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "held_out_frame_correlation": held_out_correlation(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
