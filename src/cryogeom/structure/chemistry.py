"""Atomic models of the 20 amino acids as they are inside a chain, at pH 7.

The models come from the PDB's Chemical Component Dictionary as bundled with biotite
(:func:`biotite.structure.info.residue`, ideal coordinates, hydrogens included). The CCD
describes the *free* amino acid; inside a chain a residue has lost, to its two peptide bonds,

* the C-terminal OXT and its hydrogen HXT, and
* one hydrogen of the N-terminal amine: H2 (proline, whose free form has a single H on N, loses H).

Ionisable side chains take their usual state at pH 7: Asp and Glu deprotonated (HD2, HE2
removed), Lys and Arg protonated (as in the CCD), His neutral with the proton on Nε2 (HD1
removed; the majority tautomer; the electron count does not depend on the choice), Cys and Tyr
neutral. With these rules Σ Z over the atoms reproduces the electron counts the paper's authors
used (ALA 38, GLY 30, TRP 98, …; see :data:`cryogeom.structure.residue_sigma.REFERENCE_ELECTRONS`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cryogeom.structure.elements import atomic_numbers
from cryogeom.structure.residues import normalise_resname

#: Atoms of the free amino acid that are absent inside a chain (lost to the two peptide bonds).
PEPTIDE_BOND_REMOVED_ATOMS = frozenset({"OXT", "HXT", "H2"})
PROLINE_PEPTIDE_BOND_REMOVED_ATOMS = frozenset({"OXT", "HXT", "H"})
#: Protons absent at pH 7 (see module docstring).
PH7_REMOVED_HYDROGENS: dict[str, frozenset[str]] = {
    "ASP": frozenset({"HD2"}),
    "GLU": frozenset({"HE2"}),
    "HIS": frozenset({"HD1"}),
}


@lru_cache(maxsize=None)
def _in_chain_residue(name: str):
    from biotite.structure.info import residue

    free = residue(name)
    peptide = PROLINE_PEPTIDE_BOND_REMOVED_ATOMS if name == "PRO" else PEPTIDE_BOND_REMOVED_ATOMS
    drop = peptide | PH7_REMOVED_HYDROGENS.get(name, frozenset())
    missing = drop - set(free.atom_name)
    if missing:  # pragma: no cover - guards against a changed CCD in a future biotite
        raise RuntimeError(f"biotite's CCD entry {name} lacks atoms {sorted(missing)}")
    keep = ~np.isin(free.atom_name, list(drop))
    return free[keep]


def in_chain_residue(name: str):
    """biotite ``AtomArray`` of amino acid ``name`` (any alias) inside a chain at pH 7, with bonds.

    Coordinates are the CCD's ideal coordinates (Å), unchanged (the Cα is not moved to the origin).
    """
    return _in_chain_residue(normalise_resname(name)).copy()


def residue_electrons(name: str) -> int:
    """Electrons of amino acid ``name`` in a chain: Σ Z over its atoms, hydrogens included."""
    return int(atomic_numbers(in_chain_residue(name).element).sum())


def residue_atoms_about_ca(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions [A, 3] Å with the Cα at the origin, atomic numbers [A], atom names [A]) in float64."""
    atoms = in_chain_residue(name)
    xyz = np.asarray(atoms.coord, dtype=np.float64)
    ca = xyz[np.flatnonzero(atoms.atom_name == "CA")[0]]
    return xyz - ca, atomic_numbers(atoms.element).astype(np.float64), np.asarray(atoms.atom_name, dtype=str)
