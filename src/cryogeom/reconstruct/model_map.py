"""A predicted model's density on a map's grid, to compare it with a map from the particles.

The model is drawn with the network's own density (:mod:`cryogeom.model.density`: Gaussian
pseudo-atoms carried by the Cα trace, with their σ and weights) on the map's voxels, so the
comparison asks the question the network was trained on — does this conformation explain these
particles — without the network: the map knows nothing of it.
"""

from __future__ import annotations

import numpy as np
import torch


def model_density(density, ca_angstrom: np.ndarray, box: int, pixel_size_angstrom: float) -> np.ndarray:
    """The density [D, D, D] (z, y, x) of the Cα model ``ca_angstrom`` [N, 3] (in the frame whose
    origin is the map's voxel D // 2) drawn with ``density`` (a ResidueDensity), float64."""
    with torch.no_grad():
        points = density(torch.as_tensor(ca_angstrom, dtype=torch.float64)[None])[0]
        sigma = density.sigma.to(torch.float64)
        mass = density.mass.to(torch.float64)
    c = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel_size_angstrom
    g = [torch.exp(-((c[None] - points[:, j, None]) ** 2) / (2 * sigma[:, None] ** 2)) for j in range(3)]
    weight = mass / (2 * np.pi * sigma**2) ** 1.5
    return torch.einsum("az,ay,ax->zyx", g[2] * weight[:, None], g[1], g[0]).numpy()


def mean_fsc_to(frequencies: np.ndarray, fsc: np.ndarray, resolution_angstrom: float) -> float:
    """The mean FSC over the shells from the first to ``resolution_angstrom`` (the map's own)."""
    upto = (frequencies > 0) & (frequencies <= 1.0 / max(resolution_angstrom, 1e-9))
    return float(np.mean(fsc[upto])) if upto.any() else float("nan")
