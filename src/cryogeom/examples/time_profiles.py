"""Smooth, mutually uncorrelated time profiles: how much of each mode a frame contains.

Each profile is a sum of a few sine waves of random frequency, phase and amplitude over the path
τ ∈ [0, 1]; the profiles are then made exactly uncorrelated over the frames (centred and
orthonormalised), given the requested variances, and shifted so that every profile is 0 at frame
0 (a shift does not change variances or correlations). The principal components of a path built
as Σ_m a_m(t) v_m from orthonormal directions v_m therefore are the v_m themselves, with variance
fractions exactly proportional to the requested variances.
"""

from __future__ import annotations

import numpy as np


def uncorrelated_profiles(n_frames: int, variances, rng: np.random.Generator, n_waves: int = 4,
                          frequency_range=(0.5, 3.0)) -> np.ndarray:
    """Profiles a [F, K], zero at frame 0, uncorrelated over frames, with Var(a[:, m]) = variances[m].

    Wave frequencies are in half-periods per path (``frequency_range``), amplitudes fall as
    1/(wave index) so the profiles are smooth. Needs ``n_frames`` > K.
    """
    variances = np.asarray(variances, dtype=np.float64)
    k = len(variances)
    if n_frames <= k:
        raise ValueError(f"need more frames ({n_frames}) than profiles ({k})")
    tau = np.linspace(0.0, 1.0, n_frames)[:, None, None]
    amplitude = rng.normal(size=(k, n_waves)) / np.arange(1, n_waves + 1)
    frequency = rng.uniform(*frequency_range, size=(k, n_waves))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(k, n_waves))
    waves = (amplitude * np.sin(np.pi * frequency * tau + phase)).sum(-1)  # [F, K]
    q, _ = np.linalg.qr(waves - waves.mean(0))  # orthonormal, centred columns
    profiles = q * np.sqrt(variances * n_frames)  # column variance (1/F Σ) = variances
    return profiles - profiles[0]
