"""Elements of atoms: from the file, the topology's masses, or the atom names."""

from collections import Counter

import numpy as np
import pytest

from cryogeom.errors import InputError
from cryogeom.structure.chemistry import in_chain_residue
from cryogeom.structure.elements import atomic_numbers, derive_elements
from cryogeom.structure.read import read_structure


def test_file_elements_win_then_masses_then_names():
    names = ["CA", "CA", "HB1", "SE", "SD", "NZ", "CB"]
    resnames = ["ALA", "CA", "ALA", "MSE", "MET", "LYS", "ALA"]
    file_elements = ["C", "Ca", "", "", "", "", ""]
    # HB1 with hydrogen-mass repartitioning (3.024 u): the mass says nothing, the name decides;
    # CB's mass (15.035 u, a united atom) matches no element either
    masses = [12.011, 40.08, 3.024, 0.0, 0.0, 14.007, 15.035]
    assert derive_elements(names, resnames, file_elements, masses).tolist() == ["C", "Ca", "H", "Se", "S", "N", "C"]
    # a mass that does match wins over the name
    assert derive_elements(["CX"], ["ALA"], None, [15.999]).tolist() == ["O"]
    assert derive_elements(["OD1", "HD2", "1HB"], ["ASP"] * 3).tolist() == ["O", "H", "H"]


def test_undeterminable_element_is_an_input_error():
    with pytest.raises(InputError, match="'QQ'.*x.pdb"):
        derive_elements(["QQ"], ["ALA"], source="x.pdb")


def test_atomic_numbers():
    np.testing.assert_array_equal(atomic_numbers(["H", "C", "N", "O", "S", "Se", "c"]), [1, 6, 7, 8, 16, 34, 6])
    with pytest.raises(InputError):
        atomic_numbers(["C", "X"])


def test_adk_psf_composition_matches_the_chemistry_of_its_sequence():
    """CHARMM's PSF has no element column; elements come from its masses. The composition must be
    that of ADK's sequence (biotite CCD, in-chain, pH 7 — as CHARMM: Asp⁻, Glu⁻, Lys⁺, Arg⁺,
    neutral His) plus the charged termini (NH3⁺: 2 more H; COO⁻: one more O)."""
    from MDAnalysisTests.datafiles import DCD2, PSF

    structure = read_structure(DCD2, topology=PSF)
    expected = Counter({"H": 2, "O": 1})
    for name in structure.resnames:
        expected.update(in_chain_residue(name).element.tolist())
    assert Counter(structure.atom_elements.tolist()) == expected
    # per residue as well: every residue has the atoms its chemistry says (termini aside)
    per_residue = np.bincount(structure.atom_residue_index, minlength=structure.n_residues)
    sizes = np.array([len(in_chain_residue(n)) for n in structure.resnames])
    sizes[0] += 2
    sizes[-1] += 1
    np.testing.assert_array_equal(per_residue, sizes)


def test_names_and_masses_agree_atom_by_atom_on_adk():
    """adk_open.pdb (no element column: names decide) and adk.psf (masses decide): same atoms."""
    from MDAnalysisTests.datafiles import DCD2, PDB_small, PSF

    from_names = read_structure(PDB_small)
    from_masses = read_structure(DCD2, topology=PSF)
    np.testing.assert_array_equal(from_names.atom_names, from_masses.atom_names)
    np.testing.assert_array_equal(from_names.atom_elements, from_masses.atom_elements)
