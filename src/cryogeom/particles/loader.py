"""Training batches in a fixed order, optionally read ahead by ``DataLoader`` worker processes.

The order of the particles is fixed by the caller for each epoch (a permutation drawn from the
seed and the epoch). :class:`GlobalBatchSampler` cuts that order into *global* batches and yields
this process's contiguous share of each (:func:`shard_slice`; one process = the whole batch),
from a given batch on (to resume mid-epoch). :class:`BatchLoader` turns the shares into batch
dicts (:meth:`ParticleDataset.get_batch`) either in this process (``num_workers=0``) or in
``num_workers`` persistent worker processes that read ahead while the model computes. The
sampler runs in the main process and the workers only read what it names, so the batches, their
order and their contents do not depend on ``num_workers``.

Memory: workers receive the dataset by ``fork`` (shared, copy-on-write; with ``spawn`` it pickles
to file names and frame numbers, never pixels) and read pixels with ``pread``
(:mod:`cryogeom.particles.stack`), so neither they nor the main process hold the stack; only the
batches in flight (``num_workers · prefetch_factor`` of them) are in memory.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from cryogeom.particles.batch import ParticleBatch


def shard_slice(n: int, rank: int, world_size: int) -> slice:
    """The contiguous share of process ``rank`` of ``n`` items split over ``world_size`` processes.

    Shares differ by at most one item (the first ``n % world_size`` processes take one more), as
    :func:`numpy.array_split`.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    base, extra = divmod(int(n), int(world_size))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


class GlobalBatchSampler(Sampler):
    """This process's share of every global batch of an epoch, in order.

    ``set_epoch(sequence, start_batch)`` gives the epoch's dataset positions in training order;
    global batch b is ``sequence[b·B : (b+1)·B]``. Iteration yields, for b = start_batch, …, the
    int64 array of this process's share. A last batch with fewer than ``min_per_process`` images
    for some process (BatchNorm needs 2) is left out.
    """

    def __init__(self, batch_size: int, *, rank: int = 0, world_size: int = 1, min_per_process: int = 2):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        self.min_per_process = int(min_per_process)
        self.sequence = np.empty(0, dtype=np.int64)
        self.start_batch = 0

    def set_epoch(self, sequence, start_batch: int = 0) -> "GlobalBatchSampler":
        self.sequence = np.asarray(sequence, dtype=np.int64).reshape(-1)
        self.start_batch = int(start_batch)
        return self

    @property
    def n_batches(self) -> int:
        """Global batches in the epoch (the last may be partial)."""
        return math.ceil(len(self.sequence) / self.batch_size)

    def global_sizes(self) -> list[int]:
        """Sizes of the global batches that iteration yields shares of, from ``start_batch`` on."""
        sizes = []
        for b in range(self.start_batch, self.n_batches):
            n = min(self.batch_size, len(self.sequence) - b * self.batch_size)
            if n // self.world_size < self.min_per_process:
                break
            sizes.append(n)
        return sizes

    def __iter__(self) -> Iterator[np.ndarray]:
        for b, n in enumerate(self.global_sizes(), start=self.start_batch):
            batch = self.sequence[b * self.batch_size : b * self.batch_size + n]
            yield batch[shard_slice(n, self.rank, self.world_size)]

    def __len__(self) -> int:
        return len(self.global_sizes())


class BatchLoader:
    """``(n_global, batch)`` for each share the sampler yields: the global batch size and the batch dict.

    ``num_workers = 0`` reads each batch when it is asked for; ``num_workers > 0`` keeps that many
    worker processes (for the life of the loader) reading up to ``prefetch_factor`` batches each
    ahead. Mutate the sampler (:meth:`GlobalBatchSampler.set_epoch`) between iterations.
    """

    def __init__(self, dataset, sampler: GlobalBatchSampler, *, num_workers: int = 0, prefetch_factor: int = 2,
                 pin_memory: bool = False):  # fmt: skip
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.sampler = sampler
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.loader = None
        if self.num_workers > 0:
            # batch_size=None: each sampled item is a whole array of positions, read by dataset[positions]
            # (ParticleDataset.get_batch) in a worker; the batch dict comes back through shared memory.
            self.loader = DataLoader(
                dataset, sampler=sampler, batch_size=None, num_workers=self.num_workers,
                prefetch_factor=prefetch_factor, persistent_workers=True, pin_memory=pin_memory,
            )  # fmt: skip

    def __iter__(self) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        sizes = self.sampler.global_sizes()
        if self.loader is None:
            batches = (self.dataset.get_batch(positions) for positions in self.sampler)
            if self.pin_memory:  # page-locked, so that the copy to the GPU can run asynchronously
                batches = (ParticleBatch(b).pin_memory() for b in batches)
        else:
            batches = iter(self.loader)
        return zip(sizes, batches)

    def __len__(self) -> int:
        return len(self.sampler)
