"""The latent-space overview figure: PC1-PC2 density scatter, explained variance, PC histograms."""

from __future__ import annotations

import os

import numpy as np

from cryogeom.analysis.pca import LatentPCA


def point_density(x, y, bins: int = 80) -> np.ndarray:
    """[n] the number of points in each point's cell of a ``bins`` × ``bins`` histogram of (x, y)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    counts, xe, ye = np.histogram2d(x, y, bins=bins)
    ix = np.clip(np.searchsorted(xe, x, side="right") - 1, 0, bins - 1)
    iy = np.clip(np.searchsorted(ye, y, side="right") - 1, 0, bins - 1)
    return counts[ix, iy]


def plot_latent_pca(
    path: str | os.PathLike,
    pca: LatentPCA,
    pc_scores,
    *,
    n_pcs: int = 3,
    traversal_scores: dict[int, np.ndarray] | None = None,
    cluster_centre_scores=None,
) -> None:
    """Write a PNG: PC1 vs PC2 coloured by point density (cluster centres numbered), the explained
    variance ratio per PC (bars) and cumulated (line), and histograms of PC1..PC``n_pcs`` with the
    traversal range of each (``traversal_scores``: 0-based PC -> scores) marked.

    ``pc_scores`` [n, k] are the particles' scores; ``cluster_centre_scores`` [c, k] those of the
    cluster centres (label i at centre i).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    scores = np.asarray(pc_scores, dtype=np.float64)
    k = scores.shape[1]
    n_pcs = max(1, min(n_pcs, k))
    fig = Figure(figsize=(max(10.0, 3.4 * n_pcs), 8.0), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.25, 1.0])
    scatter_ax, variance_ax = top.subplots(1, 2, width_ratios=[1.2, 1.0])
    histogram_axes = np.atleast_1d(bottom.subplots(1, n_pcs))

    ax = scatter_ax
    if k >= 2:
        density = point_density(scores[:, 0], scores[:, 1])
        order = np.argsort(density, kind="stable")
        points = ax.scatter(
            scores[order, 0], scores[order, 1], c=density[order], s=4, cmap="viridis",
            norm=LogNorm(vmin=1, vmax=max(2.0, density.max())), rasterized=True, linewidths=0,
        )
        top.colorbar(points, ax=ax).ax.set_title("per cell", fontsize=8)
        if cluster_centre_scores is not None:
            centres = np.asarray(cluster_centre_scores, dtype=np.float64)
            ax.scatter(centres[:, 0], centres[:, 1], s=30, facecolors="none", edgecolors="red", linewidths=1)
            for i, (cx, cy) in enumerate(centres[:, :2]):
                ax.annotate(str(i), (cx, cy), xytext=(3, 3), textcoords="offset points", color="red", fontsize=8)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        ax.set_title(f"{len(scores)} particles (red: k-means cluster centres)" if cluster_centre_scores is not None else f"{len(scores)} particles")
    else:
        ax.text(0.5, 0.5, "1-dimensional latent space: no PC1-PC2 plane", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()

    ax = variance_ax
    ratio = pca.explained_variance_ratio
    pcs = np.arange(1, len(ratio) + 1)
    ax.bar(pcs, ratio, color="tab:blue", label="per PC")
    ax.plot(pcs, np.cumsum(ratio), "o-", color="tab:orange", label="cumulative")
    ax.set_xticks(pcs)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of latent variance")
    ax.legend(loc="center right")
    ax.set_title("explained variance")

    for i in range(n_pcs):
        ax = histogram_axes[i]
        ax.hist(scores[:, i], bins=min(100, max(10, len(scores) // 20)), color="tab:blue")
        if traversal_scores is not None and i in traversal_scores:
            for edge in (traversal_scores[i][0], traversal_scores[i][-1]):
                ax.axvline(edge, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xlabel(f"PC{i + 1} ({100 * ratio[i]:.1f}% of variance)")
        ax.set_ylabel("particles")
        if i == 0 and traversal_scores:
            ax.set_title("dashed: traversal range", fontsize=9)
    fig.savefig(path, dpi=120, format="png")
