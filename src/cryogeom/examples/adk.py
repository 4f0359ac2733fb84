"""The ADK example: adenylate kinase (E. coli, 214 residues) along its closed → open hinge path.

Data from MDAnalysisTests (pip-installed with MDAnalysis): the CHARMM topology ``adk.psf``
(``MDAnalysisTests.datafiles.PSF``: 3,341 atoms, hydrogens included, one segment 4AKE) and the
trajectory ``adk_dims2.dcd`` (``DCD2``: 102 frames of a DIMS transition, Seyler et al. 2015),
the path the paper samples at 102 points. Frame 0 is the closed state (0.5 Å Cα RMSD from
1AKE, ``PDB_closed``), the last frame the open one (0.4 Å from 4AKE); first and last frame differ
by 6.8 Å Cα RMSD, and the LID domain moves by up to 18 Å.
"""

from __future__ import annotations

from cryogeom.structure.read import read_trajectory
from cryogeom.structure.types import Trajectory

N_FRAMES = 102
N_RESIDUES = 214


def adk() -> Trajectory:
    """ADK's closed → open path: a :class:`~cryogeom.structure.types.Trajectory` of 102 frames, 214 residues."""
    from MDAnalysisTests.datafiles import DCD2, PSF

    return read_trajectory(PSF, DCD2)
