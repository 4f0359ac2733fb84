"""The bond-length loss L_bond (paper section 2).

``L_bond = mean over b in batch, (i, j) in bonded_pairs of (‖p_j − p_i‖ − 3.8 Å)²`` — consecutive
Cα atoms of one chain stay 3.8 Å apart (Chakraborty et al. 2013). Only the listed pairs count, so
the loss is chain-aware by construction: the structure module's ``Structure.bonded_pairs`` leaves
out chain ends and gaps in residue numbering.
"""

from __future__ import annotations

import torch

from cryogeom.errors import InputError, require

CA_CA_DISTANCE_ANGSTROM = 3.8
"""Distance (Å) between consecutive Cα atoms of a chain (trans peptide bonds)."""

MIN_SQUARED_BOND_ANGSTROM2 = 1e-12
"""Squared bond lengths are clamped below at this value (Å²) before the square root, so the loss
and its gradient stay finite (gradient 0) when two bonded residues coincide."""


def bond_loss(pred: torch.Tensor, bonded_pairs, target_angstrom: float = CA_CA_DISTANCE_ANGSTROM) -> torch.Tensor:
    """Mean squared deviation (Å²) of the listed bond lengths from ``target_angstrom``.

    ``pred`` [B, N, 3] Å; ``bonded_pairs`` [M, 2] residue indices (array or tensor). Returns a
    0-dim tensor in pred's dtype; 0 when there are no bonded pairs (e.g. single-residue chains).
    """
    if not isinstance(pred, torch.Tensor):
        raise InputError(f"bond_loss: pred must be a torch.Tensor [B, N, 3], got {type(pred).__name__}")
    require(pred.ndim == 3 and pred.shape[-1] == 3, f"bond_loss: pred must have shape [B, N, 3] (Å), got {tuple(pred.shape)}")
    pairs = torch.as_tensor(bonded_pairs, device=pred.device)
    require(pairs.ndim == 2 and pairs.shape[-1] == 2,
            f"bond_loss: bonded_pairs must have shape [M, 2], got {tuple(pairs.shape)}")
    require(not pairs.is_floating_point(), "bond_loss: bonded_pairs must be integer residue indices")
    if pairs.shape[0] == 0:
        return pred.new_zeros(())
    pairs = pairs.long()
    n_res = pred.shape[1]
    require(bool(((pairs >= 0) & (pairs < n_res)).all()), f"bond_loss: bonded_pairs must index residues 0..{n_res - 1}")
    d2 = (pred[:, pairs[:, 1]] - pred[:, pairs[:, 0]]).square().sum(dim=-1)  # [B, M] Å²
    length = d2.clamp_min(MIN_SQUARED_BOND_ANGSTROM2).sqrt()
    return (length - target_angstrom).square().mean()
