"""The centring loss L_centering (paper section 2; Rosenbaum et al. 2021).

``L_centering = mean over b in batch of ‖(1/N) Σ_i p_i − c‖²`` (Å²): keeps the generated cloud's
centroid at ``c``, the base structure's own Cα centroid in the network's coordinates (about the
particles' rotation centre, :mod:`cryogeom.structure.map_frame`), removing globally shifted
(equivalent) conformations from the solution space. The paper's form is ``c = 0``.
"""

from __future__ import annotations

import torch

from cryogeom.errors import InputError, require


def centering_loss(pred: torch.Tensor, target_angstrom: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distance (Å²) of the centroid of each cloud in ``pred`` [B, N, 3] Å from
    ``target_angstrom`` [3] (default: the origin), averaged over B."""
    if not isinstance(pred, torch.Tensor):
        raise InputError(f"centering_loss: pred must be a torch.Tensor [B, N, 3], got {type(pred).__name__}")
    require(pred.ndim == 3 and pred.shape[-1] == 3 and pred.shape[1] > 0,
            f"centering_loss: pred must have shape [B, N, 3] (Å) with N > 0, got {tuple(pred.shape)}")
    centroid = pred.mean(dim=1)
    if target_angstrom is not None:
        centroid = centroid - target_angstrom.to(centroid)
    return centroid.square().sum(dim=-1).mean()
