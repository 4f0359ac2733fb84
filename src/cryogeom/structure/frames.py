"""Local frames of residues built from the Cα trace, to carry each residue's atoms rigidly.

Residue i's frame is made from three consecutive Cα of its covalent stretch: (i−1, i, i+1) for an
interior residue; a stretch's first and last residues use the frame of their interior neighbour,
(i, i+1, i+2) and (i−2, i−1, i). A rigid motion of the Cα rotates every frame by that motion's
rotation, and bending the chain at a residue turns that residue's atoms with it. Atoms are stored
as offsets from a Cα in the residue's reference frame and placed on any Cα trace. The network's
density (:mod:`cryogeom.model.density`) and the examples' domain motions
(:class:`AtomFrames`) both use these frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def chain_neighbours(n_residues: int, bonded_pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prev [N], next [N]: the bonded neighbour before/after each residue, −1 where there is none."""
    prev = np.full(n_residues, -1, dtype=np.int64)
    nxt = np.full(n_residues, -1, dtype=np.int64)
    for a, b in np.asarray(bonded_pairs, dtype=np.int64).reshape(-1, 2):
        nxt[a], prev[b] = b, a
    return prev, nxt


def frame_residues(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """For each residue, the residue whose local frame it uses: itself if it has both neighbours,
    else its interior neighbour (chain ends), else −1 (chains shorter than 3: no rotation)."""
    interior = (prev >= 0) & (nxt >= 0)
    out = np.where(interior, np.arange(len(prev)), -1)
    for i in np.flatnonzero(~interior):
        for j in (nxt[i], prev[i]):
            if j >= 0 and interior[j]:
                out[i] = j
                break
    return out


def local_frames(ca: torch.Tensor, centre: torch.Tensor, prev: torch.Tensor, nxt: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Orthonormal frames [..., K, 3, 3] (columns e1, e2, e3) of residues ``centre`` [K].

    e1 runs along the chain (from i−1 to i+1), e2 is the bisector of the two Cα–Cα bonds made
    orthogonal to e1 (pointing away from the neighbours), e3 = e1 × e2.
    """
    x = ca[..., centre, :]
    a = ca[..., prev, :] - x
    b = ca[..., nxt, :] - x
    e1 = b - a
    e1 = e1 / e1.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = -(a + b)
    u = u - (u * e1).sum(-1, keepdim=True) * e1
    e2 = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    e3 = torch.cross(e1, e2, dim=-1)
    return torch.stack([e1, e2, e3], dim=-1)


def frame_triads(n_residues: int, bonded_pairs: np.ndarray) -> np.ndarray:
    """Indices [N, 3] (previous, centre, next) of the three Cα defining each residue's frame.

    ``bonded_pairs`` [M, 2]: covalently consecutive residues (i, i+1); a stretch is a maximal run of
    bonded residues and needs at least 3 residues (ValueError otherwise).
    """
    prev, nxt = chain_neighbours(n_residues, bonded_pairs)
    centre = frame_residues(prev, nxt)
    if np.any(centre < 0):
        short = int(np.flatnonzero(centre < 0)[0])
        raise ValueError(f"residue {short} is in a covalent stretch of fewer than 3 residues: no local frame")
    return np.stack([prev[centre], centre, nxt[centre]], axis=1)


def triad_frames(ca_angstrom: torch.Tensor, triads: torch.Tensor) -> torch.Tensor:
    """:func:`local_frames` [..., N, 3, 3] of the triads [N, 3] of :func:`frame_triads`."""
    return local_frames(ca_angstrom, triads[:, 1], triads[:, 0], triads[:, 2])


@dataclass(frozen=True)
class AtomFrames:
    """Atoms of a reference structure in their residues' local frames.

    ``offsets`` [A, 3]: each atom's offset from its residue's Cα in that residue's frame (Å);
    ``atom_residue_index`` [A]; ``triads`` [N, 3] (:func:`frame_triads`).
    """

    offsets: np.ndarray
    atom_residue_index: np.ndarray
    triads: np.ndarray

    @classmethod
    def from_reference(cls, ca_angstrom: np.ndarray, atom_positions_angstrom: np.ndarray,
                       atom_residue_index: np.ndarray, bonded_pairs: np.ndarray) -> "AtomFrames":
        """Express atoms [A, 3] in the frames of the reference Cα trace [N, 3]."""
        triads = frame_triads(len(ca_angstrom), bonded_pairs)
        frames = triad_frames(torch.as_tensor(ca_angstrom, dtype=torch.float64), torch.as_tensor(triads)).numpy()
        res = np.asarray(atom_residue_index)
        offsets = np.einsum("aji,aj->ai", frames[res], atom_positions_angstrom - ca_angstrom[res])
        return cls(offsets=offsets, atom_residue_index=res, triads=triads)

    def place(self, ca_angstrom: torch.Tensor) -> torch.Tensor:
        """Atom positions [..., A, 3] (Å) on the Cα trace [..., N, 3] (the reference atoms for
        the reference trace). Differentiable."""
        res = torch.as_tensor(self.atom_residue_index, device=ca_angstrom.device)
        frames = triad_frames(ca_angstrom, torch.as_tensor(self.triads, device=ca_angstrom.device))
        offsets = torch.as_tensor(self.offsets, dtype=ca_angstrom.dtype, device=ca_angstrom.device)
        return ca_angstrom[..., res, :] + torch.einsum("...aij,aj->...ai", frames[..., res, :, :], offsets)
