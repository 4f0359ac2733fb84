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
    base: Structure  # as given
    model: torch.nn.Module
    box: int
    pixel_size_angstrom: float

    @property
    def rotation_centre(self) -> np.ndarray:
        """[3] Å: add this to the network's Cα (about the particles' rotation centre) to put them in
        the base structure's own frame (the consensus map's, :mod:`cryogeom.structure.map_frame`)."""
        return self.model.rotation_centre_angstrom.detach().cpu().double().numpy()

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
    path = found[0]
    saved = rd.load_checkpoint(path, required=("model", "config", "calibration"))
    meta = rd.read_run_metadata(run_dir)
    try:
        config = TrainConfig.from_dict(json.loads(saved["config"]))
        config.check()
        calibration = Calibration(**json.loads(saved["calibration"]))
    except (TypeError, ValueError, AttributeError) as exc:  # InputError is a ValueError
        raise InputError(f"{path}: its 'config' or 'calibration' is not what cryogeom train writes ({exc})") from None
    base_path = run_dir / rd.BASE
    if not base_path.is_file():
        raise InputError(f"{base_path}: missing (is {run_dir} a cryogeom run directory?)")
    base = read_structure(base_path)
    trained_residues = saved.get("n_residues", meta.get("n_residues"))
    if trained_residues is not None and int(trained_residues) != base.n_residues:
        raise InputError(f"{base_path}: has {base.n_residues} residues but {path} was trained with {int(trained_residues)}; it is not this run's base structure")
    box = int(saved.get("box", meta.get("box", 0)))
    pixel = float(saved.get("pixel_size_angstrom", meta.get("pixel_size_angstrom", 0)))
    if box < 1 or not pixel > 0:
        raise InputError(f"{path}: records no box or pixel size (expected 'box' and 'pixel_size_angstrom' in it or in {rd.CONFIG})")
    weights = dict(saved["model"])
    # runs saved before the rotation centre was a setting rendered about the base's Cα centroid
    centre = weights.setdefault("rotation_centre_angstrom", torch.as_tensor(base.ca_centroid(), dtype=torch.float32))
    centre = np.asarray(centre, dtype=np.float64).reshape(-1)
    if centre.shape != (3,) or not np.isfinite(centre).all():
        raise InputError(f"{path}: its rotation centre is non-finite or not three numbers ({centre}); nothing was written")
    model = build_model(config.network, base, box, pixel, centre)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: its weights do not fit the network of its configuration and {base_path} ({str(exc).splitlines()[0][:120]})") from None
    model.eval()
    return Run(run_dir, config, calibration, base, model, box, pixel)
