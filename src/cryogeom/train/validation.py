"""Scoring a run during training against ground truth (synthetic data from ``cryogeom simulate``).

Each validation pass predicts the conformations of the first K held-out true (not junk) particles (K = 4000 as
in the paper, or fewer) and scores them against the ground-truth frames those particles were
simulated from: the mean RMSD (each prediction to its own frame) and the EMD-RMSD (appendix G).
The two constant baselines (base structure, mean structure) are computed once.
"""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError
from cryogeom.metrics.baselines import baseline_scores
from cryogeom.metrics.emd import emd_rmsd, mean_rmsd
from cryogeom.metrics.ground_truth import load_ground_truth, load_junk, true_particles


class GroundTruthValidator:
    def __init__(self, path, validation_indices: np.ndarray, base_ca: np.ndarray, k: int = 4000):
        frame, ca = load_ground_truth(path)
        if len(validation_indices) and validation_indices.max() >= len(frame):
            raise InputError(f"{path}: has {len(frame)} particles, fewer than the particle set")
        if ca.shape[1] != base_ca.shape[0]:
            raise InputError(f"{path}: ground truth has {ca.shape[1]} residues, the base structure {base_ca.shape[0]}")
        #: the held-out particles scored (junk has no ground truth and is left out)
        self.indices = true_particles(validation_indices, load_junk(path))[:k]
        self.k = len(self.indices)
        self.truth = ca[frame[self.indices]]
        scores = baseline_scores(self.truth, base_ca)
        self.baselines = {"baseline_base_structure": scores.base_structure_angstrom, "baseline_mean_structure": scores.mean_structure_angstrom}

    def __call__(self, predicted_ca: np.ndarray) -> dict:
        pred = predicted_ca[: self.k]
        return {"val_rmsd": mean_rmsd(pred, self.truth), "val_emd_rmsd": emd_rmsd(pred, self.truth), **self.baselines}
