"""Kabsch-Umeyama superposition of Cα clouds and the RMSD after superposition (paper App. G).

Two conformations of the same protein are compared after removing the rigid motion between
them: the proper rotation ``R`` (det R = +1) and translation ``t`` that minimise
``Σ_i ‖R a_i + t − b_i‖²`` (Kabsch 1976; Umeyama 1991, without scaling). With both clouds
centred on their centroids, ``H = Σ_i a_i b_iᵀ = U S Vᵀ`` (SVD) and ``R = V diag(1, 1, d) Uᵀ``
with ``d = det(V Uᵀ) = ±1``. The sign ``d`` is what keeps ``R`` a rotation: when the best
orthogonal map is a reflection (a mirrored input), the smallest singular direction is flipped
instead, so a mirror image is never "superposed" onto its original.

Convention: ``superposed = mobile @ rotation.T + translation`` lands on ``target``; rotations
act on column vectors, as in :mod:`cryogeom.imaging.rotations`.

Coordinates are float64 NumPy arrays ``[..., N, 3]`` in Å; any leading batch shape is allowed and
the leading shapes of the two inputs broadcast (so one structure can be compared with a whole
set). Everything here is batched (one LAPACK 3×3 SVD per pair); for all K×K pairs of two sets use
:func:`cryogeom.metrics.rmsd_matrix.rmsd_matrix`, which never forms the rotations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cryogeom.errors import InputError


class Superposition(NamedTuple):
    """The rigid motion that superposes ``mobile`` onto ``target``.

    ``rotation`` [..., 3, 3] is a proper rotation, ``translation_angstrom`` [..., 3];
    ``mobile @ rotation.T + translation_angstrom`` is the superposed ``mobile``.
    """

    rotation: np.ndarray
    translation_angstrom: np.ndarray


def as_coordinates(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 array [..., N, 3] with N >= 1, or :class:`InputError` naming ``name``.

    Accepts anything array-like, including torch tensors on any device (detached, copied to the host).
    """
    if hasattr(x, "detach"):  # a torch tensor, possibly on an accelerator or requiring grad
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected Cα coordinates [..., N, 3] in Å, got unconvertible data ({exc})") from None
    if arr.ndim < 2 or arr.shape[-1] != 3 or arr.shape[-2] < 1:
        raise InputError(f"{name}: expected Cα coordinates of shape [..., N, 3] with N >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: coordinates contain NaN or infinite values")
    return arr


def _as_pair(a, b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    a = as_coordinates(a, name_a)
    b = as_coordinates(b, name_b)
    if a.shape[-2] != b.shape[-2]:
        raise InputError(
            f"{name_a} has {a.shape[-2]} residues but {name_b} has {b.shape[-2]}: both must hold the same residues"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise InputError(
            f"{name_a} {a.shape} and {name_b} {b.shape}: leading (batch) shapes do not broadcast"
        ) from None
    return a, b


def centroid(coords) -> np.ndarray:
    """Centroid [..., 3] of Cα clouds [..., N, 3] (unweighted mean over residues)."""
    return as_coordinates(coords, "coords").mean(axis=-2)


def _kabsch_centred(a_centred: np.ndarray, b_centred: np.ndarray) -> np.ndarray:
    """Proper rotation [..., 3, 3] minimising ‖R a − b‖ for centred clouds [..., N, 3]."""
    h = np.swapaxes(a_centred, -1, -2) @ b_centred  # [..., 3, 3], H = Σ a_i b_iᵀ
    u, _, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    ut = np.swapaxes(u, -1, -2)
    # det(V Uᵀ) is exactly ±1 (U and V are orthogonal); rounding cannot give 0.
    d = np.where(np.linalg.det(v) * np.linalg.det(ut) < 0, -1.0, 1.0)
    v = v.copy()
    v[..., :, 2] *= d[..., None]
    return v @ ut


def kabsch(mobile, target) -> Superposition:
    """The proper rigid motion that best superposes ``mobile`` [..., N, 3] onto ``target`` [..., N, 3] (Å).

    Least squares over all residues (equal weights). Returns :class:`Superposition` with
    ``rotation`` [..., 3, 3] (det = +1) and ``translation_angstrom`` [..., 3] such that
    ``mobile @ rotation.T + translation_angstrom`` is the superposed ``mobile``.
    """
    a, b = _as_pair(mobile, target, "mobile", "target")
    ca, cb = a.mean(axis=-2, keepdims=True), b.mean(axis=-2, keepdims=True)
    rotation = _kabsch_centred(a - ca, b - cb)
    translation = cb[..., 0, :] - (rotation @ ca[..., 0, :, None])[..., 0]
    return Superposition(rotation, translation)


def _superpose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ca, cb = a.mean(axis=-2, keepdims=True), b.mean(axis=-2, keepdims=True)
    rotation = _kabsch_centred(a - ca, b - cb)
    return (a - ca) @ np.swapaxes(rotation, -1, -2) + cb


def superpose(mobile, target) -> np.ndarray:
    """``mobile`` [..., N, 3] moved rigidly (proper rotation + translation) onto ``target`` [..., N, 3]."""
    return _superpose(*_as_pair(mobile, target, "mobile", "target"))


def rmsd(a, b) -> np.ndarray:
    """Plain RMSD [...] (Å) of [..., N, 3] clouds as given, without superposition (paper App. G)."""
    a, b = _as_pair(a, b, "a", "b")
    return np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1), axis=-1))


def per_residue_distances(a, b) -> np.ndarray:
    """Distance [..., N] (Å) of each residue of ``a`` to its partner in ``b`` after superposing ``a`` onto ``b``.

    The per-residue error of the paper's Figures 2-3; its root mean square over residues is
    :func:`rmsd_after_superposition`.
    """
    a, b = _as_pair(a, b, "a", "b")
    return np.linalg.norm(_superpose(a, b) - b, axis=-1)


def rmsd_after_superposition(a, b) -> np.ndarray:
    """RMSD [...] (Å) of [..., N, 3] clouds after optimal proper superposition (Kabsch; paper App. G).

    Symmetric in ``a`` and ``b`` and invariant to a rigid motion of either.
    """
    d = per_residue_distances(a, b)
    return np.sqrt(np.mean(d**2, axis=-1))
