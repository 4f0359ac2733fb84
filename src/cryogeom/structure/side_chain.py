"""Backbone / side-chain split of each amino acid, for a density richer than one Gaussian per Cα.

Per amino acid (in-chain, pH 7, hydrogens included: :mod:`cryogeom.structure.chemistry`):

* backbone = N, CA, C, O and the hydrogens bonded to them (H, HA; both HA2/HA3 of glycine);
  side chain = every other atom (glycine has none);
* the electrons of each part (Σ Z; they add up to the residue table's electrons);
* the electron-weighted centroid of each part relative to the Cα, in the residue's local
  backbone frame (:func:`backbone_frame`).

The CCD's ideal coordinates fix one side-chain rotamer; the centroids are a prior, not a fit.
"""

from __future__ import annotations

import numpy as np

from cryogeom.structure.chemistry import in_chain_residue
from cryogeom.structure.elements import atomic_numbers
from cryogeom.structure.residues import STANDARD_AMINO_ACIDS

BACKBONE_HEAVY_ATOMS = ("N", "CA", "C", "O")


def backbone_frame(n_angstrom, ca_angstrom, c_angstrom) -> np.ndarray:
    """Local frame [..., 3, 3] of residues from their N, CA, C positions [..., 3].

    Columns are the axes (Gram–Schmidt, as AlphaFold's rigid_from_3_points): e1 along CA→C,
    e2 in the N–CA–C plane towards N, e3 = e1 × e2. A point at local coordinates ``u`` is at
    ``ca + frame @ u``; local coordinates of a point ``p`` are ``frame.T @ (p - ca)``.
    """
    n, ca, c = (np.asarray(v, dtype=np.float64) for v in (n_angstrom, ca_angstrom, c_angstrom))
    e1 = c - ca
    e1 = e1 / np.linalg.norm(e1, axis=-1, keepdims=True)
    v2 = n - ca
    u2 = v2 - np.sum(e1 * v2, axis=-1, keepdims=True) * e1
    e2 = u2 / np.linalg.norm(u2, axis=-1, keepdims=True)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1)


def _split(name: str) -> dict:
    atoms = in_chain_residue(name)
    names = np.asarray(atoms.atom_name, dtype=str)
    xyz = np.asarray(atoms.coord, dtype=np.float64)
    z = atomic_numbers(atoms.element).astype(np.float64)
    backbone = np.isin(names, BACKBONE_HEAVY_ATOMS)
    heavy_backbone = np.flatnonzero(backbone)
    for i, j in atoms.bonds.as_array()[:, :2]:
        if i in heavy_backbone and z[j] == 1:
            backbone[j] = True
        if j in heavy_backbone and z[i] == 1:
            backbone[i] = True
    index = {a: int(np.flatnonzero(names == a)[0]) for a in ("N", "CA", "C")}
    frame = backbone_frame(xyz[index["N"]], xyz[index["CA"]], xyz[index["C"]])
    local = (xyz - xyz[index["CA"]]) @ frame  # rows: frame.T @ (p - ca)

    def centroid(mask):
        return (z[mask, None] * local[mask]).sum(0) / z[mask].sum() if mask.any() else np.zeros(3)

    bb, sc = centroid(backbone), centroid(~backbone)
    return {
        "name": name,
        "backbone_electrons": int(z[backbone].sum()),
        "side_chain_electrons": int(z[~backbone].sum()),
        **{f"backbone_{k}_angstrom": bb[i] for i, k in enumerate("xyz")},
        **{f"side_chain_{k}_angstrom": sc[i] for i, k in enumerate("xyz")},
    }


def side_chain_geometry():
    """DataFrame indexed by amino-acid name: ``backbone_electrons``, ``side_chain_electrons`` and the
    electron-weighted centroids ``backbone_{x,y,z}_angstrom``, ``side_chain_{x,y,z}_angstrom``
    relative to the Cα in the local frame of :func:`backbone_frame`. Glycine's side chain is
    empty: 0 electrons, centroid at the Cα."""
    import pandas as pd

    return pd.DataFrame([_split(name) for name in STANDARD_AMINO_ACIDS]).set_index("name")
