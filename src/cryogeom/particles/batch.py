"""A batch of particles as every consumer sees it, and how its images are prepared for the network.

:class:`ParticleBatch` is what :meth:`ParticleDataset.get_batch <cryogeom.particles.dataset.ParticleDataset.get_batch>`
returns and what training, validation, inference, calibration and renders take. It is a dict
(so that ``DataLoader`` workers, pinned memory and pickling handle it as they handle any batch
dict) with typed accessors::

    images               [B, D', D']  the images (Fourier-cropped to D' if asked)
    rotations            [B, 3, 3]    R moves the atoms (imaging/rotations.py)
    shifts_angstrom      [B, 2]       where the particle centre lands (Å)
    ctf                  CTFParams    each field [B]
    pixel_size_angstrom  [B]          after downsampling: p · D / D'
    indices              [B] int64    the particles' indices in the ParticleSet

Images are prepared (:meth:`ParticleBatch.prepared_images`, :func:`prepare`) by standardising
each on its background — the pixels outside the circle of diameter D
(:func:`cryogeom.imaging.grid.background_mask`, RELION's particle normalisation): mean 0,
standard deviation 1 there — and, if the data's contrast is inverted relative to the renders
(RELION stacks: protein bright), negating it so that protein is dark in both.
"""

from __future__ import annotations

import torch

from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.grid import background_mask

#: the dict keys of a batch (and of one dataset item)
KEYS = ("image", "rotation", "shift_angstrom", "ctf", "pixel_size_angstrom", "index")


def standardise(images: torch.Tensor) -> torch.Tensor:
    """images [B, D, D] -> background mean 0, background standard deviation 1, per image."""
    mask = background_mask(images.shape[-1], device=images.device)
    bg = images[:, mask]
    mean = bg.mean(dim=1)
    std = bg.std(dim=1).clamp_min(torch.finfo(images.dtype).tiny ** 0.5)
    return (images - mean[:, None, None]) / std[:, None, None]


def prepare(images: torch.Tensor, invert: bool) -> torch.Tensor:
    """Standardised (and, for inverted-contrast data, negated) images, as the network sees them."""
    out = standardise(images)
    return -out if invert else out


class ParticleBatch(dict):
    """One batch of particles (see the module docstring for its fields)."""

    @property
    def images(self) -> torch.Tensor:
        return self["image"]

    @property
    def rotations(self) -> torch.Tensor:
        return self["rotation"]

    @property
    def shifts_angstrom(self) -> torch.Tensor:
        return self["shift_angstrom"]

    @property
    def ctf(self) -> CTFParams:
        return CTFParams.stack(self["ctf"])

    @property
    def pixel_size_angstrom(self) -> torch.Tensor:
        return self["pixel_size_angstrom"]

    @property
    def indices(self) -> torch.Tensor:
        return self["index"]

    def __len__(self) -> int:  # the number of particles, not of fields
        return len(self["index"])

    def to(self, device, non_blocking: bool = False) -> "ParticleBatch":
        """The batch with its tensors on ``device`` (itself when they are there already)."""
        device = torch.device(device)
        if all(v.device == device for v in self.values() if isinstance(v, torch.Tensor)):
            return self
        return ParticleBatch({k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in self.items()})

    def pin_memory(self) -> "ParticleBatch":
        return ParticleBatch({k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in self.items()})

    def prepared_images(self, invert: bool) -> torch.Tensor:
        """The images as the network sees them (:func:`prepare`)."""
        return prepare(self.images, invert)
