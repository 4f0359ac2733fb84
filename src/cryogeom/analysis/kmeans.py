"""k-means clustering of the latents (SciPy's ``kmeans2``, k-means++ seeding, run to convergence).

Each of ``n_init`` restarts seeds the centres with k-means++ and iterates Lloyd's algorithm until
no label changes or no centre moves by more than ``tol`` times the mean latent variance (in
squared distance, as scikit-learn does), at most ``max_iter`` times; the restart with the smallest inertia (summed squared distance of each latent
to its centre) wins. Restarts that leave a cluster empty are discarded. Clusters are numbered
0..k-1 by decreasing size (ties: by the first particle in the cluster), so the same latents and
seed always give the same labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import ClusterError, kmeans2, vq

from cryogeom.errors import InputError


@dataclass(frozen=True)
class KMeansResult:
    """k clusters of n latents.

    centres: [k, d] cluster means (latent units).
    labels: [n] int cluster of each latent, 0..k-1 (cluster 0 the largest).
    sizes: [k] particles per cluster.
    nearest: [k] index of the particle nearest each centre (a real member of the cluster).
    inertia: summed squared distance of the latents to their centres.
    """

    centres: np.ndarray
    labels: np.ndarray
    sizes: np.ndarray
    nearest: np.ndarray
    inertia: float

    @property
    def k(self) -> int:
        return int(len(self.centres))


def _lloyd(data: np.ndarray, k: int, rng: np.random.Generator, max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One k-means++-seeded run to convergence: (centres [k, d], labels [n])."""
    shift_tol = tol * float(data.var(axis=0).mean())
    with warnings.catch_warnings():
        # Seeding identical latents divides 0 by 0 inside kmeans2; the empty cluster that follows
        # raises ClusterError, which discards the restart.
        warnings.simplefilter("ignore", RuntimeWarning)
        centres, labels = kmeans2(data, k, iter=1, minit="++", missing="raise", seed=rng)
    for _ in range(max_iter):
        new_centres, new_labels = kmeans2(data, centres, iter=1, minit="matrix", missing="raise")
        moved = float(((new_centres - centres) ** 2).sum(axis=1).max())
        centres = new_centres
        if np.array_equal(new_labels, labels) or moved <= shift_tol:
            break
        labels = new_labels
    return centres, vq(data, centres)[0]


def kmeans_latents(z, k: int, *, seed: int = 0, n_init: int = 4, max_iter: int = 300, tol: float = 1e-4) -> KMeansResult:
    """Cluster latents ``z`` [n, d] into ``k`` clusters (see the module docstring)."""
    data = np.asarray(z, dtype=np.float64)
    if data.ndim != 2 or len(data) == 0:
        raise InputError(f"latents: expected an [n, d] array, got shape {data.shape}")
    if not 1 <= k <= len(data):
        raise InputError(f"clusters: expected 1 to {len(data)} clusters (the number of particles), got {k}")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        try:
            centres, labels = _lloyd(data, k, rng, max_iter, tol)
        except ClusterError:
            continue
        inertia = float(((data - centres[labels]) ** 2).sum())
        if best is None or inertia < best[2]:
            best = (centres, labels, inertia)
    if best is None:
        distinct = len(np.unique(data, axis=0))
        raise InputError(f"clusters: cannot form {k} non-empty clusters from {distinct} distinct latents")
    centres, labels, inertia = best
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(k)])
    order = np.lexsort((first, -sizes))  # by decreasing size, then first member
    relabel = np.empty(k, dtype=np.int64)
    relabel[order] = np.arange(k)
    centres, labels, sizes = centres[order], relabel[labels], sizes[order]
    nearest = np.empty(k, dtype=np.int64)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        nearest[c] = members[np.argmin(((data[members] - centres[c]) ** 2).sum(axis=1))]
    return KMeansResult(centres=centres, labels=labels, sizes=sizes, nearest=nearest, inertia=inertia)
