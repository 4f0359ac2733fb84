"""The ``ParticleSet``: lazily readable images plus per-particle pose, CTF and pixel size.

All per-particle arrays are NumPy float64 (metadata); images come as float32 tensors from
:class:`~cryogeom.particles.stack.ImageStack`. Conventions are those of
:mod:`cryogeom.imaging.rotations` (``rotations`` move the atoms, RELION's ``Euler_angles2matrix``;
``shifts_angstrom`` = where the particle centre lands relative to the image centre) and
:mod:`cryogeom.imaging.grid` (images ``[y, x]``, centre pixel ``D // 2``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import CTFParams
from cryogeom.particles.stack import ImageStack

CTF_FIELDS = CTFParams.field_names()
# The fields' names in the files (RELION; cryoSPARC and cryoDRGN hold the same quantities).
_COLUMN = {
    "rotations": "rlnAngleRot/Tilt/Psi", "shifts_angstrom": "rlnOriginXAngst/YAngst",
    "defocus_u_angstrom": "rlnDefocusU", "defocus_v_angstrom": "rlnDefocusV", "astigmatism_angle_deg": "rlnDefocusAngle",
    "voltage_kv": "rlnVoltage", "cs_mm": "rlnSphericalAberration", "amplitude_contrast": "rlnAmplitudeContrast",
    "phase_shift_deg": "rlnPhaseShift", "pixel_size_angstrom": "rlnImagePixelSize",
}
# What the physics needs of each value (a cause of NaN in training, or an impossible image).
_PHYSICAL = {
    "pixel_size_angstrom": (lambda v: v > 0, "a positive pixel size in Å"),
    "voltage_kv": (lambda v: v > 0, "a positive accelerating voltage in kV (e.g. 300)"),
    "amplitude_contrast": (lambda v: (v >= 0) & (v < 1), "a fraction from 0 to below 1 (e.g. 0.1)"),
    "defocus_u_angstrom": (lambda v: v > 0, "a positive defocus in Å (underfocus; e.g. 15000)"),
    "defocus_v_angstrom": (lambda v: v > 0, "a positive defocus in Å (underfocus; e.g. 15000)"),
}


@dataclass
class ParticleSet:
    """n particles read from ``source_path``.

    Attributes
    ----------
    images: ImageStack — lazy images [n, box, box]; ``images.read(indices)`` → float32 tensor.
    rotations: [n, 3, 3] float64 — R moves the atoms (RELION ``Euler_angles2matrix``).
    shifts_angstrom: [n, 2] float64 — (dx, dy) where the rotation centre lands, Å.
    defocus_u_angstrom, defocus_v_angstrom, astigmatism_angle_deg, voltage_kv, cs_mm,
    amplitude_contrast, phase_shift_deg: [n] float64 each — the CTF (fields of
    :class:`~cryogeom.imaging.ctf.CTFParams`).
    pixel_size_angstrom: [n] float64.
    table: the source file's per-particle table (``pandas.DataFrame``, one row per particle, all
    original columns); its index holds the particle's row number in the source file, so it
    survives :meth:`subset` (``write_star_subset(src, subset.table.index, dst)``).
    source_path: the file the set was read from.
    optics_table: RELION 3.1+ ``data_optics`` block, when there is one.
    """

    images: ImageStack
    rotations: np.ndarray
    shifts_angstrom: np.ndarray
    defocus_u_angstrom: np.ndarray
    defocus_v_angstrom: np.ndarray
    astigmatism_angle_deg: np.ndarray
    voltage_kv: np.ndarray
    cs_mm: np.ndarray
    amplitude_contrast: np.ndarray
    phase_shift_deg: np.ndarray
    pixel_size_angstrom: np.ndarray
    table: pd.DataFrame
    source_path: Path
    optics_table: pd.DataFrame | None = None

    def __post_init__(self):
        n = len(self.images)
        self.source_path = Path(self.source_path)
        self.rotations = np.asarray(self.rotations, dtype=np.float64).reshape(n, 3, 3)
        self.shifts_angstrom = np.asarray(self.shifts_angstrom, dtype=np.float64).reshape(n, 2)
        for name in CTF_FIELDS + ("pixel_size_angstrom",):
            setattr(self, name, np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (n,)).copy())
        for name in ("rotations", "shifts_angstrom", *CTF_FIELDS, "pixel_size_angstrom"):
            value = getattr(self, name).reshape(n, -1)
            bad = ~np.isfinite(value).all(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"{self.source_path}: particle {i + 1}: {name} ({_COLUMN.get(name, name)}) is missing or not a finite number")
        for name, (ok, expected) in _PHYSICAL.items():
            value = getattr(self, name)
            bad = ~ok(value)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"{self.source_path}: particle {i + 1}: {name} ({_COLUMN[name]}) is {float(value[i]):g}; expected {expected}")
        extent = self.images.box * self.pixel_size_angstrom
        far = np.linalg.norm(self.shifts_angstrom, axis=1) > extent
        if far.any():
            i = int(np.flatnonzero(far)[0])
            raise InputError(
                f"{self.source_path}: particle {i + 1}: shift ({_COLUMN['shifts_angstrom']}) of {np.linalg.norm(self.shifts_angstrom[i]):g} Å "
                f"puts the particle outside its {extent[i]:g} Å image"
            )
        if len(self.table) != n:
            raise ValueError(f"table has {len(self.table)} rows for {n} particles")

    # -- size ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.images)

    def __len__(self) -> int:
        return self.n

    @property
    def box(self) -> int:
        """Image side length in pixels (the same for every particle)."""
        return self.images.box

    # -- access --------------------------------------------------------------------------
    def read_images(self, indices=None) -> torch.Tensor:
        """Images at ``indices`` as float32 [k, box, box] (see :meth:`ImageStack.read`)."""
        return self.images.read(indices)

    def ctf_array(self, indices=None) -> np.ndarray:
        """CTF parameters [k, 7] float64, columns in :meth:`CTFParams.field_names` order."""
        idx = slice(None) if indices is None else np.asarray(indices, dtype=np.int64)
        return np.stack([getattr(self, name)[idx] for name in CTF_FIELDS], axis=-1)

    def ctf(self, indices=None, *, dtype=torch.float32, device=None) -> CTFParams:
        """CTF parameters of the particles at ``indices`` as a :class:`CTFParams` of tensors [k]."""
        return CTFParams.stack(torch.as_tensor(self.ctf_array(indices), dtype=dtype, device=device))

    def subset(self, indices) -> "ParticleSet":
        """The particles at ``indices`` (integers, in the given order), sharing the image files."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self.n,):
                raise InputError(f"subset: boolean mask has shape {idx.shape}; expected ({self.n},)")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise InputError(f"subset: indices must be in [0, {self.n}); got {idx.min()}..{idx.max()}")
        per_particle = {
            f.name: getattr(self, f.name)[idx]
            for f in fields(self)
            if f.name not in ("images", "table", "source_path", "optics_table")
        }
        return replace(self, images=self.images.subset(idx), table=self.table.iloc[idx], **per_particle)

    def __repr__(self) -> str:
        return f"ParticleSet(n={self.n}, box={self.box}, source_path={str(self.source_path)!r})"
