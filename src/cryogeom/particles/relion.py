"""RELION .star particle files: reading (3.0, and 3.1/4/5 with ``data_optics``).

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

Writing: :mod:`cryogeom.particles.relion_writer`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryogeom.errors import InputError
from cryogeom.imaging.rotations import euler_to_matrix, shift_from_relion_origin
from cryogeom.particles.particle_set import ParticleSet
from cryogeom.particles.stack import ImageStack, StackPathResolver

RELION_VERSION_LINE = "# version 30001"


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
        raise InputError(f"{path}: data_{block} row {bad[0] + 1}: _{column} = {str(df[column].iloc[bad[0]])!r} is not a finite number")
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
