"""Distributed data-parallel training: P processes at a global batch B take the steps of one process at B.

* the split of a global batch over processes, and the sampler that yields each process's share;
* GlobalBatchNorm (BatchNorm over the batches of all processes, gloo on CPUs) against
  BatchNorm on the concatenated batch in float64: output, input/weight/bias gradients and
  running statistics, with unequal shares;
* a DDP step with unequal shares (loss scaling) equals the single-process step on the whole batch;
* ``torchrun --nproc-per-node=2 -m cryogeom train`` ends with the weights of the one-process run;
  a run checkpointed mid-epoch by 2 processes resumes with 1 (and vice versa) to the same weights.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from cryogeom.particles.loader import GlobalBatchSampler, shard_slice
from cryogeom.train.distributed import Distributed, GlobalBatchNorm


# ---------------------------------------------------------------------------------------------
# the split of a global batch


@pytest.mark.parametrize("n, world", [(16, 2), (9, 2), (7, 3), (5, 5), (3, 1), (130, 4)])
def test_shard_slices_partition_the_batch_contiguously(n, world):
    slices = [shard_slice(n, r, world) for r in range(world)]
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))  # contiguous, in rank order
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1 and sorted(sizes, reverse=True) == sizes
    assert [len(x) for x in np.array_split(np.arange(n), world)] == sizes


def test_sampler_shares_join_to_the_single_process_batches():
    order = np.random.default_rng(0).permutation(45) + 100  # dataset positions, epoch order
    single = list(GlobalBatchSampler(8).set_epoch(order))
    assert len(single) == 6 and [len(b) for b in single] == [8, 8, 8, 8, 8, 5]
    np.testing.assert_array_equal(np.concatenate(single), order)
    for world in (2, 3):
        samplers = [GlobalBatchSampler(8, rank=r, world_size=world).set_epoch(order) for r in range(world)]
        shares = [list(s) for s in samplers]
        # world 3: the last batch of 5 gives a process 1 image (< 2 for BatchNorm): left out by all
        expected = single if world == 2 else single[:-1]
        assert all(len(s) == len(expected) for s in shares)
        for b, batch in enumerate(expected):
            np.testing.assert_array_equal(np.concatenate([s[b] for s in shares]), batch)
        assert samplers[0].global_sizes() == [len(b) for b in expected]
    # Resuming at batch 3 yields the remaining batches only.
    resumed = list(GlobalBatchSampler(8).set_epoch(order, start_batch=3))
    assert len(resumed) == 3
    np.testing.assert_array_equal(np.concatenate(resumed), order[24:])


# ---------------------------------------------------------------------------------------------
# two gloo processes in this test (torch.multiprocessing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_group(rank: int, world: int, port: int, fn, *args):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def _run_group(fn, *args, world: int = 2) -> None:
    mp.spawn(_in_group, args=(world, _free_port(), fn, *args), nprocs=world, join=True)


def _workers(rank, world, out_dir, dataset):
    """Everything these tests run in two gloo processes, in one group (start-up costs seconds)."""
    _batchnorm_worker(rank, world, Path(out_dir) / "bn")
    _ddp_step_worker(rank, world, Path(out_dir) / "ddp")
    _trainer_gradient_worker(rank, world, Path(out_dir) / "trainer", dataset)


@pytest.fixture(scope="module")
def gloo_results(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp("gloo")
    for sub in ("bn", "ddp", "trainer"):
        (out / sub).mkdir()
    _run_group(_workers, str(out), str(tiny_dataset))
    return out


def _bn_inputs(dtype, mean: float):
    gen = torch.Generator().manual_seed(5)
    x_all = torch.randn(7, 3, 4, 5, dtype=torch.float64, generator=gen) * 2 + mean
    upstream = torch.randn(7, 3, 4, 5, dtype=torch.float64, generator=gen)
    return x_all.to(dtype), upstream.to(dtype)


def _batchnorm_worker(rank, world, out_dir):
    """Each rank normalises its unequal share; gradients of Σ_r loss_r are saved per rank.

    float64 with mean/std 0.5, and float32 with mean/std 50 (the running mean, 0, is far from it)."""
    for dtype, mean in ((torch.float64, 1.0), (torch.float32, 100.0)):
        x_all, upstream = _bn_inputs(dtype, mean)
        share = shard_slice(len(x_all), rank, world)
        bn = GlobalBatchNorm(3, momentum=0.3).to(dtype)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        x = x_all[share].clone().requires_grad_()
        y = bn(x)
        (y * upstream[share]).sum().backward()
        torch.save({"y": y.detach(), "dx": x.grad, "dw": bn.weight.grad, "db": bn.bias.grad, "state": bn.state_dict()},
                   Path(out_dir) / f"rank{rank}_{str(dtype)[6:]}.pt")  # fmt: skip


@pytest.mark.parametrize("dtype, mean, tol", [(torch.float64, 1.0, 1e-10), (torch.float32, 100.0, 2e-4)])
def test_global_batchnorm_equals_batchnorm_of_the_whole_batch(gloo_results, dtype, mean, tol):
    parts = [torch.load(gloo_results / "bn" / f"rank{r}_{str(dtype)[6:]}.pt", weights_only=True) for r in range(2)]
    # Reference: plain BatchNorm2d on the concatenated batch, in float64.
    x_all, upstream = _bn_inputs(torch.float64, mean)
    x_all = x_all.to(dtype).double().requires_grad_()  # the same input values
    ref = nn.BatchNorm2d(3, momentum=0.3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        ref.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    y = ref(x_all)
    (y * upstream.to(dtype).double()).sum().backward()
    assert [len(p["y"]) for p in parts] == [4, 3]  # unequal shares

    def close(got, want):  # relative to the largest entry
        torch.testing.assert_close(got.double(), want, rtol=0, atol=tol * max(want.abs().max().item(), 1e-300))

    close(torch.cat([p["y"] for p in parts]), y.detach())
    close(torch.cat([p["dx"] for p in parts]), x_all.grad)
    # Each rank holds the gradient of its own loss; DDP would sum (average) them.
    close(parts[0]["dw"] + parts[1]["dw"], ref.weight.grad)
    close(parts[0]["db"] + parts[1]["db"], ref.bias.grad)
    for p in parts:  # running statistics: the global batch's, on every rank
        for key in ("running_mean", "running_var"):
            close(p["state"][key], ref.state_dict()[key])
        assert p["state"]["num_batches_tracked"].item() == 1


def test_global_batchnorm_alone_and_in_eval_is_batchnorm():
    x = torch.randn(6, 4, 5, 5, dtype=torch.float64)
    ref = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU()).double()
    conv = GlobalBatchNorm.convert(nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU()).double())
    assert isinstance(conv[1], GlobalBatchNorm)
    conv.load_state_dict(ref.state_dict())  # state dicts are interchangeable
    torch.testing.assert_close(conv(x), ref(x))  # training mode, one process
    conv.eval(), ref.eval()
    torch.testing.assert_close(conv(x), ref(x))
    torch.testing.assert_close(conv.state_dict()["1.running_var"], ref.state_dict()["1.running_var"])


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.net(x)


def _ddp_step_worker(rank, world, out_dir):
    """One SGD step of DDP on unequal shares of a batch of 9, with the loss scale of Distributed."""
    dist_info = Distributed(rank=rank, world_size=world)
    torch.manual_seed(0 if rank == 0 else 1)  # different initial weights per rank: DDP must broadcast rank 0's
    model = _Toy().double()
    ddp = dist_info.wrap(model)
    gen = torch.Generator().manual_seed(3)
    x_all, t_all = torch.randn(9, 5, dtype=torch.float64, generator=gen), torch.randn(9, 3, dtype=torch.float64, generator=gen)
    x, t = dist_info.shard(x_all), dist_info.shard(t_all)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = ((ddp(x) - t) ** 2).mean()  # this share's mean
    (loss * dist_info.loss_scale(len(x), len(x_all))).backward()
    opt.step()
    logged = dist_info.mean({"loss": loss.item()}, len(x), len(x_all))
    torch.save({"state": model.state_dict(), "loss": logged["loss"]}, Path(out_dir) / f"rank{rank}.pt")


def test_ddp_step_with_unequal_shares_equals_one_process(gloo_results):
    parts = [torch.load(gloo_results / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    model = _Toy().double()
    gen = torch.Generator().manual_seed(3)
    x_all, t_all = torch.randn(9, 5, dtype=torch.float64, generator=gen), torch.randn(9, 3, dtype=torch.float64, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = ((model(x_all) - t_all) ** 2).mean()
    loss.backward()
    opt.step()
    for p in parts:
        assert p["loss"] == pytest.approx(loss.item(), rel=1e-12)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(p["state"][key], value, rtol=1e-10, atol=1e-12, msg=key)


GRADIENT_POSITIONS = [3, 17, 40, 8, 22, 61, 5, 30, 12]  # a global batch of 9: shares of 5 and 4


def _trainer_and_gradients(dist_info, run_dir: Path, dataset: Path) -> dict[str, torch.Tensor]:
    """The gradient of the training loss of GRADIENT_POSITIONS for the cryogeom Trainer, from a
    state where every layer gets a real gradient (the decoder's last layer, 0 at the start, is
    set to small seeded values)."""
    from cryogeom.particles.read import read_particles
    from cryogeom.structure.read import read_structure
    from cryogeom.train.config import preset
    from cryogeom.train.loop import Trainer

    torch.set_flush_denormal(True)
    config = preset("default", epochs=1, batch_size=14, seed=4, threads=1)
    trainer = Trainer(config, read_particles(dataset / "particles.star"), read_structure(dataset / "base.pdb"), run_dir,
                      force=True, progress=False, log=lambda *a: None, distributed=dist_info)  # fmt: skip
    last = trainer.model.decoder.mlp[-1]
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(1)) * 0.02)
    positions = trainer.train_idx[GRADIENT_POSITIONS]
    share = dist_info.shard(positions)
    batch = trainer.dataset.get_batch(share)
    trainer.model.train()
    # the latent's training noise as Trainer.step draws it: the global batch's, this process's rows
    trainer.model.seed_latent_noise(11, shard_slice(len(positions), dist_info.rank, dist_info.world_size).start, len(positions))
    terms = trainer.losses(batch)
    (terms["loss"] * dist_info.loss_scale(len(share), len(positions))).backward()
    grads = {name: p.grad.detach().clone() for name, p in trainer.model.named_parameters()}
    grads["loss"] = torch.tensor(dist_info.mean({"loss": terms["loss"].item()}, len(share), len(positions))["loss"])
    return grads


def _trainer_gradient_worker(rank, world, out_dir, dataset):
    grads = _trainer_and_gradients(Distributed(rank=rank, world_size=world), out_dir / "run", Path(dataset))
    torch.save(grads, out_dir / f"rank{rank}.pt")


def test_trainer_gradient_with_two_processes_equals_one(gloo_results, tiny_dataset, tmp_path):
    """The cryogeom model and losses (GlobalBatchNorm in the encoder), unequal shares."""
    torch.set_num_threads(1)
    ref = _trainer_and_gradients(Distributed.single(), tmp_path / "run", tiny_dataset)
    for rank in range(2):
        got = torch.load(gloo_results / "trainer" / f"rank{rank}.pt", weights_only=True)
        assert got.keys() == ref.keys()
        assert got["loss"].item() == pytest.approx(ref["loss"].item(), rel=1e-6)
        largest = max(g.abs().max().item() for name, g in ref.items() if name != "loss")
        for name, g in ref.items():
            # float32 sums in another order: within 1e-4 of the layer's largest entry (a floor of
            # 1e-7 of the largest of all for biases before a BatchNorm, whose gradient is 0 + noise)
            atol = max(1e-4 * g.abs().max().item(), 1e-7 * largest)
            err = (got[name] - g).abs().max().item()
            assert err <= atol, f"{name}: max |difference| {err:.3g} > {atol:.3g} (max |gradient| {g.abs().max().item():.3g})"


# ---------------------------------------------------------------------------------------------
# the command line under torchrun


def _train(dataset: Path, out: Path, *extra: str, procs: int = 1, epochs: int = 1) -> subprocess.CompletedProcess:
    cmd = [sys.executable]
    if procs > 1:
        cmd += ["-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port", str(_free_port())]
    cmd += [
        "-m", "cryogeom", "train", str(dataset / "particles.star"), "--structure", str(dataset / "base.pdb"),
        "-o", str(out), "--epochs", str(epochs), "--batch-size", "14", "--lr", "0.05", "--seed", "4",
        "--threads", "1", "--no-progress", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _weights(run: Path, name: str = "model.pt") -> dict[str, torch.Tensor]:
    return torch.load(run / name, weights_only=True)["model"]


def _assert_same_weights(a: dict, b: dict, *, encoder_atol: float) -> None:
    """Decoder and output normalisation within 1e-4 of each tensor's largest entry; encoder
    weights (O(0.03-1)) within ``encoder_atol``.

    The gradients agree to ~1e-6 relative (test above), but in the first steps the encoder's
    gradients are ~1e-8 (the decoder's last layer starts at 0, so almost nothing reaches the
    encoder) and Adam divides each gradient by its own running size: float rounding then moves
    encoder weights by up to ~1e-4 per few steps (measured: 4e-5 after 5 steps, 5e-4 after 10;
    two 1-process runs are bitwise equal). The decoder, which carries the training signal, agrees
    to ~1e-5 relative.
    """
    assert a.keys() == b.keys()
    for key in a:
        err = (a[key].double() - b[key].double()).abs().max().item()
        scale = a[key].double().abs().max().item()
        limit = encoder_atol if key.startswith("encoder.") else 1e-4 * scale
        assert err <= limit, f"{key}: max |difference| {err:.3g} > {limit:.3g} (max |weight| {scale:.3g})"


def test_torchrun_two_processes_match_one(tiny_dataset, tmp_path):
    # The paper's free latent and a slow decoder, where float rounding stays small: a normalised
    # latent standardises the head's outputs over the batch, and at initialisation, where they
    # hardly differ between particles, it magnifies the rounding of the two processes' global
    # statistics (decoder weights 3e-3 apart after 5 steps at lr 0.05, with or without its noise);
    # a fast decoder lets Adam carry the encoder's rounding further (3e-4). The default's gradient
    # with two processes equals one process's (the test above).
    free = ("--set", "latent=free", "--set", "latent_noise_sd=0", "--set", "decoder_lr_scale=0.1")
    one = _train(tiny_dataset, tmp_path / "one", *free)
    two = _train(tiny_dataset, tmp_path / "two", *free, procs=2)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    _assert_same_weights(a, b, encoder_atol=2e-4)
    assert a["decoder.mlp.12.weight"].abs().max().item() > 1e-4  # starts at 0: training moved it
    # BatchNorm running statistics: of the global batch (SyncBatchNorm semantics).
    assert any("running_var" in k for k in a)
    # Rank 0 alone logs and writes: one summary line, one metrics row, one checkpoint.
    assert two.stdout.count("epoch 1 |") == 1 and one.stdout.count("epoch 1 |") == 1
    assert len((tmp_path / "two" / "metrics.csv").read_text().strip().splitlines()) == 2
    assert not list((tmp_path / "two").glob(".*tmp*"))
    # The logged training loss is the global batch mean: equal to the one-process log.
    import csv

    rows = [next(csv.DictReader(open(tmp_path / r / "metrics.csv"))) for r in ("one", "two")]
    assert float(rows[0]["train_image"]) == pytest.approx(float(rows[1]["train_image"]), rel=1e-5)
    assert float(rows[0]["val_image"]) == pytest.approx(float(rows[1]["val_image"]), rel=1e-5)


@pytest.mark.slow
def test_resume_mid_epoch_with_a_changed_number_of_processes(tiny_dataset, tmp_path):
    """Stop after the first step (--max-minutes), resume with the same or the other number of processes."""
    import csv

    _train(tiny_dataset, tmp_path / "ref", epochs=2)
    for first, second in ((1, 1), (2, 1), (1, 2)):
        run = tmp_path / f"{first}then{second}"
        _train(tiny_dataset, run, "--max-minutes", "1e-6", procs=first, epochs=2)
        row = next(csv.DictReader(open(run / "metrics.csv")))
        assert row["partial_epoch"] == "1" and row["step"] == "1"  # every process stopped after step 1
        _train(tiny_dataset, run, "--resume", procs=second, epochs=2)
        state = torch.load(run / "checkpoint.pt", weights_only=True)["state"]
        # 65 training particles: 4 batches of 14, then one of 9 (shares of 5 and 4) per epoch
        assert state["epoch"] == 2 and state["global_step"] == 10
        a, b = _weights(run), _weights(tmp_path / "ref")
        if first == second == 1:  # resuming is exact
            assert all(torch.equal(a[k], b[k]) for k in a)
        else:
            _assert_same_weights(a, b, encoder_atol=2e-3)


def test_device_setting_takes_a_gpu_only_where_there_is_one(monkeypatch):
    from cryogeom.errors import InputError
    from cryogeom.train.distributed import cuda_requested

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_requested("auto") is False and cuda_requested("cpu") is False
    with pytest.raises(InputError, match="--device cuda: PyTorch sees no CUDA GPU"):
        cuda_requested("cuda")
    with pytest.raises(InputError, match="--device gpu"):
        cuda_requested("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cuda_requested("auto") is True and cuda_requested("cuda") is True and cuda_requested("cpu") is False
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Distributed.from_environment("auto").device.type == "cpu"
