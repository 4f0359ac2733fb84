"""Scoring a trained run against ground truth on its held-out particles (``cryogeom evaluate``).

The protocol of the paper (section 3, "Evaluation"; appendix G): take K held-out particles
(K = 4000, or all of them if there are fewer), predict the conformation X(z) of each, and compare
with the ground-truth conformation each was simulated from:

* **mean RMSD** — each prediction against its own ground-truth frame (Kabsch, proper rotations;
  paper Table 2);
* **EMD-RMSD** — the optimal one-to-one pairing of the K predictions with the K ground-truth
  conformations (K×K RMSD matrix, linear assignment; paper eq. 12, Table 1);
* two **baselines**: the base structure predicted for every particle (the paper's
  "initialisation") and the mean ground-truth structure;
* **per-residue errors** (paper Figs. 2-3): for each ground-truth frame among the K particles,
  the distance of every residue's predicted position from its ground-truth position (after Kabsch
  superposition of the prediction onto the truth) averaged over that frame's particles, against the
  distance of the residue's ground-truth position from its base position (after Kabsch
  superposition of the base onto the truth).

All coordinates are Cα in Å. :func:`score_conformations` and :func:`per_residue_errors` take
arrays only, so they can be checked on hand-made data; :func:`evaluate_run` adds prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cryogeom import __version__
from cryogeom.errors import InputError
from cryogeom.metrics.baselines import baseline_scores
from cryogeom.metrics.emd import emd_rmsd, mean_rmsd
from cryogeom.evaluate.latent import LatentCoordinates, latent_coordinates
from cryogeom.metrics.ground_truth import load_coordinates, load_ground_truth, load_junk, true_particles
from cryogeom.metrics.kabsch import as_coordinates, per_residue_distances
from cryogeom.run_dir import check_run_particles
from cryogeom.train import inference

DEFAULT_K = 4000  # validation particles scored, as in the paper (section 3)
CA_CA_DISTANCE_ANGSTROM = 3.8  # the field's "good backbone" line (paper section 3, Fig. 2)


class Scores(NamedTuple):
    """Accuracy of K predicted conformations against their ground truth, all in Å."""

    emd_rmsd_angstrom: float
    rmsd_angstrom: float
    baseline_base_structure_angstrom: float
    baseline_mean_structure_angstrom: float


class PerResidueErrors(NamedTuple):
    """Per-residue accuracy grouped by ground-truth frame (paper Figs. 2-3).

    ``frames`` [F] int: the ground-truth frames present, ascending; ``n_particles`` [F]: how many
    of the K particles come from each; ``displacement_angstrom`` [F, N]: distance of each residue's
    ground-truth position from its base position (base Kabsch-superposed onto the frame);
    ``error_angstrom`` [F, N]: distance of each residue's predicted from its ground-truth position
    (prediction superposed onto the truth), mean over the frame's particles; ``rmsd_angstrom`` [F]:
    mean Kabsch RMSD of the frame's particles.
    """

    frames: np.ndarray
    n_particles: np.ndarray
    displacement_angstrom: np.ndarray
    error_angstrom: np.ndarray
    rmsd_angstrom: np.ndarray


def score_conformations(predicted_ca, truth_ca, base_ca) -> Scores:
    """EMD-RMSD, mean RMSD and the two baselines of ``predicted_ca`` [K, N, 3] against ``truth_ca`` [K, N, 3].

    ``truth_ca[k]`` is the ground-truth conformation of the particle whose prediction is
    ``predicted_ca[k]``; ``base_ca`` [N, 3] is the base structure the network deforms. Å throughout.
    """
    pred = as_coordinates(predicted_ca, "predicted Cα")
    truth = as_coordinates(truth_ca, "ground-truth Cα")
    if pred.shape != truth.shape or pred.ndim != 3:
        raise InputError(f"predicted Cα {pred.shape} and ground truth {truth.shape}: expected two arrays [K, N, 3] of the same shape")
    baselines = baseline_scores(truth, base_ca)
    return Scores(
        emd_rmsd_angstrom=emd_rmsd(pred, truth),
        rmsd_angstrom=mean_rmsd(pred, truth),
        baseline_base_structure_angstrom=baselines.base_structure_angstrom,
        baseline_mean_structure_angstrom=baselines.mean_structure_angstrom,
    )


def per_residue_errors(predicted_ca, truth_frames_ca, frames, base_ca) -> PerResidueErrors:
    """Per-residue error and displacement, grouped by frame (paper Figs. 2-3; see :class:`PerResidueErrors`).

    ``predicted_ca`` [K, N, 3]: predictions; ``truth_frames_ca`` [F_total, N, 3]: every ground-truth
    frame; ``frames`` [K] int: the frame of each prediction; ``base_ca`` [N, 3]. Vectorised: one
    batched 3×3 SVD per particle and per frame.
    """
    pred = as_coordinates(predicted_ca, "predicted Cα")
    truth_all = as_coordinates(truth_frames_ca, "ground-truth Cα")
    base = as_coordinates(base_ca, "base Cα")
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if pred.ndim != 3 or truth_all.ndim != 3 or base.ndim != 2:
        raise InputError(f"predicted {pred.shape}, ground truth {truth_all.shape}, base {base.shape}: expected [K, N, 3], [F, N, 3], [N, 3]")
    if len(frames) != len(pred):
        raise InputError(f"frames: {len(frames)} given for {len(pred)} predictions")
    if len(frames) == 0:
        raise InputError("predicted Cα: no predictions (K = 0)")
    if frames.min() < 0 or frames.max() >= len(truth_all):
        raise InputError(f"frames: must be in 0..{len(truth_all) - 1}")
    unique, inverse, counts = np.unique(frames, return_inverse=True, return_counts=True)
    distances = per_residue_distances(pred, truth_all[frames])  # [K, N]
    sums = np.zeros((len(unique), pred.shape[1]))
    np.add.at(sums, inverse, distances)
    rmsd_sums = np.zeros(len(unique))
    np.add.at(rmsd_sums, inverse, np.sqrt(np.mean(distances**2, axis=1)))
    displacement = per_residue_distances(base[None], truth_all[unique])  # [F, N]
    return PerResidueErrors(unique, counts, displacement, sums / counts[:, None], rmsd_sums / counts)


def validation_particles(validation_indices, k: int) -> np.ndarray:
    """The first ``k`` of the run's held-out particle indices (all of them if there are fewer)."""
    if k < 1:
        raise InputError(f"-k: expected a positive number of validation particles, got {k}")
    indices = np.asarray(validation_indices, dtype=np.int64).reshape(-1)
    if len(indices) == 0:
        raise InputError("validation_indices.npy: the run holds out no particles; nothing to evaluate")
    return indices[:k]


