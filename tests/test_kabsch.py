import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryogeom.errors import InputError
from cryogeom.metrics.kabsch import (
    centroid,
    kabsch,
    per_residue_distances,
    rmsd,
    rmsd_after_superposition,
    superpose,
)
from cryogeom.imaging.rotations import random_rotations


def _reference_kabsch(a, b):
    """Slow float64 reference: one explicit SVD for one pair [N, 3] -> (R, t, rmsd)."""
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    h = (a - ca).T @ (b - cb)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    t = cb - r @ ca
    moved = a @ r.T + t
    return r, t, np.sqrt(np.mean(np.sum((moved - b) ** 2, axis=1)))


def _cloud(rng, k, n=40, scale=8.0):
    """Anisotropic random clouds [k, n, 3] (Å), offset from the origin."""
    return rng.normal(size=(k, n, 3)) * np.array([scale, 0.7 * scale, 0.4 * scale]) + rng.normal(size=(k, 1, 3)) * 20


def test_kabsch_matches_explicit_svd_reference():
    rng = np.random.default_rng(0)
    a, b = _cloud(rng, 25), _cloud(rng, 25)
    rot, trans = kabsch(a, b)
    got_rmsd = rmsd_after_superposition(a, b)
    for k in range(25):
        r_ref, t_ref, rmsd_ref = _reference_kabsch(a[k], b[k])
        np.testing.assert_allclose(rot[k], r_ref, atol=1e-10)
        np.testing.assert_allclose(trans[k], t_ref, atol=1e-9)
        np.testing.assert_allclose(got_rmsd[k], rmsd_ref, rtol=1e-12)


def test_kabsch_matches_scipy_align_vectors():
    # An independent implementation: scipy's align_vectors(target, mobile) returns the rotation
    # mapping mobile onto target and the root-sum-square distance after it.
    rng = np.random.default_rng(1)
    a, b = _cloud(rng, 8), _cloud(rng, 8)
    rot, _ = kabsch(a, b)
    for k in range(8):
        ac, bc = a[k] - a[k].mean(0), b[k] - b[k].mean(0)
        r_sp, rssd = Rotation.align_vectors(bc, ac)
        np.testing.assert_allclose(rot[k], r_sp.as_matrix(), atol=1e-9)
        np.testing.assert_allclose(rmsd_after_superposition(a[k], b[k]), rssd / np.sqrt(len(ac)), rtol=1e-9)


def test_rmsd_matches_mdanalysis_qcp():
    from MDAnalysis.analysis.rms import rmsd as mda_rmsd

    rng = np.random.default_rng(2)
    a, b = _cloud(rng, 5, n=100), _cloud(rng, 5, n=100)
    for k in range(5):
        expected = mda_rmsd(a[k], b[k], center=True, superposition=True)
        np.testing.assert_allclose(rmsd_after_superposition(a[k], b[k]), expected, rtol=1e-8)


def test_kabsch_recovers_a_rigid_motion_exactly():
    rng = np.random.default_rng(3)
    a = _cloud(rng, 30)
    r_true = random_rotations(30, rng)
    t_true = rng.normal(size=(30, 3)) * 50
    b = a @ np.swapaxes(r_true, -1, -2) + t_true[:, None, :]
    rot, trans = kabsch(a, b)
    np.testing.assert_allclose(rot, r_true, atol=1e-10)
    np.testing.assert_allclose(trans, t_true, atol=1e-8)
    np.testing.assert_allclose(superpose(a, b), b, atol=1e-8)
    np.testing.assert_allclose(rmsd_after_superposition(a, b), 0.0, atol=1e-8)
    np.testing.assert_allclose(per_residue_distances(a, b), 0.0, atol=1e-8)


def test_rotation_is_always_proper_even_for_a_mirror_image():
    rng = np.random.default_rng(4)
    a = _cloud(rng, 20)
    mirrored = a * np.array([1.0, 1.0, -1.0]) + rng.normal(size=a.shape) * 0.05
    rot, _ = kabsch(a, mirrored)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    # The best *improper* orthogonal map (the mirror) would fit almost perfectly; a proper
    # rotation cannot, so the RMSD must stay large.
    got = rmsd_after_superposition(a, mirrored)
    assert np.all(got > 1.0)
    for k in range(5):
        ac, mc = a[k] - a[k].mean(0), mirrored[k] - mirrored[k].mean(0)
        u, _, vt = np.linalg.svd(ac.T @ mc)
        improper = vt.T @ u.T  # the unconstrained orthogonal Procrustes solution
        assert np.linalg.det(improper) < 0
        improper_rmsd = np.sqrt(np.mean(np.sum((ac @ improper.T - mc) ** 2, axis=1)))
        assert improper_rmsd < 0.2 < got[k]
        np.testing.assert_allclose(got[k], _reference_kabsch(a[k], mirrored[k])[2], rtol=1e-12)


