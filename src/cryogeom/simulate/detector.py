"""The detector: electron counts from a dose, shot noise, and RELION's particle normalisation."""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError
from cryogeom.imaging.grid import background_mask


def expected_counts(intensity: np.ndarray, dose_per_angstrom2: float, pixel_size_angstrom: float) -> np.ndarray:
    """Expected electrons per pixel = dose (e/Å²) · pixel area (Å²) · relative intensity I (1 = no specimen).

    The weak-phase intensity can in principle dip below 0 for strong phases; it is clipped at 0.
    """
    return dose_per_angstrom2 * pixel_size_angstrom**2 * np.clip(intensity, 0.0, None)


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-distributed counts with the given expectation (float64 array of integers)."""
    return rng.poisson(expected).astype(np.float64)


def normalise_relion(counts: np.ndarray) -> np.ndarray:
    """What RELION's particle extraction writes: contrast inverted (protein bright), and per image
    the background (outside the circle of diameter D, :func:`background_mask`) at mean 0, standard
    deviation 1. ``counts`` [n, D, D] -> float64 [n, D, D].
    """
    counts = np.asarray(counts, dtype=np.float64)
    box = counts.shape[-1]
    mask = background_mask(box).numpy()
    if not mask.any():
        raise InputError(f"box {box}: too small to have background pixels outside the particle circle")
    inverted = -counts
    background = inverted[..., mask]
    mean = background.mean(axis=-1)[..., None, None]
    sd = background.std(axis=-1)[..., None, None]
    sd = np.where(sd > 0, sd, 1.0)  # a constant background (e.g. noiseless, no ice): only centre it
    return (inverted - mean) / sd
