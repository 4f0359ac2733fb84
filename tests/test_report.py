"""RUN/report.html: contents, links, self-containment, ``cryogeom report``, and rendering in headless Chromium."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from cryogeom.cli import main
from cryogeom.evaluate import figures
from cryogeom.evaluate.report import build_report, write_report

EMD = 1.8765
RMSD = 2.3456


class _Page(HTMLParser):
    """Collects the text of elements by id, every href and src, and the tags used."""

    def __init__(self):
        super().__init__()
        self.by_id, self.hrefs, self.srcs, self.tags, self._open = {}, [], [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if "src" in attrs:
            self.srcs.append(attrs["src"])
        self._open.append(attrs.get("id"))
        if attrs.get("id"):
            self.by_id[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for element_id in self._open:
            if element_id:
                self.by_id[element_id] += data


def parse(text) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _metrics(rows=4, validation=True):
    table = pd.DataFrame({
        "epoch": np.arange(1, rows + 1), "step": 10 * np.arange(1, rows + 1), "train_minutes": np.linspace(1, 4, rows),
        "train_loss": np.linspace(1.0, 0.9, rows), "train_image": np.linspace(1.0, 0.9, rows),
        "train_geometry": np.geomspace(1e-5, 1e-3, rows), "train_bond": np.linspace(0.1, 0.01, rows),
        "train_centering": 1e-6, "images_per_s": [900.0, 1000.0, 1100.0, 1200.0][:rows], "lr": 1e-3, "val_image": 0.95,
    })
    if validation:
        table["val_rmsd"] = np.linspace(4.4, 2.6, rows)
        table["val_emd_rmsd"] = np.linspace(4.4, 2.1, rows)
        table["baseline_base_structure"] = 4.47
        table["baseline_mean_structure"] = 2.19
    return table


@pytest.fixture
def synthetic_run(tmp_path):
    """A run directory as train + evaluate + predict + analyze leave it (no real model needed)."""
    run = tmp_path / "run <1>"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({
        "config": {"alpha": 0.05, "batch_size": 128, "lr": 0.001, "preset": "<script>alert(1)</script>"},
        "particles": "/data/particles.star", "n_particles": 20000, "base_structure": "/data/adk.pdb",
        "n_residues": 214, "box": 80, "pixel_size_angstrom": 1.0, "version": "0.1.0", "command_line": ["cryogeom", "train"],
    }))
    (run / "calibration.json").write_text(json.dumps({"invert_data": True, "mu0": 0.0, "s0": 1.0, "correlation": 0.3, "n_particles": 512}))
    _metrics().to_csv(run / "metrics.csv", index=False)
    (run / "evaluation.json").write_text(json.dumps({
        "emd_rmsd_angstrom": EMD, "rmsd_angstrom": RMSD, "baseline_base_structure_angstrom": 4.47,
        "baseline_mean_structure_angstrom": 2.19, "k": 4000, "n_residues": 214, "n_frames": 102,
        "timings_seconds": {"predict": 3.0, "scores": 4.0}, "created": "2026-01-01 00:00:00",
    }))
    (run / "model.pt").write_bytes(b"weights")
    (run / "predict").mkdir()
    (run / "predict" / "conformations.dcd").write_bytes(b"\0" * 2048)
    (run / "analysis").mkdir()
    (run / "analysis" / "pc1_traversal.pdb").write_text("END\n")
    figures.run_figures(run / "figures", metrics=_metrics())
    shutil.copy(run / "figures" / figures.LOSS_CURVES, run / "analysis" / "pca.png")  # as cryogeom analyze writes one
    return run


def test_report_shows_the_numbers_links_and_embedded_figures(synthetic_run):
    text = build_report(synthetic_run)
    page = parse(text)
    assert page.by_id["emd-rmsd"] == f"{EMD:.3f} Å"
    assert page.by_id["rmsd"] == f"{RMSD:.3f} Å"
    assert page.by_id["baseline-base"] == "4.470 Å" and page.by_id["baseline-mean"] == "2.190 Å"
    for target in ("model.pt", "metrics.csv", "evaluation.json", "config.json", "predict/conformations.dcd",
                   "analysis/pc1_traversal.pdb", "figures/loss_curves.png"):
        assert target in page.hrefs, target
    # Training summary: time, median images/s, epochs.
    assert "4.00 min" in text and "1050.0" in text
    # Self-contained: figures embedded byte for byte, nothing fetched; the only scripts are the 3D
    # view's, embedded (3Dmol.js and the view itself), none loaded from anywhere.
    pngs = [(synthetic_run / rel).read_bytes() for rel in ("figures/loss_curves.png", "analysis/pca.png")]
    assert page.srcs == ["data:image/png;base64," + base64.b64encode(png).decode() for png in pngs]
    assert "analysis/pca.png" in page.hrefs
    assert text.count("<script>") == 2 and "<script src" not in text and "<script " not in text
    assert not any(link.startswith(("http:", "https:", "//")) for link in page.hrefs + page.srcs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_report_warns_when_the_evaluation_is_older_than_the_model(synthetic_run):
    evaluation = synthetic_run / "evaluation.json"
    model_time = (synthetic_run / "model.pt").stat().st_mtime
    os.utime(evaluation, (model_time + 60, model_time + 60))
    assert "stale-evaluation" not in parse(build_report(synthetic_run)).by_id
    os.utime(evaluation, (model_time - 60, model_time - 60))
    assert "stale-evaluation" in parse(build_report(synthetic_run)).by_id


def test_report_without_evaluation_uses_the_training_validation_or_says_accuracy_is_unknown(synthetic_run):
    (synthetic_run / "evaluation.json").unlink()
    page = parse(build_report(synthetic_run))
    assert page.by_id["emd-rmsd"] == f"{_metrics()['val_emd_rmsd'].iloc[-1]:.3f} Å"
    _metrics(validation=False).to_csv(synthetic_run / "metrics.csv", index=False)
    text = build_report(synthetic_run)
    assert "emd-rmsd" not in parse(text).by_id
    assert "accuracy is not known" in text


def test_write_report_is_atomic_and_leaves_no_temporary_file(synthetic_run):
    path = write_report(synthetic_run)
    assert path == synthetic_run / "report.html"
    assert not [p for p in synthetic_run.iterdir() if p.name.startswith(".")]


# -- cryogeom report on a real run -------------------------------------------------------------


def test_report_command_rebuilds_the_figures_that_need_no_ground_truth(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["report", str(run), "--no-progress"]) == 0
    names = sorted(p.name for p in (run / "figures").iterdir())
    assert names == sorted([figures.LOSS_CURVES, figures.LATENT, figures.IMAGES_RENDERS, figures.PARTICLE_QUALITY])
    page = parse((run / "report.html").read_text())
    assert all(src.startswith("data:image/png;base64,") for src in page.srcs) and len(page.srcs) == 4
    assert "emd-rmsd" in page.by_id  # validation scores recorded during training


def test_report_command_without_the_particle_file_still_writes_the_page(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "config.json").read_text())
    meta["particles"] = str(tmp_path / "moved" / "particles.star")
    (run / "config.json").write_text(json.dumps(meta))
    assert main(["report", str(run)]) == 0
    assert "skipping the latent and render figures" in capsys.readouterr().err
    # the particles' scores come from the run itself (particles.npz), not the particle file
    assert sorted(p.name for p in (run / "figures").iterdir()) == sorted([figures.LOSS_CURVES, figures.PARTICLE_QUALITY])


def test_report_command_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = sorted(run.rglob("*"))
    assert main(["report", str(run), "--particles", str(tmp_path / "none.star")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.star: file not found" in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert sorted(run.rglob("*")) == before


# -- rendering in a real browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


def run_chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, no network services, no GPU."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))  # a fresh one per call
    command = [
        CHROMIUM, "--headless", "--no-sandbox", *([] if any(a.startswith("--use-angle") for a in args) else ["--disable-gpu"]),
        "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; `make test` does so where it can)")
def test_report_renders_in_headless_chromium(synthetic_run, tmp_path):
    report = write_report(synthetic_run)
    url = report.resolve().as_uri()
    dom = run_chromium(tmp_path, "--dump-dom", url).stdout
    page = parse(dom)
    assert page.by_id.get("emd-rmsd") == f"{EMD:.3f} Å", "the EMD-RMSD is not in the rendered DOM"

    shot = tmp_path / "report.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", url)
    image = imread(shot)[..., :3]
    assert image.shape[:2] == (1600, 1200)
    colours = np.unique(np.round(image.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert image.std() > 0.05, "the screenshot is blank"
    assert len(colours) > 50, f"the screenshot has only {len(colours)} colours"


def test_a_run_cut_short_by_its_budget_says_so(tiny_dataset, tmp_path):
    from cryogeom.cli import main as cryogeom

    run = tmp_path / "run"
    status = cryogeom(["train", str(tiny_dataset / "particles.star"), "--structure", str(tiny_dataset / "base.pdb"), "-o", str(run),
                       "--epochs", "50", "--batch-size", "16", "--max-minutes", "0.002", "--no-progress", "--threads", "1"])
    assert status == 0
    assert cryogeom(["report", str(run), "--no-figures"]) == 0
    page = (run / "report.html").read_text()
    assert 'id="cut-short"' in page and "of 50 epochs" in page
    # a run that finished its schedule carries no such flag
    full = tmp_path / "full"
    assert cryogeom(["train", str(tiny_dataset / "particles.star"), "--structure", str(tiny_dataset / "base.pdb"), "-o", str(full),
                     "--epochs", "1", "--batch-size", "16", "--no-progress", "--threads", "1"]) == 0
    assert cryogeom(["report", str(full), "--no-figures"]) == 0
    assert 'id="cut-short"' not in (full / "report.html").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; `make test` does so where it can)")
def test_the_3d_view_of_the_motion_draws_in_headless_chromium(tiny_run, tiny_dataset, tmp_path):
    from cryogeom.evaluate.viewer import viewer_section

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["analyze", str(run), "--particles", str(tiny_dataset / "particles.star"), "--no-progress", "--traversal-points", "5"]) == 0
    assert main(["report", str(run), "--no-figures"]) == 0
    report = (run / "report.html").read_text()
    assert 'id="motion-3d"' in report and "PC1 traversal" in report and "https://" not in report.split('id="motion-3d"')[1][:2000]
    # the section alone, so that the canvas lies where the test looks
    page = tmp_path / "viewer.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='margin:0'>{viewer_section(run)}</body></html>")
    webgl = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--virtual-time-budget=3000"]
    # Software WebGL in a headless browser on a busy machine now and then ends its time budget
    # before the first frame: up to three tries, each in a fresh browser; the page must draw in one.
    for _ in range(3):
        dom = run_chromium(tmp_path, *webgl, "--dump-dom", page.resolve().as_uri()).stdout
        if 'data-drawn="yes"' in dom:
            break
    assert 'data-drawn="yes"' in dom, "the viewer script did not draw"
    shot = tmp_path / "viewer.png"
    for _ in range(3):
        run_chromium(tmp_path, *webgl, f"--screenshot={shot}", "--window-size=900,800", page.resolve().as_uri())
        canvas = imread(shot)[..., :3][250:700, 50:850]  # inside the 520 px viewer, below the heading and menu
        colours = np.unique(np.round(canvas.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
        if canvas.std() > 0.02 and len(colours) > 50:
            break
    assert canvas.std() > 0.02 and len(colours) > 50, f"the 3D view is blank ({len(colours)} colours)"


def test_report_shows_each_pcs_share_of_the_latent_variance(synthetic_run):
    """From analyze's pca.json: every PC's share, the flat ones marked; with a landscape's known
    coordinates (evaluate), each coordinate's correlation with each PC."""
    (synthetic_run / "analysis" / "pca.json").write_text(json.dumps({
        "n_particles": 61200, "explained_variance_ratio": [0.9712, 0.0280, 0.0005, 0.0003], "flat_pcs": ["pc3", "pc4"],
    }))
    evaluation = json.loads((synthetic_run / "evaluation.json").read_text())
    evaluation["latent_coordinates"] = {
        "variance_fraction_per_pc": [0.5, 0.3, 0.15, 0.05],
        "coordinates": [
            {"name": "LID closure", "correlation_per_pc": [0.79, -0.1, 0.05, 0.0], "best_pc": 1, "best_abs_r": 0.79, "linear_r2": 0.68},
            {"name": "NMP closure", "correlation_per_pc": [0.2, -0.58, 0.1, 0.0], "best_pc": 2, "best_abs_r": 0.58, "linear_r2": 0.44},
        ],
    }
    (synthetic_run / "evaluation.json").write_text(json.dumps(evaluation))
    html = build_report(synthetic_run)
    section = html[html.index("<h2>Latent space</h2>"):html.index("<h2>Training")]
    assert "97.1 %" in section and "2.8 %" in section and "0.05 %" in section and "61200 particles (cryogeom analyze)" in section
    assert section.count("flat: no traversal") == 2
    assert "r with NMP closure" in section and "-0.58" in section
    assert "NMP closure: |r| = 0.58 with PC2, R² of a linear fit on z 0.44" in section
    (synthetic_run / "analysis" / "pca.json").unlink()  # no analysis: the evaluation's PCs
    assert "50.0 %" in build_report(synthetic_run)
