"""Backbone / side-chain split of the amino acids and the local backbone frame."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryogeom.structure.chemistry import in_chain_residue
from cryogeom.structure.residue_sigma import REFERENCE_ELECTRONS
from cryogeom.structure.side_chain import backbone_frame, side_chain_geometry


def test_electrons_split_adds_up_and_backbone_is_n_ca_c_o_plus_hydrogens():
    table = side_chain_geometry()
    total = table["backbone_electrons"] + table["side_chain_electrons"]
    assert total.to_dict() == REFERENCE_ELECTRONS
    # N 7 + CA 6 + C 6 + O 8 + H on N + HA = 29; proline has no H on N; glycine has two HA
    expected = {name: 29 for name in table.index} | {"PRO": 28, "GLY": 30}
    assert table["backbone_electrons"].to_dict() == expected
    assert table.loc["GLY", "side_chain_electrons"] == 0
    np.testing.assert_array_equal(table.loc["GLY", ["side_chain_x_angstrom", "side_chain_y_angstrom", "side_chain_z_angstrom"]], 0.0)


def test_frame_is_a_rotation_with_its_axes_where_documented():
    rng = np.random.default_rng(0)
    n, ca, c = rng.normal(size=(3, 5, 3))
    frame = backbone_frame(n, ca, c)
    np.testing.assert_allclose(frame.transpose(0, 2, 1) @ frame, np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(frame), 1.0, atol=1e-12)
    local_c = np.einsum("kji,kj->ki", frame, c - ca)
    local_n = np.einsum("kji,kj->ki", frame, n - ca)
    np.testing.assert_allclose(local_c[:, 1:], 0.0, atol=1e-12)  # C on +x
    assert np.all(local_c[:, 0] > 0) and np.all(local_n[:, 1] > 0)
    np.testing.assert_allclose(local_n[:, 2], 0.0, atol=1e-12)  # N in the xy plane


def test_local_coordinates_do_not_depend_on_the_residue_pose():
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    n, ca, c, p = np.random.default_rng(1).normal(size=(4, 3))
    shift = np.array([4.0, -2.0, 9.0])
    before = backbone_frame(n, ca, c).T @ (p - ca)
    after = backbone_frame(rot @ n + shift, rot @ ca + shift, rot @ c + shift).T @ (rot @ p - rot @ ca)
    np.testing.assert_allclose(before, after, atol=1e-12)


def test_alanine_cb_sits_where_l_amino_acids_put_it():
    """CB of alanine in the (N, CA, C) frame, vs AlphaFold's literature value (-0.529, -0.774, -1.205) Å:
    a check of the frame's handedness and of the CCD's L chirality."""
    atoms = in_chain_residue("ALA")
    xyz = {name: atoms.coord[atoms.atom_name == name][0].astype(float) for name in ("N", "CA", "C", "CB")}
    local = backbone_frame(xyz["N"], xyz["CA"], xyz["C"]).T @ (xyz["CB"] - xyz["CA"])
    np.testing.assert_allclose(local, [-0.529, -0.774, -1.205], atol=0.08)
    table = side_chain_geometry()
    side = table.loc["ALA", ["side_chain_x_angstrom", "side_chain_y_angstrom", "side_chain_z_angstrom"]].to_numpy(float)
    assert np.dot(side, local) / np.linalg.norm(local) == pytest.approx(np.linalg.norm(local), abs=0.3)
