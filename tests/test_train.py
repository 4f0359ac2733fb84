"""The training loop: it learns, it survives interruptions, and it refuses bad input."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cryogeom.cli import main as cryogeom
from cryogeom.particles.read import read_particles
from cryogeom.structure.read import read_structure
from cryogeom.train.config import preset
from cryogeom.train.loop import Trainer


def _trainer(sim, run_dir, **overrides):
    cfg = preset("default", **{"epochs": 3, "batch_size": 16, "threads": 1, **overrides})
    particles = read_particles(sim / "particles.star")
    base = read_structure(sim / "base.pdb")
    return Trainer(cfg, particles, base, run_dir, progress=False, log=lambda *a, **k: None)


def _image_loss_on(trainer, idx):
    from cryogeom.imaging.ctf import CTFParams
    from cryogeom.losses.image import image_loss
    from cryogeom.particles import batch as prep

    trainer.model.eval()
    with torch.no_grad():
        batch = trainer.dataset.get_batch(idx)
        data = prep.prepare(batch["image"], trainer.calibration.invert_data)
        _, _, render = trainer.model(data, batch["rotation"], batch["shift_angstrom"], CTFParams.stack(batch["ctf"]))
        return float(image_loss(render, data))


def test_short_training_lowers_the_image_loss(tiny_dataset, tmp_path):
    tr = _trainer(tiny_dataset, tmp_path / "run", epochs=8, lr=3e-3, warmup_steps=0)
    before = _image_loss_on(tr, tr.train_idx)
    tr.fit()
    after = _image_loss_on(tr, tr.train_idx)
    assert after < before - 1e-3, (before, after)


def test_every_loss_term_enters_the_total_with_its_weight(tiny_dataset, tmp_path):
    from cryogeom.losses.geometry import GeometryLoss, chain_window_pairs

    weights = dict(alpha=0.01, beta=0.02, gamma=0.3, chain_weight=0.7)
    tr = _trainer(tiny_dataset, tmp_path / "run", **weights)
    batch = tr.dataset.get_batch(tr.train_idx[:8])
    with torch.no_grad():
        for p in tr.model.decoder.parameters():  # a decoder that moves the residues, so every term is non-zero
            p.add_(0.05 * torch.randn_like(p))
        tr.model.eval()  # the same z in both passes below: no training noise on the latent
        terms = tr.losses(batch)
    total = terms["image"] + 0.01 * terms["geometry"] + 0.02 * terms["bond"] + 0.3 * terms["centering"] + 0.7 * terms["chain"]
    assert float(terms["loss"]) == pytest.approx(float(total), rel=1e-6)
    assert all(float(terms[k]) > 0 for k in ("geometry", "bond", "chain"))
    # The chain term is the geometry loss over the residues 1-3 bonds apart in the base structure.
    base = read_structure(tiny_dataset / "base.pdb")
    from cryogeom.imaging.ctf import CTFParams
    from cryogeom.particles import batch as prep

    with torch.no_grad():
        data = prep.prepare(batch["image"], tr.calibration.invert_data)
        _, ca, _ = tr.model(data, batch["rotation"], batch["shift_angstrom"], CTFParams.stack(batch["ctf"]))
        chain = GeometryLoss(tr.model.base_ca.double(), pairs=chain_window_pairs(base.bonded_pairs, len(base.ca), 3))(ca.double())
    assert float(terms["chain"]) == pytest.approx(float(chain), rel=1e-4)
    off = _trainer(tiny_dataset, tmp_path / "off", chain_weight=0.0)
    assert float(off.losses(batch)["chain"]) == 0.0


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tiny_dataset, tmp_path):
    straight = _trainer(tiny_dataset, tmp_path / "straight")
    straight.fit()

    interrupted = _trainer(tiny_dataset, tmp_path / "interrupted")
    real_step, calls = interrupted.step, []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # mid-epoch of the second epoch (4 or 5 batches per epoch)
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    interrupted.step = step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    state = torch.load(tmp_path / "interrupted" / "checkpoint.pt", weights_only=True)["state"]
    assert state["epoch"] == 1 and state["step_in_epoch"] >= 1  # saved mid-epoch

    cfg = preset("default", epochs=3, batch_size=16, threads=1)
    resumed = Trainer(cfg, read_particles(tiny_dataset / "particles.star"), read_structure(tiny_dataset / "base.pdb"),
                      tmp_path / "interrupted", resume=True, progress=False, log=lambda *a, **k: None)
    resumed.fit()
    a = straight.model.state_dict()
    b = resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=f"weights differ in {key}")


def test_sigkill_mid_epoch_then_resume(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "cryogeom", "train", str(tiny_dataset / "particles.star"), "--structure",
           str(tiny_dataset / "base.pdb"), "-o", str(run), "--epochs", "200", "--batch-size", "16", "--threads", "1",
           "--no-progress", "--set", "checkpoint_every_minutes=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    ckpt = run / "checkpoint.pt"
    try:
        while time.monotonic() < deadline:
            if ckpt.is_file() and torch.load(ckpt, weights_only=True)["state"]["global_step"] >= 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(ckpt, weights_only=True)["state"]
    assert not (run / "model.pt").exists()
    status = subprocess.run([*cmd[:cmd.index("--epochs") + 1], str(saved["epoch"] + 2), *cmd[cmd.index("--epochs") + 2:], "--resume"],
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    assert "resuming at epoch" in status.stdout + status.stderr
    done = torch.load(ckpt, weights_only=True)["state"]
    assert done["global_step"] > saved["global_step"] and done["epoch"] == saved["epoch"] + 2
    assert (run / "model.pt").is_file()


def test_run_directory_contents(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["version"] and cfg["command_line"][0] == "cryogeom" and cfg["config"]["epochs"] == 2
    val = np.load(tiny_run / "validation_indices.npy")
    trn = np.load(tiny_run / "training_indices.npy")
    assert len(np.intersect1d(val, trn)) == 0 and len(val) > 0
    rows = list(csv.DictReader(open(tiny_run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["val_emd_rmsd"])) for r in rows)
    cal = json.loads((tiny_run / "calibration.json").read_text())
    assert cal["invert_data"] is True  # RELION-normalised simulation: protein bright


def test_polarity_is_detected_for_raw_counts(tmp_path):
    from conftest import TINY_SIM_ARGS

    sim = tmp_path / "raw"
    assert cryogeom(["simulate", *TINY_SIM_ARGS, "--normalise", "none", "-o", str(sim)]) == 0
    tr = _trainer(sim, tmp_path / "run", epochs=1)
    assert tr.calibration.invert_data is False


# -- bad input: one line, exit status 2, nothing overwritten --------------------------------------------


def _train_cli(capsys, *args):
    status = cryogeom(["train", *map(str, args), "--no-progress", "--threads", "1"])
    err = capsys.readouterr().err.strip()
    return status, err


def test_refuses_a_directory_holding_another_run(tiny_dataset, tiny_run, capsys):
    before = (tiny_run / "model.pt").stat().st_mtime_ns
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", tiny_dataset / "base.pdb", "-o", tiny_run)
    assert status == 2 and len(err.splitlines()) == 1 and "--resume" in err and "--force" in err
    assert (tiny_run / "model.pt").stat().st_mtime_ns == before


def test_force_replaces_the_previous_run_and_keeps_other_files(tiny_dataset, tiny_run, tmp_path, capsys):
    run = tmp_path / "forced"
    shutil.copytree(tiny_run, run)
    from cryogeom import run_dir as rd

    rd.write_json(run, rd.EVALUATION, {})  # as cryogeom evaluate writes it (recorded in the run's manifest)
    (run / "notes.txt").write_text("the user's own file")
    old_rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(old_rows) >= 2
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", tiny_dataset / "base.pdb", "-o", run,
                             "--force", "--epochs", "1", "--batch-size", "16")  # fmt: skip
    assert status == 0, err
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1"]  # the old run's rows are gone, not appended to
    assert not (run / "evaluation.json").exists()  # its evaluation scored the old model
    assert (run / "notes.txt").read_text() == "the user's own file"


def test_batch_size_larger_than_the_data(tiny_dataset, tmp_path, capsys):
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", tiny_dataset / "base.pdb", "-o", tmp_path / "r", "--batch-size", "5000")
    assert status == 2 and len(err.splitlines()) == 1 and "--batch-size" in err
    assert not (tmp_path / "r" / "config.json").exists()


def test_a_setting_outside_its_choices(tiny_dataset, tmp_path, capsys):
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", tiny_dataset / "base.pdb", "-o", tmp_path / "r",
                             "--set", "density_weights=vacuum")  # fmt: skip
    assert status == 2 and len(err.splitlines()) == 1 and "density_weights" in err and "ice, electrons" in err
    assert not (tmp_path / "r").exists()
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", tiny_dataset / "base.pdb", "-o", tmp_path / "r",
                             "--set", "chain_window=0")  # fmt: skip
    assert status == 2 and len(err.splitlines()) == 1 and "chain_window" in err and ">= 1" in err
    assert not (tmp_path / "r").exists()


def test_star_referencing_missing_stack(tiny_dataset, tmp_path, capsys):
    star = tmp_path / "moved.star"
    shutil.copy(tiny_dataset / "particles.star", star)  # the .mrcs stays behind
    status, err = _train_cli(capsys, star, "--structure", tiny_dataset / "base.pdb", "-o", tmp_path / "r")
    assert status == 2 and len(err.splitlines()) == 1 and "particles.mrcs" in err


def test_empty_stack(tiny_dataset, tmp_path, capsys):
    import mrcfile

    stack = tmp_path / "empty.mrcs"
    with mrcfile.new(stack) as m:
        m.set_data(np.zeros((0, 32, 32), dtype=np.float32))
    star = tmp_path / "empty.star"
    text = (tiny_dataset / "particles.star").read_text()
    header = text[: text.index("data_particles")]
    body = text[text.index("data_particles"):]
    lines = body.splitlines()
    loop_end = max(i for i, l in enumerate(lines) if l.startswith("_rln"))
    star.write_text(header + "\n".join(lines[: loop_end + 1]) + "\n")
    status, err = _train_cli(capsys, star, "--structure", tiny_dataset / "base.pdb", "-o", tmp_path / "r")
    assert status == 2 and len(err.splitlines()) == 1


def test_resume_with_a_different_base_structure(tiny_dataset, tiny_run, tmp_path, capsys):
    from cryogeom.structure.write import write_pdb

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    base = read_structure(tiny_dataset / "base.pdb")
    short = base.with_coordinates(base.ca)
    smaller = tmp_path / "smaller.pdb"
    from cryogeom.structure.types import Structure

    cut = Structure(ca=short.ca[:200], resnames=short.resnames[:200], resids=short.resids[:200], chain_ids=short.chain_ids[:200])
    write_pdb(smaller, cut)
    before = (run / "checkpoint.pt").read_bytes()
    status, err = _train_cli(capsys, tiny_dataset / "particles.star", "--structure", smaller, "-o", run, "--resume")
    assert status == 2 and len(err.splitlines()) == 1 and "200 residues" in err and "214" in err
    assert (run / "checkpoint.pt").read_bytes() == before
