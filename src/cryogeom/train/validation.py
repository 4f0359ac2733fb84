"""Scoring a run during training against ground truth (synthetic data from ``cryogeom simulate``).

Each validation pass predicts the conformations of the first K held-out particles (K = 4000 as
in the paper, or fewer) and scores them against the ground-truth frames those particles were
simulated from: the mean RMSD (each prediction to its own frame) and the EMD-RMSD (appendix G).
The two constant baselines (base structure, mean structure) are computed once.
"""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError
from cryogeom.evaluate.baselines import baseline_scores
from cryogeom.evaluate.emd import emd_rmsd, mean_rmsd


def load_ground_truth(path) -> tuple[np.ndarray, np.ndarray]:
    """(frame [n] int, ca [F, N, 3] float64) from a ground_truth.npz written by ``cryogeom simulate``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            frame = np.asarray(data["frame"], dtype=np.int64)
            ca = np.asarray(data["ca"], dtype=np.float64)
    except FileNotFoundError:
        raise InputError(f"{path}: no such ground-truth file") from None
    except KeyError as exc:
        raise InputError(f"{path}: missing array {exc.args[0]!r} (expected 'frame' and 'ca' as written by cryogeom simulate)") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a ground-truth .npz file ({exc})") from None
    if ca.ndim != 3 or ca.shape[-1] != 3:
        raise InputError(f"{path}: 'ca' must be [F, N, 3], got {ca.shape}")
    if frame.size and (frame.min() < 0 or frame.max() >= len(ca)):
        raise InputError(f"{path}: 'frame' refers to frames outside 0..{len(ca) - 1}")
    return frame, ca


class GroundTruthValidator:
    def __init__(self, path, validation_indices: np.ndarray, base_ca: np.ndarray, k: int = 4000):
        frame, ca = load_ground_truth(path)
        if len(validation_indices) and validation_indices.max() >= len(frame):
            raise InputError(f"{path}: has {len(frame)} particles, fewer than the particle set")
        if ca.shape[1] != base_ca.shape[0]:
            raise InputError(f"{path}: ground truth has {ca.shape[1]} residues, the base structure {base_ca.shape[0]}")
        self.k = min(k, len(validation_indices))
        self.truth = ca[frame[validation_indices[: self.k]]]
        scores = baseline_scores(self.truth, base_ca)
        self.baselines = {"baseline_base_structure": scores.base_structure_angstrom, "baseline_mean_structure": scores.mean_structure_angstrom}

    def __call__(self, predicted_ca: np.ndarray) -> dict:
        pred = predicted_ca[: self.k]
        return {"val_rmsd": mean_rmsd(pred, self.truth), "val_emd_rmsd": emd_rmsd(pred, self.truth), **self.baselines}
