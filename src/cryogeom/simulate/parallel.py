"""Rendering a data set on several processes, in order, with results independent of the worker count."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from cryogeom.simulate.simulator import ImageFormation, ParticleParameters

_FORMATION: ImageFormation | None = None


def _init_worker(formation: ImageFormation) -> None:
    global _FORMATION
    torch.set_num_threads(1)  # the processes share the cores
    _FORMATION = formation


def _render(task: tuple[ParticleParameters, int, int]) -> np.ndarray:
    params, first, seed = task
    return _FORMATION.images(params, first, seed)


def render_chunks(
    formation: ImageFormation,
    params: ParticleParameters,
    seed: int,
    *,
    workers: int = 1,
    chunk_size: int = 16,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the images of all particles as float32 chunks [k, box, box], in particle order.

    ``workers`` > 1 renders chunks in that many processes, otherwise in this one; one torch thread
    each (the previous setting is restored when the iterator ends). Every
    particle's noise comes from its own seed (:func:`~cryogeom.simulate.simulator.particle_rng`), so
    the images do not depend on ``workers`` or ``chunk_size``. ``progress`` shows a tqdm bar.
    """
    n = len(params)
    tasks = [(params[s : s + chunk_size], s, seed) for s in range(0, n, chunk_size)]
    with tqdm(total=n, unit="img", desc="simulate", disable=not progress) as bar:
        if workers <= 1:
            # One torch thread here too: the rendering's operations are too small to gain from
            # intra-op threads, which cost far more than they save when the cores are busy.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for task in tasks:
                    images = formation.images(*task)
                    bar.update(len(images))
                    yield images
            finally:
                torch.set_num_threads(threads)
            return
        # fork (Linux) starts at once and shares the formation's arrays, as torch's DataLoader
        # workers do; elsewhere spawn (each worker imports the package and unpickles the formation).
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(formation,)) as pool:
            for images in pool.map(_render, tasks):
                bar.update(len(images))
                yield images
