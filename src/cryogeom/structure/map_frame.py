"""The consensus map's frame: where, in the base structure's coordinates, the particles rotate.

A consensus refinement (RELION, cryoSPARC) gives every particle a pose about the centre of the
consensus map's box, voxel ``D // 2`` (0-based) on each axis, and an atomic model fitted into that
map has the map's coordinates. In the RELION / ChimeraX convention that voxel lies at

    rotation centre (Å, x y z) = origin + (D // 2) · voxel size

where ``origin`` is the MRC header's origin (or ``nstart · voxel`` where the origin is zero, as
ChimeraX reads it); for a map with zero origin this is ``(D // 2) · pixel`` on each axis, and the
particles' own box and pixel size are enough to know it. The network works in coordinates about
the rotation centre and adds it back to everything it writes, so predictions overlay the map.

Settings of :func:`rotation_centre` (``rotation_centre`` in a run's configuration):

* ``"box"`` — the particles' box centre with zero map origin (the default for real data);
* ``"centroid"`` — the base structure's Cα centroid (synthetic data rendered about it);
* ``[x, y, z]`` — an explicit point, Å (from ``--rotation-centre X Y Z`` or ``--map``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mrcfile
import numpy as np

from cryogeom.errors import InputError

MODES = ("box", "centroid")
#: how far (relative) a map's physical box may differ from the particles' and still be theirs
BOX_TOLERANCE = 0.01
HOW_TO_CHOOSE = ("give the consensus map (--map consensus.mrc), the point the particles rotate about "
                 "(--rotation-centre X Y Z, Å), or --rotation-centre centroid for data rendered about the model's Cα centroid")


def box_centre_angstrom(box: int, pixel_size_angstrom: float, origin_angstrom=(0.0, 0.0, 0.0)) -> np.ndarray:
    """[3] (x, y, z) Å of voxel ``box // 2`` of a map of ``box`` voxels whose corner voxel is at ``origin_angstrom``."""
    return np.asarray(origin_angstrom, dtype=np.float64) + (box // 2) * float(pixel_size_angstrom)


@dataclass(frozen=True)
class MapHeader:
    path: str
    box: tuple[int, int, int]  # voxels along x, y, z
    voxel_size_angstrom: tuple[float, float, float]
    origin_angstrom: tuple[float, float, float]  # x, y, z of voxel (0, 0, 0)

    def centre_angstrom(self) -> np.ndarray:
        """The box centre (voxel D // 2 on each axis) in the map's coordinates, Å."""
        return np.array([o + (d // 2) * v for o, d, v in zip(self.origin_angstrom, self.box, self.voxel_size_angstrom)])


def read_map_header(path) -> MapHeader:
    """The box, voxel size and origin of an MRC map (header only)."""
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
            h = mrc.header
            box = (int(h.nx), int(h.ny), int(h.nz))
            voxel = mrc.voxel_size
            voxel = (float(voxel.x), float(voxel.y), float(voxel.z))
            origin = (float(h.origin.x), float(h.origin.y), float(h.origin.z))
            start = (int(h.nxstart), int(h.nystart), int(h.nzstart))
    except FileNotFoundError:
        raise InputError(f"{path}: no such map file") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not an MRC map ({str(exc).splitlines()[0][:100]})") from None
    if min(box) < 1 or not all(math.isfinite(v) and v > 0 for v in voxel):
        raise InputError(f"{path}: header gives box {box} and voxel size {voxel} Å; expected a positive box and voxel size")
    if not any(origin) and any(start):
        origin = tuple(s * v for s, v in zip(start, voxel))
    return MapHeader(str(path), box, voxel, origin)


def map_rotation_centre(path, box: int, pixel_size_angstrom: float) -> np.ndarray:
    """The rotation centre given by the consensus map ``path`` for particles of ``box`` px of
    ``pixel_size_angstrom`` Å; the map must be cubic and span the particles' box (the particles may
    be Fourier-downsampled from the map's sampling, so the physical size is what must agree)."""
    header = read_map_header(path)
    if len(set(header.box)) != 1 or len(set(np.round(header.voxel_size_angstrom, 5))) != 1:
        raise InputError(f"{path}: box {header.box} voxels of {header.voxel_size_angstrom} Å; expected a cubic map with one voxel size")
    map_side = header.box[0] * header.voxel_size_angstrom[0]
    particle_side = box * pixel_size_angstrom
    if abs(map_side - particle_side) > BOX_TOLERANCE * particle_side:
        raise InputError(
            f"{path}: box {header.box[0]} voxels of {header.voxel_size_angstrom[0]:g} Å ({map_side:g} Å) but the particles are "
            f"{box} px of {pixel_size_angstrom:g} Å ({particle_side:g} Å); expected the consensus map of these particles"
        )
    return header.centre_angstrom()


def rotation_centre(setting, ca: np.ndarray, box: int, pixel_size_angstrom: float) -> np.ndarray:
    """The rotation centre [3] (Å, the base structure's coordinates) of a ``rotation_centre`` setting
    (module docstring) for a base structure with Cα ``ca`` [N, 3]."""
    if isinstance(setting, str):
        if setting == "box":
            return box_centre_angstrom(box, pixel_size_angstrom)
        if setting == "centroid":
            return np.asarray(ca, dtype=np.float64).mean(axis=0)
        raise InputError(f"rotation_centre: expected one of {', '.join(MODES)} or three numbers X Y Z (Å), got {setting!r}")
    centre = np.asarray(setting, dtype=np.float64).reshape(-1)
    if centre.shape != (3,) or not np.isfinite(centre).all():
        raise InputError(f"rotation_centre: expected three finite numbers X Y Z (Å), got {setting!r}")
    return centre


def check_inside_box(ca: np.ndarray, centre: np.ndarray, box: int, pixel_size_angstrom: float, source: str, how: str) -> None:
    """InputError unless every Cα lies inside the particles' box placed about ``centre`` (``how``
    says where that centre came from)."""
    half = box * pixel_size_angstrom / 2
    offset = np.abs(np.asarray(ca, dtype=np.float64) - centre)
    if offset.size and offset.max() > half:
        worst = float(offset.max())
        raise InputError(
            f"{source or 'base structure'}: Cα reach {worst:.1f} Å from the rotation centre ({how}: "
            f"{centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f} Å), outside the particles' box of ±{half:g} Å, so its coordinates "
            f"are not the consensus map's; {HOW_TO_CHOOSE}"
        )


def describe(setting) -> str:
    """Words for a ``rotation_centre`` setting, for messages."""
    if setting == "box":
        return "the particles' box centre, zero map origin"
    if setting == "centroid":
        return "the base structure's Cα centroid"
    return "as given"
