"""The density that is rendered for a Cα cloud: Gaussian pseudo-atoms attached to the residues.

The network predicts one point per residue (the Cα, paper section 2). What is *rendered* from
those points is chosen here:

``"ca"``  — the paper's model (appendix C): one isotropic Gaussian per residue at its Cα, with
            the amino acid's σ and electron count from the residue table.
``"backbone-sidechain"`` — two Gaussians per residue: the backbone (N, CA, C, O) and the side
            chain, each at its electron-weighted centroid in the base structure.
``"atoms"`` — every heavy atom of the base structure as its own Gaussian.

For the two richer models, each pseudo-atom keeps its position relative to a *local frame of the
Cα trace* (built from residues i−1, i, i+1), measured once in the base structure. A predicted
Cα cloud moves every pseudo-atom through its residue's Cα and rotates it with the local frame, so
the density is still a function of the Cα cloud alone and the geometry losses act on the Cα.
Hydrogens are not placed. A pseudo-atom's weight is, by default (``weights="ice"``), the contrast
its atoms have in vitreous ice — projected potential minus the ice each atom displaces
(:func:`contrast_in_ice`), a hydrogen's added to its nearest heavy atom — in units that make the
protein's total its electron count; with ``weights="electrons"`` each residue's electron count
(from the residue table, hydrogens included) is shared in proportion to atomic numbers, as in
vacuum. The σ of a group is √(σ_atom² + tr(Cov)/3), where Cov is the weight-weighted covariance of its
atoms: the rotation-averaged width of its projection (appendix C with σ_atom = 1 Å).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cryogeom.errors import InputError
from cryogeom.physics.ice import IceModel
from cryogeom.physics.scattering import projected_potential_gaussians
from cryogeom.physics.solvent import displaced_solvent_gaussians
from cryogeom.structure.elements import atomic_numbers
from cryogeom.structure.frames import chain_neighbours, frame_residues, local_frames
from cryogeom.structure.residues import residue_sigma_and_electrons

DENSITY_MODELS = ("ca", "backbone-sidechain", "atoms")
BACKBONE_ATOM_NAMES = frozenset({"N", "CA", "C", "O", "OXT", "OT1", "OT2"})


class ResidueDensity(nn.Module):
    """Maps Cα clouds [B, N, 3] to pseudo-atom positions [B, M, 3] with fixed σ [M] and mass [M]."""

    def __init__(self, residue_index, sigma_angstrom, mass_electrons, local_offset=None, frame_residue=None, prev=None, nxt=None):
        super().__init__()
        t = lambda a, dt=torch.float64: torch.as_tensor(np.array(a), dtype=dt)  # noqa: E731
        self.register_buffer("residue_index", t(residue_index, torch.long))
        self.register_buffer("sigma", t(sigma_angstrom, torch.float32))
        self.register_buffer("mass", t(mass_electrons, torch.float32))
        self.rigid = local_offset is not None
        if self.rigid:
            frame_residue = np.asarray(frame_residue)
            has_frame = frame_residue >= 0
            self.register_buffer("local_offset", t(local_offset, torch.float32))
            self.register_buffer("point_frame", t(np.where(has_frame, frame_residue, 0), torch.long))
            self.register_buffer("point_has_frame", t(has_frame, torch.bool))
            centres = np.unique(frame_residue[has_frame])
            self.register_buffer("frame_centre", t(centres, torch.long))
            self.register_buffer("frame_prev", t(np.asarray(prev)[centres], torch.long))
            self.register_buffer("frame_next", t(np.asarray(nxt)[centres], torch.long))
            lookup = np.zeros(len(prev), dtype=np.int64)
            lookup[centres] = np.arange(len(centres))
            self.register_buffer("point_frame_slot", t(lookup[np.where(has_frame, frame_residue, 0)], torch.long))

    @property
    def n_points(self) -> int:
        return int(self.residue_index.numel())

    def forward(self, ca: torch.Tensor) -> torch.Tensor:
        """ca [B, N, 3] Å -> pseudo-atom positions [B, M, 3] Å."""
        points = ca[:, self.residue_index, :]
        if not self.rigid:
            return points
        frames = local_frames(ca, self.frame_centre, self.frame_prev, self.frame_next)  # [B, K, 3, 3]
        f = frames[:, self.point_frame_slot]  # [B, M, 3, 3]
        offset = self.local_offset.to(ca.dtype)
        rotated = torch.einsum("bmij,mj->bmi", f, offset)
        identity_offset = offset.expand_as(rotated)
        return points + torch.where(self.point_has_frame[None, :, None], rotated, identity_offset)


def contrast_in_ice(elements) -> np.ndarray:
    """Projected-potential integral [A] of each atom in ice (V·Å³): its scattering minus the ice it displaces.

    The atom's projected potential (Peng five-Gaussian form factor, :mod:`cryogeom.physics.scattering`)
    integrates to ``Σ a_i``; the ice of its excluded volume v (:mod:`cryogeom.physics.solvent`)
    takes away ``V0 · v`` (V0 the mean inner potential of vitreous ice, ≈ 4.6 V). The balance
    differs by element — carbon keeps 37 % of its vacuum contrast, nitrogen 89 %, oxygen 56 %,
    hydrogen 7 % — so a residue's image is not its electron count spread over its atoms.
    """
    weight, _ = projected_potential_gaussians(elements)
    solvent, _ = displaced_solvent_gaussians(elements, IceModel().mean_potential_volt())
    return weight.sum(1) + solvent.sum(1)


def _hydrogen_hosts(pos, heavy, res_of_atom, atom_weight) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest heavy atom of the same residue, weight) for every hydrogen that has one."""
    from scipy.spatial import cKDTree

    hydrogens, heavy_atoms = np.flatnonzero(~heavy), np.flatnonzero(heavy)
    if len(hydrogens) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    tree = cKDTree(pos[heavy_atoms])
    k = min(8, len(heavy_atoms))
    _, near = tree.query(pos[hydrogens], k=k)
    near = heavy_atoms[near.reshape(len(hydrogens), k)]
    same = res_of_atom[near] == res_of_atom[hydrogens][:, None]  # nearest first: the first True
    host = near[np.arange(len(hydrogens)), same.argmax(1)]
    found = same.any(1)
    for i in np.flatnonzero(~found):  # rare: none of the 8 nearest is in the residue
        h = hydrogens[i]
        own = heavy_atoms[res_of_atom[heavy_atoms] == res_of_atom[h]]
        if len(own):
            host[i], found[i] = own[np.argmin(((pos[own] - pos[h]) ** 2).sum(1))], True
    return host[found], atom_weight[hydrogens[found]]


