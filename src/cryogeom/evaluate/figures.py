"""Figures of a run (PNG, matplotlib's Agg renderer; no pyplot, no global state).

With ground truth (synthetic data):

* ``per_residue_error.png`` — paper Figs. 2-3: per residue, the mean distance of the predicted
  from the ground-truth position (after Kabsch superposition) against the residue's distance from
  its base position, one panel per frame for a few frames along the path; the 3.8 Å band grey;
* ``latent_pca_vs_frame.png`` — paper Fig. 10: PC1 of z against the ground-truth frame, mean ± sd
  per bin of frames.

Without (real data too):

* ``loss_curves.png`` — image and geometry loss and, when recorded, validation RMSD / EMD-RMSD
  with the two baselines, against training minutes (``metrics.csv``);
* ``latent_pca.png`` — the distribution of PC1 of z (and PC1 against PC2);
* ``images_renders.png`` — particle images above the renders of their predicted conformations;
* ``particle_quality.png`` — the particles' scores with the junk threshold, and the size of the
  pose corrections training made (the run's particles.npz).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cryogeom.evaluate.evaluation import CA_CA_DISTANCE_ANGSTROM, PerResidueErrors
from cryogeom.analysis.pca import fit_pca
from cryogeom.files import atomic_output
from cryogeom.evaluate.latent import bin_by_frame

PER_RESIDUE = "per_residue_error.png"
LATENT_VS_FRAME = "latent_pca_vs_frame.png"
LATENT = "latent_pca.png"
LOSS_CURVES = "loss_curves.png"
IMAGES_RENDERS = "images_renders.png"
PARTICLE_QUALITY = "particle_quality.png"

# Report order and captions.
CAPTIONS = {
    PER_RESIDUE: "Per-residue error against displacement from the base structure (paper Figs. 2-3). "
    "Each dot is one residue: x = distance of its ground-truth position from its base position, "
    "y = distance between predicted and ground-truth position averaged over the validation particles "
    "of that frame, after Kabsch superposition. Grey: the 3.8 Å band.",
    LATENT_VS_FRAME: "First principal component of the latent z against the ground-truth frame "
    "(paper Fig. 10); mean ± standard deviation per bin of frames.",
    LOSS_CURVES: "Training curves against training time (metrics.csv).",
    LATENT: "Distribution of the latents of the validation particles along their principal components.",
    IMAGES_RENDERS: "Validation particle images (top, as the network sees them) and the renders of "
    "their predicted conformations under the same pose and CTF (bottom).",
    PARTICLE_QUALITY: "Left: how well the model explains each particle (its score: the amplitude of the predicted "
    "particle in the image, in units of the noise), particles taken as junk (junk probability > 0.5) in red; "
    "`cryogeom analyze --select \"junk<0.5\"` writes the rest. Right: the angle of each particle's pose "
    "correction (the poses in refined_particles.star against the input's).",
}

_DPI = 100


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return path


def chosen_frames(frames, max_panels: int = 4, displacement=None) -> np.ndarray:
    """Up to ``max_panels`` positions into ``frames`` spread evenly from first to last (ends included).

    With ``displacement`` [F, N], frames that hardly differ from the base structure (every residue
    within 0.5 Å of it, e.g. the base's own frame) are left out while others remain: their panel
    would be a column of points at zero displacement.
    """
    positions = np.arange(len(frames))
    if displacement is not None:
        moved = positions[np.max(np.asarray(displacement), axis=1) >= 0.5]
        positions = moved if len(moved) else positions
    n = len(positions)
    return positions[np.unique(np.round(np.linspace(0, n - 1, min(n, max_panels))).astype(int))]


def plot_per_residue_errors(per_residue: PerResidueErrors, path, *, max_panels: int = 4) -> Path:
    """``per_residue_error.png`` (paper Figs. 2-3) for a few frames along the path; see the module docstring."""
    picks = chosen_frames(per_residue.frames, max_panels, per_residue.displacement_angstrom)
    fig = Figure(figsize=(3.2 * len(picks) + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(picks), sharey=True, squeeze=False)[0]
    top = max(CA_CA_DISTANCE_ANGSTROM + 0.5, 1.08 * float(np.max(per_residue.error_angstrom[picks])))
    for ax, i in zip(axes, picks):
        ax.axhspan(0.0, CA_CA_DISTANCE_ANGSTROM, color="0.85", zorder=0, label="< 3.8 Å")
        ax.scatter(per_residue.displacement_angstrom[i], per_residue.error_angstrom[i], s=7, color="tab:blue", alpha=0.8, zorder=2)
        ax.set_title(f"frame {int(per_residue.frames[i])} (n = {int(per_residue.n_particles[i])})", fontsize=10)
        ax.set_xlabel("distance from base (Å)")
        ax.set_ylim(0.0, top)
        ax.set_xlim(0.0, max(1.0, 1.05 * float(np.max(per_residue.displacement_angstrom[i]))))
    axes[0].set_ylabel("error of prediction (Å)")
    save_figure(fig, path)
    return Path(path)


def plot_latent_vs_frame(z, frames, path) -> Path:
    """``latent_pca_vs_frame.png`` (paper Fig. 10): PC1 of ``z`` [K, d] against ``frames`` [K]."""
    pca = fit_pca(z)
    pc1 = pca.transform(z)[:, 0]
    frames = np.asarray(frames)
    bins = bin_by_frame(frames, pc1)
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.scatter(frames, pc1, s=8, color="tab:blue", alpha=0.35, label="particles", zorder=3)
    ax.errorbar(bins.centre, bins.mean, yerr=bins.sd, fmt="o-", color="tab:red", capsize=3, label="mean ± sd", zorder=2)
    ax.set_xlabel("ground-truth frame")
    ax.set_ylabel(f"PC1 of z ({100 * pca.explained_variance_ratio[0]:.0f}% of variance; latent units)")
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, path)
    return Path(path)


def plot_latent_distribution(z, path) -> Path:
    """``latent_pca.png``: histogram of PC1 of ``z`` [K, d] and, when d >= 2, PC1 against PC2."""
    pca = fit_pca(z)
    scores = pca.transform(z)
    two = scores.shape[1] >= 2
    fig = Figure(figsize=(8.0 if two else 4.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if two else 1, squeeze=False)[0]
    ratio = pca.explained_variance_ratio
    axes[0].hist(scores[:, 0], bins=max(5, min(60, len(z) // 10)), color="tab:blue", alpha=0.85)
    axes[0].set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of variance)")
    axes[0].set_ylabel("particles")
    if two:
        axes[1].scatter(scores[:, 0], scores[:, 1], s=5, alpha=0.5, color="tab:blue")
        axes[1].set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)")
        axes[1].set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)")
    save_figure(fig, path)
    return Path(path)


def _column(metrics, name):
    if name not in metrics.columns:
        return None
    values = np.asarray(metrics[name], dtype=np.float64)
    return values if np.any(np.isfinite(values)) else None


def plot_loss_curves(metrics, path) -> Path:
    """``loss_curves.png`` from ``metrics`` (the DataFrame of ``metrics.csv``) against training minutes."""
    x = _column(metrics, "train_minutes")
    x_label = "training time (min)"
    if x is None:
        x = np.arange(1, len(metrics) + 1, dtype=np.float64)
        x_label = "epoch"
    style = "o-" if len(metrics) < 30 else "-"
    validation = [n for n in ("val_rmsd", "val_emd_rmsd") if _column(metrics, n) is not None]
    n_panels = 2 + bool(validation)
    fig = Figure(figsize=(4.0 * n_panels, 3.5), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]

    for name, label in (("train_image", "training"), ("val_image", "validation")):
        y = _column(metrics, name)
        if y is not None:
            axes[0].plot(x, y, style, ms=3, label=label)
    axes[0].set_title("image loss", fontsize=10)

    for name, label in (("train_geometry", "geometry"), ("train_chain", "chain"), ("train_bond", "bond")):
        y = _column(metrics, name)
        if y is not None:
            axes[1].plot(x, y, style, ms=3, label=label)
    geometry = _column(metrics, "train_geometry")
    if geometry is not None and np.all(geometry[np.isfinite(geometry)] > 0):
        axes[1].set_yscale("log")
    axes[1].set_title("geometry, chain and bond losses (training)", fontsize=10)

    if validation:
        ax = axes[2]
        for name, label in (("val_emd_rmsd", "EMD-RMSD"), ("val_rmsd", "mean RMSD")):
            y = _column(metrics, name)
            if y is not None:
                ax.plot(x, y, style, ms=3, label=label)
        for name, label, colour in (
            ("baseline_base_structure", "base structure", "tab:gray"),
            ("baseline_mean_structure", "mean structure", "tab:purple"),
        ):
            y = _column(metrics, name)
            if y is not None:
                ax.axhline(float(y[np.isfinite(y)][-1]), ls="--", lw=1, color=colour, label=f"baseline: {label}")
        ax.axhline(CA_CA_DISTANCE_ANGSTROM, ls=":", lw=1, color="k", label="3.8 Å")
        ax.set_ylabel("Å")
        ax.set_title("validation accuracy", fontsize=10)
    for ax in axes:
        ax.set_xlabel(x_label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)
    return Path(path)


def plot_images_and_renders(images, renders, path, labels=None) -> Path:
    """``images_renders.png``: ``images`` [B, D, D] in the top row, ``renders`` [B, D, D] below.

    Each panel has its own grey scale (1st-99th percentile). Displayed with y up (``origin="lower"``),
    the pixel convention of :mod:`cryogeom.imaging.grid`.
    """
    images = np.asarray(images)
    renders = np.asarray(renders)
    b = len(images)
    fig = Figure(figsize=(1.5 * b + 0.8, 3.4), layout="constrained")
    axes = fig.subplots(2, b, squeeze=False)
    for j in range(b):
        for row, (stack, name) in enumerate(((images, "image"), (renders, "render"))):
            ax = axes[row, j]
            lo, hi = np.percentile(stack[j], [1, 99])
            ax.imshow(stack[j], cmap="gray", origin="lower", vmin=lo, vmax=hi if hi > lo else lo + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name)
        if labels is not None:
            axes[0, j].set_title(str(labels[j]), fontsize=8)
    save_figure(fig, path)
    return Path(path)


def ground_truth_figures(evaluation, figures_dir) -> list[Path]:
    """The figures that need ground truth, from a :class:`cryogeom.evaluate.evaluation.Evaluation`."""
    figures_dir = Path(figures_dir)
    return [
        plot_per_residue_errors(evaluation.per_residue, figures_dir / PER_RESIDUE),
        plot_latent_vs_frame(evaluation.z, evaluation.frames, figures_dir / LATENT_VS_FRAME),
    ]


def plot_particle_quality(quality: dict, path) -> Path:
    score, junk = np.asarray(quality["score"]), np.asarray(quality["junk_probability"]) > 0.5
    angle = np.degrees(np.linalg.norm(np.asarray(quality["pose_correction_rotvec_rad"]), axis=1))
    fig = Figure(figsize=(9, 3.2))
    ax, bx = fig.subplots(1, 2)
    bins = np.linspace(np.nanmin(score), np.nanmax(score), 60) if np.ptp(score) > 0 else 10
    ax.hist(score[~junk], bins=bins, color="tab:blue", label=f"kept ({int((~junk).sum())})")
    if junk.any():
        ax.hist(score[junk], bins=bins, color="tab:red", label=f"junk ({int(junk.sum())})")
    ax.set_xlabel("particle score (noise units)")
    ax.set_ylabel("particles")
    ax.legend(frameon=False)
    bx.hist(angle, bins=50, color="tab:gray")
    bx.set_xlabel("pose correction (°)")
    bx.set_ylabel("particles")
    if not angle.any():
        bx.set_title("poses not refined", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def run_figures(figures_dir, *, metrics=None, z=None, images=None, renders=None, labels=None, quality=None) -> list[Path]:
    """The figures that need no ground truth, for whichever inputs are given."""
    figures_dir = Path(figures_dir)
    out = []
    if metrics is not None and len(metrics):
        out.append(plot_loss_curves(metrics, figures_dir / LOSS_CURVES))
    if z is not None and len(z) >= 2:
        out.append(plot_latent_distribution(z, figures_dir / LATENT))
    if images is not None and len(images):
        out.append(plot_images_and_renders(images, renders, figures_dir / IMAGES_RENDERS, labels))
    if quality is not None and len(quality.get("score", ())):
        out.append(plot_particle_quality(quality, figures_dir / PARTICLE_QUALITY))
    return out
