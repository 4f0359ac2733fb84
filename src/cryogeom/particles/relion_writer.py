"""RELION .star particle files: writing (RELION 3.1).

:func:`write_relion` writes an .mrcs (float32, voxel size set, image-stack space group) and a
RELION 3.1 .star (``data_optics`` + ``data_particles``, ``rlnImageName = i@<mrcs relative to the
.star>``). :func:`write_star_subset` copies a subset of a .star's particle rows, keeping every
column's text and every other block (the optics) exactly as they were. Both write to temporary
names and rename; both refuse to replace existing files unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
import torch

from cryogeom.errors import InputError
from cryogeom.files import atomic_outputs
from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.rotations import matrix_to_euler, relion_origin_from_shift
from cryogeom.particles.particle_set import CTF_FIELDS
from cryogeom.particles.relion import RELION_VERSION_LINE, particle_block_name, read_star_blocks
from cryogeom.particles.stack import StackPathResolver

_CHUNK = 1024  # images per write when the caller gives one array


def _write_star_text(blocks: Mapping[str, object], path: Path, *, relion31: bool) -> None:
    """Write blocks with ``starfile`` and, for RELION 3.1 files, RELION's ``# version`` lines."""
    starfile.write(dict(blocks), path, float_format="%.6f")
    if relion31:
        text = path.read_text()
        text = re.sub(r"^(data_\S*)$", RELION_VERSION_LINE + r"\n\n\1", text, flags=re.MULTILINE)
        path.write_text(text)


def _ctf_columns(ctf, n: int) -> dict[str, np.ndarray]:
    """CTF parameters (``CTFParams``, a mapping of its field names, or an array [n, 7]) → arrays [n]."""
    if isinstance(ctf, CTFParams):
        source = {k: getattr(ctf, k) for k in CTF_FIELDS}
    elif isinstance(ctf, Mapping):
        missing = [k for k in CTF_FIELDS if k not in ctf]
        if missing:
            raise InputError(f"ctf: missing {', '.join(missing)}; expected the fields of CTFParams")
        source = {k: ctf[k] for k in CTF_FIELDS}
    else:
        array = np.asarray(torch.as_tensor(ctf).detach().cpu(), dtype=np.float64)
        if array.shape != (n, len(CTF_FIELDS)):
            raise InputError(f"ctf: array has shape {array.shape}; expected ({n}, {len(CTF_FIELDS)})")
        source = {k: array[:, i] for i, k in enumerate(CTF_FIELDS)}
    out = {}
    for k, v in source.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        try:
            out[k] = np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))
        except ValueError:
            raise InputError(f"ctf.{k}: has shape {np.shape(v)}; expected ({n},) or a scalar") from None
        if not np.all(np.isfinite(out[k])):
            raise InputError(f"ctf.{k}: has non-finite values")
    return out


