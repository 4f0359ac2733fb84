"""What training learns about each particle beside its latent: a refined pose and a junk score.

:class:`PerParticle` holds the pose corrections (:mod:`cryogeom.model.pose_correction`) and the
scores and junk weights (:mod:`cryogeom.train.junk`) of every particle, hooks them into a training
step, merges them across processes, and at the end of training scores every particle once more
with the final network and writes the run's ``particles.npz`` and, for a .star input,
``refined_particles.star`` (the poses the network renders at).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cryogeom import files
from cryogeom import run_dir as rd
from cryogeom.model.pose_correction import PoseCorrections, gauss_newton_diagonal
from cryogeom.particles.batch import ParticleBatch
from cryogeom.particles.relion_writer import write_star_subset
from cryogeom.train.config import TrainConfig
from cryogeom.train.junk import ParticleScores, junk_probability, matched_filter_scores
from cryogeom.train.objective import forward


#: the pose curvature is measured every this many refining steps, on this many particles of the batch
CURVATURE_EVERY = 10
CURVATURE_PARTICLES = 8


def merge_rows(t: torch.Tensor, changed: torch.Tensor, all_reduce) -> torch.Tensor:
    """Rows [n, ...] of ``t`` after a merge across processes: a row that one process ``changed``
    (bool [n]) takes that process's value, the others keep their own (equal on every process).
    ``all_reduce`` sums a tensor over the processes and returns it."""
    shape = (-1,) + (1,) * (t.dim() - 1)
    own = torch.where(changed.reshape(shape), t, torch.zeros_like(t))
    total = all_reduce(torch.nan_to_num(own) if t.is_floating_point() else own)
    count = all_reduce(changed.long())
    return torch.where((count > 0).reshape(shape), total.to(t.dtype), t)


class PerParticle:
    def __init__(self, n: int, config: TrainConfig):
        c = config.losses
        self.config = config
        self.poses = PoseCorrections(
            n, prior_rotation_deg=c.pose_prior_rotation_deg, prior_shift_angstrom=c.pose_prior_shift_angstrom,
            step_fraction=c.pose_step_fraction,
        ) if c.pose_refinement else None
        self.scores = ParticleScores(n)
        self._updated = torch.zeros(n, dtype=torch.bool)  # pose rows this process changed since the last merge
        self._scored = torch.zeros(n, dtype=torch.bool)  # scores this process recorded since the last merge
        self._refining_steps = 0

    # -- one training step ----------------------------------------------------------------------
    def refining(self, epoch: int) -> bool:
        return self.poses is not None and epoch >= self.config.losses.pose_refinement_start_epoch

    def before_step(self, batch: ParticleBatch, epoch: int):
        """(correction or None, render pose or None, particle weights or None) for a batch."""
        idx = batch.indices.cpu().numpy()
        correction = render_pose = weights = None
        if self.refining(epoch):
            correction = self.poses.take(idx, batch.rotations.device)
            render_pose = PoseCorrections.apply(correction, batch.rotations, batch.shifts_angstrom)
        if self.config.losses.junk_weighting and epoch >= 1:
            weights = self.scores.batch_weights(idx, batch.rotations.device)
        return correction, render_pose, weights

    def after_step(self, model, batch: ParticleBatch, correction, out, image_loss: float, loss_scale: float) -> None:
        """Record the batch's scores; step its pose corrections (after the backward pass)."""
        idx = batch.indices.cpu().numpy()
        self.scores.record(idx, matched_filter_scores(out.render.detach(), out.data.detach()))
        self._scored[idx] = True
        if correction is not None:
            if float(self.poses.curvature_weight) == 0 or self._refining_steps % CURVATURE_EVERY == 0:
                k = min(CURVATURE_PARTICLES, len(idx))
                ca, ctf = out.ca[:k].detach(), batch.ctf[:k]
                self.poses.observe_curvature(gauss_newton_diagonal(
                    lambda r, s: model.render(ca, r, s, ctf), correction[:k], batch.rotations[:k], batch.shifts_angstrom[:k], max(image_loss, 1e-6)))
            self._refining_steps += 1
            pixels = out.data.shape[-1] * out.data.shape[-2]
            scale = len(idx) * pixels / (2 * max(image_loss, 1e-6) * loss_scale)
            self.poses.update(idx, correction, scale)
            self._updated[idx] = True

    def end_epoch(self, dist) -> dict:
        """Merge what the processes learned, refit the junk weights; metrics for the epoch's row."""
        if dist.world_size > 1:
            self._merge(dist)
        row = {"junk_fraction": self.scores.refit()}
        if self.poses is not None:
            angles = self.poses.angles_deg()[self.poses.steps > 0]
            if len(angles):
                row["pose_correction_median_deg"] = float(angles.median())
        return row

    def _merge(self, dist) -> None:
        """Each particle is trained on one process: take every row from the process that changed it (DDP)."""
        import torch.distributed as tdist

        def reduce(t: torch.Tensor) -> torch.Tensor:
            t = t.to(dist.device)
            tdist.all_reduce(t)
            return t.cpu()

        if self.poses is not None:
            self.poses.values = merge_rows(self.poses.values, self._updated, reduce)
            self.poses.steps = merge_rows(self.poses.steps, self._updated, reduce)
        scores = merge_rows(torch.as_tensor(self.scores.scores), self._scored, reduce)
        self.scores.scores = scores.numpy()
        self._updated.zero_()
        self._scored.zero_()

    # -- saving ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"scores": self.scores.state_dict()}
        if self.poses is not None:
            state["poses"] = self.poses.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.scores.load_state_dict(state["scores"])
        if self.poses is not None and "poses" in state:
            self.poses.load_state_dict(state["poses"])

    def refined_poses(self, particles, indices=None):
        """(rotations [k, 3, 3], shifts [k, 2]) the network renders particles ``indices`` at."""
        idx = np.arange(particles.n) if indices is None else np.asarray(indices)
        rotations = torch.as_tensor(particles.rotations[idx], dtype=torch.float64)
        shifts = torch.as_tensor(particles.shifts_angstrom[idx], dtype=torch.float64)
        if self.poses is None:
            return rotations.numpy(), shifts.numpy()
        r, s = PoseCorrections.apply(self.poses.values[idx].double(), rotations, shifts)
        return r.numpy(), s.numpy()

    @torch.no_grad()
    def score_all(self, model, dataset, invert: bool, device, *, batch_size: int = 256, progress: bool = True) -> np.ndarray:
        """[n] the score of every particle under the final network at its refined pose."""
        model.eval()
        n = len(dataset)
        scores = np.empty(n)
        for start in tqdm(range(0, n, batch_size), desc="score particles", unit="batch", disable=not progress, leave=False):
            pos = np.arange(start, min(n, start + batch_size))
            batch = ParticleBatch(dataset.get_batch(pos)).to(device)
            render_pose = None
            if self.poses is not None:
                c = self.poses.values[batch.indices.cpu()].to(device)
                render_pose = PoseCorrections.apply(c, batch.rotations, batch.shifts_angstrom)
            out = forward(model, batch, invert, render_pose)
            scores[pos] = matched_filter_scores(out.render, out.data).double().cpu().numpy()
        return scores

    def write(self, run_dir: Path, particles, final_scores: np.ndarray) -> None:
        """``particles.npz`` (score, junk_probability, pose correction per particle) and, for a .star
        input, ``refined_particles.star``."""
        p_junk = junk_probability(final_scores)
        correction = self.poses.values.numpy() if self.poses is not None else np.zeros((particles.n, 5), dtype=np.float32)
        arrays = {"score": final_scores, "junk_probability": p_junk, "pose_correction_rotvec_rad": correction[:, :3],
                  "pose_correction_shift_angstrom": correction[:, 3:]}
        rd.claim(run_dir, rd.PARTICLE_QUALITY, rd.REFINED_STAR)
        with files.atomic_output(run_dir / rd.PARTICLE_QUALITY) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        rd.record(run_dir, rd.PARTICLE_QUALITY)
        source = Path(particles.source_path)
        if self.poses is not None and source.suffix == ".star":
            write_star_subset(source, np.arange(particles.n), run_dir / rd.REFINED_STAR, overwrite=True,
                              poses=self.refined_poses(particles))
            rd.record(run_dir, rd.REFINED_STAR)
