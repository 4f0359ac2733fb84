"""``ParticleDataset``: a torch Dataset over a :class:`ParticleSet`, with batched reads.

An item is a dict (a batch: :class:`~cryogeom.particles.batch.ParticleBatch`, the same keys)::

    image                [D', D']  the image (Fourier-cropped to D' if asked), dtype
    rotation             [3, 3]    R moves the atoms (imaging/rotations.py), dtype
    shift_angstrom       [2]       where the particle centre lands (Å), dtype
    ctf                  [7]       CTFParams.as_tensor() column order, dtype
    pixel_size_angstrom  []        after downsampling: p · D / D', dtype
    index                []        int64: the particle's index in the ParticleSet

Fast path for training: ``dataset[list_of_positions]`` (or :meth:`ParticleDataset.get_batch`)
returns the same dict with a leading batch dimension, reading all images in one pass over the
stack files (grouped by file, in frame order, with ``pread``: nothing is memory-mapped, see
:mod:`cryogeom.particles.stack`) and downsampling them in one FFT. A plain
``DataLoader(dataset, batch_size=B)`` uses it too, through ``__getitems__``; with no copy at all:
``DataLoader(dataset, sampler=BatchSampler(RandomSampler(dataset), B, drop_last=False),
batch_size=None)``, which is what :class:`cryogeom.particles.loader.BatchLoader` does for
training. The dataset pickles without pixels and its files re-open in each worker.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from cryogeom.errors import InputError
from cryogeom.particles.batch import ParticleBatch
from cryogeom.particles.downsample import downsample_images
from cryogeom.particles.particle_set import ParticleSet


class ParticleDataset(Dataset):
    """Items (image, pose, shift, CTF, pixel size, index) of ``particle_set[indices]``.

    ``downsample_box`` Fourier-crops the images to that box (even or odd, ≤ the set's box; see
    :mod:`cryogeom.particles.downsample`: mean preserved, centre pixel kept); ``dtype`` is the
    floating dtype of every returned tensor.
    """

    def __init__(
        self,
        particle_set: ParticleSet,
        *,
        indices=None,
        downsample_box: int | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        self.particle_set = particle_set
        n = particle_set.n
        idx = np.arange(n) if indices is None else np.asarray(indices).reshape(-1)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InputError(f"indices: must be in [0, {n}); got {idx.min()}..{idx.max()}")
        self.indices = idx
        box = particle_set.box
        if downsample_box is not None and not 1 <= int(downsample_box) <= box:
            raise InputError(f"downsample_box: expected a box size between 1 and the images' {box} pixels, got {downsample_box}")
        self.box = box if downsample_box is None else int(downsample_box)
        self.dtype = dtype
        self._ctf = torch.as_tensor(particle_set.ctf_array(), dtype=dtype)
        self._rotations = torch.as_tensor(particle_set.rotations, dtype=dtype)
        self._shifts = torch.as_tensor(particle_set.shifts_angstrom, dtype=dtype)
        self._pixel = torch.as_tensor(particle_set.pixel_size_angstrom * (box / self.box), dtype=dtype)

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, positions) -> ParticleBatch:
        """Items at dataset ``positions`` [B], batched: image [B, D', D'], rotation [B, 3, 3], …"""
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        particles = self.indices[pos]
        images = self.particle_set.images.read(particles)
        if self.box != images.shape[-1]:
            images = downsample_images(images, self.box)
        index = torch.from_numpy(particles)
        return ParticleBatch(
            image=images.to(self.dtype),
            rotation=self._rotations[index],
            shift_angstrom=self._shifts[index],
            ctf=self._ctf[index],
            pixel_size_angstrom=self._pixel[index],
            index=index,
        )

    def __getitem__(self, position):
        if np.ndim(position) > 0:
            return self.get_batch(np.asarray(position))
        position = int(position)
        if not -len(self) <= position < len(self):
            raise IndexError(f"position {position} out of range for {len(self)} particles")
        batch = self.get_batch([position % len(self)])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, positions: list[int]) -> list[dict[str, torch.Tensor]]:
        """Batched read for ``DataLoader`` (one pass over the files); items for its collate_fn."""
        batch = self.get_batch(positions)
        return [{key: value[i] for key, value in batch.items()} for i in range(len(positions))]
