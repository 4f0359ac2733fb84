"""The latent against the ground-truth frame: per-bin statistics of a value over frames.

The paper's Figure 10 plots, for each validation particle, its latent's score on the first
principal component (:mod:`cryogeom.analysis.pca`) against the ground-truth conformation it was
simulated from, with the mean ± standard deviation per bin of frames. A 1-D motion (ADK's hinge)
should show as a monotone trend.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cryogeom.analysis.pca import fit_pca
from cryogeom.errors import InputError


class FrameBins(NamedTuple):
    """Per-bin statistics of a value against the ground-truth frame.

    ``lower`` / ``upper`` [B]: the frames in bin b are lower[b] <= frame < upper[b];
    ``centre`` [B]; ``count`` [B]; ``mean`` and ``sd`` [B] (population standard deviation);
    empty bins are left out.
    """

    lower: np.ndarray
    upper: np.ndarray
    centre: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    sd: np.ndarray


def bin_by_frame(frames, values, *, max_bins: int = 10) -> FrameBins:
    """Mean ± sd of ``values`` [K] in bins of ``frames`` [K] (one bin per frame if there are few).

    With at most ``max_bins`` distinct frames each frame is its own bin; otherwise the frame range
    is cut into ``max_bins`` bins of equal width (the paper bins ADK's 102 frames in tens).
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(frames) != len(values) or len(frames) == 0:
        raise InputError(f"frames ({len(frames)}) and values ({len(values)}): expected the same non-zero length")
    unique = np.unique(frames)
    if len(unique) <= max_bins:
        edges = np.append(unique, unique[-1] + 1)
        which = np.searchsorted(unique, frames)
    else:
        edges = np.linspace(unique[0], unique[-1] + 1, max_bins + 1)
        which = np.clip(np.searchsorted(edges, frames, side="right") - 1, 0, max_bins - 1)
    n_bins = len(edges) - 1
    count = np.bincount(which, minlength=n_bins)
    total = np.bincount(which, weights=values, minlength=n_bins)
    keep = count > 0
    mean = np.where(keep, total / np.maximum(count, 1), np.nan)
    sq = np.bincount(which, weights=(values - mean[which]) ** 2, minlength=n_bins)
    sd = np.sqrt(sq / np.maximum(count, 1))
    lower, upper = edges[:-1], edges[1:]
    centre = np.where(len(unique) <= max_bins, lower, 0.5 * (lower + upper - 1))
    return FrameBins(lower[keep], upper[keep], centre[keep], count[keep], mean[keep], sd[keep])


class LatentCoordinates(NamedTuple):
    """How a latent's principal components relate to a landscape's known coordinates.

    ``variance_fraction`` [d]: the share of z's variance on each PC (largest first);
    ``correlation`` [K, d]: Pearson r of true coordinate k with the score on PC j (over the
    particles; 0 where either is constant); ``best_pc`` [K] and ``best_abs_r`` [K]: for each
    coordinate the PC it correlates with most and that |r|; ``linear_r2`` [K]: the R² of the
    coordinate's least-squares fit on all of z (affine), what a linear read-out of z recovers.
    """

    names: tuple[str, ...]
    variance_fraction: np.ndarray
    correlation: np.ndarray
    best_pc: np.ndarray
    best_abs_r: np.ndarray
    linear_r2: np.ndarray

    def to_dict(self) -> dict:
        return {
            "variance_fraction_per_pc": [float(v) for v in self.variance_fraction],
            "coordinates": [
                {"name": name, "correlation_per_pc": [float(r) for r in row], "best_pc": int(pc) + 1,
                 "best_abs_r": float(r), "linear_r2": float(r2)}
                for name, row, pc, r, r2 in zip(self.names, self.correlation, self.best_pc, self.best_abs_r, self.linear_r2)
            ],
        }


def latent_coordinates(z, coordinates, names) -> LatentCoordinates:
    """:class:`LatentCoordinates` of latents ``z`` [K, d] against the true ``coordinates`` [K, C]
    of the same particles (e.g. the two closures of ``cryogeom simulate --example adk-2d``)."""
    z = np.asarray(z, dtype=np.float64)
    coordinates = np.asarray(coordinates, dtype=np.float64)
    if z.ndim != 2 or coordinates.ndim != 2 or len(z) != len(coordinates) or len(z) < 3:
        raise InputError(f"latents {z.shape} and coordinates {coordinates.shape}: expected [K, d] and [K, C] with the same K >= 3")
    pca = fit_pca(z)
    scores = pca.transform(z)
    r = np.array([[_pearson(c, s) for s in scores.T] for c in coordinates.T])
    design = np.column_stack([z, np.ones(len(z))])
    fit, *_ = np.linalg.lstsq(design, coordinates, rcond=None)
    residual = ((coordinates - design @ fit) ** 2).sum(0)
    total = ((coordinates - coordinates.mean(0)) ** 2).sum(0)
    r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), 0.0)
    best = np.abs(r).argmax(axis=1)
    return LatentCoordinates(tuple(str(n) for n in names), pca.explained_variance_ratio, r, best,
                             np.abs(r)[np.arange(len(r)), best], r2)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0
