"""A finished (or checkpointed) run directory, loaded for prediction, evaluation and analysis.

A run directory holds ``config.json``, ``base.pdb`` (the base structure as given, all atoms
when it had them), ``calibration.json``, ``validation_indices.npy`` and ``model.pt`` (or, while
training, ``checkpoint.pt``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cryogeom.errors import InputError
from cryogeom.train import checkpoint as ckpt
from cryogeom.train.build import build_model
from cryogeom.train.calibration import Calibration
from cryogeom.train.config import TrainConfig

BASE_NAME = "base.pdb"


@dataclass
class Run:
    path: Path
    config: TrainConfig
    calibration: Calibration
    base: object  # cryogeom.structure.io.Structure, as given (not centred)
    model: torch.nn.Module
    box: int
    pixel_size_angstrom: float

    @property
    def base_centroid(self) -> np.ndarray:
        """Add this to the network's Cα (centred frame) to put them in the base structure's frame."""
        return self.base.ca_centroid()

    def validation_indices(self) -> np.ndarray:
        path = self.path / "validation_indices.npy"
        if not path.is_file():
            raise InputError(f"{path}: missing (is {self.path} a cryogeom run directory?)")
        return np.load(path, allow_pickle=False)


def load_run(run_dir, *, prefer_checkpoint: bool = False) -> Run:
    from cryogeom.structure.io import read_structure

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    names = [ckpt.CHECKPOINT_NAME, ckpt.MODEL_NAME] if prefer_checkpoint else [ckpt.MODEL_NAME, ckpt.CHECKPOINT_NAME]
    found = [run_dir / n for n in names if (run_dir / n).is_file()]
    if not found:
        raise InputError(f"{run_dir}: holds no {ckpt.MODEL_NAME} or {ckpt.CHECKPOINT_NAME} (has training started?)")
    saved = ckpt.load(found[0])
    meta_path = run_dir / "config.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: missing (is {run_dir} a cryogeom run directory?)")
    meta = json.loads(meta_path.read_text())
    config = TrainConfig.from_dict(json.loads(saved["config"]))
    base_path = run_dir / BASE_NAME
    if not base_path.is_file():
        raise InputError(f"{base_path}: missing (is {run_dir} a cryogeom run directory?)")
    base = read_structure(base_path)
    box = int(saved.get("box", meta.get("box", 0)))
    pixel = float(saved.get("pixel_size_angstrom", meta.get("pixel_size_angstrom", 0)))
    model = build_model(config, base, box, pixel)
    model.load_state_dict(saved["model"])
    model.eval()
    return Run(run_dir, config, Calibration(**json.loads(saved["calibration"])), base, model, box, pixel)
