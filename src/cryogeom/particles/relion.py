"""RELION .star particle files: reading (3.0, and 3.1/4/5 with ``data_optics``) and writing (3.1).

Reading
-------
* RELION 3.0: one data block; ``rlnOriginX/Y`` in **pixels**; pixel size from
  ``rlnImagePixelSize`` or ``rlnDetectorPixelSize`` (µm) × 10⁴ / ``rlnMagnification``, or the
  ``pixel_size_angstrom`` override; ``rlnVoltage``, ``rlnSphericalAberration``,
  ``rlnAmplitudeContrast`` per particle.
* RELION 3.1/4/5: ``data_optics`` + ``data_particles``; ``rlnOriginXAngst/YAngst`` in Å; voltage,
  Cs, amplitude contrast, ``rlnImagePixelSize`` and ``rlnImageSize`` per optics group (each
  particle takes its group's values through ``rlnOpticsGroup``). Every group must have the same
  box size.
* Always: ``rlnImageName`` (``i@stack.mrcs``, 1-based ``i``), ``rlnAngleRot/Tilt/Psi`` (degrees),
  ``rlnDefocusU/V`` (Å), ``rlnDefocusAngle`` (degrees), ``rlnPhaseShift`` (degrees, optional,
  default 0). Stack paths are resolved by :class:`~cryogeom.particles.stack.StackPathResolver`
  (``datadir``, then the .star's directory).

Poses: ``R = euler_to_matrix(rot, tilt, psi)`` (RELION's ``Euler_angles2matrix``, R moves the
atoms) and ``shift_angstrom = -(rlnOriginXAngst, rlnOriginYAngst)``
(:func:`~cryogeom.imaging.rotations.shift_from_relion_origin`).

Writing
-------
:func:`write_relion` writes an .mrcs (float32, voxel size set, image-stack space group) and a
RELION 3.1 .star (``data_optics`` + ``data_particles``, ``rlnImageName = i@<mrcs relative to the
.star>``). :func:`write_star_subset` copies a subset of a .star's particle rows, keeping every
column's text and every other block (the optics) exactly as they were. Both write to temporary
names and rename; both refuse to replace existing files unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.rotations import euler_to_matrix, matrix_to_euler, relion_origin_from_shift, shift_from_relion_origin
from cryogeom.files import atomic_outputs
from cryogeom.particles.particle_set import CTF_FIELDS, ParticleSet
from cryogeom.particles.stack import ImageStack, StackPathResolver

RELION_VERSION_LINE = "# version 30001"
_CHUNK = 1024  # images per write when the caller gives one array


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def read_star_blocks(path: str | os.PathLike, *, as_strings: bool = False) -> dict[str, pd.DataFrame | dict]:
    """All data blocks of a STAR file, by name (``'optics'``, ``'particles'``, ``''`` …).

    With ``as_strings`` every value is kept as its original text (for copying files unchanged).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        blocks = starfile.read(path, always_dict=True)
        if as_strings:
            columns = sorted({c for b in blocks.values() for c in (b.columns if isinstance(b, pd.DataFrame) else b)})
            blocks = starfile.read(path, always_dict=True, parse_as_string=columns)
    except Exception as exc:  # starfile raises assorted errors on malformed text
        raise InputError(f"{path}: not a readable STAR file ({type(exc).__name__}: {exc})") from None
    if not blocks:
        raise InputError(f"{path}: no data blocks found; expected a RELION particle .star file")
    return blocks


def particle_block_name(path: Path, blocks: Mapping[str, object]) -> str:
    """Name of the block holding the particles: ``particles`` or the one block with ``rlnImageName``."""
    tables = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame)}
    if "particles" in tables:
        return "particles"
    with_images = [k for k, v in tables.items() if "rlnImageName" in v.columns]
    if len(with_images) == 1:
        return with_images[0]
    if not with_images:
        if len(tables) == 1:
            return next(iter(tables))
        raise InputError(f"{path}: no data block has the column _rlnImageName")
    raise InputError(f"{path}: several data blocks have _rlnImageName ({', '.join(with_images)}); expected one")


def _numeric(path: Path, df: pd.DataFrame, column: str, block: str) -> np.ndarray:
    if column not in df.columns:
        raise InputError(f"{path}: data_{block} has no column _{column}")
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise InputError(f"{path}: data_{block} row {bad[0] + 1}: _{column} = {df[column].iloc[bad[0]]!r} is not a finite number")
    return values


