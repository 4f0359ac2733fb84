"""The ADK example: PSF + DCD2 from MDAnalysisTests."""

import numpy as np

from cryogeom.examples import adk
from cryogeom.structure.residues import STANDARD_AMINO_ACIDS


def test_adk_trajectory_shape_names_chain_and_bonds():
    traj = adk()
    s = traj.structure
    assert traj.n_frames == 102 and traj.ca.shape == (102, 214, 3)
    assert s.n_residues == 214 and len(set(s.chain_ids)) == 1
    assert len(s.bonded_pairs) == 213 and s.bonded_pairs.tolist() == [[i, i + 1] for i in range(213)]
    assert "HIS" in s.resnames and set(s.resnames) <= set(STANDARD_AMINO_ACIDS)  # HSD in the PSF
    assert s.sequence.startswith("MRIILLGAPGAGKGTQAQ")  # E. coli adenylate kinase
    assert s.n_atoms == 3341 and traj.atom_positions(101).shape == (3341, 3)
    # Cα–Cα bonds stay near 3.8 Å along the whole path, except the cis peptide PHE86–PRO87 (~2.9 Å)
    d = np.linalg.norm(traj.ca[:, 1:] - traj.ca[:, :-1], axis=-1)
    trans = np.delete(d, 85, axis=1)
    assert 3.4 < trans.min() and trans.max() < 4.1
    assert s.resnames[86] == "PRO" and d[:, 85].max() < 3.3
    # the path moves: first and last frame differ by several Å after centring
    a, b = (traj.ca[k] - traj.ca[k].mean(0) for k in (0, -1))
    assert np.sqrt(((a - b) ** 2).sum(1).mean()) > 5.0
