import itertools
import time
import warnings

import numpy as np
import pytest

from cryogeom.errors import InputError
from cryogeom.metrics import rmsd_matrix as rmsd_matrix_module
from cryogeom.metrics.baselines import baseline_scores, mean_structure
from cryogeom.metrics.emd import emd_assignment, emd_rmsd, mean_rmsd
from cryogeom.metrics.kabsch import superpose
from cryogeom.metrics.rmsd_matrix import rmsd_matrix
from cryogeom.imaging.rotations import random_rotations


def _reference_rmsd(a, b):
    """Slow float64 reference for one pair [N, 3]: explicit SVD, sign correction, moved coordinates."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return np.sqrt(np.mean(np.sum((a @ r.T - b) ** 2, axis=1)))


def _reference_matrix(a, b):
    return np.array([[_reference_rmsd(x, y) for y in b] for x in a])


def _rigidly_moved(x, rng):
    """Each conformation [K, N, 3] rotated by its own random proper rotation and translated."""
    r = random_rotations(len(x), rng)
    return x @ np.swapaxes(r, -1, -2) + rng.normal(size=(len(x), 1, 3)) * 40


@pytest.fixture(scope="module")
def adk_path():
    """Cα coordinates [102, 214, 3] (Å) of the ADK closed→open path (MDAnalysisTests PSF + DCD2)."""
    import MDAnalysis as mda
    from MDAnalysisTests.datafiles import DCD2, PSF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(PSF, DCD2)
        ca = u.select_atoms("name CA")
        return np.array([ca.positions.astype(np.float64) for _ in u.trajectory])


def _hinge_set(rng, k, n=60):
    """A protein-like family [k, n, 3]: a random chain whose second half swings about a hinge."""
    steps = rng.normal(size=(n, 3))
    chain = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    chain -= chain.mean(0)
    out = np.empty((k, n, 3))
    for i, angle in enumerate(rng.uniform(0, 1.2, size=k)):
        c, s = np.cos(angle), np.sin(angle)
        r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        pivot = chain[n // 2]
        out[i] = chain
        out[i, n // 2 :] = (chain[n // 2 :] - pivot) @ r.T + pivot
    return out + rng.normal(size=out.shape) * 0.3


# --- rmsd_matrix against the per-pair reference -------------------------------------------------


def test_rmsd_matrix_equals_per_pair_svd_reference_on_adk(adk_path):
    a, b = adk_path[::5], adk_path[2::7]
    np.testing.assert_allclose(rmsd_matrix(a, b), _reference_matrix(a, b), atol=1e-9)


def test_rmsd_matrix_equals_reference_across_blocks_and_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(23, 30, 3)) * [9.0, 6.0, 3.0]
    b = rng.normal(size=(41, 30, 3)) * [9.0, 6.0, 3.0] + 5.0
    expected = _reference_matrix(a, b)
    np.testing.assert_allclose(rmsd_matrix(a, b), expected, atol=1e-10)
    # Small blocks and small elementwise chunks: every row must land in its own place.
    monkeypatch.setattr(rmsd_matrix_module, "_PAIRS_PER_ELEMENTWISE_CHUNK", 50)
    np.testing.assert_allclose(rmsd_matrix(a, b, pairs_per_block=100), expected, atol=1e-10)


def test_rmsd_matrix_handles_mirror_images_with_proper_rotations():
    # Pairs whose best orthogonal map is a reflection: det H < 0, the sign correction decides.
    rng = np.random.default_rng(1)
    a = _hinge_set(rng, 12)
    b = _rigidly_moved(a * np.array([1.0, -1.0, 1.0]), rng)
    got = rmsd_matrix(a, b)
    np.testing.assert_allclose(got, _reference_matrix(a, b), atol=1e-9)
    assert np.all(np.diag(got) > 1.0)  # a mirror image is not superposable onto its original


@pytest.mark.parametrize("kind", ["planar", "linear", "nearly_linear", "isotropic"])
def test_rmsd_matrix_on_degenerate_clouds(kind):
    # Repeated or vanishing singular values of H: where the closed form is ill-conditioned and
    # must hand over to an SVD. The second set holds rotated copies of the first (zero RMSD pairs).
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 50, 3)) * 10
    if kind == "planar":
        x[..., 2] = 0.0
    elif kind == "linear":
        x[..., 1:] = x[..., :1] * np.array([0.5, -2.0])
    elif kind == "nearly_linear":
        x[..., 1:] = x[..., :1] * np.array([0.5, -2.0]) + rng.normal(size=(20, 50, 2)) * 1e-3
    else:  # regular octahedra (H ∝ a rotation: all singular values equal), half of them perturbed
        octa = np.concatenate([np.eye(3), -np.eye(3)]) * 10
        x = np.concatenate([octa @ r.T for r in random_rotations(20, rng)]).reshape(20, 6, 3)
        x[10:] += rng.normal(size=x[10:].shape) * 0.5
    y = _rigidly_moved(x[::-1], rng)
    np.testing.assert_allclose(rmsd_matrix(x, y), _reference_matrix(x, y), atol=1e-5)


def test_rmsd_matrix_of_a_set_with_itself_has_zero_diagonal(adk_path):
    m = rmsd_matrix(adk_path, adk_path)
    np.testing.assert_allclose(np.diag(m), 0.0, atol=1e-5)
    np.testing.assert_allclose(m, m.T, atol=1e-8)
    assert np.all(m >= 0)


# --- EMD-RMSD -----------------------------------------------------------------------------------


def test_emd_rmsd_of_a_set_with_itself_is_zero(adk_path):
    assert emd_rmsd(adk_path, adk_path) == pytest.approx(0.0, abs=1e-5)


def test_emd_rmsd_of_a_rigidly_moved_permuted_copy_is_zero():
    rng = np.random.default_rng(3)
    truth = _hinge_set(rng, 40)
    perm = rng.permutation(40)
    pred = _rigidly_moved(truth[perm], rng)
    result = emd_assignment(pred, truth)
    assert result.emd_rmsd_angstrom == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_array_equal(result.truth_index, perm)
    assert mean_rmsd(pred, truth) > 0.5  # the identity pairing is wrong here


def test_known_assignment_of_three_conformations():
    # Three very different truths; each prediction is a slightly perturbed copy of another one,
    # so the optimal pairing is the cyclic permutation (not the identity), and its cost is the
    # mean of the three perturbation RMSDs.
    rng = np.random.default_rng(4)
    truth = np.stack(
        [
            rng.normal(size=(30, 3)) * [10.0, 4.0, 2.0],
            rng.normal(size=(30, 3)) * [3.0, 9.0, 5.0],
            rng.normal(size=(30, 3)) * [6.0, 6.0, 6.0],
        ]
    )
    perm = np.array([2, 0, 1])
    noise = np.array([0.2, 0.5, 0.8])[:, None, None] * rng.normal(size=(3, 30, 3))
    pred = _rigidly_moved(truth[perm] + noise, rng)
    result = emd_assignment(pred, truth)
    np.testing.assert_array_equal(result.truth_index, perm)
    expected_pairs = [_reference_rmsd(pred[i], truth[perm[i]]) for i in range(3)]
    np.testing.assert_allclose(result.pair_rmsd_angstrom, expected_pairs, rtol=1e-9)
    assert result.emd_rmsd_angstrom == pytest.approx(np.mean(expected_pairs), rel=1e-9)
    assert result.emd_rmsd_angstrom < mean_rmsd(pred, truth)


def test_emd_rmsd_equals_brute_force_over_all_pairings():
    # Two samples of one hinge motion: no obvious pairing, several of similar cost.
    both = _hinge_set(np.random.default_rng(5), 14)
    pred, truth = both[:7], both[7:]
    cost = _reference_matrix(pred, truth)
    best = min(np.mean(cost[np.arange(7), list(p)]) for p in itertools.permutations(range(7)))
    assert emd_rmsd(pred, truth) == pytest.approx(best, rel=1e-9)


def test_emd_rmsd_is_at_most_mean_rmsd_and_order_invariant():
    rng = np.random.default_rng(7)
    truth = _hinge_set(rng, 30)
    pred = truth + rng.normal(size=truth.shape) * 1.5
    emd = emd_rmsd(pred, truth)
    assert emd <= mean_rmsd(pred, truth) + 1e-12
    assert emd_rmsd(pred[::-1], truth[rng.permutation(30)]) == pytest.approx(emd, rel=1e-10)


def test_mean_rmsd_pairs_each_prediction_with_its_own_truth():
    rng = np.random.default_rng(8)
    truth = _hinge_set(rng, 5)
    pred = _rigidly_moved(truth + rng.normal(size=truth.shape), rng)
    expected = np.mean([_reference_rmsd(p, t) for p, t in zip(pred, truth)])
    assert mean_rmsd(pred, truth) == pytest.approx(expected, rel=1e-12)


# --- baselines ----------------------------------------------------------------------------------


def test_a_constant_prediction_has_emd_rmsd_equal_to_its_mean_rmsd():
    rng = np.random.default_rng(9)
    truth = _hinge_set(rng, 25)
    constant = truth[3] + rng.normal(size=truth[3].shape)
    pred = np.broadcast_to(constant, truth.shape)
    assert emd_rmsd(pred, truth) == pytest.approx(mean_rmsd(constant, truth), rel=1e-9)


def test_mean_structure_is_a_least_squares_centre_of_the_set():
    rng = np.random.default_rng(10)
    truth = _rigidly_moved(_hinge_set(rng, 30), rng)  # arbitrary poses: alignment is needed
    mean = mean_structure(truth)
    np.testing.assert_allclose(mean.mean(axis=0), 0.0, atol=1e-9)

    def sum_sq(x):
        return np.sum(rmsd_matrix(x[None], truth) ** 2)

    best = sum_sq(mean)
    # Better than averaging after one alignment to the first conformation, and than any member.
    one_pass = superpose(truth, truth[0]).mean(axis=0)
    assert best < sum_sq(one_pass)
    assert best < min(sum_sq(t) for t in truth)
    # A stationary point: small perturbations do not improve it.
    for _ in range(20):
        assert sum_sq(mean + rng.normal(size=mean.shape) * 0.05) > best
    # The procedure does not depend on the poses of the inputs.
    again = mean_structure(_rigidly_moved(truth, rng))
    assert mean_rmsd(again, truth) == pytest.approx(mean_rmsd(mean, truth), abs=1e-6)


def test_adk_baselines_match_design_notes(adk_path):
    # DESIGN.md "Results to beat": base (frame 0) 4.47 Å, mean structure 2.19 Å on PSF + DCD2.
    scores = baseline_scores(adk_path, adk_path[0])
    assert scores.base_structure_angstrom == pytest.approx(4.47, abs=0.01)
    assert scores.mean_structure_angstrom == pytest.approx(2.19, abs=0.01)
    assert scores.base_structure_angstrom == pytest.approx(
        emd_rmsd(np.broadcast_to(adk_path[0], adk_path.shape), adk_path), rel=1e-9
    )


# --- input checks and speed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred, truth, fragment",
    [
        (np.zeros((3, 5, 3)), np.zeros((4, 5, 3)), "same number K"),
        (np.zeros((3, 5, 3)), np.zeros((3, 6, 3)), "same number K"),
        (np.zeros((5, 3)), np.zeros((5, 3)), "[K, N, 3]"),
        (np.zeros((0, 5, 3)), np.zeros((0, 5, 3)), "empty"),
    ],
)
def test_emd_rmsd_bad_input_raises_input_error(pred, truth, fragment):
    with pytest.raises(InputError) as info:
        emd_rmsd(pred, truth)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_rmsd_matrix_bad_input_raises_input_error():
    with pytest.raises(InputError, match="same residues"):
        rmsd_matrix(np.zeros((2, 5, 3)), np.zeros((2, 6, 3)))
    with pytest.raises(InputError, match=r"\[K, N, 3\]"):
        rmsd_matrix(np.zeros((5, 3)), np.zeros((2, 5, 3)))
    with pytest.raises(InputError, match="baseline|base"):
        baseline_scores(np.zeros((2, 5, 3)), np.zeros((2, 5, 3)))


def _timed_emd(k, n, rng):
    truth = _hinge_set(rng, k, n)
    pred = truth + rng.normal(size=truth.shape)
    t0 = time.perf_counter()
    value = emd_rmsd(pred, truth)
    return time.perf_counter() - t0, value


def test_emd_rmsd_speed_k1000_n214():
    # 1/16 of the paper's K = 4000 problem; ~0.5 s on two quiet cores. Generous for loaded CI.
    seconds, value = _timed_emd(1000, 214, np.random.default_rng(11))
    assert np.isfinite(value)
    assert seconds < 20.0


@pytest.mark.slow
def test_emd_rmsd_speed_k4000_n214():
    # The paper's evaluation size; a few seconds on two quiet cores.
    seconds, value = _timed_emd(4000, 214, np.random.default_rng(12))
    assert np.isfinite(value)
    assert seconds < 120.0
