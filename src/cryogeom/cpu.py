"""How many CPU cores this process may use, and PyTorch's threads set to match.

``os.cpu_count()`` counts the machine's cores; a process limited by CPU affinity (``taskset``,
Slurm's ``--cpus-per-task``, a container's cpuset) or by a cgroup CPU quota (Docker's ``--cpus``,
Kubernetes limits) may use fewer. Running more compute threads than that makes every parallel
region wait for threads that are not running.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_quota_cores() -> float | None:
    """The cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) CPU quota in cores, if one is set."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota_cores()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def set_threads(threads: int | None) -> int:
    """PyTorch's intra-op threads: ``threads``, or :func:`available_cores` when None. Returns the
    number set. Inter-op parallelism stays at one thread: cryogeom's graphs are one chain of ops."""
    import torch

    n = int(threads) if threads else available_cores()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: keep what is there
        pass
    return n


class ThreadTuner:
    """Chooses, during training, the intra-op thread count that runs fastest on the machine now.

    On a quiet machine every core helps; beside another busy process, threads that wait for a
    core at every parallel region make each step slower than fewer threads would. Every
    ``period`` steps the tuner runs ``probe`` steps with each of ``candidates`` (e.g. all cores and
    one), keeps the fastest (median step time), and trains with it until the next probe, so it
    follows the load as other jobs start and stop. The cost on a quiet machine is the probe steps
    run with the slower setting.
    """

    def __init__(self, candidates, *, period: int = 200, probe: int = 4):
        self.candidates = list(dict.fromkeys(int(c) for c in candidates))
        self.period, self.probe = int(period), int(probe)
        self.chosen = self.candidates[0]
        self._times: dict[int, list[float]] = {}

    def _probing(self, step: int) -> int | None:
        """The candidate probed at ``step``, or None outside a probe window."""
        k = step % self.period
        window = self.probe * len(self.candidates)
        return self.candidates[k // self.probe] if k < window and len(self.candidates) > 1 else None

    def threads_for(self, step: int) -> int:
        probed = self._probing(step)
        return self.chosen if probed is None else probed

    def before_step(self, step: int) -> None:
        import torch

        n = self.threads_for(step)
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def after_step(self, step: int, seconds: float) -> None:
        probed = self._probing(step)
        if probed is None:
            return
        self._times.setdefault(probed, []).append(seconds)
        if step % self.period == self.probe * len(self.candidates) - 1:  # the window's last step
            medians = {c: sorted(t)[len(t) // 2] for c, t in self._times.items() if t}
            self.chosen = min(medians, key=medians.get)
            self._times.clear()
