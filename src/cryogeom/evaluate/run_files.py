"""What evaluation reads from a run directory: its metadata, its particle file, its metrics.

A run directory is written by ``cryogeom train`` (see :mod:`cryogeom.train.loop`): ``config.json``
records the particle file it was trained on (``"particles"``) and how many particles it held
(``"n_particles"``); ``metrics.csv`` has one row per epoch. These helpers check that the files
given to ``cryogeom evaluate`` / ``cryogeom report`` belong to the run, with one-line errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryogeom.errors import InputError

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.csv"


def require_run_dir(run_dir) -> Path:
    """``run_dir`` as a Path, or :class:`InputError` if it is not a directory holding ``config.json``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    if not (run_dir / CONFIG_NAME).is_file():
        raise InputError(f"{run_dir / CONFIG_NAME}: missing (is {run_dir} a directory written by cryogeom train?)")
    return run_dir


def read_run_metadata(run_dir) -> dict:
    """The contents of ``run_dir/config.json`` (settings, particle file, counts, versions)."""
    path = require_run_dir(run_dir) / CONFIG_NAME
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def run_particles_path(run_dir, particles: str | os.PathLike | None = None) -> Path:
    """The particle file to use: ``particles`` if given, else the one recorded in ``config.json``."""
    if particles is not None:
        return Path(particles)
    meta = read_run_metadata(run_dir)
    recorded = meta.get("particles")
    if not recorded:
        raise InputError(f"{Path(run_dir) / CONFIG_NAME}: records no 'particles' file; give --particles")
    path = Path(recorded)
    if not path.is_file():
        raise InputError(f"{path}: the particle file recorded in {Path(run_dir) / CONFIG_NAME} is not found; give --particles")
    return path


def check_run_particles(run_dir, particles, validation_indices: np.ndarray) -> None:
    """:class:`InputError` unless ``particles`` (a ParticleSet) can be the set the run was trained on.

    The run records the number of particles; every held-out index must address one of them.
    """
    meta = read_run_metadata(run_dir)
    expected = meta.get("n_particles")
    if expected is not None and int(expected) != particles.n:
        raise InputError(
            f"{particles.source_path}: holds {particles.n} particles but the run {run_dir} was trained on {int(expected)} "
            f"({CONFIG_NAME} n_particles); give the run's particle file"
        )
    if len(validation_indices) and int(np.max(validation_indices)) >= particles.n:
        raise InputError(
            f"{particles.source_path}: holds {particles.n} particles, fewer than the run's validation indices address "
            f"(up to {int(np.max(validation_indices))})"
        )


def read_metrics(run_dir) -> pd.DataFrame | None:
    """``metrics.csv`` of the run as a DataFrame (one row per epoch), or None if there is none yet."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return table if len(table) else None
