"""Trivial predictions that put an EMD-RMSD in proportion.

Two constant predictions — the same structure for every particle — score:

* **base structure**: the structure the network starts from (the paper's "initialisation"); a
  reconstruction must beat it to have learned anything;
* **mean structure**: the average of the ground-truth conformations; it lies "in the middle" of
  the motion and scores far better. A reconstruction shows that it has learned the motion only
  well below this line.

For a constant prediction every row of the K×K RMSD matrix is the same, so every pairing costs
the same: its EMD-RMSD equals its mean RMSD, the mean over particles of RMSD(constant, truth_k).

How the mean structure is aligned (generalised Procrustes): start from the first conformation
(centred); superpose every conformation onto the current mean (Kabsch, proper rotations); take
the average; centre it; repeat until the mean moves less than ``tolerance_angstrom`` (RMS over
residues). The result is a local minimiser of Σ_k RMSD(mean, truth_k)², centred at the origin,
in the orientation of the first conformation up to the drift of the iteration. It is an average
of coordinates, so its bonds may be shorter than 3.8 Å where the motion is large.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cryogeom.errors import InputError
from cryogeom.metrics.emd import mean_rmsd
from cryogeom.metrics.kabsch import as_coordinates, superpose


class BaselineScores(NamedTuple):
    """EMD-RMSD (= mean RMSD) in Å of the two constant predictions against the ground truth."""

    base_structure_angstrom: float
    mean_structure_angstrom: float


def mean_structure(conformations, *, tolerance_angstrom: float = 1e-8, max_iterations: int = 100) -> np.ndarray:
    """Mean [N, 3] (Å, centred) of Kabsch-aligned ``conformations`` [K, N, 3], by iterative alignment to the mean.

    See the module docstring for the procedure. Conformations are weighted equally, so pass the
    ground truth of the validation particles (repeats included) to weight frames as they occur.
    """
    x = as_coordinates(conformations, "conformations")
    if x.ndim != 3 or x.shape[0] < 1:
        raise InputError(f"conformations: expected a non-empty set of shape [K, N, 3], got {x.shape}")
    if not tolerance_angstrom > 0 or max_iterations < 1:
        raise InputError("mean_structure: tolerance_angstrom must be > 0 and max_iterations >= 1")
    mean = x[0] - x[0].mean(axis=0)
    for _ in range(max_iterations):
        new = superpose(x, mean).mean(axis=0)
        new -= new.mean(axis=0)
        change = np.sqrt(np.mean(np.sum((new - mean) ** 2, axis=-1)))
        mean = new
        if change < tolerance_angstrom:
            break
    return mean


def baseline_scores(truth, base) -> BaselineScores:
    """Scores of the base and the mean structure, each predicted for every particle.

    ``truth`` [K, N, 3]: ground-truth conformations of the validation particles (Å);
    ``base`` [N, 3]: the base structure the reconstruction starts from. Each score is the EMD-RMSD
    of that constant prediction, which equals its mean RMSD over the particles.
    """
    truth = as_coordinates(truth, "truth")
    base = as_coordinates(base, "base")
    if base.ndim != 2:
        raise InputError(f"base: expected one structure of shape [N, 3], got {base.shape}")
    if truth.ndim != 3 or truth.shape[1] != base.shape[0]:
        raise InputError(
            f"truth {truth.shape}: expected [K, {base.shape[0]}, 3], the same residues as base {base.shape}"
        )
    return BaselineScores(
        base_structure_angstrom=mean_rmsd(base, truth),
        mean_structure_angstrom=mean_rmsd(mean_structure(truth), truth),
    )
