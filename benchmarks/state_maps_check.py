"""Do the maps of the end states of the motion show those states? (after ``cryogeom analyze --maps``)

For a run trained on simulated particles: takes the two k-means clusters at the ends of PC1 (the
lowest and highest mean PC1 score), and for each compares its map (from its own particles, no
network) with the density of the ground-truth conformations of its particles (each frame's Cα
drawn with the run's density model, weighted by how many of the cluster's particles came from
it), and with the other end's. Prints each map's resolution, the correlations (low-passed to
--resolution Å) and the model-vs-map and base-vs-map FSC means recorded by ``analyze``.

Usage:
  python benchmarks/state_maps_check.py RUN --ground-truth SIM/ground_truth.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mrcfile
import numpy as np

from cryogeom.metrics.ground_truth import load_ground_truth
from cryogeom.reconstruct.model_map import model_density
from cryogeom.train.run import load_run


def lowpass(v: np.ndarray, pixel: float, resolution: float) -> np.ndarray:
    f = np.fft.fftfreq(v.shape[0], d=pixel)
    kz, ky, kx = np.meshgrid(f, f, f, indexing="ij")
    return np.fft.ifftn(np.fft.fftn(v) * (np.sqrt(kx**2 + ky**2 + kz**2) < 1 / resolution)).real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--ground-truth", required=True)
    ap.add_argument("--resolution", type=float, default=8.0, help="low-pass for the correlations, Å (default 8)")
    args = ap.parse_args()
    run = load_run(args.run)
    analysis = Path(args.run) / "analysis"
    maps = {m["name"]: m for m in json.loads((analysis / "maps" / "maps.json").read_text())["maps"]}
    labels, pcs = np.load(analysis / "labels.npy"), np.load(analysis / "pcs.npy")
    frame, truth = load_ground_truth(args.ground_truth)
    clusters = [int(name.removeprefix("cluster")) for name in maps if name.startswith("cluster")]
    order = sorted(clusters, key=lambda k: pcs[labels == k, 0].mean())
    ends = [order[0], order[-1]]
    densities, volumes = {}, {}
    for k in ends:
        with mrcfile.open(analysis / "maps" / f"cluster{k}.mrc") as m:
            volumes[k] = m.data.astype(np.float64)
            pixel = float(m.voxel_size.x)
        frames, counts = np.unique(frame[labels == k], return_counts=True)
        box = volumes[k].shape[0]
        densities[k] = sum(c * model_density(run.model.density, truth[f] - truth[f].mean(0), box, pixel) for f, c in zip(frames, counts)) / counts.sum()
        print(f"cluster{k}: {int((labels == k).sum())} particles from frames {frames.min()}–{frames.max()} (mean {np.average(frames, weights=counts):.1f})")
    print()
    print("| map | particles | FSC 0.143 (Å) | r with its own frames | r with the other end's | mean FSC model vs map | base vs map |")
    print("|---|---|---|---|---|---|---|")
    for k, other in (ends, ends[::-1]):
        v = lowpass(volumes[k], pixel, args.resolution).ravel()
        own = np.corrcoef(v, lowpass(densities[k], pixel, args.resolution).ravel())[0, 1]
        cross = np.corrcoef(v, lowpass(densities[other], pixel, args.resolution).ravel())[0, 1]
        m = maps[f"cluster{k}"]
        print(f"| cluster{k} | {m['n_particles']} | {m['resolution_angstrom']:.2f} | {own:.4f} | {cross:.4f} | "
              f"{m['mean_fsc_model_vs_map']:.3f} | {m['mean_fsc_base_vs_map']:.3f} |")


if __name__ == "__main__":
    main()