def build_density(structure, model: str = "ca", atom_sigma_angstrom: float = 1.0, weights: str = "ice") -> ResidueDensity:
    """The pseudo-atom density of ``structure`` (a :class:`cryogeom.structure.types.Structure`).

    Pseudo-atoms are placed relative to their residue's Cα in its local frame, so the density does
    not depend on where the structure lies.
    ``weights`` (richer models only): ``"ice"`` weighs each atom by its contrast in ice
    (:func:`contrast_in_ice`; a hydrogen's goes to the nearest heavy atom of its residue), scaled
    once so that the protein's total is its electron count (the residue table's units);
    ``"electrons"`` shares each residue's electron count among its heavy atoms by atomic number.
    """
    if model not in DENSITY_MODELS:
        raise ValueError(f"unknown density model {model!r}; expected one of {', '.join(DENSITY_MODELS)}")
    n = len(structure.ca)
    sigma_res, electrons_res = residue_sigma_and_electrons(structure.resnames)
    if model == "ca":
        return ResidueDensity(np.arange(n), sigma_res, electrons_res)
    if getattr(structure, "atom_positions", None) is None:
        raise InputError(f"{getattr(structure, 'source', '') or 'base structure'}: the {model!r} density needs an all-atom base structure; this one has Cα only (use --density ca)")

    pos = np.asarray(structure.atom_positions, dtype=np.float64)
    elements = np.asarray(structure.atom_elements)
    res_of_atom = np.asarray(structure.atom_residue_index, dtype=np.int64)
    names = getattr(structure, "atom_names", None)
    if names is None and model == "backbone-sidechain":
        raise InputError(f"{getattr(structure, 'source', '') or 'base structure'}: the 'backbone-sidechain' density needs atom names (use --density atoms or ca)")
    names = np.asarray(names if names is not None else [""] * len(pos))
    z = atomic_numbers(elements).astype(np.float64)
    heavy = z > 1
    prev, nxt = chain_neighbours(n, structure.bonded_pairs)
    fres = frame_residues(prev, nxt)
    ca = np.asarray(structure.ca, dtype=np.float64)
    centre = np.where(fres >= 0, fres, 0)  # residues without a frame get a dummy one, never used
    frames0 = local_frames(
        torch.as_tensor(ca),
        torch.as_tensor(centre),
        torch.as_tensor(np.maximum(prev[centre], 0)),
        torch.as_tensor(np.maximum(nxt[centre], 0)),
    ).numpy()  # [N, 3, 3]: frame of residue fres[i], for each residue i

    if weights == "ice":
        atom_weight = contrast_in_ice(elements)
        np.add.at(atom_weight, *_hydrogen_hosts(pos, heavy, res_of_atom, atom_weight))
    elif weights == "electrons":
        atom_weight = z
    else:
        raise ValueError(f"unknown density weights {weights!r}; expected 'ice' or 'electrons'")
    heavy_weight_per_residue = np.bincount(res_of_atom[heavy], weights=atom_weight[heavy], minlength=n)
    groups: list[tuple[int, np.ndarray]] = []  # (residue, atom indices)
    for i in range(n):
        atoms = np.flatnonzero((res_of_atom == i) & heavy)
        if len(atoms) == 0:
            raise ValueError(f"residue {i} ({structure.resnames[i]}) has no heavy atoms in the base structure")
        if model == "atoms":
            groups += [(i, np.array([a])) for a in atoms]
        else:
            is_bb = np.array([names[a] in BACKBONE_ATOM_NAMES for a in atoms])
            for part in (atoms[is_bb], atoms[~is_bb]):
                if len(part):
                    groups.append((i, part))

    residue_index, sigma, mass, offset = [], [], [], []
    for i, atoms in groups:
        w = atom_weight[atoms]
        centroid = (w[:, None] * pos[atoms]).sum(0) / w.sum()
        cov_trace = (w * ((pos[atoms] - centroid) ** 2).sum(1)).sum() / w.sum()
        residue_index.append(i)
        sigma.append(np.sqrt(atom_sigma_angstrom**2 + cov_trace / 3.0))
        if weights == "ice":
            mass.append(w.sum() * electrons_res.sum() / atom_weight[heavy].sum())
        else:
            mass.append(electrons_res[i] * w.sum() / heavy_weight_per_residue[i])
        d = centroid - ca[i]
        offset.append(frames0[i].T @ d if fres[i] >= 0 else d)
    return ResidueDensity(residue_index, sigma, mass, np.array(offset), fres[np.array(residue_index)], prev, nxt)
