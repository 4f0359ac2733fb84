"""Reading structures and trajectories (PDB, mmCIF, GRO+XTC, multi-model PDB, PSF+DCD), chains
and bonds, writing (multi-model Cα PDB, DCD, all-atom PDB) and bad input."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from cryogeom.errors import InputError
from cryogeom.structure.bonds import consecutive_bonded_pairs
from cryogeom.structure.read import read_structure, read_trajectory
from cryogeom.structure.types import Structure, Trajectory
from cryogeom.structure.write import write_all_atom_pdb, write_dcd, write_pdb

DATA = Path(__file__).parent / "data" / "structure"
PEPTIDE_RESNAMES = ["MET", "ARG", "ILE", "ILE", "LEU", "LEU"]


def _pdb_ca_lines(path):
    """Cα coordinates [N, 3] parsed from the PDB text (blank or 'A' altloc), independently of the reader."""
    return np.array([[float(l[30:38]), float(l[38:46]), float(l[46:54])] for l in open(path) if l[12:16] == " CA " and l[16] in " A"])


PEPTIDE_CA = _pdb_ca_lines(DATA / "peptide.pdb")


def _read_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_structure(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# bonded pairs
# --------------------------------------------------------------------------------------------


def test_bonded_pairs_break_at_chain_ends_numbering_gaps_and_long_distances():
    chains = ["A", "A", "A", "A", "A", "B", "B", "B"]
    resids = [1, 2, 2, 3, 5, 6, 7, 8]
    icodes = ["", "", "A", "", "", "", "", ""]
    ca = np.cumsum(np.full((8, 3), [3.8, 0, 0]), axis=0)
    ca[7] += [0, 10.0, 0]  # B8 is 10.7 Å from B7
    assert consecutive_bonded_pairs(chains, resids, icodes).tolist() == [[0, 1], [1, 2], [2, 3], [5, 6], [6, 7]]
    assert consecutive_bonded_pairs(chains, resids, icodes, ca).tolist() == [[0, 1], [1, 2], [2, 3], [5, 6]]
    # without insertion codes a repeated number is not a bond
    assert consecutive_bonded_pairs(chains, resids).tolist() == [[0, 1], [2, 3], [5, 6], [6, 7]]
    assert consecutive_bonded_pairs(["A"], [1]).shape == (0, 2)


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------


def test_pdb_chains_insertion_codes_altlocs_and_dropped_residues():
    with pytest.warns(UserWarning, match=r"dropped 2 non-protein residues \(HOH ×1, NA ×1\)"):
        s = read_structure(DATA / "peptide.pdb")
    assert s.resnames == PEPTIDE_RESNAMES
    assert s.resids.tolist() == [1, 2, 3, 10, 10, 12]
    assert s.icodes.tolist() == ["", "", "", "", "A", ""]
    assert s.chain_ids.tolist() == ["A", "A", "A", "B", "B", "B"]
    # chain A: 1-2-3; chain B: 10-10A bonded, 10A-12 is a gap; A3-B10 is a chain end
    assert s.bonded_pairs.tolist() == [[0, 1], [1, 2], [3, 4]]
    np.testing.assert_allclose(s.ca, PEPTIDE_CA, atol=1e-4)  # altloc A of ILE3's CA
    # all-atom data: 121 ATOM records minus the two altloc-B copies; no water or ion
    assert s.n_atoms == 119
    assert set(s.atom_elements) == {"C", "H", "N", "O", "S"}
    assert s.atom_positions.dtype == np.float64 and s.ca.dtype == np.float64
    for i in range(s.n_residues):  # each residue's CA atom is its Cα
        mine = (s.atom_residue_index == i) & (s.atom_names == "CA")
        assert mine.sum() == 1
        np.testing.assert_array_equal(s.atom_positions[mine][0], s.ca[i])
    cz = s.atom_positions[(s.atom_residue_index == 1) & (s.atom_names == "CZ")]
    np.testing.assert_allclose(cz, [[-7.816, 25.115, 3.842]], atol=1e-4)  # altloc A, not B


def test_mmcif_reads_author_chains_and_numbering_like_the_pdb():
    pdb = _read_quietly(DATA / "peptide.pdb")
    cif = _read_quietly(DATA / "peptide.cif")
    assert cif.resnames == pdb.resnames
    for field in ("resids", "icodes", "chain_ids", "bonded_pairs", "ca", "atom_positions", "atom_elements", "atom_names", "atom_residue_index"):
        np.testing.assert_array_equal(getattr(cif, field), getattr(pdb, field), err_msg=field)


def test_gro_with_xtc_trajectory(tmp_path):
    import MDAnalysis as mda

    gro = DATA / "peptide.gro"
    universe = mda.Universe(str(gro))
    base = universe.atoms.positions.copy()
    xtc = tmp_path / "moves.xtc"
    with warnings.catch_warnings(), mda.Writer(str(xtc), n_atoms=len(base)) as writer:
        warnings.simplefilter("ignore")  # "no dt information": irrelevant here
        for k in range(3):
            universe.atoms.positions = base + k * np.array([1.0, 2.0, 3.0])
            writer.write(universe.atoms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traj = read_trajectory(gro, xtc)
    assert traj.n_frames == 3
    s = traj.structure
    assert s.resnames == PEPTIDE_RESNAMES and s.resids.tolist() == [1, 2, 3, 4, 5, 6]
    assert len(set(s.chain_ids)) == 1  # GRO has no chains: numbering and distance decide
    assert s.bonded_pairs.tolist() == [[i, i + 1] for i in range(5)]
    np.testing.assert_allclose(traj.ca[0], PEPTIDE_CA, atol=0.006)  # GRO keeps 0.01 Å
    for k in range(3):
        np.testing.assert_allclose(traj.ca[k] - traj.ca[0], np.broadcast_to(k * np.array([1.0, 2.0, 3.0]), (6, 3)), atol=0.011)
    # GRO has no elements and no masses: atom names decide, and agree with peptide.pdb's column
    pdb = _read_quietly(DATA / "peptide.pdb")
    np.testing.assert_array_equal(s.atom_elements, pdb.atom_elements)
    np.testing.assert_allclose(traj.atom_positions(2), pdb.atom_positions + [2.0, 4.0, 6.0], atol=0.011)


@pytest.mark.parametrize("name", ["models.pdb", "models.cif"])
def test_multi_model_file_is_a_trajectory_with_normalised_names(name):
    traj = read_trajectory(DATA / name)
    s = traj.structure
    assert traj.n_frames == 2 and s.n_residues == 3
    assert s.resnames == ["GLY", "HIS", "CYS"]  # GLY, HSD, CYX in the file
    assert s.chain_ids.tolist() == ["X"] * 3 and s.resids.tolist() == [5, 6, 7]
    assert s.bonded_pairs.tolist() == [[0, 1], [1, 2]]
    np.testing.assert_allclose(traj.ca[1] - traj.ca[0], np.broadcast_to([1.0, 2.0, 3.0], (3, 3)), atol=1e-5)
    np.testing.assert_allclose(read_structure(DATA / name).ca, traj.ca[0])


def test_psf_with_dcd_reads_lazily_the_right_frame():
    import MDAnalysis as mda
    from MDAnalysisTests.datafiles import DCD, PSF

    traj = read_trajectory(PSF, DCD)
    reference = mda.Universe(PSF, DCD)
    reference.trajectory[17]
    np.testing.assert_allclose(traj.atom_positions(17), reference.atoms.positions, atol=1e-5)
    np.testing.assert_allclose(traj.ca[17], reference.select_atoms("name CA").positions, atol=1e-5)
    np.testing.assert_array_equal(traj.atom_positions(-1), traj.atom_positions(traj.n_frames - 1))
    frame = traj.frame(17)
    np.testing.assert_array_equal(frame.ca, traj.ca[17])
    np.testing.assert_array_equal(frame.atom_positions, traj.atom_positions(17))
    with pytest.raises(IndexError):
        traj.atom_positions(traj.n_frames)


# --------------------------------------------------------------------------------------------
# Structure and Trajectory objects
# --------------------------------------------------------------------------------------------


def test_centred_moves_atoms_with_the_ca_and_keeps_topology():
    s = _read_quietly(DATA / "peptide.pdb")
    c = s.centred()
    np.testing.assert_allclose(c.ca_centroid(), 0.0, atol=1e-12)
    np.testing.assert_allclose(c.atom_positions - s.atom_positions, np.broadcast_to(-s.ca_centroid(), s.atom_positions.shape), atol=1e-12)
    assert c.resnames == s.resnames and c.bonded_pairs.tolist() == s.bonded_pairs.tolist()
    assert s.sequence == "MRIILL"
    assert not s.with_coordinates(s.ca).has_atoms  # atoms would be stale


def test_structure_computes_bonds_and_normalises_names_when_built_from_arrays():
    ca = np.arange(4)[:, None] * np.array([3.8, 0.0, 0.0])
    s = Structure(ca=ca, resnames=["hsd", "ALA", "NGLY", "CYX"], resids=[1, 2, 4, 5], chain_ids=["A"] * 4)
    assert s.resnames == ["HIS", "ALA", "GLY", "CYS"]
    assert s.bonded_pairs.tolist() == [[0, 1], [2, 3]]
    with pytest.raises(InputError, match="'HOH'"):
        Structure(ca=ca, resnames=["HOH", "ALA", "GLY", "CYS"], resids=[1, 2, 3, 4], chain_ids=["A"] * 4)
    with pytest.raises(ValueError):
        Structure(ca=ca, resnames=["ALA"] * 3, resids=[1, 2, 3], chain_ids=["A"] * 3)


def test_trajectory_from_arrays():
    s = Structure(ca=np.zeros((2, 3)) + [[0, 0, 0], [3.8, 0, 0]], resnames=["ALA", "GLY"], resids=[1, 2], chain_ids=["A", "A"])
    traj = Trajectory(s, ca=np.stack([s.ca, s.ca + 1.0]))
    assert traj.n_frames == 2 and len(traj) == 2
    np.testing.assert_array_equal(traj.frame(1).ca, s.ca + 1.0)
    with pytest.raises(ValueError):
        traj.atom_positions(0)
    with pytest.raises(ValueError):
        Trajectory(s, ca=np.zeros((0, 2, 3)))


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def test_multi_model_ca_pdb_round_trip(tmp_path):
    s = _read_quietly(DATA / "peptide.pdb")
    rng = np.random.default_rng(0)
    coords = s.ca[None] + rng.normal(scale=0.1, size=(4, s.n_residues, 3)) + rng.normal(scale=5.0, size=(4, 1, 3))
    path = tmp_path / "out" / "pred.pdb"
    write_pdb(path, s, coords)
    traj = read_trajectory(path)
    assert traj.n_frames == 4
    np.testing.assert_allclose(traj.ca, coords, atol=1e-3)  # PDB keeps 3 decimals
    back = traj.structure
    assert back.resnames == s.resnames
    for field in ("resids", "icodes", "chain_ids"):
        np.testing.assert_array_equal(getattr(back, field), getattr(s, field))
    # CONECT records: exactly the bonded pairs, so viewers draw the trace and nothing else
    conect = set()
    for line in open(path):
        if line.startswith("CONECT"):
            atom, *partners = (int(line[i : i + 5]) for i in range(6, len(line.rstrip()), 5))
            conect |= {(min(atom, p), max(atom, p)) for p in partners}
    assert conect == {(i + 1, j + 1) for i, j in s.bonded_pairs.tolist()}
    assert sum(line.startswith("MODEL") for line in open(path)) == 4
    assert os.listdir(path.parent) == ["pred.pdb"]  # no temporary file left behind


def test_long_chain_ids_become_distinct_pdb_letters(tmp_path):
    ca = np.array([[0, 0, 0], [3.8, 0, 0], [20, 0, 0], [23.8, 0, 0]], dtype=float)
    s = Structure(ca=ca, resnames=["ALA"] * 4, resids=[1, 2, 1, 2], chain_ids=["PROA", "PROA", "PROB", "PROB"])
    write_pdb(tmp_path / "x.pdb", s)
    back = read_structure(tmp_path / "x.pdb")
    assert back.chain_ids.tolist() == ["A", "A", "B", "B"]
    assert back.bonded_pairs.tolist() == s.bonded_pairs.tolist() == [[0, 1], [2, 3]]


def test_dcd_round_trip_with_pdb_topology(tmp_path):
    from MDAnalysisTests.datafiles import DCD2, PSF

    traj = read_trajectory(PSF, DCD2)
    coords = traj.ca[::10] - traj.ca[::10].mean(axis=1, keepdims=True)
    write_pdb(tmp_path / "base.pdb", traj.structure, coords[:1])
    write_dcd(tmp_path / "path.dcd", coords)
    back = read_trajectory(tmp_path / "base.pdb", tmp_path / "path.dcd")
    assert back.n_frames == len(coords)
    np.testing.assert_allclose(back.ca, coords, atol=1e-3)
    assert back.structure.resnames == traj.structure.resnames
    np.testing.assert_array_equal(back.structure.bonded_pairs, traj.structure.bonded_pairs)


def test_all_atom_pdb_round_trip(tmp_path):
    s = _read_quietly(DATA / "peptide.pdb").centred()
    write_all_atom_pdb(tmp_path / "base.pdb", s)
    back = read_structure(tmp_path / "base.pdb")
    np.testing.assert_allclose(back.atom_positions, s.atom_positions, atol=1e-3)
    np.testing.assert_allclose(back.ca, s.ca, atol=1e-3)
    for field in ("atom_elements", "atom_names", "atom_residue_index", "resids", "icodes", "chain_ids", "bonded_pairs"):
        np.testing.assert_array_equal(getattr(back, field), getattr(s, field), err_msg=field)
    assert back.resnames == s.resnames


def test_failed_write_leaves_no_file(tmp_path):
    s = Structure(ca=[[0.0, 0, 0], [3.8, 0, 0]], resnames=["ALA", "GLY"], resids=[1, 2], chain_ids=["A", "A"])
    target = tmp_path / "bad.pdb"
    with pytest.raises(Exception):
        write_pdb(target, s, np.array([[[1e7, 0, 0], [0, 0, 0]]]))  # beyond the PDB format's columns
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        write_pdb(target, s, np.zeros((2, 3, 3)))


# --------------------------------------------------------------------------------------------
# bad input: InputError, one line, naming the file and what was expected
# --------------------------------------------------------------------------------------------


def _one_line_error(call, *parts):
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


def test_missing_file():
    _one_line_error(lambda: read_structure(DATA / "nope.pdb"), "nope.pdb", "not found")
    _one_line_error(lambda: read_trajectory(DATA / "peptide.pdb", DATA / "nope.dcd"), "nope.dcd", "not found")


def test_structure_without_ca():
    _one_line_error(lambda: read_structure(DATA / "no_ca.pdb"), "no_ca.pdb", "no Cα")


def test_unknown_residue_names_file_chain_and_number():
    _one_line_error(lambda: read_structure(DATA / "unknown_residue.pdb"), "unknown_residue.pdb", "'SEP'", "chain A", "residue 12")


def test_empty_trajectory(tmp_path):
    from MDAnalysis.coordinates.DCD import DCDWriter

    with DCDWriter(str(tmp_path / "empty.dcd"), n_atoms=121) as _:
        pass  # header only, no frames
    _one_line_error(lambda: read_trajectory(DATA / "peptide.gro", tmp_path / "empty.dcd"), "empty.dcd", "0 frames")
    (tmp_path / "zero.xtc").write_bytes(b"")
    _one_line_error(lambda: read_trajectory(DATA / "peptide.gro", tmp_path / "zero.xtc"), "zero.xtc", "0 frames")


def test_trajectory_atom_count_must_match_topology(tmp_path):
    write_dcd(tmp_path / "short.dcd", np.zeros((2, 50, 3)))
    _one_line_error(
        lambda: read_trajectory(DATA / "peptide.gro", tmp_path / "short.dcd"),
        "short.dcd has 50", "peptide.gro has 123", "same atoms",
    )  # fmt: skip


def test_topology_without_coordinates_and_unreadable_files(tmp_path):
    from MDAnalysisTests.datafiles import PSF

    _one_line_error(lambda: read_structure(PSF), "adk.psf", "no coordinates")
    (tmp_path / "junk.pdb").write_text("hello\n")
    _one_line_error(lambda: read_structure(tmp_path / "junk.pdb"), "junk.pdb")
    (tmp_path / "junk.xyzzy").write_text("hello\n")
    _one_line_error(lambda: read_structure(tmp_path / "junk.xyzzy"), "junk.xyzzy", "cannot read")


# --------------------------------------------------------------------------------------------
# selections
# --------------------------------------------------------------------------------------------


def test_selection_reads_part_of_a_file_and_indexes_the_full_trajectory():
    whole = _read_quietly(DATA / "peptide.pdb")
    chain_b = _read_quietly(DATA / "peptide.pdb", select="chainID B")
    assert chain_b.resids.tolist() == [10, 10, 12] and chain_b.bonded_pairs.tolist() == [[0, 1]]
    np.testing.assert_array_equal(chain_b.ca, whole.ca[3:])
    np.testing.assert_array_equal(chain_b.atom_positions, whole.atom_positions[whole.atom_residue_index >= 3])
    np.testing.assert_array_equal(chain_b.atom_residue_index, whole.atom_residue_index[whole.atom_residue_index >= 3] - 3)
    traj = read_trajectory(DATA / "peptide.gro", select="resid 4-6")
    gro_whole = _read_quietly(DATA / "peptide.gro")
    np.testing.assert_array_equal(traj.atom_positions(0), gro_whole.atom_positions[gro_whole.atom_residue_index >= 3])
    _one_line_error(lambda: read_structure(DATA / "peptide.pdb", select="chainID Z"), "matches no atoms", "peptide.pdb")
    _one_line_error(lambda: read_structure(DATA / "peptide.pdb", select="bogus ((("), "invalid atom selection")


def test_large_pdb_with_gaps_in_one_chain():
    """CFTR (PDB 6MSM, MDAnalysisTests): chain A has 1,181 resolved residues in five stretches."""
    from MDAnalysisTests.datafiles import PDB_CHECK_RIGHTHAND_PA

    with pytest.warns(UserWarning, match="non-protein residues"):
        s = read_structure(PDB_CHECK_RIGHTHAND_PA, select="chainID A")
    assert s.n_residues == 1181 and len(s.bonded_pairs) == 1176
    breaks = [s.residue_label(i) for i in range(s.n_residues - 1) if [i, i + 1] not in s.bonded_pairs.tolist()]
    assert breaks == ["A:PHE409", "A:GLN637", "A:LEU889", "A:GLY1173"]
    # the residue after each break is numbered with a gap: numbering alone finds them
    for label in breaks:
        i = [s.residue_label(k) for k in range(s.n_residues)].index(label)
        assert s.resids[i + 1] - s.resids[i] > 1
    # without the selection, chain B's poly-UNK fragment is an unknown residue
    _one_line_error(lambda: read_structure(PDB_CHECK_RIGHTHAND_PA), "'UNK'", "chain B")