def _image_chunks(images) -> Iterable[np.ndarray]:
    """Images as float32 chunks [k, D, D] from an array/tensor [n, D, D] or an iterable of chunks."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        images = [images[i : i + _CHUNK] for i in range(0, len(images), _CHUNK)] if images.ndim == 3 else [images]
    for chunk in images:
        if isinstance(chunk, torch.Tensor):
            chunk = chunk.detach().cpu().numpy()
        chunk = np.asarray(chunk, dtype=np.float32)
        yield chunk[None] if chunk.ndim == 2 else chunk


def write_relion(
    star_path: str | os.PathLike,
    mrcs_path: str | os.PathLike,
    images,
    *,
    rotations,
    shifts_angstrom,
    ctf,
    pixel_size_angstrom: float,
    extra_columns: Mapping[str, object] | None = None,
    overwrite: bool = False,
) -> None:
    """Write particles as an .mrcs stack plus a RELION 3.1 .star file.

    Parameters
    ----------
    images: float array/tensor [n, D, D] (``[y, x]``, centre pixel D // 2), or an iterable of
        chunks [k, D, D] (streamed to the .mrcs through a memory map; the chunks must add up to n).
    rotations: [n, 3, 3] — R moves the atoms; written as RELION Euler angles.
    shifts_angstrom: [n, 2] — written as ``rlnOriginX/YAngst = -shift``.
    ctf: :class:`CTFParams`, a mapping with its field names, or an array [n, 7]; voltage, Cs and
        amplitude contrast define the optics groups (one per distinct combination).
    pixel_size_angstrom: the pixel size of every image (the .mrcs voxel size).
    extra_columns: further per-particle columns (RELION names without the leading underscore).
    overwrite: replace existing files (otherwise an existing target raises InputError).

    Nothing is written unless everything succeeds (temporary files, then rename).
    """
    star_path, mrcs_path = Path(star_path), Path(mrcs_path)
    if star_path.suffix != ".star":
        raise InputError(f"{star_path}: expected a .star file name")
    if mrcs_path.suffix not in (".mrcs", ".mrc"):
        raise InputError(f"{mrcs_path}: expected an .mrcs file name")
    rotations = np.asarray(torch.as_tensor(rotations).detach().cpu(), dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (3, 3):
        raise InputError(f"rotations: shape {rotations.shape}; expected (n, 3, 3)")
    n = len(rotations)
    shifts = np.asarray(torch.as_tensor(shifts_angstrom).detach().cpu(), dtype=np.float64)
    if shifts.shape != (n, 2):
        raise InputError(f"shifts_angstrom: shape {shifts.shape}; expected ({n}, 2)")
    ctf_cols = _ctf_columns(ctf, n)
    pixel = np.unique(np.asarray(pixel_size_angstrom, dtype=np.float64))
    if pixel.size != 1 or not pixel[0] > 0:
        raise InputError(f"pixel_size_angstrom: expected one positive pixel size for the stack, got {pixel_size_angstrom}")
    pixel = float(pixel[0])

    rot, tilt, psi = matrix_to_euler(rotations)
    origin_x, origin_y = relion_origin_from_shift(shifts)
    optics_keys = np.stack([ctf_cols["voltage_kv"], ctf_cols["cs_mm"], ctf_cols["amplitude_contrast"]], axis=1)
    groups, group_of = np.unique(optics_keys, axis=0, return_inverse=True)

    with atomic_outputs([mrcs_path, star_path], overwrite=overwrite) as (tmp_mrcs, tmp_star):
        box = _write_mrcs(tmp_mrcs, _image_chunks(images), n, pixel, mrcs_path)
        relative = os.path.relpath(mrcs_path.resolve(), star_path.resolve().parent)
        optics = pd.DataFrame(
            {
                "rlnOpticsGroupName": [f"opticsGroup{g + 1}" for g in range(len(groups))],
                "rlnOpticsGroup": np.arange(1, len(groups) + 1),
                "rlnVoltage": groups[:, 0],
                "rlnSphericalAberration": groups[:, 1],
                "rlnAmplitudeContrast": groups[:, 2],
                "rlnImagePixelSize": np.full(len(groups), pixel),
                "rlnImageSize": np.full(len(groups), box),
                "rlnImageDimensionality": np.full(len(groups), 2),
            }
        )
        particles = pd.DataFrame(
            {
                "rlnImageName": [f"{i + 1:06d}@{relative}" for i in range(n)],
                "rlnAngleRot": rot,
                "rlnAngleTilt": tilt,
                "rlnAnglePsi": psi,
                "rlnOriginXAngst": origin_x,
                "rlnOriginYAngst": origin_y,
                "rlnDefocusU": ctf_cols["defocus_u_angstrom"],
                "rlnDefocusV": ctf_cols["defocus_v_angstrom"],
                "rlnDefocusAngle": ctf_cols["astigmatism_angle_deg"],
                "rlnPhaseShift": ctf_cols["phase_shift_deg"],
                "rlnOpticsGroup": group_of.reshape(-1) + 1,
            }
        )
        for name, values in (extra_columns or {}).items():
            name = name.lstrip("_")
            if isinstance(values, torch.Tensor):
                values = values.detach().cpu().numpy()
            values = np.asarray(values)
            if values.shape != (n,):
                raise InputError(f"extra_columns[{name!r}]: shape {values.shape}; expected ({n},)")
            particles[name] = values
        _write_star_text({"optics": optics, "particles": particles}, tmp_star, relion31=True)


def _write_mrcs(path: Path, chunks: Iterable[np.ndarray], n: int, pixel: float, name: Path) -> int:
    """Stream chunks [k, D, D] into a new float32 .mrcs of n images; returns D."""
    mrc = None
    written = 0
    try:
        for chunk in chunks:
            if chunk.ndim != 3 or chunk.shape[1] != chunk.shape[2]:
                raise InputError(f"{name}: images have shape {chunk.shape[1:]}; expected square images [D, D]")
            if not np.all(np.isfinite(chunk)):
                raise InputError(f"{name}: images {written}..{written + len(chunk) - 1} contain NaN or infinite pixels")
            if mrc is None:
                mrc = mrcfile.new_mmap(path, shape=(n, chunk.shape[1], chunk.shape[2]), mrc_mode=2, overwrite=True)
            elif chunk.shape[1:] != mrc.data.shape[1:]:
                raise InputError(f"{name}: image chunk of shape {chunk.shape[1:]} after images of {mrc.data.shape[1:]}")
            if written + len(chunk) > n:
                raise InputError(f"{name}: more images than the {n} particles in the metadata")
            mrc.data[written : written + len(chunk)] = chunk
            written += len(chunk)
        if written != n:
            raise InputError(f"{name}: {written} images for {n} particles in the metadata")
        mrc.set_image_stack()
        mrc.voxel_size = pixel
        mrc.update_header_stats()
        return int(mrc.data.shape[-1])
    finally:
        if mrc is not None:
            mrc.close()


def _image_names_from(src_star: Path, names, dst_star: Path, datadir, absolute: bool) -> list[str]:
    """``rlnImageName`` values of ``src_star`` rewritten to resolve from ``dst_star``'s directory."""
    resolve = StackPathResolver(src_star, datadir)
    here = dst_star.absolute().parent
    out, cache = [], {}
    for name in names:
        number, sep, stack = str(name).partition("@")
        if not sep:
            number, stack = "", number
        if stack not in cache:
            found = resolve(stack).resolve()
            cache[stack] = str(found) if absolute else os.path.relpath(found, here.resolve())
        out.append(f"{number}@{cache[stack]}" if sep else cache[stack])
    return out


def write_star_subset(
    src_star: str | os.PathLike,
    indices,
    dst_star: str | os.PathLike,
    *,
    overwrite: bool = False,
    datadir: str | os.PathLike | None = None,
    absolute_paths: bool = False,
    poses: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Write the particle rows ``indices`` (0-based, in that order, or a boolean mask) of a .star.

    ``poses`` (rotations [k, 3, 3], shifts [k, 2] Å, one per written row) replace the rows' Euler
    angles and origins (``rlnOriginXAngst/YAngst``; pixel origins of older files are dropped).

    Every column of the particle block keeps its original text except ``rlnImageName``, and every
    other block (the optics table) is copied unchanged. Each image's stack is found as cryogeom
    reads ``src_star`` (``datadir``, then the .star's directory) and written relative to
    ``dst_star``'s own directory — or absolute with ``absolute_paths`` — so the subset opens from
    where it lies (cryogeom, cryoDRGN); for RELION, which reads paths relative to its project
    directory, write it into the project or use ``absolute_paths``.
    """
    src_star, dst_star = Path(src_star), Path(dst_star)
    if dst_star.suffix != ".star":
        raise InputError(f"{dst_star}: expected a .star file name")
    blocks = read_star_blocks(src_star, as_strings=True)
    name = particle_block_name(src_star, blocks)
    particles = blocks[name]
    n = len(particles)
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise InputError(f"indices: boolean mask of shape {idx.shape}; {src_star} has {n} particles")
        idx = np.flatnonzero(idx)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"indices: expected integer particle indices, got {idx.dtype}")
    idx = idx.astype(np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(f"indices: must be in [0, {n}) for {src_star}; got {idx.min()}..{idx.max()}")
    out = dict(blocks)
    subset = particles.iloc[idx].reset_index(drop=True)
    if "rlnImageName" in subset.columns:
        subset["rlnImageName"] = _image_names_from(src_star, subset["rlnImageName"], dst_star, datadir, absolute_paths)
    if poses is not None:
        rotations, shifts = np.asarray(poses[0], dtype=np.float64), np.asarray(poses[1], dtype=np.float64)
        if rotations.shape != (len(subset), 3, 3) or shifts.shape != (len(subset), 2):
            raise InputError(f"poses: expected rotations [{len(subset)}, 3, 3] and shifts [{len(subset)}, 2], got {rotations.shape} and {shifts.shape}")
        angles = matrix_to_euler(rotations)
        origin = relion_origin_from_shift(shifts)
        columns = {"rlnAngleRot": angles[0], "rlnAngleTilt": angles[1], "rlnAnglePsi": angles[2],
                   "rlnOriginXAngst": origin[0], "rlnOriginYAngst": origin[1]}
        subset = subset.drop(columns=[c for c in ("rlnOriginX", "rlnOriginY") if c in subset.columns])
        for column, values in columns.items():
            subset[column] = [f"{v:.6f}" for v in values]
    out[name] = subset
    with atomic_outputs([dst_star], overwrite=overwrite) as (tmp,):
        _write_star_text(out, tmp, relion31="optics" in blocks)
