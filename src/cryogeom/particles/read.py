"""``read_particles``: one entry point that picks the reader by file extension."""

from __future__ import annotations

import os
from pathlib import Path

from cryogeom.errors import InputError
from cryogeom.particles.cryodrgn import read_cryodrgn
from cryogeom.particles.cryosparc import read_cryosparc
from cryogeom.particles.particle_set import ParticleSet
from cryogeom.particles.relion import read_relion

SUFFIXES = (".star", ".cs", ".mrcs", ".mrc", ".txt")


def read_particles(
    path: str | os.PathLike,
    *,
    datadir: str | os.PathLike | None = None,
    poses: str | os.PathLike | None = None,
    ctf: str | os.PathLike | None = None,
    pixel_size_angstrom: float | None = None,
) -> ParticleSet:
    """Read particles (images lazily, metadata eagerly) from any supported format.

    * ``.star`` — RELION 3.0 or 3.1/4/5 (:func:`~cryogeom.particles.relion.read_relion`); with
      ``poses`` and ``ctf``, the .star only lists the images and cryoDRGN pickles give the rest.
    * ``.cs`` — cryoSPARC (:func:`~cryogeom.particles.cryosparc.read_cryosparc`); ``datadir`` is
      the cryoSPARC project directory.
    * ``.mrcs``/``.mrc``/``.txt`` — cryoDRGN (:func:`~cryogeom.particles.cryodrgn.read_cryodrgn`);
      ``poses`` (pose.pkl) and ``ctf`` (ctf.pkl) are required.

    ``datadir`` is where relative stack paths are looked up (besides the metadata file's
    directory); ``pixel_size_angstrom`` overrides the file's pixel size.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown particle file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if (poses is None) != (ctf is None) and suffix in (".star", ".mrcs", ".mrc", ".txt"):
        given, missing = ("poses", "ctf") if ctf is None else ("ctf", "poses")
        raise InputError(f"{path}: {given} given without {missing}; cryoDRGN inputs need both pose.pkl and ctf.pkl")
    if suffix == ".star" and poses is None:
        return read_relion(path, datadir=datadir, pixel_size_angstrom=pixel_size_angstrom)
    if suffix == ".cs":
        if poses is not None or ctf is not None:
            raise InputError(f"{path}: a cryoSPARC .cs holds its own poses and CTF; do not give poses/ctf pickles")
        return read_cryosparc(path, datadir=datadir, pixel_size_angstrom=pixel_size_angstrom)
    if poses is None:
        raise InputError(f"{path}: an image stack needs poses (pose.pkl) and ctf (ctf.pkl)")
    return read_cryodrgn(path, poses=poses, ctf=ctf, datadir=datadir, pixel_size_angstrom=pixel_size_angstrom)
