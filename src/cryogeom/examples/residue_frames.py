"""Local frames of residues built from the Cα trace, to carry each residue's atoms rigidly.

Residue i's frame is made from three consecutive Cα of its covalent stretch — (i−1, i, i+1),
or (i, i+1, i+2) at a stretch's first residue and (i−2, i−1, i) at its last — so a rigid motion
of the Cα rotates every frame by that motion's rotation, and bending the chain at a residue turns
that residue's side chain with it. Atoms are stored as offsets from their Cα in their residue's
reference frame (:class:`AtomFrames`) and placed on any Cα trace by :meth:`AtomFrames.place`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def frame_triads(n_residues: int, bonded_pairs: np.ndarray) -> np.ndarray:
    """Indices [N, 3] of the three Cα defining each residue's frame.

    ``bonded_pairs`` [M, 2]: covalently consecutive residues (i, i+1); a stretch is a maximal
    run of bonded residues and needs at least 3 residues.
    """
    bonded_next = np.zeros(n_residues, bool)
    bonded_next[np.asarray(bonded_pairs).min(axis=1)] = True
    idx = np.arange(n_residues)
    first = np.r_[True, ~bonded_next[:-1]]
    last = ~bonded_next
    start = np.maximum.accumulate(np.where(first, idx, 0))
    stop = np.minimum.accumulate(np.where(last, idx, n_residues - 1)[::-1])[::-1]
    if np.any(stop - start < 2):
        short = idx[stop - start < 2][0]
        raise ValueError(f"residue {short} is in a covalent stretch of fewer than 3 residues: no local frame")
    centre = np.clip(idx, start + 1, stop - 1)
    return np.stack([centre - 1, centre, centre + 1], axis=1)


def local_frames(ca_angstrom: torch.Tensor, triads: torch.Tensor) -> torch.Tensor:
    """Orthonormal, right-handed frames [..., N, 3, 3] (columns = axes) from Cα [..., N, 3].

    Axis 1 runs from the triad's first to its last Cα; axis 2 is the component of
    (first + last − 2·middle) orthogonal to axis 1 (towards the outside of the bend); axis 3 =
    axis 1 × axis 2. Differentiable.
    """
    a = ca_angstrom[..., triads[:, 0], :]
    b = ca_angstrom[..., triads[:, 1], :]
    c = ca_angstrom[..., triads[:, 2], :]
    e1 = torch.nn.functional.normalize(c - a, dim=-1)
    v = a + c - 2.0 * b
    e2 = torch.nn.functional.normalize(v - (v * e1).sum(-1, keepdim=True) * e1, dim=-1)
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2, dim=-1)], dim=-1)


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
        frames = local_frames(torch.as_tensor(ca_angstrom, dtype=torch.float64), torch.as_tensor(triads)).numpy()
        res = np.asarray(atom_residue_index)
        offsets = np.einsum("aji,aj->ai", frames[res], atom_positions_angstrom - ca_angstrom[res])
        return cls(offsets=offsets, atom_residue_index=res, triads=triads)

    def place(self, ca_angstrom: torch.Tensor) -> torch.Tensor:
        """Atom positions [..., A, 3] (Å) on the Cα trace [..., N, 3] (the reference atoms for
        the reference trace). Differentiable."""
        res = torch.as_tensor(self.atom_residue_index, device=ca_angstrom.device)
        frames = local_frames(ca_angstrom, torch.as_tensor(self.triads, device=ca_angstrom.device))
        offsets = torch.as_tensor(self.offsets, dtype=ca_angstrom.dtype, device=ca_angstrom.device)
        return ca_angstrom[..., res, :] + torch.einsum("...aij,aj->...ai", frames[..., res, :, :], offsets)
