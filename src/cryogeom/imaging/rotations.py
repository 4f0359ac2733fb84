"""Poses: RELION ZYZ Euler angles, rotation matrices and uniform sampling of SO(3).

The convention, fixed here once for the whole package
------------------------------------------------------
* ``R = euler_to_matrix(rot, tilt, psi)`` is RELION's ``Euler_angles2matrix`` (ZYZ, angles in
  degrees, the Heymann-Chagoyen-Belnap 2005 standard used by RELION, XMIPP, SPIDER, FREALIGN).
* **R moves the atoms**: a point ``r`` of the structure (Å, in the structure's frame, about the
  rotation centre) appears at ``r' = R @ r`` in the microscope frame. The image is the projection
  of the moved atoms along z: image x = ``r'[0]``, image y = ``r'[1]`` (paper eq. 2). This is
  RELION's meaning: the projection of a map V at (rot, tilt, psi) is ``∫ V(Rᵀ (x, y, z)) dz``.
* In-plane shifts: ``shift_angstrom = (dx, dy)`` is where the rotation centre lands in the image,
  relative to the image centre (see :mod:`cryogeom.imaging.grid`): ``p' = R p + (dx, dy, 0)``.
  RELION's ``rlnOriginXAngst/YAngst`` is the shift that *re-centres* the particle, so
  ``shift_angstrom = -(rlnOriginXAngst, rlnOriginYAngst)``; use :func:`shift_from_relion_origin`
  and :func:`relion_origin_from_shift`, never the sign by hand.

Functions take and return NumPy arrays in float64 (poses are metadata; the network receives them
as tensors). Any leading batch shape is allowed. :func:`pose_points` applies a pose to points
(torch, differentiable): the one implementation of eq. 2 for the renderer and the simulator.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

_EPS = 16 * np.finfo(np.float32).eps


def euler_to_matrix(rot_deg, tilt_deg, psi_deg) -> np.ndarray:
    """RELION ZYZ Euler angles (degrees, broadcastable) -> rotation matrices [..., 3, 3].

    Equals RELION's ``Euler_angles2matrix(rot, tilt, psi)``.
    """
    a, b, g = (np.deg2rad(np.asarray(x, dtype=np.float64)) for x in (rot_deg, tilt_deg, psi_deg))
    a, b, g = np.broadcast_arrays(a, b, g)
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    m = np.empty(a.shape + (3, 3))
    m[..., 0, 0] = cg * cc - sg * sa
    m[..., 0, 1] = cg * cs + sg * ca
    m[..., 0, 2] = -cg * sb
    m[..., 1, 0] = -sg * cc - cg * sa
    m[..., 1, 1] = -sg * cs + cg * ca
    m[..., 1, 2] = sg * sb
    m[..., 2, 0] = sc
    m[..., 2, 1] = ss
    m[..., 2, 2] = cb
    return m


def matrix_to_euler(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation matrices [..., 3, 3] -> RELION (rot, tilt, psi) in degrees, tilt in [0, 180].

    Inverse of :func:`euler_to_matrix` (RELION's ``Euler_matrix2angles``); at tilt = 0 or 180
    the split between rot and psi is not unique and rot is set to 0.
    """
    m = np.asarray(matrix, dtype=np.float64)
    abs_sb = np.sqrt(m[..., 0, 2] ** 2 + m[..., 1, 2] ** 2)
    regular = abs_sb > _EPS
    psi = np.where(regular, np.arctan2(m[..., 1, 2], -m[..., 0, 2]), 0.0)
    rot = np.where(regular, np.arctan2(m[..., 2, 1], m[..., 2, 0]), 0.0)
    tilt = np.arctan2(abs_sb, m[..., 2, 2])  # abs_sb >= 0 puts tilt in [0, pi]
    # Degenerate tilt: only rot + psi (tilt = 0) or psi - rot (tilt = pi) is defined.
    up = m[..., 2, 2] > 0
    psi_deg = np.where(up, np.arctan2(-m[..., 1, 0], m[..., 0, 0]), np.arctan2(m[..., 1, 0], -m[..., 0, 0]))
    psi = np.where(regular, psi, psi_deg)
    tilt = np.where(regular, tilt, np.where(up, 0.0, np.pi))
    return np.rad2deg(rot), np.rad2deg(tilt), np.rad2deg(psi)


def random_rotations(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``n`` rotation matrices [n, 3, 3] drawn uniformly (Haar measure) from SO(3)."""
    rng = np.random.default_rng(rng)
    return Rotation.random(n, random_state=rng).as_matrix().reshape(n, 3, 3)


def axis_angle_to_matrix(rotvec) -> np.ndarray:
    """Axis-angle vectors [..., 3] (radians; cryoSPARC's ``alignments3D/pose``) -> matrices."""
    v = np.asarray(rotvec, dtype=np.float64)
    flat = Rotation.from_rotvec(v.reshape(-1, 3)).as_matrix()
    return flat.reshape(v.shape[:-1] + (3, 3))


def matrix_to_axis_angle(matrix) -> np.ndarray:
    """Rotation matrices [..., 3, 3] -> axis-angle vectors [..., 3] in radians."""
    m = np.asarray(matrix, dtype=np.float64)
    flat = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_rotvec()
    return flat.reshape(m.shape[:-2] + (3,))


def shift_from_relion_origin(origin_x_angstrom, origin_y_angstrom) -> np.ndarray:
    """RELION ``rlnOriginX/YAngst`` -> ``shift_angstrom`` [..., 2] (where the centre lands)."""
    ox, oy = np.broadcast_arrays(np.asarray(origin_x_angstrom, float), np.asarray(origin_y_angstrom, float))
    return -np.stack([ox, oy], axis=-1)


def relion_origin_from_shift(shift_angstrom) -> tuple[np.ndarray, np.ndarray]:
    """``shift_angstrom`` [..., 2] -> RELION (rlnOriginXAngst, rlnOriginYAngst)."""
    s = np.asarray(shift_angstrom, dtype=np.float64)
    return -s[..., 0], -s[..., 1]


def pose_points(points_angstrom: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor) -> torch.Tensor:
    """Image-plane positions [B, M, 2] (Å; x, y) of points [B, M, 3] (or one set for every pose,
    [M, 3]) at poses ``rotations`` [B, 3, 3] and ``shifts_angstrom`` [B, 2]: ``p' = R p + (dx, dy, 0)``
    projected along z (paper eq. 2). The points are in the structure's frame, about the rotation centre.
    """
    if points_angstrom.dim() == 2:
        points_angstrom = points_angstrom.expand(len(rotations), -1, -1)
    dtype = points_angstrom.dtype
    return torch.baddbmm(shifts_angstrom.to(dtype).unsqueeze(1), points_angstrom, rotations[:, :2, :].to(dtype).transpose(1, 2))
