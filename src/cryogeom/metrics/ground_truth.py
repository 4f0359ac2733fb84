"""The ground truth of simulated particles: ``ground_truth.npz`` written by ``cryogeom simulate``.

It holds, per particle, the frame it was simulated from (``frame`` [n]) and the Cα of every frame
(``ca`` [F, N, 3], Å), plus the poses and other per-particle records of the simulation, among them
``junk`` [n] (a particle whose image is not the protein at its written pose: it has no ground-truth
conformation and is left out of every score).
"""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError


def load_ground_truth(path) -> tuple[np.ndarray, np.ndarray]:
    """(frame [n] int, ca [F, N, 3] float64) from a ground_truth.npz written by ``cryogeom simulate``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            frame = np.asarray(data["frame"], dtype=np.int64)
            ca = np.asarray(data["ca"], dtype=np.float64)
    except FileNotFoundError:
        raise InputError(f"{path}: no such ground-truth file") from None
    except KeyError as exc:
        raise InputError(f"{path}: missing array {exc.args[0]!r} (expected 'frame' and 'ca' as written by cryogeom simulate)") from None
    except ValueError as exc:
        why = "not a NumPy .npz file" if "pickle" in str(exc) else str(exc)  # never advise unpickling
        raise InputError(f"{path}: not a ground-truth .npz file ({why})") from None
    if ca.ndim != 3 or ca.shape[-1] != 3:
        raise InputError(f"{path}: 'ca' must be [F, N, 3], got {ca.shape}")
    if frame.size and (frame.min() < 0 or frame.max() >= len(ca)):
        raise InputError(f"{path}: 'frame' refers to frames outside 0..{len(ca) - 1}")
    return frame, ca


def load_junk(path) -> np.ndarray | None:
    """``junk`` bool [n] of a ground_truth.npz (None where the file has no such record)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["junk"], dtype=bool).reshape(-1) if "junk" in data.files else None
    except (OSError, ValueError):
        return None  # load_ground_truth says what is wrong with the file


def true_particles(indices, junk: np.ndarray | None) -> np.ndarray:
    """``indices`` without the junk particles (all of them when ``junk`` is None)."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if junk is None:
        return indices
    inside = indices[indices < len(junk)]
    return indices[~np.isin(indices, inside[junk[inside]])]


def load_coordinates(path) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """(``coordinates`` [F, C] of every frame, their C names) of a ground_truth.npz made from a
    landscape with known coordinates (``cryogeom simulate --example adk-2d``); None where it has none."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "coordinates" not in data.files:
                return None
            coordinates = np.asarray(data["coordinates"], dtype=np.float64)
            names = tuple(str(n) for n in data["coordinate_names"]) if "coordinate_names" in data.files else ()
    except (OSError, ValueError):
        return None  # load_ground_truth says what is wrong with the file
    if coordinates.ndim != 2:
        raise InputError(f"{path}: 'coordinates' must be [F, C], got {coordinates.shape}")
    if len(names) != coordinates.shape[1]:
        names = tuple(f"coordinate {i + 1}" for i in range(coordinates.shape[1]))
    return coordinates, names
