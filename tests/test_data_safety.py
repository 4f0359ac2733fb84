"""Nothing lost: cryogeom never deletes or overwrites a file it did not write, a forced restart
loses nothing before the new inputs are read, a start that failed can simply be retried, and a
non-finite number never reaches a saved model, a checkpoint or a prediction."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch

from cryogeom import run_dir as rd
from cryogeom.cli import main as cryogeom


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _train(sim, out, *extra):
    return cryogeom(["train", str(sim / "particles.star"), "--structure", str(sim / "base.pdb"), "-o", str(out),
                     "--no-progress", "--threads", "1", "--epochs", "1", "--batch-size", "16", *map(str, extra)])


def test_training_into_a_folder_of_the_users_files_keeps_every_one(tiny_dataset, tmp_path):
    out = tmp_path / "work"
    for name in ("figures/fig1.png", "analysis/notes.txt", "report.html", "evaluation.json", "data/particles.star"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(f"the user's {name}\n")
    before = _hashes(out)
    assert _train(tiny_dataset, out) == 0
    after = _hashes(out)
    assert {k: after.get(k) for k in before} == before
    assert (out / "model.pt").is_file()
    # and a forced restart of that run still keeps them: they are not in cryogeom's manifest
    assert _train(tiny_dataset, out, "--force") == 0
    assert {k: _hashes(out).get(k) for k in before} == before


def test_the_structure_input_is_never_rewritten(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "work"
    out.mkdir()
    own = out / "base.pdb"
    own.write_text("REMARK   1 fitted into my consensus map\n" + (tiny_dataset / "base.pdb").read_text())
    text = own.read_bytes()
    status = cryogeom(["train", str(tiny_dataset / "particles.star"), "--structure", str(own), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "base.pdb" in err and "not written by cryogeom" in err
    assert own.read_bytes() == text
    assert sorted(p.name for p in out.iterdir()) == ["base.pdb"]


def test_force_with_a_bad_input_keeps_the_previous_run(tiny_dataset, tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = _hashes(run)
    bad = tmp_path / "bad.star"
    bad.write_text((tiny_dataset / "particles.star").read_text().replace("300.000000", "0.000000"))
    status = cryogeom(["train", str(bad), "--structure", str(tiny_dataset / "base.pdb"), "-o", str(run), "--force",
                       "--datadir", str(tiny_dataset), "--no-progress"])
    assert status == 2, capsys.readouterr().err
    assert _hashes(run) == before
    bad_gt = tmp_path / "gt.npz"
    bad_gt.write_text("not a ground truth")
    assert _train(tiny_dataset, run, "--force", "--ground-truth", bad_gt) == 2
    assert _hashes(run) == before


def test_a_start_that_failed_is_retried_plainly(tiny_dataset, tmp_path, capsys, monkeypatch):
    from cryogeom.train import loop

    out = tmp_path / "run"

    def fail_after_config(self, command_line):  # the machine dies while the run's first files are written
        rd.write_json(self.run_dir, rd.CONFIG, {"config": {}})
        raise RuntimeError("the power went out")

    monkeypatch.setattr(loop.Trainer, "_write_start", fail_after_config)
    with pytest.raises(RuntimeError, match="power"):
        _train(tiny_dataset, out)
    monkeypatch.undo()
    assert (out / "config.json").is_file() and not (out / "checkpoint.pt").exists()
    status = _train(tiny_dataset, out, "--resume")
    err = capsys.readouterr().err
    assert status == 2 and "before its first checkpoint" in err and "without --resume" in err
    assert _train(tiny_dataset, out) == 0  # a plain retry, no --force needed
    assert (out / "model.pt").is_file()


def test_a_bad_ground_truth_writes_nothing(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    gt = tmp_path / "gt.npz"
    np.savez(gt, frame=np.zeros(3, dtype=int), ca=np.zeros((1, 5, 3)))
    assert _train(tiny_dataset, out, "--ground-truth", gt) == 2
    assert not out.exists() or not any(out.iterdir())


def test_a_diverging_run_saves_no_non_finite_number(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    status = _train(tiny_dataset, out, "--lr", "1e30", "--set", "warmup_steps=0", "--epochs", "3")
    err = capsys.readouterr().err
    assert status == 1, err
    assert "non-finite" in err or "became" in err
    assert ("no checkpoint was written" in err) != (out / "checkpoint.pt").is_file()
    assert not (out / "model.pt").exists()
    if (out / "checkpoint.pt").is_file():
        saved = torch.load(out / "checkpoint.pt", weights_only=True)
        assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_a_model_with_non_finite_weights_predicts_nothing(tiny_dataset, tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    saved = torch.load(run / "model.pt", weights_only=True)
    for value in saved["model"].values():
        if value.is_floating_point():
            value.fill_(float("nan"))
    torch.save(saved, run / "model.pt")
    out = tmp_path / "pred"
    status = cryogeom(["predict", str(run), str(tiny_dataset / "particles.star"), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "non-finite" in err and "nothing was written" in err
    assert not out.exists() or not any(out.iterdir())


def test_metrics_rows_of_a_lost_continuation_are_replaced(tmp_path):
    log = rd.MetricsLog(tmp_path, True)
    log.write({"epoch": 1, "step": 10, "train_loss": 1.0})
    log.write({"epoch": 2, "step": 20, "train_loss": 0.9})  # its checkpoint was never written
    log.write({"epoch": 2, "step": 20, "train_loss": 0.8})  # the resumed run does epoch 2 again
    table = rd.read_metrics(tmp_path)
    assert list(table["epoch"]) == [1, 2] and list(table["train_loss"]) == [1.0, 0.8]


def test_stale_temporaries_of_a_killed_save_are_removed(tiny_dataset, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    stale = run / ".checkpoint.pt.k3j4h5.part"
    stale.write_bytes(b"")
    older = run / ".checkpoint.pt.tmp4242"  # as a killed save of an earlier version left it
    older.write_bytes(b"")
    mine = run / ".my_hidden_file"
    mine.write_text("keep")
    assert _train(tiny_dataset, run, "--force") == 0
    assert not stale.exists() and not older.exists() and mine.read_text() == "keep"


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    from cryogeom import files
    from cryogeom.errors import WriteError

    target = tmp_path / "result.json"
    target.write_text('{"old": true}')

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(WriteError, match="result.json.*No space left on device"):
        files.write_json(target, {"new": True})
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_full_disk_while_simulating_is_one_line(tmp_path, monkeypatch, capsys):
    from conftest import TINY_SIM_ARGS

    from cryogeom import files

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", no_space)
    status = cryogeom(["simulate", *TINY_SIM_ARGS, "-o", str(tmp_path / "sim")])
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # after the simulator's own summary line
    assert status == 1 and last.startswith("cryogeom simulate: error:") and "particles.mrcs" in last and "No space left on device" in last
    assert "Traceback" not in err
    assert not any(p.is_file() and not p.name.startswith(".") for p in (tmp_path / "sim").rglob("*"))


def test_too_little_free_space_is_refused_before_work(tmp_path, monkeypatch, capsys):
    from conftest import TINY_SIM_ARGS

    from cryogeom import files

    monkeypatch.setattr(files, "free_bytes", lambda path: 1000)
    status = cryogeom(["simulate", *TINY_SIM_ARGS, "-o", str(tmp_path / "sim")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "MB are free" in err
    assert not (tmp_path / "sim").exists()


def test_an_unwritable_run_directory_is_refused_before_resuming(tiny_dataset, tiny_run, tmp_path, monkeypatch, capsys):
    import tempfile

    from cryogeom import files

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = _hashes(run)
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(run)):
            raise PermissionError(13, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    status = _train(tiny_dataset, run, "--resume", "--epochs", "3")
    err = capsys.readouterr().err.strip()
    assert status == 2 and "cannot write" in err and str(run) in err
    assert _hashes(run) == before
