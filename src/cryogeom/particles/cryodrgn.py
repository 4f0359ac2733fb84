"""cryoDRGN inputs: an image stack (.mrcs/.mrc, a .txt list of stacks, or a .star) plus
``pose.pkl`` and ``ctf.pkl``.

Formats (cryoDRGN ``commands/parse_pose_star.py``, ``parse_pose_csparc.py``,
``parse_ctf_csparc.py``, ``commands_utils/write_star.py``, ``utils.R_from_relion``; repository
ml-struct-bio/cryodrgn)
---------------------------------------------------------------------------------------------
* ``pose.pkl`` = ``(rot [n, 3, 3], trans [n, 2])`` (or ``rot`` alone: zero shifts).
  ``rot`` is ``utils.R_from_relion(rot, tilt, psi)``, which equals RELION's
  ``Euler_angles2matrix`` — **not transposed** — i.e. our ``R`` (checked numerically against
  :func:`~cryogeom.imaging.rotations.euler_to_matrix`). ``trans`` is RELION's origin in pixels
  divided by the box, same sign (``parse_pose_star``: ``trans = rlnOriginX/Y / D``; ``write_star``
  writes ``rlnOriginX/Y = trans × D``). So ``shift_angstrom = -trans × D × pixel_size``, D being
  the box of the image stack.
* ``ctf.pkl`` = float array [n, 9]: ``(D, Apix, defocus_u Å, defocus_v Å, angle deg, kV, Cs mm,
  amplitude contrast, phase shift deg)``.

Pickles are unpickled with :class:`SafeUnpickler`, which only rebuilds NumPy arrays, dtypes and
scalars, tuples and lists: a pickle that would call anything else (``os.system`` …) raises
:class:`InputError` before any of it runs.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from cryogeom.errors import InputError
from cryogeom.files import atomic_output
from cryogeom.imaging.rotations import shift_from_relion_origin
from cryogeom.particles.particle_set import ParticleSet
from cryogeom.particles.relion import read_star_images
from cryogeom.particles.stack import ImageStack

# (module, name) pairs a NumPy-array pickle needs (NumPy 1 and 2, pickle protocols 2-5).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol 2 stores bytes as encode(str, 'latin1')
    ("builtins", "tuple"),
    ("builtins", "list"),
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only reconstructs NumPy arrays/dtypes/scalars, tuples and lists."""

    def __init__(self, file, *, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise InputError(f"{self.source}: refused to unpickle {module}.{name}; expected only NumPy arrays (a cryoDRGN .pkl)")


def load_pickle(path: str | os.PathLike):
    """Unpickle ``path`` with :class:`SafeUnpickler` (arrays, tuples and lists only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with open(path, "rb") as fh:
            return SafeUnpickler(io.BufferedReader(fh), source=str(path)).load()
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt pickles raise many kinds of errors
        raise InputError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def _float_array(path: Path, value, shape_text: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise InputError(f"{path}: expected {shape_text} numbers, got an array of dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{path}: contains NaN or infinite values")
    return array


def load_poses(path: str | os.PathLike, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cryoDRGN ``pose.pkl`` → (rot [n, 3, 3], trans [n, 2] in fractions of the box)."""
    path = Path(path)
    value = load_pickle(path)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        rot, trans = value
    elif isinstance(value, (tuple, list)) and len(value) == 1:
        rot, trans = value[0], None
    elif isinstance(value, np.ndarray):
        rot, trans = value, None
    else:
        raise InputError(f"{path}: expected a cryoDRGN pose.pkl, a tuple (rot [n,3,3], trans [n,2])")
    rot = _float_array(path, rot, "rot [n,3,3]")
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise InputError(f"{path}: rotations have shape {rot.shape}; expected (n, 3, 3)")
    trans = np.zeros((len(rot), 2)) if trans is None else _float_array(path, trans, "trans [n,2]")
    if trans.shape != (len(rot), 2):
        raise InputError(f"{path}: translations have shape {trans.shape}; expected ({len(rot)}, 2)")
    if len(rot) != n:
        raise InputError(f"{path}: has poses for {len(rot)} particles but the image stack has {n}")
    orthogonality = np.abs(rot @ np.swapaxes(rot, 1, 2) - np.eye(3)).max(axis=(1, 2))
    if np.any(orthogonality > 1e-3) or np.any(np.linalg.det(rot) < 0):
        i = int(np.argmax((orthogonality > 1e-3) | (np.linalg.det(rot) < 0)))
        raise InputError(f"{path}: pose {i} is not a rotation matrix")
    return rot, trans


def load_ctf(path: str | os.PathLike, n: int) -> np.ndarray:
    """cryoDRGN ``ctf.pkl`` → float64 [n, 9] (D, Apix, dfu, dfv, dfang, kV, Cs, w, phase shift)."""
    path = Path(path)
    ctf = _float_array(path, load_pickle(path), "[n, 9]")
    if ctf.ndim != 2 or ctf.shape[1] != 9:
        raise InputError(f"{path}: CTF array has shape {ctf.shape}; expected (n, 9) (cryoDRGN ctf.pkl)")
    if len(ctf) != n:
        raise InputError(f"{path}: has CTF parameters for {len(ctf)} particles but the image stack has {n}")
    return ctf


def _dump_atomically(path: Path, value) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(value, fh, protocol=4)


def write_poses(path: str | os.PathLike, rot: np.ndarray, trans: np.ndarray) -> None:
    """Write a cryoDRGN ``pose.pkl``: ``(rot [n, 3, 3], trans [n, 2] in fractions of the box)``."""
    rot, trans = np.asarray(rot, dtype=np.float64), np.asarray(trans, dtype=np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3) or trans.shape != (len(rot), 2):
        raise ValueError(f"expected rot [n, 3, 3] and trans [n, 2], got {rot.shape} and {trans.shape}")
    _dump_atomically(Path(path), (rot, trans))


def write_ctf(path: str | os.PathLike, ctf: np.ndarray) -> None:
    """Write a cryoDRGN ``ctf.pkl``: float [n, 9] (D, Apix, dfu, dfv, dfang, kV, Cs, w, phase shift)."""
    ctf = np.asarray(ctf, dtype=np.float64)
    if ctf.ndim != 2 or ctf.shape[1] != 9:
        raise ValueError(f"expected a CTF array [n, 9], got {ctf.shape}")
    _dump_atomically(Path(path), ctf)


def read_stack_list(path: Path) -> list[Path]:
    """A cryoDRGN .txt file: one stack path per line, relative to the .txt's directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; expected a list of image stack paths, one per line") from None
    if "\x00" in text:
        raise InputError(f"{path}: not a text file; expected a list of image stack paths, one per line")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: lists no image stacks")
    return [Path(p) if Path(p).is_absolute() else path.resolve().parent / p for p in lines]


def read_cryodrgn(
    path: str | os.PathLike,
    *,
    poses: str | os.PathLike,
    ctf: str | os.PathLike,
    datadir: str | os.PathLike | None = None,
    pixel_size_angstrom: float | None = None,
) -> ParticleSet:
    """Read cryoDRGN inputs: images (``.mrcs``/``.mrc``, ``.txt`` list, ``.star``) + pose/ctf pickles.

    ``pixel_size_angstrom`` overrides the ``Apix`` column of ``ctf.pkl``. Conventions: see the
    module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    optics = None
    if path.suffix == ".star":
        images, table, optics = read_star_images(path, datadir=datadir)
    elif path.suffix == ".txt":
        images = ImageStack.from_stack_files(read_stack_list(path))
        table = None
    else:
        images = ImageStack.from_stack_files([path])
        table = None
    n = len(images)
    rot, trans = load_poses(poses, n)
    params = load_ctf(ctf, n)
    if np.any(params[:, 0] != images.box):
        raise InputError(f"{ctf}: says box D = {params[0, 0]:g} but the images are {images.box} pixels")
    if pixel_size_angstrom is not None:
        if not pixel_size_angstrom > 0:
            raise InputError(f"pixel_size_angstrom: expected a positive number, got {pixel_size_angstrom}")
        pixel = np.full(n, float(pixel_size_angstrom))
    else:
        pixel = params[:, 1]
    origin_px = trans * images.box
    shifts = shift_from_relion_origin(origin_px[:, 0] * pixel, origin_px[:, 1] * pixel)
    if table is None:
        table = pd.DataFrame(
            {
                "stack": pd.Categorical.from_codes(images.file_index, [str(h.path) for h in images.files.headers]),
                "frame": images.frame + 1,
            }
        )
    return ParticleSet(
        images=images,
        rotations=rot,
        shifts_angstrom=shifts,
        defocus_u_angstrom=params[:, 2],
        defocus_v_angstrom=params[:, 3],
        astigmatism_angle_deg=params[:, 4],
        voltage_kv=params[:, 5],
        cs_mm=params[:, 6],
        amplitude_contrast=params[:, 7],
        phase_shift_deg=params[:, 8],
        pixel_size_angstrom=pixel,
        table=table,
        source_path=path,
        optics_table=optics,
    )
