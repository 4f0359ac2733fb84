"""The training loop (paper section 2): a library function a script or notebook can call.

``train(config, particles, base, run_dir)`` trains the network on ``particles`` (a
:class:`~cryogeom.particles.particle_set.ParticleSet`) from the base structure ``base`` and
writes the run directory (:mod:`cryogeom.run_dir`): its configuration, the split into training
and held-out particles, the calibration, one metrics row per epoch, ``checkpoint.pt`` (every
epoch, every ``checkpoint_every_minutes`` and on Ctrl-C) and finally ``model.pt``.

Resuming (``resume=True``) continues from ``checkpoint.pt`` at the exact batch where it stopped:
the order of the particles in epoch e is a permutation drawn from (seed, e), so an interrupted and
resumed run takes the same steps as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cryogeom import __version__, cpu, files
from cryogeom import run_dir as rd
from cryogeom.errors import InputError
from cryogeom.losses.image import image_loss
from cryogeom.particles.batch import ParticleBatch
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.loader import BatchLoader, GlobalBatchSampler, shard_slice
from cryogeom.structure import map_frame
from cryogeom.train.build import build_model
from cryogeom.train.calibration import Calibration, calibrate
from cryogeom.train.config import TrainConfig
from cryogeom.train.distributed import Distributed
from cryogeom.train.objective import TERMS, Objective, forward
from cryogeom.train.per_particle import PerParticle
from cryogeom.train.validation import GroundTruthValidator



class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunState:
    epoch: int = 0  # the epoch in progress
    step_in_epoch: int = 0  # batches of that epoch already done
    global_step: int = 0
    train_seconds: float = 0.0  # training time so far, over all sessions


def split_particles(n: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices: a seeded random hold-out of min(K, fraction · n) particles."""
    data = config.data
    n_val = min(data.validation_size, int(math.floor(data.validation_fraction * n)))
    order = np.random.default_rng([data.seed, 1]).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the training positions in ``epoch``: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, 2, epoch]).permutation(n)


