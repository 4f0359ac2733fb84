"""Residue names: the 20 amino acids, force-field aliases, terminal variants, unknown names."""

import numpy as np
import pytest

from cryogeom.errors import InputError
from cryogeom.structure.residues import (
    ONE_LETTER_CODES,
    STANDARD_AMINO_ACIDS,
    canonical_resname,
    normalise_resname,
    one_letter_sequence,
    residue_sigma_and_electrons,
    residue_table,
)


def test_twenty_distinct_amino_acids_with_distinct_one_letter_codes():
    assert len(set(STANDARD_AMINO_ACIDS)) == 20
    assert len(set(ONE_LETTER_CODES.values())) == 20
    assert one_letter_sequence(["ALA", "TRP", "HSD", "CYX"]) == "AWHC"


@pytest.mark.parametrize(
    "alias, expected",
    [
        *[(n, "HIS") for n in ("HSD", "HSE", "HSP", "HID", "HIE", "HIP", "HISE", "HIS1")],
        *[(n, "CYS") for n in ("CYM", "CYX", "CYS2", "CYSH")],
        ("MSE", "MET"), ("ASH", "ASP"), ("GLH", "GLU"), ("LYN", "LYS"), ("LSN", "LYS"), ("ARN", "ARG"),
        ("NALA", "ALA"), ("CGLY", "GLY"), ("NHIE", "HIS"), ("CCYX", "CYS"), ("NLYS", "LYS"),
        (" hsd ", "HIS"), ("ala", "ALA"),
    ],
)  # fmt: skip
def test_aliases_normalise(alias, expected):
    assert normalise_resname(alias) == expected


@pytest.mark.parametrize("name", ["HOH", "SEP", "UNK", "NME", "ACE", "NXYZ", "CA", "", "XALA"])
def test_non_amino_acids_are_not_recognised(name):
    assert canonical_resname(name) is None


def test_unknown_name_error_names_file_chain_and_residue():
    with pytest.raises(InputError) as info:
        normalise_resname("SEP", source="model.pdb", chain="B", resid="42A")
    message = str(info.value)
    assert "\n" not in message
    for part in ("'SEP'", "model.pdb", "chain B", "residue 42A"):
        assert part in message


def test_residue_sigma_and_electrons_follow_the_table_for_any_alias():
    table = residue_table()
    sigma, electrons = residue_sigma_and_electrons(["HSD", "GLY", "CYX", "TRP"])
    assert sigma.dtype == np.float64 and electrons.dtype == np.float64
    np.testing.assert_array_equal(sigma, table.loc[["HIS", "GLY", "CYS", "TRP"], "sigma_angstrom"].to_numpy())
    np.testing.assert_array_equal(electrons, [72, 30, 54, 98])
    with pytest.raises(InputError, match="'HOH'"):
        residue_sigma_and_electrons(["ALA", "HOH"])
