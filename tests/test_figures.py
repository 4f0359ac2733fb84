"""Per-residue errors (hand-checkable), latent PCA and binning, and the figures as non-blank PNGs."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from cryogeom.errors import InputError
from cryogeom.evaluate import figures
from cryogeom.evaluate.evaluation import per_residue_errors
from cryogeom.analysis.pca import fit_pca
from cryogeom.evaluate.latent import bin_by_frame
from cryogeom.imaging.rotations import random_rotations


def assert_png_not_blank(path):
    image = imread(path)
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, f"{path} looks blank"
    assert len(np.unique(np.round(rgb * 255).astype(np.uint8), axis=0)) > 20, f"{path} has too few colours"


def _rigid(x, rng):
    """Each cloud [K, N, 3] rotated by its own proper rotation and translated."""
    return x @ np.swapaxes(random_rotations(len(x), rng), -1, -2) + rng.normal(size=(len(x), 1, 3)) * 30


@pytest.fixture
def base():
    """A centred, asymmetric cloud [N = 6, 3] (Å) with known distances |a_i| from its centroid."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 3)) * 5
    return x - x.mean(axis=0)


def test_per_residue_errors_of_scaled_clouds_by_hand(base):
    """Scaling a centred cloud about its centroid leaves the best superposition the identity.

    Frame 1 is the base scaled by s = 1.2: each residue moved (s - 1)|a_i| from its base position.
    Its two predictions are that frame scaled by t = 0.9 and t = 1.3: residue errors
    |t - 1| s |a_i|, whose mean is 0.2 s |a_i|. Frame 0 is the base itself, predicted exactly.
    Rigid motions of every cloud must not change any of that.
    """
    rng = np.random.default_rng(0)
    s = 1.2
    frames_ca = np.stack([base, s * base])
    radius = np.linalg.norm(base, axis=1)
    predictions = np.stack([base, 0.9 * s * base, 1.3 * s * base])
    frames = np.array([0, 1, 1])
    result = per_residue_errors(_rigid(predictions, rng), _rigid(frames_ca, rng), frames, _rigid(base[None], rng)[0])

    np.testing.assert_array_equal(result.frames, [0, 1])
    np.testing.assert_array_equal(result.n_particles, [1, 2])
    np.testing.assert_allclose(result.displacement_angstrom[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(result.displacement_angstrom[1], (s - 1) * radius, rtol=1e-9)
    np.testing.assert_allclose(result.error_angstrom[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(result.error_angstrom[1], 0.5 * (0.1 + 0.3) * s * radius, rtol=1e-9)
    rms = np.sqrt(np.mean(radius**2))
    np.testing.assert_allclose(result.rmsd_angstrom, [0.0, 0.5 * (0.1 + 0.3) * s * rms], atol=1e-9)


def test_per_residue_errors_reject_mismatched_input(base):
    with pytest.raises(InputError, match="frames: 1 given for 2 predictions"):
        per_residue_errors(np.stack([base, base]), base[None], [0], base)
    with pytest.raises(InputError, match="frames: must be in 0..0"):
        per_residue_errors(base[None], base[None], [1], base)


def test_principal_components_find_the_direction_of_largest_spread():
    rng = np.random.default_rng(2)
    direction = np.array([0.2, -0.9, 0.1, 0.3, 0.0, 0.1, -0.1, 0.2])
    direction /= np.linalg.norm(direction)
    t = np.linspace(-3, 3, 400)
    z = t[:, None] * direction + 0.01 * rng.normal(size=(400, 8)) + 7.0
    pca = fit_pca(z)
    scores = pca.transform(z)
    # Deterministic sign: the largest-magnitude entry of each component is positive.
    assert pca.components[0] @ direction == pytest.approx(-1.0, abs=1e-3)
    assert pca.explained_variance_ratio[0] > 0.99
    np.testing.assert_allclose(np.abs(scores[:, 0]), np.abs(t), atol=0.05)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(8), atol=1e-12)


def test_bin_by_frame_by_hand():
    bins = bin_by_frame([0, 0, 5, 5, 5], [1.0, 3.0, 4.0, 4.0, 7.0])
    np.testing.assert_array_equal(bins.centre, [0, 5])
    np.testing.assert_array_equal(bins.count, [2, 3])
    np.testing.assert_allclose(bins.mean, [2.0, 5.0])
    np.testing.assert_allclose(bins.sd, [1.0, np.sqrt(2.0)])


def test_bin_by_frame_cuts_many_frames_into_equal_bins():
    frames = np.arange(102)
    bins = bin_by_frame(frames, frames.astype(float), max_bins=10)
    assert len(bins.count) == 10 and bins.count.sum() == 102
    assert np.all(np.diff(bins.mean) > 0)
    for lo, hi, mean in zip(bins.lower, bins.upper, bins.mean):
        inside = frames[(frames >= lo) & (frames < hi)]
        assert mean == pytest.approx(inside.mean())


def test_chosen_frames_span_the_path():
    np.testing.assert_array_equal(figures.chosen_frames(np.arange(102), 4), [0, 34, 67, 101])
    np.testing.assert_array_equal(figures.chosen_frames(np.arange(2), 4), [0, 1])


def _metrics(with_validation: bool, rows: int = 6) -> pd.DataFrame:
    table = pd.DataFrame({
        "epoch": np.arange(1, rows + 1),
        "train_minutes": np.linspace(0.5, 3.0, rows),
        "train_image": np.linspace(1.0, 0.9, rows),
        "train_geometry": np.geomspace(1e-5, 1e-3, rows),
        "train_bond": np.linspace(0.1, 0.01, rows),
        "val_image": np.linspace(1.0, 0.92, rows),
    })
    if with_validation:
        table["val_rmsd"] = np.linspace(4.4, 2.0, rows)
        table["val_emd_rmsd"] = np.linspace(4.4, 1.8, rows)
        table["baseline_base_structure"] = 4.47
        table["baseline_mean_structure"] = 2.19
    return table


@pytest.mark.parametrize("with_validation", [True, False], ids=["synthetic", "real-data"])
def test_loss_curves_are_drawn_with_and_without_validation_scores(tmp_path, with_validation):
    path = figures.plot_loss_curves(_metrics(with_validation), tmp_path / "loss.png")
    assert_png_not_blank(path)
    # Three panels with validation accuracy, two without: the figure is wider with them.
    width = imread(path).shape[1]
    assert width == (1200 if with_validation else 800)


def test_figures_from_synthetic_data_are_non_blank_pngs(tmp_path, base):
    rng = np.random.default_rng(3)
    frames_ca = np.stack([base * (1 + 0.05 * f) for f in range(6)])
    frames = rng.integers(0, 6, size=60)
    predictions = frames_ca[frames] + rng.normal(size=(60, 6, 3)) * 0.5
    result = per_residue_errors(predictions, frames_ca, frames, base)
    z = np.column_stack([frames + rng.normal(size=60) * 0.3, rng.normal(size=(60, 7)) * 0.1])
    images = rng.normal(size=(4, 24, 24))
    renders = np.exp(-((np.arange(24) - 12) ** 2)[:, None] / 20 - ((np.arange(24) - 12) ** 2)[None, :] / 30) * np.ones((4, 1, 1))
    score = np.concatenate([rng.normal(7, 1, 300), rng.normal(0, 1, 30)])
    quality = {"score": score, "junk_probability": (score < 3).astype(float), "pose_correction_rotvec_rad": rng.normal(size=(330, 3)) * 0.02}
    written = [
        figures.plot_per_residue_errors(result, tmp_path / figures.PER_RESIDUE),
        figures.plot_latent_vs_frame(z, frames, tmp_path / figures.LATENT_VS_FRAME),
        *figures.run_figures(tmp_path, metrics=_metrics(True), z=z, images=images, renders=renders, labels=list("abcd"), quality=quality),
    ]
    assert sorted(p.name for p in written) == sorted(figures.CAPTIONS)
    for path in written:
        assert_png_not_blank(path)
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figures.CAPTIONS)


def test_run_figures_draw_only_what_they_are_given(tmp_path):
    written = figures.run_figures(tmp_path, metrics=_metrics(False, rows=1))
    assert [p.name for p in written] == [figures.LOSS_CURVES]
    assert_png_not_blank(written[0])
    assert figures.run_figures(tmp_path / "none") == []


def test_chosen_frames_leave_out_the_base_structures_own_frame():
    displacement = np.tile(np.linspace(0.0, 12.0, 102)[:, None], (1, 5))  # frame 0 is the base: 0 Å everywhere
    picks = figures.chosen_frames(np.arange(102), 4, displacement)
    assert picks[0] > 0 and displacement[picks].max(axis=1).min() >= 0.5 and picks[-1] == 101
    np.testing.assert_array_equal(figures.chosen_frames(np.arange(3), 4, np.zeros((3, 5))), [0, 1, 2])  # nothing moved
