"""Where the EMD-RMSD of a trained run is lost: the inference, the decoder's path, or the data.

For a run trained on simulated particles with ground truth (``cryogeom simulate``), on its held-out
particles:

1. **Likelihood bound.** Every ground-truth conformation is rendered with the run's own renderer at
   each particle's pose and CTF; the image loss against the particle gives a likelihood over the
   frames. Predicting the best frame (MAP) or the likelihood-weighted mean frame structure is what
   a perfect amortised encoder restricted to the true path could do: its EMD-RMSD and RMSD are the
   floor the data and renderer allow.
2. **How much the latent knows.** The correlation of the ground-truth frame with the frame predicted
   from z (30 nearest neighbours in z among the other half of the particles), beside the same for
   the likelihood-weighted mean frame of (1).
3. **The decoder's path.** Per frame, the RMSD of the particles' mean prediction to the truth
   (bias), the spread of the predictions about that mean, and the best prediction among 1,000 for a
   frame (can the decoder reach the frame at all?).
4. **Image loss of the prediction and of the truth** on training and held-out particles (a model
   that memorised the training images' noise would beat the truth on them only).

    python benchmarks/diagnose_accuracy.py RUN --data /work/data/adk50 [--k 1000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from cryogeom.metrics.emd import emd_rmsd, mean_rmsd
from cryogeom.metrics.kabsch import per_residue_distances
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.train.run import load_run


def correlation(a, b) -> float | None:
    """Pearson correlation of ``a`` and ``b``; None when either is constant (e.g. an untrained z)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def batches(dataset, n, size, invert):
    for start in range(0, n, size):
        pos = np.arange(start, min(n, start + size))
        b = dataset.get_batch(pos)
        yield pos, b.prepared_images(invert), b.rotations, b.shifts_angstrom, b.ctf


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="directory with particles.star and ground_truth.npz")
    ap.add_argument("--k", type=int, default=1000, help="held-out particles scored")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    model = run.model.eval()
    data_dir = Path(args.data)
    particles = read_particles(data_dir / "particles.star")
    with np.load(data_dir / "ground_truth.npz", allow_pickle=False) as g:
        truth, frame_of = g["ca"].astype(np.float64), g["frame"]
        # the ground truth is about each frame's Cα centroid; the network's frame about the rotation centre
        offset = g["rotation_centre_offset_angstrom"] if "rotation_centre_offset_angstrom" in g.files else np.zeros(3)
    to_truth = torch.as_tensor(offset, dtype=torch.float32)
    frames = torch.as_tensor(truth, dtype=torch.float32) - to_truth
    n_frames = len(truth)
    box = model.renderer.settings.box
    invert = run.calibration.invert_data
    out: dict = {"run": str(Path(args.run).resolve()), "k": args.k}

    # 1-2: likelihood over the true frames, predictions and latents of the held-out particles
    idx = run.validation_indices()[: args.k]
    k = len(idx)
    true = frame_of[idx]
    dataset = ParticleDataset(particles, indices=idx, downsample_box=box)
    sse = np.zeros((k, n_frames))
    z_all, pred = np.zeros((k, run.config.network.latent_dim)), np.zeros((k, model.n_residues, 3))
    network_sse = np.zeros(k)
    for pos, img, rot, shift, ctf in batches(dataset, k, 50, invert):
        z, ca, render = model(img, rot, shift, ctf)
        z_all[pos], pred[pos] = z.numpy(), (ca + to_truth).numpy()
        network_sse[pos] = ((render - img) ** 2).sum((1, 2)).numpy()
        for f in range(n_frames):
            render = model.render(frames[f].expand(len(pos), -1, -1), rot, shift, ctf)
            sse[pos, f] = ((render - img) ** 2).sum((1, 2)).numpy()
    map_frame = sse.argmin(1)
    weights = np.exp(-(sse - sse.min(1, keepdims=True)) / 2)
    weights /= weights.sum(1, keepdims=True)
    mean_structure = np.einsum("kf,fnc->knc", weights, truth)
    out["likelihood_bound"] = {
        "map_frame_emd_rmsd": emd_rmsd(truth[map_frame], truth[true]),
        "map_frame_rmsd": mean_rmsd(truth[map_frame], truth[true]),
        "weighted_mean_emd_rmsd": emd_rmsd(mean_structure, truth[true]),
        "weighted_mean_rmsd": mean_rmsd(mean_structure, truth[true]),
        "map_frame_median_abs_error_frames": float(np.median(np.abs(map_frame - true))),
    }
    out["network"] = {"emd_rmsd": emd_rmsd(pred, truth[true]), "rmsd": mean_rmsd(pred, truth[true])}
    half = k // 2
    _, nn = cKDTree(z_all[:half]).query(z_all[half:], k=min(30, half))
    frame_from_z = true[:half][nn].mean(1)
    out["frame_correlation"] = {
        "from_latent_knn": correlation(frame_from_z, true[half:]),
        "likelihood_weighted_mean": correlation(weights @ np.arange(n_frames), true),
    }

    # 3: bias and spread of the predictions per frame, and whether any prediction reaches a frame
    bias, spread = [], []
    for f in np.unique(true):
        p = pred[true == f]
        m = p.mean(0)
        bias.append(float(np.sqrt(np.mean(per_residue_distances(m[None], truth[f][None]) ** 2))))
        spread.append(float(np.mean(np.sqrt(np.mean(per_residue_distances(p, np.repeat(m[None], len(p), 0)) ** 2, axis=1)))))
    sample = pred[np.random.default_rng(0).choice(k, min(k, 1000), replace=False)]
    reach = {}
    for f in range(0, n_frames, max(1, n_frames // 10)):
        d = np.sqrt(np.mean(per_residue_distances(sample, np.repeat(truth[f][None], len(sample), 0)) ** 2, axis=1))
        reach[int(f)] = float(d.min())
    out["decoder_path"] = {"bias_mean": float(np.mean(bias)), "spread_mean": float(np.mean(spread)), "best_prediction_per_frame": reach}

    # 4: image loss (mean per pixel) of the prediction and of the truth, training vs held-out
    # (held-out: from the passes above; training: one more pass)
    pixels = box * box
    losses = {"held_out": {"network": float(network_sse.mean() / pixels), "ground_truth": float(sse[np.arange(k), true].mean() / pixels)}}
    subset = np.load(Path(args.run) / "training_indices.npy")[:k]
    net = gt = 0.0
    for pos, img, rot, shift, ctf in batches(ParticleDataset(particles, indices=subset, downsample_box=box), len(subset), 200, invert):
        _, _, render = model(img, rot, shift, ctf)
        net += float(((render - img) ** 2).mean((1, 2)).sum())
        render = model.render(frames[frame_of[subset[pos]]], rot, shift, ctf)
        gt += float(((render - img) ** 2).mean((1, 2)).sum())
    losses["training"] = {"network": net / len(subset), "ground_truth": gt / len(subset)}
    out["image_loss_per_pixel"] = losses
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
