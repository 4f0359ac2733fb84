"""Latent traversals along principal components, written as multi-model Cα PDB files.

A traversal along PC i holds the latents ``mean + t · v_i`` at ``n_points`` evenly spaced scores
t from the 5th to the 95th percentile of the particles' PC-i scores (every other PC at its mean,
i.e. score 0). Decoded, they are a short movie of the motion that PC i encodes.

Viewing ``pc1_traversal.pdb`` (one MODEL per point) in ChimeraX: either
``open pc1_traversal.pdb`` (each MODEL becomes a submodel #1.1, #1.2, ...) then
``mseries #1`` to play it or ``mseries slider #1`` for a slider; or
``open pc1_traversal.pdb coordsets true`` (one model with a coordinate set per MODEL) then
``coordset #1`` to play it or ``coordset slider #1``. PyMOL and VMD open it as a multi-state
object / trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryogeom.analysis.pca import LatentPCA
from cryogeom.errors import InputError

PERCENTILES = (5.0, 95.0)


@dataclass(frozen=True)
class Traversal:
    """Latents along one principal component.

    component: 0-based PC index (PC1 is 0).
    scores: [n_points] PC scores of the points (latent units), increasing.
    z: [n_points, d] the latents of the points.
    """

    component: int
    scores: np.ndarray
    z: np.ndarray

    @property
    def name(self) -> str:
        return f"pc{self.component + 1}"


def pc_traversal(pca: LatentPCA, pc_scores, component: int, n_points: int, percentiles=PERCENTILES) -> Traversal:
    """Latents at ``n_points`` evenly spaced scores between the ``percentiles`` of ``pc_scores[:, component]``.

    ``pc_scores`` [n, k] are the particles' scores (:meth:`LatentPCA.transform`); every other PC
    is held at the mean (score 0).
    """
    pc_scores = np.asarray(pc_scores, dtype=np.float64)
    if not 0 <= component < min(pca.n_components, pc_scores.shape[1]):
        raise InputError(f"traversal: PC{component + 1} does not exist ({pca.n_components} principal components)")
    if n_points < 2:
        raise InputError(f"traversal points: expected at least 2, got {n_points}")
    low, high = np.percentile(pc_scores[:, component], percentiles)
    scores = np.linspace(low, high, n_points)
    z = pca.mean + scores[:, None] * pca.components[component]
    return Traversal(component=component, scores=scores, z=z)