class Trainer:
    """Holds a run's model, data, optimiser and state; :meth:`fit` runs it."""

    def __init__(
        self,
        config: TrainConfig,
        particles,
        base,
        run_dir: str | os.PathLike,
        *,
        resume: bool = False,
        force: bool = False,
        ground_truth: str | os.PathLike | None = None,
        progress: bool = True,
        command_line: list[str] | None = None,
        log=print,
        distributed: Distributed | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.dist = distributed or Distributed.single()
        self.is_main = self.dist.rank == 0
        self.log = log if self.is_main else (lambda *a, **k: None)
        rd.check_run_dir(self.run_dir, resume=resume, force=force)
        self.dist.barrier()  # every process has checked the directory before rank 0 writes into it
        if resume:
            saved = rd.load_checkpoint(self.run_dir / rd.CHECKPOINT, required=("model", "optimizer", "state", "config", "calibration", "n_residues"))
            if int(saved["n_residues"]) != base.n_residues:
                raise InputError(
                    f"{base.source or 'base structure'}: has {base.n_residues} residues but the run being resumed "
                    f"was trained with {int(saved['n_residues'])}"
                )
            # how this process runs (and how long) comes from this command line; what is learnt, from the run
            keep = {"epochs": config.optimisation.epochs, **asdict(config.runtime)}
            try:
                config = TrainConfig.from_dict({**json.loads(saved["config"]), **keep})
            except (TypeError, ValueError, AttributeError) as exc:
                raise InputError(f"{self.run_dir / rd.CHECKPOINT}: its 'config' is not what cryogeom train writes ({exc})") from None
        config.check()
        self.config = config
        # Adam's second moments of tiny gradients underflow to subnormal floats, which are far
        # slower on x86 CPUs; flush them to zero.
        torch.set_flush_denormal(True)
        threads = cpu.set_threads(config.runtime.threads)
        # Threads chosen by cryogeom follow the load; threads the user set stay as set.
        self.tuner = cpu.ThreadTuner([threads, 1]) if not config.runtime.threads and threads > 1 else None
        self.particles = particles
        self.base = base
        n = particles.n
        if base.n_residues < 2:
            raise InputError(f"{base.source or 'base structure'}: needs at least 2 residues")

        self.train_idx, self.val_idx = split_particles(n, config)
        global_batch = config.optimisation.batch_size
        if global_batch > len(self.train_idx):
            raise InputError(f"--batch-size: {global_batch} is larger than the {len(self.train_idx)} training particles")
        if global_batch % self.dist.world_size:
            raise InputError(f"--batch-size: {global_batch} must be divisible by the number of processes ({self.dist.world_size})")
        self.local_batch = global_batch // self.dist.world_size

        pixel = float(np.median(particles.pixel_size_angstrom))
        torch.manual_seed(config.data.seed)  # the initial weights: the same in every process and every run
        setting = config.data.rotation_centre
        self.rotation_centre = map_frame.rotation_centre(setting, base.ca, particles.box, pixel)
        map_frame.check_inside_box(base.ca, self.rotation_centre, particles.box, pixel, base.source, map_frame.describe(setting))
        self.model = build_model(config.network, base, particles.box, pixel, self.rotation_centre)
        self.dataset = ParticleDataset(particles, downsample_box=self.model.renderer.settings.box)
        # This process's share of every global batch, in the epoch's order, read ahead by
        # config.num_workers worker processes (the same batches for any num_workers).
        self.sampler = GlobalBatchSampler(global_batch, rank=self.dist.rank, world_size=self.dist.world_size)
        self.loader = BatchLoader(self.dataset, self.sampler, num_workers=config.runtime.num_workers, pin_memory=self.dist.device.type == "cuda")
        self.objective = Objective(config.losses, self.model.base_ca, base.bonded_pairs)
        self.per_particle = PerParticle(n, config)
        self.state = RunState()
        self.calibration: Calibration | None = None

        decoder_params = list(self.model.decoder.parameters())
        decoder_ids = {id(p) for p in decoder_params}
        other = [p for p in self.model.parameters() if id(p) not in decoder_ids]
        self.optimizer = torch.optim.Adam(
            [{"params": other, "lr_scale": 1.0}, {"params": decoder_params, "lr_scale": config.optimisation.decoder_lr_scale}],
            lr=config.optimisation.lr,
        )
        self.steps_per_epoch = math.ceil(len(self.train_idx) / global_batch)

        # Everything that reads and checks input happens before the run directory is touched.
        self.validator = None
        if ground_truth is not None and self.is_main:
            self.validator = GroundTruthValidator(ground_truth, self.val_idx, self.model.base_ca.numpy(), k=config.data.validation_k)
        if resume:
            self._load_state(saved)
        else:
            self._calibrate()
        if self.is_main:
            weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
            # a checkpoint (weights and Adam's two moments) and model.pt, each also as a temporary
            files.require_free_space(self.run_dir, 2 * 4 * weight_bytes + 2**24, "the run's checkpoints")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            rd.remove_stale_temporaries(self.run_dir)
            if not resume:
                self._write_start(command_line)
        self.ddp_model = self.dist.wrap(self.model, self.optimizer)
        self.objective.to(self.dist.device)
        self.progress = progress and self.is_main
        self.metrics = rd.MetricsLog(self.run_dir, self.is_main)

    # -- set-up ----------------------------------------------------------------------------
    def _write_start(self, command_line) -> None:
        """The run's first files, after removing what an earlier run in the directory wrote."""
        cfg = self.config
        rd.remove_previous_run(self.run_dir)
        rd.write_json(
            self.run_dir,
            rd.CONFIG,
            {
                "config": cfg.as_flat_dict(),
                "version": __version__,
                "command_line": command_line if command_line is not None else sys.argv,
                "particles": str(Path(self.particles.source_path).resolve()),
                "n_particles": int(self.particles.n),
                "base_structure": self.base.source,
                "n_residues": int(self.base.n_residues),
                "rotation_centre_angstrom": [float(c) for c in self.rotation_centre],
                "box": int(self.particles.box),
                "pixel_size_angstrom": float(np.median(self.particles.pixel_size_angstrom)),
                "torch": torch.__version__,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            sort_keys=True,
        )
        rd.write_base_structure(self.run_dir, self.base)
        rd.save_npy(self.run_dir, rd.VALIDATION_INDICES, self.val_idx)
        rd.save_npy(self.run_dir, rd.TRAINING_INDICES, self.train_idx)
        rd.write_json(self.run_dir, rd.CALIBRATION, asdict(self.calibration), sort_keys=True)

    def _calibrate(self) -> None:
        """The contrast polarity and output normalisation from a sample of training particles."""
        cfg = self.config
        rng = np.random.default_rng([cfg.data.seed, 3])
        sample = rng.choice(len(self.train_idx), size=min(512, len(self.train_idx)), replace=False)
        try:
            cal = calibrate(self.model, self.dataset, self.train_idx[np.sort(sample)])
        except ValueError as exc:
            raise InputError(f"{self.particles.source_path}: {exc}") from None
        cal = self.dist.broadcast_object(cal)  # every rank computes it; rank 0's is used by all
        invert = cfg.data.invert_data
        if invert is not None and invert != cal.invert_data:
            cal = Calibration(invert, -cal.mu0, cal.s0, -cal.correlation, cal.n_particles)
            self.log(f"contrast polarity: set by the user (invert_data={invert}); the data suggested the opposite")
        else:
            self.log(cal.describe())
        self.calibration = cal
        self.model.output_norm.set_fixed_statistics(cal.mu0, cal.s0)
        torch.manual_seed(cfg.data.seed)

    def _load_state(self, saved: dict) -> None:
        # the residue count was checked against the base structure in __init__, before any set-up
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.state = RunState(**{k: v for k, v in saved["state"].items()})
            if "per_particle" in saved:
                self.per_particle.load_state_dict(saved["per_particle"])
            self.calibration = Calibration(**json.loads(saved["calibration"]))
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{self.run_dir / rd.CHECKPOINT}: does not fit this run's network and settings ({str(exc).splitlines()[0][:120]})") from None
        self.log(f"resuming at epoch {self.state.epoch + 1}, batch {self.state.step_in_epoch} ({self.state.global_step} steps done)")

    def last_good(self) -> str:
        """Where a diverged run can be continued from, for its error message."""
        path = self.run_dir / rd.CHECKPOINT
        if not path.is_file():
            return "no checkpoint was written before it (start again with a lower --lr)"
        return f"the last good checkpoint is {path} (continue with --resume, or start again with a lower --lr)"

    def _require_finite_weights(self) -> None:
        """TrainingDiverged (on every process) if a weight is NaN or infinite: never saved."""
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if self.dist.any(not finite):
            raise TrainingDiverged(f"the network's weights became non-finite at epoch {self.state.epoch + 1}, step {self.state.global_step}; {self.last_good()}")

    def checkpoint(self) -> None:
        self._require_finite_weights()
        if not self.is_main:
            return
        rd.save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "state": asdict(self.state),
                "per_particle": self.per_particle.state_dict(),
                "config": json.dumps(self.config.as_flat_dict()),
                "calibration": json.dumps(asdict(self.calibration)),
                "n_residues": self.base.n_residues,
                "version": __version__,
            },
            self.run_dir / rd.CHECKPOINT,
        )

    def save_model(self) -> None:
        self._require_finite_weights()
        if not self.is_main:
            return
        rd.save_checkpoint(
            {
                "model": self.model.state_dict(),
                "config": json.dumps(self.config.as_flat_dict()),
                "calibration": json.dumps(asdict(self.calibration)),
                "n_residues": self.base.n_residues,
                "box": int(self.particles.box),
                "pixel_size_angstrom": float(np.median(self.particles.pixel_size_angstrom)),
                "version": __version__,
            },
            self.run_dir / rd.MODEL,
        )

    # -- one step --------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        cfg, max_minutes = self.config.optimisation, self.config.runtime.max_minutes
        total = max(1, cfg.epochs * self.steps_per_epoch)
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.lr_schedule == "constant":
            return cfg.lr * warm
        progress = min(1.0, step / total)
        if max_minutes:  # a time budget: decay over the budget (whichever ends first)
            progress = max(progress, min(1.0, self.state.train_seconds / (60 * max_minutes)))
        return warm * (cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * progress)))

    def losses(self, batch: ParticleBatch) -> dict[str, torch.Tensor]:
        return self.objective(self.ddp_model, batch, self.calibration.invert_data)

    def step(self, batch, n_global: int | None = None) -> dict[str, float]:
        """One step on this process's share ``batch`` (a batch dict, or dataset positions) of a
        global batch of ``n_global`` images (default: world size × this share); returns the loss
        terms' global batch means."""
        if not isinstance(batch, dict):
            batch = self.dataset.get_batch(batch)
        batch = ParticleBatch(batch).to(self.dist.device, non_blocking=True)
        n_local = len(batch)
        n_global = n_local * self.dist.world_size if n_global is None else n_global
        lr = self.learning_rate(self.state.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        self.model.train()
        # the latent's noise: a function of the step, drawn for the global batch (this process
        # keeps its rows), so that a resumed run and P processes take the same steps as one
        self.model.seed_latent_noise(int(np.random.SeedSequence([self.config.data.seed, 4, self.state.global_step]).generate_state(1)[0]),
                                     shard_slice(n_global, self.dist.rank, self.dist.world_size).start, n_global)
        correction, render_pose, weights = self.per_particle.before_step(batch, self.state.epoch)
        terms, out = self.objective.evaluate(self.ddp_model, batch, self.calibration.invert_data, render_pose=render_pose, particle_weights=weights)
        values = self.dist.mean({k: float(v.detach()) for k, v in terms.items()}, n_local, n_global)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"loss term {', '.join(bad)} became {float(values[bad[0]])} at epoch {self.state.epoch + 1}, step {self.state.global_step}; "
                f"{self.last_good()}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss_scale = self.dist.loss_scale(n_local, n_global)
        (terms["loss"] * loss_scale).backward()  # DDP's average = global batch mean
        self.optimizer.step()
        self.per_particle.after_step(self.model, batch, correction, out, values["image"], loss_scale)
        values["lr"] = lr
        return values

    # -- the run ---------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg, st = self.config, self.state
        epochs, max_minutes = cfg.optimisation.epochs, cfg.runtime.max_minutes
        last_ckpt = time.monotonic()
        stopped_early = False
        while st.epoch < epochs:
            order = epoch_order(len(self.train_idx), cfg.data.seed, st.epoch)
            n_batches = self.steps_per_epoch
            sums = {k: 0.0 for k in TERMS}
            seen, t_epoch = 0, time.monotonic()
            bar = tqdm(
                total=n_batches, initial=st.step_in_epoch, desc=f"epoch {st.epoch + 1}/{epochs}", unit="batch",
                disable=not self.progress, leave=False, dynamic_ncols=True,
            )
            try:
                self.sampler.set_epoch(self.train_idx[order], st.step_in_epoch)  # dataset positions = particle indices
                batches = iter(self.loader)
                while st.step_in_epoch < n_batches:
                    t0 = time.monotonic()
                    n_global, batch = next(batches, (0, None))
                    if batch is None:  # the last batch is too small for BatchNorm (2 images per process)
                        st.step_in_epoch = n_batches
                        break
                    if self.tuner is not None:
                        self.tuner.before_step(st.global_step)
                    values = self.step(batch, n_global)
                    dt = time.monotonic() - t0
                    if self.tuner is not None:
                        self.tuner.after_step(st.global_step, dt)
                    st.train_seconds += dt
                    if max_minutes is not None:  # the time budget drives the schedule: processes agree on it
                        st.train_seconds = self.dist.maximum(st.train_seconds)
                    st.step_in_epoch += 1
                    st.global_step += 1
                    seen += n_global
                    for k in TERMS:
                        sums[k] += values[k] * n_global
                    bar.update(1)
                    bar.set_postfix(
                        {"img": f"{values['image']:.4f}", "geom": f"{values['geometry']:.4f}", "chain": f"{values['chain']:.5f}", "bond": f"{values['bond']:.3f}",
                         "img/s": f"{n_global / max(dt, 1e-9):.0f}"},
                        refresh=False,
                    )
                    if time.monotonic() - last_ckpt > 60 * cfg.runtime.checkpoint_every_minutes:
                        self.checkpoint()
                        last_ckpt = time.monotonic()
                    if max_minutes is not None and self.dist.any(st.train_seconds > 60 * max_minutes):  # all ranks stop together
                        stopped_early = True
                        break
            except KeyboardInterrupt:
                bar.close()
                self.checkpoint()
                self.log(f"interrupted: checkpoint saved at epoch {st.epoch + 1}, batch {st.step_in_epoch}; continue with --resume")
                raise
            finally:
                bar.close()
            row = {"epoch": st.epoch + 1, "step": st.global_step, "train_minutes": round(st.train_seconds / 60, 4)}
            row.update({f"train_{k}": sums[k] / max(seen, 1) for k in TERMS})
            row["images_per_s"] = seen / max(time.monotonic() - t_epoch, 1e-9)
            row["lr"] = self.learning_rate(st.global_step)
            row["threads"] = torch.get_num_threads()
            if stopped_early:
                row["partial_epoch"] = 1
            else:
                st.epoch += 1
                st.step_in_epoch = 0
            row.update(self.per_particle.end_epoch(self.dist))
            row.update(self.validate())
            self.metrics.write(row)
            bad = [k for k, v in row.items() if k.startswith("val_") and not math.isfinite(float(v))]
            if self.dist.any(bool(bad)):
                raise TrainingDiverged(f"validation score {', '.join(bad) or 'on rank 0'} is not finite after epoch {row['epoch']}; {self.last_good()}")
            self.checkpoint()
            last_ckpt = time.monotonic()
            self.log(self._summary(row))
            if stopped_early:
                self.log(f"stopped after {max_minutes} minutes of training (--max-minutes); continue with --resume")
                break
        self.save_model()
        if self.is_main and not stopped_early:
            scores = self.per_particle.score_all(self.model, self.dataset, self.calibration.invert_data, self.dist.device, progress=self.progress)
            self.per_particle.write(self.run_dir, self.particles, scores)
        return {"state": asdict(st), "run_dir": str(self.run_dir)}

    def _summary(self, row: dict) -> str:
        parts = [f"epoch {row['epoch']}", f"{row['train_minutes']:.1f} min", f"image {row['train_image']:.4f}", f"geometry {row['train_geometry']:.4f}", f"chain {row['train_chain']:.5f}", f"{row['images_per_s']:.0f} img/s"]
        for key in ("val_image", "val_rmsd", "val_emd_rmsd"):
            if key in row:
                parts.append(f"{key} {row[key]:.4f}")
        return " | ".join(parts)

    @torch.no_grad()
    def validate(self) -> dict:
        """Image loss on (up to 1,000) validation particles; with ground truth, RMSD and EMD-RMSD."""
        if not self.is_main or len(self.val_idx) == 0:
            return {}
        self.model.eval()
        idx = self.val_idx[: min(len(self.val_idx), 1000)] if self.validator is None else self.validator.indices
        total, count, cas = 0.0, 0, []
        for start in range(0, len(idx), 256):
            batch = self.dataset.get_batch(idx[start : start + 256]).to(self.dist.device)
            out = forward(self.model, batch, self.calibration.invert_data)
            total += float(image_loss(out.render, out.data)) * len(batch)
            count += len(batch)
            cas.append(out.ca.double().cpu().numpy())
        out = {"val_image": total / max(count, 1)}
        if self.validator is not None:
            out.update(self.validator(np.concatenate(cas)))
        return out


def train(config: TrainConfig, particles, base, run_dir, **kwargs) -> dict:
    """Train on ``particles`` from ``base`` into ``run_dir`` (see :class:`Trainer` for options)."""
    return Trainer(config, particles, base, run_dir, **kwargs).fit()
