"""Principal component analysis of the latent space (NumPy SVD, float64).

The latents z [n, d] of n particles are centred on their mean and decomposed,
``z - mean = U S Vᵀ``; the rows of Vᵀ are the principal directions (unit vectors in latent space,
ordered by decreasing variance) and ``S² / (n - 1)`` the variance along each. A particle's PC
scores are ``(z - mean) @ V`` (latent units, not standardised). Signs are fixed so that the
largest-magnitude loading of each direction is positive, so that the same latents always give the
same PCs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryogeom.errors import InputError


@dataclass(frozen=True)
class LatentPCA:
    """Principal directions of a latent set.

    mean: [d] the latent mean.
    components: [k, d] unit principal directions (rows), by decreasing variance.
    explained_variance: [k] variance of the latents along each direction (latent units², n - 1 normalised).
    total_variance: the summed variance of all d latent coordinates.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    total_variance: float

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """[k] fraction of the total latent variance along each direction."""
        if self.total_variance <= 0:
            return np.zeros_like(self.explained_variance)
        return self.explained_variance / self.total_variance

    def transform(self, z) -> np.ndarray:
        """Latents [n, d] -> PC scores [n, k] (latent units)."""
        return (np.asarray(z, dtype=np.float64) - self.mean) @ self.components.T

    def inverse_transform(self, scores) -> np.ndarray:
        """PC scores [n, k] -> latents [n, d] (the mean plus the scored directions)."""
        return self.mean + np.asarray(scores, dtype=np.float64) @ self.components

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance": self.explained_variance.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "cumulative_explained_variance_ratio": np.cumsum(self.explained_variance_ratio).tolist(),
            "total_variance": self.total_variance,
        }


def fit_pca(z) -> LatentPCA:
    """PCA of latents ``z`` [n, d] (n >= 2): all min(n, d) principal directions."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise InputError(f"latents: expected an [n >= 2, d >= 1] array, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise InputError("latents: contain NaN or infinite values")
    mean = z.mean(axis=0)
    centred = z - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    # Deterministic signs: the largest-magnitude loading of each direction is positive.
    biggest = vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)]
    vt = vt * np.where(biggest < 0, -1.0, 1.0)[:, None]
    variance = singular**2 / (len(z) - 1)
    total = float(centred.var(axis=0, ddof=1).sum())
    return LatentPCA(mean=mean, components=vt, explained_variance=variance, total_variance=total)
