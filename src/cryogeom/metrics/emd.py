"""EMD-RMSD and mean RMSD between predicted and ground-truth conformations (paper App. G, eq. 12-14).

* **EMD-RMSD** compares two *distributions*: given K predicted and K ground-truth conformations,
  pair them one-to-one so that the mean Kabsch RMSD over the pairs is smallest,

      EMD-RMSD(C1, C2) = min_S (1/K) Σ_ij s_ij RMSD(c_i,1, c_j,2),   Σ_j s_ij = 1 ∀i,  Σ_i s_ij = 1 ∀j,

  an assignment problem solved exactly on the K×K matrix of RMSDs
  (:func:`cryogeom.metrics.rmsd_matrix.rmsd_matrix`) by :func:`scipy.optimize.linear_sum_assignment`
  (a Jonker-Volgenant-type solver, as the paper uses). The paper uses K = 4000.
* **Mean RMSD** compares each prediction with *its own* ground truth (the conformation the particle
  was simulated from): the mean of the Kabsch RMSDs of the matched pairs (paper Table 2).

EMD-RMSD ≤ mean RMSD always (the identity pairing is one of the candidates). All RMSDs are after
optimal proper superposition (:mod:`cryogeom.metrics.kabsch`) and in Å.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from cryogeom.errors import InputError
from cryogeom.metrics.kabsch import as_coordinates, rmsd_after_superposition
from cryogeom.metrics.rmsd_matrix import rmsd_matrix


class EMDAssignment(NamedTuple):
    """The optimal one-to-one pairing of predictions with ground-truth conformations.

    ``emd_rmsd_angstrom``: the EMD-RMSD (eq. 12); ``truth_index`` [K] int: prediction ``i`` is
    paired with ground truth ``truth_index[i]`` (a permutation of 0..K-1); ``pair_rmsd_angstrom``
    [K]: the RMSD of each of those pairs (its mean is the EMD-RMSD).
    """

    emd_rmsd_angstrom: float
    truth_index: np.ndarray
    pair_rmsd_angstrom: np.ndarray


def _as_matched_sets(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred = as_coordinates(pred, "pred")
    truth = as_coordinates(truth, "truth")
    if pred.ndim != 3 or truth.ndim != 3:
        raise InputError(f"pred {pred.shape} and truth {truth.shape}: expected two sets of shape [K, N, 3]")
    if pred.shape != truth.shape:
        raise InputError(
            f"pred {pred.shape} and truth {truth.shape}: expected the same number K of conformations "
            "and N of residues in both sets"
        )
    if pred.shape[0] < 1:
        raise InputError("pred and truth: the sets of conformations are empty (K = 0)")
    return pred, truth


def emd_assignment(pred, truth) -> EMDAssignment:
    """Optimal one-to-one pairing of ``pred`` [K, N, 3] with ``truth`` [K, N, 3] and its EMD-RMSD (eq. 12-14).

    Builds the K×K Kabsch-RMSD matrix and solves the linear assignment problem on it exactly.
    """
    pred, truth = _as_matched_sets(pred, truth)
    cost = rmsd_matrix(pred, truth)
    rows, cols = linear_sum_assignment(cost)
    # rows is 0..K-1 in order for a square matrix.
    pair_rmsd = cost[rows, cols]
    return EMDAssignment(float(pair_rmsd.mean()), cols.astype(np.int64), pair_rmsd)


def emd_rmsd(pred, truth) -> float:
    """EMD-RMSD (Å) of predicted conformations ``pred`` [K, N, 3] against ground truth ``truth`` [K, N, 3] (eq. 12).

    Invariant to the order of either set and to a rigid motion of any conformation; 0 iff the two
    sets are the same up to order and rigid motions.
    """
    return emd_assignment(pred, truth).emd_rmsd_angstrom


def mean_rmsd(pred, truth) -> float:
    """Mean Kabsch RMSD (Å) of matched pairs: ``pred[k]`` against its own ground truth ``truth[k]``.

    ``pred`` [K, N, 3] or a single structure [N, 3] (a constant prediction, compared with every
    ground-truth conformation); ``truth`` [K, N, 3].
    """
    truth = as_coordinates(truth, "truth")
    pred = as_coordinates(pred, "pred")
    if truth.ndim != 3 or pred.ndim not in (2, 3):
        raise InputError(f"pred {pred.shape} and truth {truth.shape}: expected pred [K, N, 3] or [N, 3], truth [K, N, 3]")
    if pred.ndim == 3 and pred.shape[0] != truth.shape[0]:
        raise InputError(
            f"pred has {pred.shape[0]} conformations but truth has {truth.shape[0]}: mean RMSD pairs them one by one"
        )
    if truth.shape[0] < 1:
        raise InputError("truth: the set of conformations is empty (K = 0)")
    return float(np.mean(rmsd_after_superposition(pred, truth)))
