import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# Tests of the benchmark scripts' helpers import them from benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds."""
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    """Run a test in float32 and float64; use :func:`tol` for matching tolerances."""
    return request.param


def tol(dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-10


# ---------------------------------------------------------------------------------------------
# Shared small data: a simulated ADK set and a briefly trained run (built once per session).

TINY_SIM_ARGS = [
    "--frames", "0:102:17", "--per-conf", "12", "--box", "32", "--pixel", "2.5",
    "--dose", "200", "--seed", "3", "--workers", "1", "--quiet",
]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A simulated ADK data set: 6 frames × 12 images, 32 px at 2.5 Å (80 Å field), 200 e/Å²."""
    from cryogeom.cli import main

    out = tmp_path_factory.mktemp("tiny_sim") / "sim"
    assert main(["simulate", *TINY_SIM_ARGS, "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory):
    """A run directory trained for 2 epochs on :func:`tiny_dataset` (seconds, not minutes)."""
    from cryogeom.cli import main

    run = tmp_path_factory.mktemp("tiny_run") / "run"
    status = main([
        "train", str(tiny_dataset / "particles.star"), "--structure", str(tiny_dataset / "base.pdb"),
        "-o", str(run), "--epochs", "2", "--batch-size", "16", "--no-progress", "--refine-poses",
        "--ground-truth", str(tiny_dataset / "ground_truth.npz"),
    ])
    assert status == 0
    return run