def ground_truth_for(ground_truth_path, particles, n_residues: int, indices) -> tuple[np.ndarray, np.ndarray]:
    """(frame of each of the particles ``indices`` [K], all ground-truth frames [F, N, 3]) after checking the file.

    The ground truth must describe the particle set (one frame per particle; the same poses where
    the file records them, as ``cryogeom simulate`` does) and the run's structure (N residues).
    """
    frame, ca = load_ground_truth(ground_truth_path)
    if len(frame) != particles.n:
        raise InputError(
            f"{ground_truth_path}: describes {len(frame)} particles but {particles.source_path} holds {particles.n}; "
            "give the ground truth simulated with these particles"
        )
    if ca.shape[1] != n_residues:
        raise InputError(f"{ground_truth_path}: has {ca.shape[1]} residues per conformation but the run's base structure has {n_residues}")
    with np.load(ground_truth_path, allow_pickle=False) as data:
        # the poses written to the particle file (with their errors, where the simulation added some)
        key = "written_rotations" if "written_rotations" in data.files else "rotations"
        rotations = np.asarray(data[key], dtype=np.float64) if key in data.files else None
    if rotations is not None and rotations.shape == particles.rotations.shape:
        worst = float(np.max(np.abs(rotations - particles.rotations))) if len(rotations) else 0.0
        if worst > 1e-3:
            raise InputError(
                f"{ground_truth_path}: its particle poses differ from those in {particles.source_path} "
                f"(max rotation-matrix difference {worst:.3g}); they are not the same particles"
            )
    return frame[np.asarray(indices, dtype=np.int64)], ca


@dataclass
class Evaluation:
    """The result of :func:`evaluate_run` (arrays over the K validation particles)."""

    scores: Scores
    per_residue: PerResidueErrors
    indices: np.ndarray  # [K] particle indices (into the particle file)
    frames: np.ndarray  # [K] ground-truth frame of each
    z: np.ndarray  # [K, d] latents
    predicted_ca: np.ndarray  # [K, N, 3] Å, base-structure frame
    timings_seconds: dict = field(default_factory=dict)
    latent: LatentCoordinates | None = None  # the latent PCs against the landscape's known coordinates, if it has some

    @property
    def k(self) -> int:
        return len(self.indices)

    @property
    def n_residues(self) -> int:
        return int(self.predicted_ca.shape[1])


