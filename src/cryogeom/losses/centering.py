"""The centring loss L_centering (paper section 2; Rosenbaum et al. 2021).

``L_centering = mean over b in batch of ‖(1/N) Σ_i p_i‖²`` (Å²): keeps the generated cloud
centred on the origin, removing globally shifted (equivalent) conformations from the solution
space — structures are rendered about their Cα centroid (docs/ARCHITECTURE.md, "Centring").
"""

from __future__ import annotations

import torch

from cryogeom.errors import InputError, require


def centering_loss(pred: torch.Tensor) -> torch.Tensor:
    """Squared norm (Å²) of the centroid of each cloud in ``pred`` [B, N, 3] Å, averaged over B."""
    if not isinstance(pred, torch.Tensor):
        raise InputError(f"centering_loss: pred must be a torch.Tensor [B, N, 3], got {type(pred).__name__}")
    require(pred.ndim == 3 and pred.shape[-1] == 3 and pred.shape[1] > 0,
            f"centering_loss: pred must have shape [B, N, 3] (Å) with N > 0, got {tuple(pred.shape)}")
    return pred.mean(dim=1).square().sum(dim=-1).mean()
