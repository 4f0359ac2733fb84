import os

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
