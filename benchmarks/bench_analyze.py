"""Time the latent analysis of ``cryogeom analyze`` at data-set sizes: PCA, k-means, a selection, the figure.

Latents are synthetic: n particles in d = 8 dimensions, drawn around 6 cluster centres on a curved
1-D path plus isotropic noise (a latent space with structure, as after training; pure noise makes
k-means converge slowly and is not representative). Reports the wall time of :func:`fit_pca`,
:func:`kmeans_latents` (k = 10, 4 restarts), a two-condition selection mask and the PNG, best of
``--repeats``. Decoding is not timed (a few dozen conformations). Timings depend on the load of
the machine; the lead reruns benchmarks on a quiet one.

    python benchmarks/bench_analyze.py                     # n = 1e4, 1e5, 1e6
    python benchmarks/bench_analyze.py --n 10000 --repeats 1   # quick check that it runs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cryogeom.analysis import fit_pca, kmeans_latents, parse_selection
from cryogeom.analysis.figures import plot_latent_pca


def structured_latents(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """[n, d] latents: 6 clusters along a curved path, spread 0.15, plus a continuous component."""
    t = np.linspace(0, np.pi, 6)
    path = np.zeros((6, d))
    path[:, 0], path[:, 1] = np.cos(t), np.sin(t)
    labels = rng.integers(0, 6, size=n)
    return path[labels] + 0.15 * rng.normal(size=(n, d))


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    selection = parse_selection("pc1>0,pc2<0.5")
    print(f"{'n':>9} {'pca s':>8} {'kmeans s':>9} {'select s':>9} {'png s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            z = structured_latents(n, args.d, rng).astype(np.float32)
            pca = fit_pca(z)
            scores = pca.transform(z)
            clusters = kmeans_latents(z, args.clusters)
            t_pca = best_of(args.repeats, lambda: fit_pca(z).transform(z))
            t_kmeans = best_of(args.repeats, lambda: kmeans_latents(z, args.clusters))
            t_select = best_of(args.repeats, lambda: selection.mask(scores, clusters.labels, clusters.k))
            t_png = best_of(
                args.repeats,
                lambda: plot_latent_pca(Path(tmp) / "pca.png", pca, scores, cluster_centre_scores=pca.transform(clusters.centres)),
            )
            print(f"{n:>9} {t_pca:>8.3f} {t_kmeans:>9.3f} {t_select:>9.4f} {t_png:>7.2f}")


if __name__ == "__main__":
    main()
