"""The run directory: what ``cryogeom train`` writes, and every other command reads and adds to.

Every file name is a constant here; nothing else in the package spells one. A run directory holds

    config.json              every setting, the package version, the command line, the particle file
    base.pdb                 the base structure as given (all atoms when it had them)
    validation_indices.npy   the held-out particles (indices into the particle set), never trained on
    training_indices.npy     the others
    calibration.json         the detected contrast polarity and fixed output normalisation
    metrics.csv              one row per epoch (and per interruption): losses, images/s, validation
    checkpoint.pt            everything needed to resume (written atomically)
    model.pt                 the trained network (weights and configuration)
    evaluation.json          scores against ground truth (``cryogeom evaluate``)
    report.html              the report (``cryogeom report``)
    figures/, analysis/      figures and latent-space analysis (``evaluate``, ``analyze``)
    cryogeom_files.json      the manifest: every path above that cryogeom wrote into this directory

cryogeom replaces or removes only what it wrote (:func:`owned`: what the manifest lists; in a run
written before manifests existed, the names above): :func:`claim` refuses to write over anything
else, and a forced restart (``--force``) removes only that, after the new inputs were checked.
Checkpoints hold only tensors, numbers, strings and
dicts of them and are read with ``weights_only=True``, so loading one runs no code.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cryogeom import files
from cryogeom.errors import InputError
from cryogeom.structure.write import write_all_atom_pdb, write_pdb

CONFIG = "config.json"
BASE = "base.pdb"
VALIDATION_INDICES = "validation_indices.npy"
TRAINING_INDICES = "training_indices.npy"
CALIBRATION = "calibration.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
EVALUATION = "evaluation.json"
REPORT = "report.html"
FIGURES_DIR = "figures"
ANALYSIS_DIR = "analysis"
TENSORBOARD_DIR = "tensorboard"
MANIFEST = "cryogeom_files.json"
PARTICLE_QUALITY = "particles.npz"
REFINED_STAR = "refined_particles.star"

#: a directory holding one of these holds a run
MARKERS = (CONFIG, CHECKPOINT, MODEL)
#: what ``cryogeom train`` writes
TRAIN_WRITES = (CONFIG, BASE, VALIDATION_INDICES, TRAINING_INDICES, CALIBRATION, METRICS, CHECKPOINT, MODEL, TENSORBOARD_DIR,
                PARTICLE_QUALITY, REFINED_STAR)
#: everything a run directory holds that cryogeom writes
RUN_NAMES = (*TRAIN_WRITES, EVALUATION, REPORT, FIGURES_DIR, ANALYSIS_DIR)
#: what each file is, for the report's list of files
DESCRIPTIONS = {
    MODEL: "trained network (weights and configuration)",
    CHECKPOINT: "checkpoint for --resume",
    METRICS: "one row per epoch: losses, images/s, validation",
    EVALUATION: "scores against ground truth (cryogeom evaluate)",
    CONFIG: "every setting, version, command line",
    CALIBRATION: "contrast polarity and output normalisation",
    BASE: "base structure",
    VALIDATION_INDICES: "held-out particles",
    TRAINING_INDICES: "training particles",
    PARTICLE_QUALITY: "per particle: score, junk probability, pose correction",
    REFINED_STAR: "the particles with their refined poses (RELION .star)",
}


# -- the manifest -------------------------------------------------------------------------------
def manifest(run_dir) -> list[str]:
    """The paths (relative to ``run_dir``) that cryogeom recorded writing there."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return []
    try:
        names = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def record(run_dir, *paths) -> None:
    """Add ``paths`` (files or directories inside ``run_dir``) to its manifest."""
    run_dir = Path(run_dir)
    names = manifest(run_dir)
    for p in paths:
        rel = Path(p).resolve().relative_to(run_dir.resolve()).as_posix() if Path(p).is_absolute() else Path(p).as_posix()
        if rel not in names:
            names.append(rel)
    files.write_json(run_dir / MANIFEST, names)


def write_json(run_dir, name: str, obj, *, sort_keys: bool = False) -> Path:
    """``run_dir/name`` as JSON, atomically, recorded in the manifest (never over a user's file)."""
    claim(run_dir, name)
    path = files.write_json(Path(run_dir) / name, obj, sort_keys=sort_keys)
    record(run_dir, name)
    return path


