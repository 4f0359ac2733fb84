"""A finished (or checkpointed) run directory, loaded for prediction, evaluation and analysis.

The files are those of :mod:`cryogeom.run_dir`; this module rebuilds the network from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cryogeom import run_dir as rd
from cryogeom.errors import InputError
from cryogeom.structure.read import read_structure
from cryogeom.structure.types import Structure
from cryogeom.train.build import build_model
from cryogeom.train.calibration import Calibration
from cryogeom.train.config import TrainConfig


@dataclass
class Run:
    path: Path
    config: TrainConfig
    calibration: Calibration
    base: Structure  # as given (not centred)
    model: torch.nn.Module
    box: int
    pixel_size_angstrom: float

    @property
    def base_centroid(self) -> np.ndarray:
        """Add this to the network's Cα (centred frame) to put them in the base structure's frame."""
        return self.base.ca_centroid()

    def validation_indices(self) -> np.ndarray:
        return rd.read_validation_indices(self.path)


def load_run(run_dir, *, prefer_checkpoint: bool = False) -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    names = [rd.CHECKPOINT, rd.MODEL] if prefer_checkpoint else [rd.MODEL, rd.CHECKPOINT]
    found = [run_dir / n for n in names if (run_dir / n).is_file()]
    if not found:
        raise InputError(f"{run_dir}: holds no {rd.MODEL} or {rd.CHECKPOINT} (has training started?)")
    saved = rd.load_checkpoint(found[0])
    meta_path = run_dir / rd.CONFIG
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: missing (is {run_dir} a cryogeom run directory?)")
    meta = json.loads(meta_path.read_text())
    config = TrainConfig.from_dict(json.loads(saved["config"]))
    base_path = run_dir / rd.BASE
    if not base_path.is_file():
        raise InputError(f"{base_path}: missing (is {run_dir} a cryogeom run directory?)")
    base = read_structure(base_path)
    box = int(saved.get("box", meta.get("box", 0)))
    pixel = float(saved.get("pixel_size_angstrom", meta.get("pixel_size_angstrom", 0)))
    model = build_model(config.network, base, box, pixel)
    model.load_state_dict(saved["model"])
    model.eval()
    return Run(run_dir, config, Calibration(**json.loads(saved["calibration"])), base, model, box, pixel)
