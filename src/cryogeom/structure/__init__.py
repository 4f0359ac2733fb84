"""Structures and trajectories: Cα clouds, residue names, chains, bonds, and the residue table.

Modules: :mod:`~cryogeom.structure.io` (Structure, Trajectory, readers, writers),
:mod:`~cryogeom.structure.residues` (names, residue table), :mod:`~cryogeom.structure.bonds`
(bonded pairs), :mod:`~cryogeom.structure.elements`, :mod:`~cryogeom.structure.chemistry`
(in-chain amino-acid models), :mod:`~cryogeom.structure.residue_sigma` (appendix C estimator),
:mod:`~cryogeom.structure.side_chain` (backbone / side-chain split).
"""

from cryogeom.structure.io import (
    Structure,
    Trajectory,
    read_structure,
    read_trajectory,
    write_all_atom_pdb,
    write_dcd,
    write_pdb,
)
from cryogeom.structure.residues import normalise_resname, residue_sigma_and_electrons, residue_table
from cryogeom.structure.side_chain import side_chain_geometry

__all__ = [
    "Structure",
    "Trajectory",
    "normalise_resname",
    "read_structure",
    "read_trajectory",
    "residue_sigma_and_electrons",
    "residue_table",
    "side_chain_geometry",
    "write_all_atom_pdb",
    "write_dcd",
    "write_pdb",
]