def save_npy(run_dir, name: str, array) -> Path:
    claim(run_dir, name)
    path = files.save_npy(Path(run_dir) / name, array)
    record(run_dir, name)
    return path


# -- what cryogeom may replace ------------------------------------------------------------------
def holds_run(run_dir) -> bool:
    run_dir = Path(run_dir)
    return run_dir.is_dir() and any((run_dir / m).exists() for m in MARKERS)


def has_trained(run_dir) -> bool:
    """Training has checkpointed at least once (a start that failed before has no checkpoint)."""
    return any((Path(run_dir) / m).is_file() for m in (CHECKPOINT, MODEL))


def _is_run_without_manifest(run_dir: Path) -> bool:
    """A run written before manifests existed: a cryogeom config.json beside a checkpoint or model."""
    if not has_trained(run_dir):
        return False
    try:
        meta = json.loads((run_dir / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and "config" in meta and "version" in meta


def owned(run_dir) -> set[str]:
    """The names in ``run_dir`` that cryogeom wrote and so may replace or remove: those its manifest
    lists; in a run written before manifests existed, the run's own names; else none."""
    run_dir = Path(run_dir)
    if (run_dir / MANIFEST).is_file():
        return {*manifest(run_dir), MANIFEST}
    return set(RUN_NAMES) if _is_run_without_manifest(run_dir) else set()


def claim(run_dir, *names: str) -> None:
    """:class:`InputError` unless cryogeom may write ``run_dir/name`` for every name: it does not
    exist yet, or cryogeom wrote it. Nothing a user put there is ever replaced."""
    run_dir = Path(run_dir)
    mine = None
    for name in names:
        path = run_dir / name
        if path.exists() or path.is_symlink():
            mine = owned(run_dir) if mine is None else mine
            if name not in mine:
                raise InputError(
                    f"{path}: exists and was not written by cryogeom; it is left as it is "
                    "(move it away or choose another output directory)"
                )


def check_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start a run in ``run_dir`` unless it may: resuming needs a checkpoint; a directory
    holding a run that trained needs --force; a file of the user's where cryogeom would write is
    never replaced. Nothing is written."""
    run_dir = Path(run_dir)
    files.check_writable_dir(run_dir, "run directory (-o)")
    if resume:
        if not (run_dir / CHECKPOINT).is_file():
            if (run_dir / CONFIG).is_file() and not (run_dir / MODEL).is_file():
                raise InputError(f"{run_dir}: no {CHECKPOINT} to resume from: the run stopped before its first checkpoint; start it again without --resume")
            raise InputError(f"{run_dir}: no {CHECKPOINT} to resume from")
        claim(run_dir, *TRAIN_WRITES)
        return
    if holds_run(run_dir) and has_trained(run_dir) and not force:
        raise InputError(f"{run_dir}: holds another run; use --resume to continue it or --force to overwrite it")
    claim(run_dir, *TRAIN_WRITES, MANIFEST)


def remove_previous_run(run_dir: Path) -> None:
    """Delete what an earlier run wrote into ``run_dir`` (a forced start, or a start that failed
    before its first checkpoint): the names cryogeom wrote (:func:`owned`); other files stay."""
    run_dir = Path(run_dir)
    names = owned(run_dir) if holds_run(run_dir) else set()
    for name in sorted(names) + [MANIFEST]:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def remove_stale_temporaries(run_dir: Path) -> None:
    """Remove the hidden temporary files (``.NAME.XXXX.part``) of cryogeom's own files that a killed
    process left behind in ``run_dir``."""
    patterns = [f".{name}.*.part" for name in TRAIN_WRITES + (MANIFEST,)]
    patterns += [f".{name}.tmp*" for name in (CHECKPOINT, MODEL)]  # the names earlier versions used
    for pattern in patterns:
        for tmp in Path(run_dir).glob(pattern):
            with contextlib.suppress(OSError):
                tmp.unlink()


def write_base_structure(run_dir, base) -> Path:
    """The base structure as given (all atoms when it has them), so a run directory stands alone."""
    claim(run_dir, BASE)
    path = Path(run_dir) / BASE
    (write_all_atom_pdb if base.has_atoms else write_pdb)(path, base)
    record(run_dir, BASE)
    return path


# -- checkpoints --------------------------------------------------------------------------------
def save_checkpoint(obj: dict, path) -> None:
    """``torch.save`` of ``obj`` to ``path``, atomically."""
    claim(Path(path).parent, Path(path).name)
    with files.atomic_output(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    record(Path(path).parent, Path(path).name)


def load_checkpoint(path, map_location="cpu", required: tuple[str, ...] = ()) -> dict:
    """A checkpoint or model file, read with ``weights_only=True``; one-line error if unreadable
    or without the ``required`` entries."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated file, or one that is not a checkpoint
        raise InputError(f"{path}: not a readable cryogeom checkpoint ({type(exc).__name__})") from None
    if not isinstance(saved, dict):
        raise InputError(f"{path}: not a cryogeom checkpoint (holds a {type(saved).__name__}, expected a dict of weights and settings)")
    missing = [k for k in required if k not in saved]
    if missing:
        raise InputError(f"{path}: not a cryogeom checkpoint (no {', '.join(repr(k) for k in missing)} entry)")
    return saved


# -- the metrics log ----------------------------------------------------------------------------
class MetricsLog:
    """metrics.csv (one row per epoch), and TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir, enabled: bool):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS
        self.enabled = enabled
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional, heavy

                self.writer = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR))
                record(self.run_dir, TENSORBOARD_DIR)
            except Exception:  # tensorboard is optional
                self.writer = None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        claim(self.run_dir, METRICS)
        rows, fields = [], list(row)
        if self.path.exists():
            with open(self.path, newline="") as fh:
                reader = csv.DictReader(fh)
                rows, header = list(reader), list(reader.fieldnames or [])
            if header:
                fields = header + [k for k in row if k not in header]
            # rows of steps not before this one were written by a continuation whose checkpoint was
            # lost (the run resumed from an earlier one): this row replaces them
            rows = [r for r in rows if not _at_or_after(r.get("step"), row.get("step"))]
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in fields} for r in rows)
        w.writerow({k: row.get(k, "") for k in fields})
        files.write_text(self.path, out.getvalue())
        record(self.run_dir, METRICS)
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.writer.add_scalar(key, value, row.get("step", 0))
            self.writer.flush()


def _at_or_after(step_text, step) -> bool:
    try:
        return step is not None and float(step_text) >= float(step)
    except (TypeError, ValueError):
        return False


def read_metrics(run_dir) -> pd.DataFrame | None:
    """``metrics.csv`` of the run as a DataFrame (one row per epoch), or None if there is none yet."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return table if len(table) else None


# -- reading a run's metadata -------------------------------------------------------------------
def require_run_dir(run_dir) -> Path:
    """``run_dir`` as a Path, or :class:`InputError` if it is not a directory holding ``config.json``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    if not (run_dir / CONFIG).is_file():
        raise InputError(f"{run_dir / CONFIG}: missing (is {run_dir} a directory written by cryogeom train?)")
    return run_dir


def read_run_metadata(run_dir) -> dict:
    """The contents of ``run_dir/config.json`` (settings, particle file, counts, versions)."""
    path = require_run_dir(run_dir) / CONFIG
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
        raise InputError(f"{Path(run_dir) / CONFIG}: records no 'particles' file; give --particles")
    path = Path(recorded)
    if not path.is_file():
        raise InputError(f"{path}: the particle file recorded in {Path(run_dir) / CONFIG} is not found; give --particles")
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
            f"({CONFIG} n_particles); give the run's particle file"
        )
    if len(validation_indices) and int(np.max(validation_indices)) >= particles.n:
        raise InputError(
            f"{particles.source_path}: holds {particles.n} particles, fewer than the run's validation indices address "
            f"(up to {int(np.max(validation_indices))})"
        )


def read_validation_indices(run_dir) -> np.ndarray:
    path = Path(run_dir) / VALIDATION_INDICES
    if not path.is_file():
        raise InputError(f"{path}: missing (is {run_dir} a cryogeom run directory?)")
    return np.load(path, allow_pickle=False)


def read_particle_quality(run_dir) -> dict | None:
    """The arrays of ``run_dir/particles.npz`` (score, junk probability, pose correction per
    particle), or None where training wrote none."""
    path = Path(run_dir) / PARTICLE_QUALITY
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a particles.npz written by cryogeom train ({exc})") from None