def parse_image_names(path: Path, names: pd.Series) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``rlnImageName`` values ``'i@stack.mrcs'`` → (stack code [n], distinct stack names, 0-based frames [n]).

    A name without ``@`` is a single-image file (frame 0).
    """
    parts = names.astype(str).str.partition("@")
    has_at = (parts[1] == "@").to_numpy()
    stacks = parts[2].where(has_at, parts[0])
    numbers = pd.to_numeric(parts[0].where(has_at, "1"), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~(numbers >= 1) | (numbers != np.round(numbers)) | (stacks.str.len() == 0).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise InputError(f"{path}: row {row + 1}: _rlnImageName {names.iloc[row]!r} is not of the form <number>@<stack> with number >= 1")
    codes, uniques = pd.factorize(stacks)
    return codes.astype(np.int64), [str(u) for u in uniques], numbers.astype(np.int64) - 1


def read_star_images(
    path: str | os.PathLike, *, datadir: str | os.PathLike | None = None
) -> tuple[ImageStack, pd.DataFrame, pd.DataFrame | None]:
    """The images a .star refers to, with its particle table and optics table (or None)."""
    path = Path(path)
    blocks = read_star_blocks(path)
    name = particle_block_name(path, blocks)
    particles = blocks[name].reset_index(drop=True)
    if "rlnImageName" not in particles.columns:
        raise InputError(f"{path}: data_{name} has no column _rlnImageName")
    if len(particles) == 0:
        raise InputError(f"{path}: data_{name} has no particles")
    optics = blocks.get("optics") if isinstance(blocks.get("optics"), pd.DataFrame) else None
    if isinstance(blocks.get("optics"), dict):  # a one-group optics block written as key/value pairs
        optics = pd.DataFrame([blocks["optics"]])
    codes, stack_names, frames = parse_image_names(path, particles["rlnImageName"])
    resolve = StackPathResolver(path, datadir)
    images = ImageStack.from_references([resolve(s) for s in stack_names], codes, frames, referenced_from=path)
    return images, particles, optics


def _per_particle_optics(path: Path, particles: pd.DataFrame, optics: pd.DataFrame) -> pd.DataFrame:
    """The optics-group row of each particle ([n] rows, aligned with ``particles``)."""
    groups = _numeric(path, optics, "rlnOpticsGroup", "optics").astype(np.int64)
    if len(set(groups)) != len(groups):
        raise InputError(f"{path}: data_optics lists an _rlnOpticsGroup twice")
    if "rlnOpticsGroup" in particles.columns:
        assigned = _numeric(path, particles, "rlnOpticsGroup", "particles").astype(np.int64)
    elif len(groups) == 1:
        assigned = np.full(len(particles), groups[0])
    else:
        raise InputError(f"{path}: data_particles has no column _rlnOpticsGroup but data_optics has {len(groups)} groups")
    lookup = {g: i for i, g in enumerate(groups)}
    missing = sorted(set(assigned) - set(lookup))
    if missing:
        raise InputError(f"{path}: particles refer to optics group {missing[0]}, which data_optics does not define")
    rows = np.array([lookup[g] for g in assigned], dtype=np.int64)
    return optics.iloc[rows].reset_index(drop=True)


def read_relion(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    pixel_size_angstrom: float | None = None,
) -> ParticleSet:
    """Read a RELION 3.0 or 3.1/4/5 particle .star file and its image stacks (lazily).

    ``pixel_size_angstrom`` overrides the pixel size in the file. See the module docstring for
    the columns read and the pose convention.
    """
    path = Path(path)
    images, particles, optics = read_star_images(path, datadir=datadir)
    n = len(particles)
    per_group = _per_particle_optics(path, particles, optics) if optics is not None else None

    def value(column: str) -> np.ndarray:
        """A per-particle optical value: from the particle's optics group, else the particle row."""
        if per_group is not None and column in per_group.columns:
            return _numeric(path, per_group, column, "optics")
        if column in particles.columns:
            return _numeric(path, particles, column, "particles")
        where = "data_optics or data_particles" if per_group is not None else "data_particles"
        raise InputError(f"{path}: no column _{column} in {where}")

    # Box size: every optics group the same, and equal to the stacks'.
    if optics is not None and "rlnImageSize" in optics.columns:
        sizes = sorted(set(_numeric(path, optics, "rlnImageSize", "optics").astype(int)))
        if len(sizes) > 1:
            raise InputError(
                f"{path}: optics groups have different box sizes ({', '.join(map(str, sizes))} pixels); "
                "expected one box size (split the file by optics group or re-extract)"
            )
        if sizes[0] != images.box:
            raise InputError(f"{path}: data_optics says _rlnImageSize {sizes[0]} but the image stacks are {images.box} pixels")

    # Pixel size.
    if pixel_size_angstrom is not None:
        if not pixel_size_angstrom > 0:
            raise InputError(f"pixel_size_angstrom: expected a positive number, got {pixel_size_angstrom}")
        pixel = np.full(n, float(pixel_size_angstrom))
    elif (per_group is not None and "rlnImagePixelSize" in per_group.columns) or "rlnImagePixelSize" in particles.columns:
        pixel = value("rlnImagePixelSize")
    elif "rlnDetectorPixelSize" in particles.columns and "rlnMagnification" in particles.columns:
        pixel = _numeric(path, particles, "rlnDetectorPixelSize", "particles") * 1e4 / _numeric(
            path, particles, "rlnMagnification", "particles"
        )
    else:
        raise InputError(
            f"{path}: no pixel size (_rlnImagePixelSize, or _rlnDetectorPixelSize and _rlnMagnification); "
            "give pixel_size_angstrom (--pixel-size)"
        )

    # Poses.
    rot, tilt, psi = (_numeric(path, particles, c, "particles") for c in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"))
    rotations = euler_to_matrix(rot, tilt, psi)
    if {"rlnOriginXAngst", "rlnOriginYAngst"} <= set(particles.columns):
        ox = _numeric(path, particles, "rlnOriginXAngst", "particles")
        oy = _numeric(path, particles, "rlnOriginYAngst", "particles")
    elif {"rlnOriginX", "rlnOriginY"} <= set(particles.columns):  # RELION 3.0: pixels
        ox = _numeric(path, particles, "rlnOriginX", "particles") * pixel
        oy = _numeric(path, particles, "rlnOriginY", "particles") * pixel
    else:
        warnings.warn(f"{path}: no _rlnOriginXAngst/_rlnOriginYAngst (or _rlnOriginX/Y); shifts set to 0", stacklevel=2)
        ox = oy = np.zeros(n)
    shifts = shift_from_relion_origin(ox, oy)

    # CTF.
    phase = _numeric(path, particles, "rlnPhaseShift", "particles") if "rlnPhaseShift" in particles.columns else np.zeros(n)
    return ParticleSet(
        images=images,
        rotations=rotations,
        shifts_angstrom=shifts,
        defocus_u_angstrom=_numeric(path, particles, "rlnDefocusU", "particles"),
        defocus_v_angstrom=_numeric(path, particles, "rlnDefocusV", "particles"),
        astigmatism_angle_deg=_numeric(path, particles, "rlnDefocusAngle", "particles"),
        voltage_kv=value("rlnVoltage"),
        cs_mm=value("rlnSphericalAberration"),
        amplitude_contrast=value("rlnAmplitudeContrast"),
        phase_shift_deg=phase,
        pixel_size_angstrom=pixel,
        table=particles,
        source_path=path,
        optics_table=optics,
    )


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
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


def write_star_subset(
    src_star: str | os.PathLike,
    indices,
    dst_star: str | os.PathLike,
    *,
    overwrite: bool = False,
) -> None:
    """Write the particle rows ``indices`` (0-based, in that order, or a boolean mask) of a .star.

    Every column of the particle block keeps its original text, and every other block (the
    optics table) is copied unchanged, so the subset can be re-imported into RELION or cryoSPARC.
    ``rlnImageName`` paths are copied as they are: RELION resolves them relative to the project
    directory, so write the subset where the project can see the same stacks.
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
    out[name] = particles.iloc[idx].reset_index(drop=True)
    with atomic_outputs([dst_star], overwrite=overwrite) as (tmp,):
        _write_star_text(out, tmp, relion31="optics" in blocks)