def evaluate_run(run, particles, ground_truth_path, *, k: int = DEFAULT_K, batch_size: int = 256, progress: bool = True) -> Evaluation:
    """Predict the first ``k`` held-out particles of ``run`` and score them against ``ground_truth_path``.

    ``run``: a :class:`cryogeom.train.run.Run`; ``particles``: the run's ParticleSet. Every check
    (particle count, residue count, poses) happens before prediction; nothing is written.
    """
    t0 = time.perf_counter()
    indices = validation_particles(true_particles(run.validation_indices(), load_junk(ground_truth_path)), k)
    check_run_particles_and_box(run, particles, indices)
    frames, truth_all = ground_truth_for(ground_truth_path, particles, run.base.n_residues, indices)
    t1 = time.perf_counter()
    z, ca = inference.predict(run, particles, indices, batch_size=batch_size, progress=progress)
    t2 = time.perf_counter()
    scores = score_conformations(ca, truth_all[frames], run.base.ca)
    t3 = time.perf_counter()
    per_residue = per_residue_errors(ca, truth_all, frames, run.base.ca)
    t4 = time.perf_counter()
    timings = {"load": t1 - t0, "predict": t2 - t1, "scores": t3 - t2, "per_residue": t4 - t3}
    known = load_coordinates(ground_truth_path)
    latent = None
    if known is not None and len(z) >= 3:
        coordinates, names = known
        if len(coordinates) == len(truth_all):
            latent = latent_coordinates(z, coordinates[frames], names)
    return Evaluation(scores, per_residue, indices, frames, z, ca, timings, latent)


def check_run_particles_and_box(run, particles, indices) -> None:
    """:class:`InputError` unless ``particles`` can be the run's (count, held-out indices, field of view)."""
    check_run_particles(run.path, particles, indices)
    field_run = run.box * run.pixel_size_angstrom
    field_data = particles.box * float(np.median(particles.pixel_size_angstrom))
    if abs(field_data - field_run) > 0.02 * field_run:
        raise InputError(
            f"{particles.source_path}: images span {field_data:.1f} Å but the run was trained on {field_run:.1f} Å boxes; "
            "give the run's particle file"
        )


def evaluation_record(evaluation: Evaluation, *, run_dir, particles_path, ground_truth_path, figures=()) -> dict:
    """The contents of ``evaluation.json``: numbers, K, residues, paths, per-frame results and timings."""
    s = evaluation.scores
    pr = evaluation.per_residue
    return {
        "emd_rmsd_angstrom": s.emd_rmsd_angstrom,
        "rmsd_angstrom": s.rmsd_angstrom,
        "baseline_base_structure_angstrom": s.baseline_base_structure_angstrom,
        "baseline_mean_structure_angstrom": s.baseline_mean_structure_angstrom,
        "k": evaluation.k,
        "n_residues": evaluation.n_residues,
        "n_frames": int(len(pr.frames)),
        "per_frame": [
            {
                "frame": int(f),
                "n_particles": int(n),
                "rmsd_angstrom": float(r),
                "mean_residue_error_angstrom": float(np.mean(e)),
                "max_residue_displacement_angstrom": float(np.max(d)),
            }
            for f, n, r, e, d in zip(pr.frames, pr.n_particles, pr.rmsd_angstrom, pr.error_angstrom, pr.displacement_angstrom)
        ],
        "run_dir": str(Path(run_dir).resolve()),
        "particles": str(Path(particles_path).resolve()),
        "ground_truth": str(Path(ground_truth_path).resolve()),
        "figures": [str(f) for f in figures],
        **({"latent_coordinates": evaluation.latent.to_dict()} if evaluation.latent is not None else {}),
        "timings_seconds": {key: round(float(v), 4) for key, v in evaluation.timings_seconds.items()},
        "cryogeom_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def format_table(scores: Scores, k: int, n_residues: int) -> str:
    """The scores as a small text table (Å), with the 3.8 Å line for reference."""
    rows = [
        (f"EMD-RMSD (K = {k}, {n_residues} residues)", scores.emd_rmsd_angstrom),
        ("mean RMSD (each to its own frame)", scores.rmsd_angstrom),
        ("baseline: base structure for all", scores.baseline_base_structure_angstrom),
        ("baseline: mean structure for all", scores.baseline_mean_structure_angstrom),
        ("reference: Cα–Cα distance", CA_CA_DISTANCE_ANGSTROM),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':{width}}  {'Å':>7}"]
    lines += [f"{name:{width}}  {value:7.3f}" for name, value in rows]
    return "\n".join(lines)
