import numpy as np
import pytest

from cryogeom.imaging.rotations import (
    axis_angle_to_matrix,
    euler_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
    random_rotations,
    relion_origin_from_shift,
    shift_from_relion_origin,
)


def _elementary(axis, deg):
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_euler_matches_passive_zyz_composition():
    # RELION's matrix is Rz(psi)^T Ry(tilt)^T Rz(rot)^T in active elementary rotations.
    rot, tilt, psi = 30.0, 50.0, -70.0
    expected = _elementary("z", psi).T @ _elementary("y", tilt).T @ _elementary("z", rot).T
    np.testing.assert_allclose(euler_to_matrix(rot, tilt, psi), expected, atol=1e-12)


def test_euler_matrices_are_proper_rotations():
    rng = np.random.default_rng(1)
    angles = rng.uniform(-180, 180, size=(3, 500))
    m = euler_to_matrix(*angles)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)


def test_euler_round_trip_matrix_angles_matrix():
    rng = np.random.default_rng(2)
    m = random_rotations(2000, rng)
    back = euler_to_matrix(*matrix_to_euler(m))
    np.testing.assert_allclose(back, m, atol=1e-10)


def test_euler_round_trip_angles_matrix_angles():
    rng = np.random.default_rng(3)
    rot = rng.uniform(-179, 179, 1000)
    tilt = rng.uniform(1, 179, 1000)
    psi = rng.uniform(-179, 179, 1000)
    r2, t2, p2 = matrix_to_euler(euler_to_matrix(rot, tilt, psi))
    np.testing.assert_allclose(r2, rot, atol=1e-8)
    np.testing.assert_allclose(t2, tilt, atol=1e-8)
    np.testing.assert_allclose(p2, psi, atol=1e-8)


@pytest.mark.parametrize("tilt", [0.0, 180.0])
def test_euler_round_trip_at_gimbal_lock(tilt):
    m = euler_to_matrix(40.0, tilt, 25.0)
    np.testing.assert_allclose(euler_to_matrix(*matrix_to_euler(m)), m, atol=1e-10)


def test_axis_angle_round_trip():
    m = random_rotations(500, 4)
    np.testing.assert_allclose(axis_angle_to_matrix(matrix_to_axis_angle(m)), m, atol=1e-10)


def test_uniform_so3_samples_have_zero_mean():
    # For the Haar measure E[R] = 0; the sample mean shrinks like 1/sqrt(n).
    m = random_rotations(100_000, 5)
    assert np.abs(m.mean(axis=0)).max() < 0.01
    # and the viewing direction (third row) is uniform on the sphere: E[d d^T] = I/3
    d = m[:, 2, :]
    np.testing.assert_allclose(d.T @ d / len(d), np.eye(3) / 3, atol=0.01)


def test_relion_origin_is_the_negated_shift():
    shift = shift_from_relion_origin(5.0, -2.0)
    np.testing.assert_allclose(shift, [-5.0, 2.0])
    ox, oy = relion_origin_from_shift(shift)
    assert (ox, oy) == (5.0, -2.0)
