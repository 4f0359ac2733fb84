"""Particle data: RELION .star/.mrcs, cryoSPARC .cs and cryoDRGN .pkl readers and writers.

``read_particles(path, ...)`` → :class:`ParticleSet` (images lazily memory-mapped, poses, shifts,
CTF, pixel sizes, the original table); :class:`ParticleDataset` serves it to torch;
:func:`write_relion` and :func:`write_star_subset` write RELION files.
"""

from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.downsample import downsample_images
from cryogeom.particles.particle_set import ParticleSet
from cryogeom.particles.read import read_particles
from cryogeom.particles.relion_writer import write_relion, write_star_subset
from cryogeom.particles.stack import ImageStack

__all__ = [
    "ImageStack",
    "ParticleDataset",
    "ParticleSet",
    "downsample_images",
    "read_particles",
    "write_relion",
    "write_star_subset",
]
