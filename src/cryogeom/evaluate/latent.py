"""The latent against the ground-truth frame: per-bin statistics of a value over frames.

The paper's Figure 10 plots, for each validation particle, its latent's score on the first
principal component (:mod:`cryogeom.analysis.pca`) against the ground-truth conformation it was
simulated from, with the mean ± standard deviation per bin of frames. A 1-D motion (ADK's hinge)
should show as a monotone trend.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
