"""cryoSPARC particle files (.cs): a NumPy structured array, one record per particle.

Fields read
-----------
``blob/path`` (stack path, bytes; a leading ``>`` is stripped; relative to the cryoSPARC project
directory — pass it as ``datadir`` — else to the .cs's directory), ``blob/idx`` (0-based frame),
``blob/shape`` (checked against the stack), ``blob/psize_A`` (Å), ``alignments3D/pose``
(axis-angle, radians), ``alignments3D/shift`` (pixels), ``alignments3D/psize_A`` (optional: the
pixel size the shift is measured in; default ``blob/psize_A``), ``ctf/df1_A``, ``ctf/df2_A``,
``ctf/df_angle_rad``, ``ctf/accel_kv``, ``ctf/cs_mm``, ``ctf/amp_contrast``,
``ctf/phase_shift_rad`` (optional, default 0).

Conventions (from cryoDRGN's ``commands/parse_pose_csparc.py`` and ``source.py`` — CsSource,
ml-struct-bio/cryodrgn; the shift sign agrees with pyem's ``metadata/cryosparc2.py``, which copies
``alignments3D/shift`` to ``rlnOriginX/Y`` unchanged)
---------------------------------------------------------------------------------------------
* Rotation: cryoDRGN computes ``expmap(pose)`` (Rodrigues, the same matrix as
  ``scipy Rotation.from_rotvec``) and **transposes** it to get RELION's
  ``Euler_angles2matrix``. So ``R = axis_angle_to_matrix(pose).T``: cryoSPARC's matrix maps the
  microscope frame back to the map's frame.
* Shift: cryoDRGN's pose.pkl stores ``alignments3D/shift / D`` in the same slot (and with the same
  sign) as ``rlnOriginX / D`` from a .star. So ``alignments3D/shift`` (pixels) is RELION's origin
  in pixels, and ``shift_angstrom = -alignments3D/shift × alignments3D/psize_A``.
* CTF: ``df1_A`` is defocus U, ``df2_A`` defocus V, angles in radians (converted to degrees).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryogeom.errors import InputError
from cryogeom.imaging.rotations import axis_angle_to_matrix, shift_from_relion_origin
from cryogeom.particles.particle_set import ParticleSet
from cryogeom.particles.stack import ImageStack, StackPathResolver

REQUIRED_FIELDS = (
    "blob/path",
    "blob/idx",
    "alignments3D/pose",
    "alignments3D/shift",
    "ctf/df1_A",
    "ctf/df2_A",
    "ctf/df_angle_rad",
    "ctf/accel_kv",
    "ctf/cs_mm",
    "ctf/amp_contrast",
)


def load_cs(path: str | os.PathLike) -> np.ndarray:
    """The structured array of a .cs file (read with ``allow_pickle=False``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        why = "not a NumPy array file" if "pickle" in str(exc) else str(exc)  # never advise unpickling
        raise InputError(f"{path}: not a readable cryoSPARC .cs file ({why})") from None
    if not isinstance(data, np.ndarray) or data.dtype.names is None or data.ndim != 1:
        raise InputError(f"{path}: expected a cryoSPARC .cs file (a 1-D NumPy structured array)")
    if len(data) == 0:
        raise InputError(f"{path}: has no particles")
    return data


def cs_table(data: np.ndarray) -> pd.DataFrame:
    """The .cs records as a DataFrame: scalar fields as columns, vector fields as ``name[i]``."""
    columns: dict[str, np.ndarray] = {}
    for name in data.dtype.names:
        values = data[name]
        if values.dtype.kind == "S":
            columns[name] = np.char.decode(values, "utf-8", errors="replace")
        elif values.ndim == 1:
            columns[name] = values
        else:
            flat = values.reshape(len(values), -1)
            for i in range(flat.shape[1]):
                columns[f"{name}[{i}]"] = flat[:, i]
    return pd.DataFrame(columns)


def _field(path: Path, data: np.ndarray, name: str, width: int | None = None) -> np.ndarray:
    if name not in data.dtype.names:
        raise InputError(f"{path}: has no field {name}")
    try:
        values = np.asarray(data[name], dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(f"{path}: field {name} holds {data.dtype[name]} values; expected numbers") from None
    expected = (len(data),) if width is None else (len(data), width)
    if values.shape != expected:
        raise InputError(f"{path}: field {name} has shape {values.shape}; expected {expected}")
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(data), -1)).all(axis=1))
    if len(bad):
        raise InputError(f"{path}: record {bad[0]}: field {name} is not finite")
    return values


