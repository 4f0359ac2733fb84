"""Checkpoints: written atomically (temporary file, then rename), read with ``weights_only=True``.

A checkpoint holds only tensors, numbers, strings and dicts of them, so loading it runs no code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cryogeom.errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated file, or one that is not a checkpoint
        raise InputError(f"{path}: not a readable cryogeom checkpoint ({type(exc).__name__})") from None
