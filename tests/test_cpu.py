"""Cores this process may use, and the thread tuner that follows the machine's load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryogeom.cpu import ThreadTuner, available_cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_available_cores_follow_the_affinity():
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from cryogeom.cpu import available_cores; print(available_cores())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


def _run(tuner, steps, seconds_for):
    """Feed ``steps`` steps whose duration depends on the thread count in use; the counts used."""
    used = []
    for step in range(steps):
        n = tuner.threads_for(step)
        used.append(n)
        tuner.after_step(step, seconds_for(n))
    return used


def test_the_tuner_keeps_all_cores_on_a_quiet_machine_and_one_beside_a_busy_process():
    tuner = ThreadTuner([2, 1], period=20, probe=2)
    quiet = _run(tuner, 40, lambda n: {2: 0.10, 1: 0.17}[n])
    assert quiet[:4] == [2, 2, 1, 1] and set(quiet[4:20]) == {2} and tuner.chosen == 2
    shared = _run(tuner, 40, lambda n: {2: 0.30, 1: 0.20}[n])  # another process took a core
    assert tuner.chosen == 1 and set(shared[4:20]) == {1}
    _run(tuner, 20, lambda n: {2: 0.10, 1: 0.17}[n])  # and gave it back
    assert tuner.chosen == 2


def test_one_candidate_never_probes():
    tuner = ThreadTuner([1, 1], period=10, probe=3)
    assert set(_run(tuner, 30, lambda n: 0.1)) == {1}
