"""Distributed data-parallel training with PyTorch's own engine (DDP, launched by ``torchrun``).

``torchrun --nproc-per-node=P -m cryogeom train ...`` (nccl on GPUs, gloo on CPUs). The run is
defined by its *global* batch: every process draws the same particle order (a function of the
seed and the epoch), takes its contiguous share of every global batch (:meth:`Distributed.shard`:
shares differ by at most one image), and the gradient is that of the loss of the whole global
batch, so P processes take the same optimisation steps as one process at the same batch size
(to float rounding):

* DDP averages the processes' gradients; each process scales its loss by ``P · n_local / n_global``
  (:meth:`Distributed.loss_scale`) so that the average is the gradient of the global batch mean
  even when the shares are unequal (the last batch of an epoch);
* BatchNorm statistics are those of the global batch: BatchNorm layers become
  :class:`torch.nn.SyncBatchNorm` on GPUs and :class:`GlobalBatchNorm` on CPUs (PyTorch's
  SyncBatchNorm refuses CPU tensors); their running statistics are then equal on every process;
* the logged loss terms are global batch means (:meth:`Distributed.mean`), and every decision
  that ends a loop (a diverged loss, the time limit) is taken by all processes together
  (:meth:`Distributed.any`), so no process is left waiting in a collective.

Rank 0 alone writes checkpoints, logs and metrics and runs validation (on the unwrapped model in
eval mode: no collectives). Calibration runs on every rank on the same sample and rank 0's result
is broadcast. A checkpoint holds the global state only (weights, optimiser, epoch and batch counter
at the global batch size), so a run resumes with a different number of processes.

Tested on CPUs with gloo (tests/test_distributed.py). The GPU path (nccl, SyncBatchNorm, model,
optimiser state and batches moved to ``LOCAL_RANK``'s device) follows PyTorch's documented use
but has not been run here (no GPU on the development machine).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cryogeom.errors import InputError
from cryogeom.particles.loader import shard_slice


DEVICES = ("auto", "cuda", "cpu")


def cuda_requested(device: str) -> bool:
    """Whether to compute on CUDA for the ``device`` setting ("auto", "cuda", "cpu")."""
    if device not in DEVICES:
        raise InputError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        raise InputError(f"--device cuda: PyTorch sees no CUDA GPU here (torch {torch.__version__}, {build} build); "
                         "use --device cpu, or auto to take a GPU where there is one")
    return device != "cpu" and available


@dataclass
class Distributed:
    """This process's place in the run: ``rank`` of ``world_size`` processes, computing on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def single(cls) -> "Distributed":
        return cls()

    @classmethod
    def from_environment(cls, device: str = "auto") -> "Distributed":
        """Join the process group that ``torchrun`` describes in the environment (or run alone).

        ``device``: "auto" (a CUDA GPU where PyTorch sees one, else the CPU), "cuda" (an
        :class:`InputError` where there is none) or "cpu". nccl with CUDA (one GPU per process,
        ``LOCAL_RANK``), gloo otherwise.
        """
        use_cuda = cuda_requested(device)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device=torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu"))
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            # Without destroy_process_group a gloo process can abort at exit ("terminate called
            # without an active exception", pytorch/pytorch#190489): destroy it while Python is alive.
            atexit.register(_destroy_process_group)
        rank = dist.get_rank()
        device = torch.device("cpu")
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        return cls(rank=rank, world_size=dist.get_world_size(), device=device)

    def describe(self) -> str:
        """Where this process computes, in words (for the log)."""
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        why = "" if torch.cuda.is_available() else " (PyTorch sees no CUDA GPU)"
        return f"the CPU{why}"

    # -- the data ----------------------------------------------------------------------------
    def shard(self, positions: np.ndarray) -> np.ndarray:
        """This process's contiguous share of a global batch (shares differ by at most one)."""
        return positions[shard_slice(len(positions), self.rank, self.world_size)]

    def loss_scale(self, n_local: int, n_global: int) -> float:
        """Factor for this process's (batch-mean) loss so that DDP's gradient average is the
        gradient of the global batch mean: ``world_size · n_local / n_global``."""
        return self.world_size * n_local / n_global

    # -- the model ---------------------------------------------------------------------------
    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> nn.Module:
        """``model`` (and ``optimizer``'s state) on this process's device; with several processes,
        its BatchNorm layers synchronised (in place, so ``model`` itself keeps training state and
        its state dict) and the model wrapped in DDP, which broadcasts rank 0's weights."""
        model.to(self.device)
        if optimizer is not None:
            for state in optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and key != "step":  # Adam keeps "step" on the CPU
                        state[key] = value.to(self.device)
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            convert_sync = nn.SyncBatchNorm.convert_sync_batchnorm
        else:
            convert_sync = GlobalBatchNorm.convert
        converted = convert_sync(model)
        # Rank 0's weights and buffers are broadcast once; after that the buffers (BatchNorm running
        # statistics of the global batch) evolve identically on every rank and need no syncing.
        return DistributedDataParallel(
            converted, device_ids=[self.device] if self.device.type == "cuda" else None, forward_sync_buffers=False
        )

    # -- agreement between processes ---------------------------------------------------------
    def mean(self, values: dict[str, float], n_local: int, n_global: int) -> dict[str, float]:
        """Global batch means of per-process batch means ``values`` (weights ``n_local / n_global``)."""
        if self.world_size == 1:
            return dict(values)
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([values[k] * n_local / n_global for k in keys], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist()))

    def maximum(self, value: float) -> float:
        """The largest of ``value`` over the processes (e.g. the training time, so all agree)."""
        if self.world_size == 1:
            return float(value)
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any."""
        if self.world_size == 1:
            return bool(flag)
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process (any picklable object)."""
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    @property
    def _comm_device(self) -> torch.device:
        return self.device  # nccl needs CUDA tensors, gloo CPU ones


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """``Σ_r t_r`` over processes; backward: the gradient of each process's input is ``Σ_r g_r``.

    (If every process r computes a loss L_r from the sum S, then ∂(Σ_r L_r)/∂t_q = Σ_r ∂L_r/∂S.)
    """

    @staticmethod
    def forward(ctx, t):
        import torch.distributed as dist

        out = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Σ over processes, differentiable (the backward pass sums the gradients over processes)."""
    return _AllReduceSum.apply(t)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all processes, for any device (gloo on CPUs).

    In training, with a process group of more than one process, the mean and the (biased)
    variance normalising the input are those of the images of *all* processes: one
    differentiable all-reduce of ``(Σ(x − c), Σ(x − c)², n)`` per channel, shifted by the running
    mean c (the same on every rank) and summed in float64, so that ``E[(x − c)²] − E[x − c]²``
    does not cancel (tested in float32 at mean/std = 100), whose backward pass sums the gradients over
    processes — the gradient of the global batch. (Every collective is a point where the
    processes wait for each other: one per layer and pass, not two, halved the communication
    time on a loaded CPU.) The
    running statistics are updated with the global mean and unbiased variance, as
    :class:`torch.nn.BatchNorm2d` does for one process with the whole batch. Otherwise (eval, one
    process) it is plain :func:`torch.nn.functional.batch_norm`. Same parameters and buffers as
    the BatchNorm it replaces (:meth:`convert`), so state dicts are interchangeable.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm: expected at least 2-D input [B, C, ...], got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        import torch.distributed as dist

        sync = self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        if not sync:
            use_batch = self.training or self.running_mean is None
            track = not self.training or self.track_running_stats
            return nn.functional.batch_norm(
                input, self.running_mean if track else None, self.running_var if track else None,
                self.weight, self.bias, use_batch, momentum, self.eps,
            )  # fmt: skip
        channels = input.shape[1]
        dims = [0] + list(range(2, input.dim()))
        shape = [1, channels] + [1] * (input.dim() - 2)
        n_local = input.numel() // max(channels, 1)
        # One all-reduce of (Σ(x − c), Σ(x − c)², n) per layer, shifted by c = the running mean
        # (equal on every rank, close to the batch mean) and summed in float64, so that
        # E[(x − c)²] − E[x − c]² does not cancel even when the mean is far from c.
        if self.running_mean is not None:
            shift = self.running_mean.detach().clone().to(input.dtype)
        else:
            shift = input.new_zeros(channels)
        shifted = input - shift.reshape(shape)
        f64 = torch.float64
        local = [shifted.sum(dims, dtype=f64), shifted.square().sum(dims, dtype=f64), shifted.new_full((1,), float(n_local), dtype=f64)]
        sums = _all_reduce_sum(torch.cat(local))
        count = sums[-1].detach()
        offset = sums[:channels] / count  # batch mean − shift
        var = (sums[channels : 2 * channels] / count - offset.square()).clamp_min(0.0).to(input.dtype)
        mean = shift + offset.to(input.dtype)
        centred = input - mean.reshape(shape)
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return out

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm layer of ``module`` by a GlobalBatchNorm with the same state (in place)."""
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            new = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      device=_device_of(module), dtype=_dtype_of(module))  # fmt: skip
            new.load_state_dict(module.state_dict())
            new.train(module.training)
            return new
        for name, child in module.named_children():
            new_child = cls.convert(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module


def _device_of(module: nn.Module):
    t = next(iter(module.parameters(recurse=False)), None)
    if t is None:
        t = next(iter(module.buffers(recurse=False)), None)
    return None if t is None else t.device


def _dtype_of(module: nn.Module):
    t = next(iter(module.parameters(recurse=False)), None)
    if t is None:
        t = next((b for b in module.buffers(recurse=False) if b.is_floating_point()), None)
    return None if t is None else t.dtype
