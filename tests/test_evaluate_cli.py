"""``cryogeom evaluate`` end to end on the tiny trained run, a perfect predictor, and bad input."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from cryogeom.cli import main
from cryogeom.evaluate.evaluation import Scores, format_table, score_conformations, validation_particles
from cryogeom.imaging.rotations import random_rotations

FIGURES = ("per_residue_error.png", "latent_pca_vs_frame.png", "latent_pca.png", "loss_curves.png", "images_renders.png", "particle_quality.png")


def copy_run(run, dst):
    """A private copy of a run directory (the session's tiny_run stays untouched)."""
    shutil.copytree(run, dst)
    return dst


def assert_png_not_blank(path):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, f"{path} looks blank"
    assert len(np.unique(np.round(rgb * 255).astype(np.uint8), axis=0)) > 20, f"{path} has too few colours"


@pytest.fixture(scope="module")
def evaluated(tiny_run, tiny_dataset, tmp_path_factory):
    """A copy of tiny_run after ``cryogeom evaluate``, and the evaluation record."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("evaluated") / "run")
    status = main(["evaluate", str(run), "--ground-truth", str(tiny_dataset / "ground_truth.npz"), "--no-progress"])
    assert status == 0
    return run, json.loads((run / "evaluation.json").read_text())


def test_evaluation_json_holds_finite_scores_and_what_was_scored(evaluated, tiny_dataset):
    run, record = evaluated
    validation = np.load(run / "validation_indices.npy")
    assert record["k"] == min(4000, len(validation))
    assert record["n_residues"] == 214
    for key in ("emd_rmsd_angstrom", "rmsd_angstrom", "baseline_base_structure_angstrom", "baseline_mean_structure_angstrom"):
        assert np.isfinite(record[key]) and record[key] >= 0, key
    # The optimal pairing can only do better than the identity pairing.
    assert record["emd_rmsd_angstrom"] <= record["rmsd_angstrom"] + 1e-9
    assert record["particles"] == str((tiny_dataset / "particles.star").resolve())
    assert record["ground_truth"] == str((tiny_dataset / "ground_truth.npz").resolve())
    frames = np.load(tiny_dataset / "ground_truth.npz")["frame"][validation[: record["k"]]]
    assert [f["frame"] for f in record["per_frame"]] == sorted(set(frames.tolist()))
    assert sum(f["n_particles"] for f in record["per_frame"]) == record["k"]
    assert set(record["timings_seconds"]) >= {"predict", "scores", "figures", "total"}


def test_scores_agree_with_the_trainers_last_validation(evaluated):
    """The trainer scored the same held-out particles with the same final weights (float32 noise only)."""
    run, record = evaluated
    last = pd.read_csv(run / "metrics.csv").iloc[-1]
    assert record["rmsd_angstrom"] == pytest.approx(last["val_rmsd"], abs=2e-3)
    assert record["emd_rmsd_angstrom"] == pytest.approx(last["val_emd_rmsd"], abs=2e-3)
    assert record["baseline_base_structure_angstrom"] == pytest.approx(last["baseline_base_structure"], abs=1e-6)
    assert record["baseline_mean_structure_angstrom"] == pytest.approx(last["baseline_mean_structure"], abs=1e-6)


def test_figures_and_report_are_written(evaluated):
    run, record = evaluated
    for name in FIGURES:
        assert_png_not_blank(run / "figures" / name)
    assert sorted(record["figures"]) == sorted(f"figures/{n}" for n in FIGURES)
    html = (run / "report.html").read_text()
    assert f"{record['emd_rmsd_angstrom']:.3f} Å" in html
    assert 'href="model.pt"' in html and 'href="evaluation.json"' in html


def test_the_printed_table_names_every_score():
    table = format_table(Scores(1.2345, 2.5, 4.4, 2.19), k=4000, n_residues=214)
    assert "K = 4000" in table and "214 residues" in table
    for value in ("1.234", "2.500", "4.400", "2.190", "3.800"):
        assert value in table


def test_validation_particles_are_the_first_k_held_out():
    held_out = np.array([3, 9, 11, 20])
    np.testing.assert_array_equal(validation_particles(held_out, 2), [3, 9])
    np.testing.assert_array_equal(validation_particles(held_out, 4000), held_out)


def test_ground_truth_against_itself_scores_zero_through_the_command(tiny_run, tiny_dataset, tmp_path, monkeypatch):
    """A perfect predictor (the ground truth, rigidly moved) gives EMD-RMSD = RMSD = 0 via the command's code path."""
    import cryogeom.train.inference as inference

    run = copy_run(tiny_run, tmp_path / "run")
    gt = np.load(tiny_dataset / "ground_truth.npz")
    seen = {}

    def perfect(run_, particles, indices, **kwargs):
        seen["indices"] = np.asarray(indices)
        truth = gt["ca"][gt["frame"][indices]]
        rng = np.random.default_rng(1)
        moved = truth @ np.swapaxes(random_rotations(len(truth), rng), -1, -2) + rng.normal(size=(len(truth), 1, 3)) * 20
        z = np.stack([gt["frame"][indices], np.zeros(len(indices))], axis=1).astype(np.float32) + 0.01 * rng.normal(size=(len(indices), 2))
        return z.astype(np.float32), moved.astype(np.float32)

    monkeypatch.setattr(inference, "predict", perfect)
    status = main(["evaluate", str(run), "--ground-truth", str(tiny_dataset / "ground_truth.npz"), "--no-progress", "-k", "5"])
    assert status == 0
    record = json.loads((run / "evaluation.json").read_text())
    np.testing.assert_array_equal(seen["indices"], np.load(run / "validation_indices.npy")[:5])
    assert record["k"] == 5
    # float32 coordinates (~1e-5 Å) and the closed-form RMSD matrix (~1e-6 Å) leave only rounding.
    assert record["emd_rmsd_angstrom"] < 1e-4
    assert record["rmsd_angstrom"] < 1e-4
    assert all(f["mean_residue_error_angstrom"] < 1e-4 for f in record["per_frame"])
    # The baselines do not depend on the prediction and are not zero on a moving protein.
    assert record["baseline_mean_structure_angstrom"] > 0.5


def test_a_shuffled_prediction_has_zero_emd_rmsd_but_not_zero_rmsd(tiny_dataset):
    gt = np.load(tiny_dataset / "ground_truth.npz")
    truth = gt["ca"][np.array([0, 17, 34, 51, 68, 85])]
    scores = score_conformations(truth[::-1], truth, truth[0])
    assert scores.emd_rmsd_angstrom < 1e-5
    assert scores.rmsd_angstrom > 1.0
    assert scores.baseline_base_structure_angstrom > scores.baseline_mean_structure_angstrom > 0


# -- bad input: one line, exit status 2, nothing written ---------------------------------------


def _bad_ground_truth(tmp_path, tiny_dataset, kind):
    data = dict(np.load(tiny_dataset / "ground_truth.npz"))
    if kind == "count":
        data["frame"] = data["frame"][:50]
        data.pop("rotations")
        data.pop("written_rotations")
    elif kind == "residues":
        data["ca"] = data["ca"][:, :200]
    elif kind == "poses":
        data["written_rotations"] = data["written_rotations"][::-1]  # the poses in the .star
    path = tmp_path / f"gt_{kind}.npz"
    np.savez(path, **data)
    return path


def _foreign_particles(tmp_path, tiny_dataset):
    """A particle file that is not the run's: the first 40 particles of its data set."""
    import starfile

    star = starfile.read(tiny_dataset / "particles.star", always_dict=True)
    star["particles"] = star["particles"].iloc[:40].copy()
    stack = (tiny_dataset / "particles.mrcs").resolve()
    star["particles"]["rlnImageName"] = [f"{name.split('@')[0]}@{stack}" for name in star["particles"]["rlnImageName"]]
    path = tmp_path / "other.star"
    starfile.write(star, path)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_run_dir", "no such run directory"),
        ("no_model", "holds no model.pt"),
        ("gt_count", "describes 50 particles"),
        ("gt_residues", "has 200 residues"),
        ("gt_poses", "poses differ"),
        ("foreign_particles", "holds 40 particles but the run"),
        ("missing_ground_truth", "no such ground-truth file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, expected, tiny_run, tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    gt = tiny_dataset / "ground_truth.npz"
    extra = []
    if case == "no_model":
        run.mkdir()
        for name in ("config.json", "base.pdb", "validation_indices.npy", "metrics.csv"):
            shutil.copy(tiny_run / name, run / name)
    elif case != "no_run_dir":
        copy_run(tiny_run, run)
    if case.startswith("gt_"):
        gt = _bad_ground_truth(tmp_path, tiny_dataset, case[3:])
    elif case == "foreign_particles":
        extra = ["--particles", str(_foreign_particles(tmp_path, tiny_dataset))]
    elif case == "missing_ground_truth":
        gt = tmp_path / "nothing.npz"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    status = main(["evaluate", str(run), "--ground-truth", str(gt), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("cryogeom evaluate: error: ") and expected in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