def read_cryosparc(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    pixel_size_angstrom: float | None = None,
) -> ParticleSet:
    """Read a cryoSPARC .cs particle file (poses from ``alignments3D``) and its stacks, lazily.

    ``datadir`` is the cryoSPARC project directory the ``blob/path`` values are relative to;
    ``pixel_size_angstrom`` overrides ``blob/psize_A``. Conventions: see the module docstring.
    """
    path = Path(path)
    data = load_cs(path)
    for name in REQUIRED_FIELDS:
        if name not in data.dtype.names:
            raise InputError(f"{path}: has no field {name}")
    n = len(data)

    codes, raw_names = pd.factorize(np.asarray(data["blob/path"]))
    try:
        names = [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in raw_names]
    except UnicodeDecodeError:
        raise InputError(f"{path}: field blob/path holds a path that is not UTF-8 text") from None
    names = [p[1:] if p.startswith(">") else p for p in names]
    frames = _field(path, data, "blob/idx")
    if np.any(frames < 0) or np.any(frames != np.round(frames)):
        i = int(np.flatnonzero((frames < 0) | (frames != np.round(frames)))[0])
        raise InputError(f"{path}: record {i}: field blob/idx is {frames[i]:g}; expected an image index >= 0")
    frames = frames.astype(np.int64)
    resolve = StackPathResolver(path, datadir)
    images = ImageStack.from_references([resolve(p) for p in names], codes, frames, referenced_from=path)
    if "blob/shape" in data.dtype.names:
        shapes = np.asarray(data["blob/shape"]).reshape(n, -1)
        if np.any(shapes != images.box):
            raise InputError(f"{path}: blob/shape says {tuple(shapes[0])} but the stacks hold {images.box}x{images.box} images")

    if pixel_size_angstrom is not None:
        if not pixel_size_angstrom > 0:
            raise InputError(f"pixel_size_angstrom: expected a positive number, got {pixel_size_angstrom}")
        pixel = np.full(n, float(pixel_size_angstrom))
        shift_pixel = pixel
    else:
        pixel = _field(path, data, "blob/psize_A")
        shift_pixel = _field(path, data, "alignments3D/psize_A") if "alignments3D/psize_A" in data.dtype.names else pixel

    pose = _field(path, data, "alignments3D/pose", 3)
    rotations = np.swapaxes(axis_angle_to_matrix(pose), -1, -2)
    shift_px = _field(path, data, "alignments3D/shift", 2)
    shifts = shift_from_relion_origin(shift_px[:, 0] * shift_pixel, shift_px[:, 1] * shift_pixel)

    phase = np.rad2deg(_field(path, data, "ctf/phase_shift_rad")) if "ctf/phase_shift_rad" in data.dtype.names else np.zeros(n)
    return ParticleSet(
        images=images,
        rotations=rotations,
        shifts_angstrom=shifts,
        defocus_u_angstrom=_field(path, data, "ctf/df1_A"),
        defocus_v_angstrom=_field(path, data, "ctf/df2_A"),
        astigmatism_angle_deg=np.rad2deg(_field(path, data, "ctf/df_angle_rad")),
        voltage_kv=_field(path, data, "ctf/accel_kv"),
        cs_mm=_field(path, data, "ctf/cs_mm"),
        amplitude_contrast=_field(path, data, "ctf/amp_contrast"),
        phase_shift_deg=phase,
        pixel_size_angstrom=pixel,
        table=cs_table(data),
        source_path=path,
    )
