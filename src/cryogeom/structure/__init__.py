"""Structures and trajectories: Cα clouds, residue names, chains, bonds, and the residue table.

Modules: :mod:`~cryogeom.structure.types` (Structure, Trajectory), :mod:`~cryogeom.structure.read`, :mod:`~cryogeom.structure.write`,
:mod:`~cryogeom.structure.residues` (names, residue table), :mod:`~cryogeom.structure.bonds`
(bonded pairs), :mod:`~cryogeom.structure.elements`, :mod:`~cryogeom.structure.chemistry`
(in-chain amino-acid models), :mod:`~cryogeom.structure.residue_sigma` (appendix C estimator).
"""

from cryogeom.structure.read import read_structure, read_trajectory
from cryogeom.structure.types import Structure, Trajectory
from cryogeom.structure.write import write_all_atom_pdb, write_dcd, write_pdb
from cryogeom.structure.residues import normalise_resname, residue_sigma_and_electrons, residue_table

__all__ = [
    "Structure",
    "Trajectory",
    "normalise_resname",
    "read_structure",
    "read_trajectory",
    "residue_sigma_and_electrons",
    "residue_table",
    "write_all_atom_pdb",
    "write_dcd",
    "write_pdb",
]