def test_superposition_is_optimal_among_nearby_rotations():
    rng = np.random.default_rng(5)
    a, b = _cloud(rng, 1)[0], _cloud(rng, 1)[0]
    best = rmsd_after_superposition(a, b)
    moved = superpose(a, b)
    c = moved.mean(0)
    for r in Rotation.from_rotvec(rng.normal(size=(200, 3)) * 0.05).as_matrix():
        for shift in (np.zeros(3), rng.normal(size=3) * 0.1):
            other = (moved - c) @ r.T + c + shift
            assert rmsd(other, b) >= best - 1e-12


def test_rmsd_after_superposition_is_symmetric_and_rigid_invariant():
    rng = np.random.default_rng(6)
    a, b = _cloud(rng, 10), _cloud(rng, 10)
    base = rmsd_after_superposition(a, b)
    np.testing.assert_allclose(rmsd_after_superposition(b, a), base, rtol=1e-12)
    r = random_rotations(10, rng)
    moved = a @ np.swapaxes(r, -1, -2) + rng.normal(size=(10, 1, 3)) * 30
    np.testing.assert_allclose(rmsd_after_superposition(moved, b), base, rtol=1e-10)
    np.testing.assert_allclose(rmsd_after_superposition(a, moved), 0.0, atol=1e-8)


def test_per_residue_distances_locate_the_moved_residue():
    rng = np.random.default_rng(7)
    a = _cloud(rng, 1, n=200)[0]
    b = a.copy()
    b[17] += np.array([6.0, 0.0, 0.0])
    d = per_residue_distances(a, b)
    assert d.shape == (200,)
    assert np.argmax(d) == 17 and d[17] > 5.0
    assert np.max(np.delete(d, 17)) < 0.2  # the others barely move to accommodate one residue
    np.testing.assert_allclose(np.sqrt(np.mean(d**2)), rmsd_after_superposition(a, b), rtol=1e-12)


def test_one_structure_broadcasts_against_a_set():
    rng = np.random.default_rng(8)
    a, b = _cloud(rng, 1)[0], _cloud(rng, 6)
    got = rmsd_after_superposition(a, b)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, [_reference_kabsch(a, bk)[2] for bk in b], rtol=1e-12)
    assert per_residue_distances(a, b).shape == (6, 40)


def test_torch_tensors_are_accepted():
    import torch

    rng = np.random.default_rng(9)
    a, b = _cloud(rng, 3), _cloud(rng, 3)
    got = rmsd_after_superposition(torch.tensor(a, requires_grad=True), torch.tensor(b, dtype=torch.float32))
    np.testing.assert_allclose(got, rmsd_after_superposition(a, b.astype(np.float32)), rtol=1e-12)


def test_plain_rmsd_and_centroid():
    a = np.zeros((4, 3))
    b = np.zeros((4, 3))
    b[:, 0] = 2.0
    np.testing.assert_allclose(rmsd(a, b), 2.0)
    np.testing.assert_allclose(rmsd_after_superposition(a, b), 0.0, atol=1e-12)
    np.testing.assert_allclose(centroid(b), [2.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "a, b, fragment",
    [
        (np.zeros((5, 3)), np.zeros((6, 3)), "same residues"),
        (np.zeros((5, 2)), np.zeros((5, 2)), "[..., N, 3]"),
        (np.zeros((2, 5, 3)), np.zeros((3, 5, 3)), "broadcast"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "NaN"),
    ],
)
def test_bad_input_raises_one_line_input_error(a, b, fragment):
    with pytest.raises(InputError) as info, warnings.catch_warnings():
        warnings.simplefilter("error")
        rmsd_after_superposition(a, b)
    assert fragment in str(info.value) and "\n" not in str(info.value)
