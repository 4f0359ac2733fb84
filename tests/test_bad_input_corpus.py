"""The bad-input corpus: every malformed file or setting a careful user might hand cryogeom.

Each case builds its bad input in the test, runs the command in-process and asserts: exit status
2, one line on stderr with no traceback, the file (or setting) and the field named, and every file
that was in the output (or run) directory before the command byte-for-byte unchanged after it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
import torch

from cryogeom.cli import main as cryogeom


@dataclass
class Case:
    argv: list[str]
    fragments: list[str]  # each must appear in the one-line message
    watched: Path | None = None  # a directory whose files must all be unchanged
    status: int = 2
    extra_files: dict = field(default_factory=dict)


def _hashes(folder: Path | None) -> dict[str, str]:
    if folder is None or not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- builders -----------------------------------------------------------------------------------
class Env:
    """Inputs of the cases: the tiny simulated set and a trained run, copied where a case changes them."""

    def __init__(self, sim: Path, run: Path, tmp: Path):
        self.sim, self.trained, self.tmp = sim, run, tmp
        self.out = tmp / "out"  # the output directory of train-like cases, with the user's own files in it
        self.out.mkdir()
        (self.out / "notes.txt").write_text("the user's own notes\n")
        (self.out / "figures").mkdir()
        (self.out / "figures" / "mine.png").write_bytes(b"\x89PNG user figure")

    def star(self, edit=None, name="bad.star") -> Path:
        """A copy of the simulated .star (image paths absolute) after ``edit(particles_df, optics_df)``
        (which changes the tables in place or returns a new particle table)."""
        blocks = starfile.read(self.sim / "particles.star", always_dict=True)
        particles, optics = blocks["particles"], blocks["optics"]
        particles["rlnImageName"] = [f"{n.split('@')[0]}@{self.sim / n.split('@')[1]}" for n in particles["rlnImageName"]]
        if edit is not None:
            replaced = edit(particles, optics)  # an edit may return a new particle table
            particles = particles if replaced is None else replaced
        path = self.tmp / name
        starfile.write({"optics": optics, "particles": particles}, path)
        return path

    def train(self, particles, *extra, structure=None, out=None) -> list[str]:
        return ["train", str(particles), "--structure", str(structure or self.sim / "base.pdb"), "-o", str(out or self.out),
                "--no-progress", "--threads", "1", "--epochs", "1", "--batch-size", "8", *map(str, extra)]

    def run_copy(self) -> Path:
        run = self.tmp / "run"
        if not run.exists():
            shutil.copytree(self.trained, run)
        return run

    def cs(self, edit) -> Path:
        """A cryoSPARC .cs of the simulated particles after ``edit(fields: dict)``; the stack is the simulation's."""
        n = 72
        blocks = starfile.read(self.sim / "particles.star", always_dict=True)
        p = blocks["particles"]
        fields = {
            "blob/path": np.array([str(self.sim / "particles.mrcs").encode()] * n, dtype="S200"),
            "blob/idx": np.arange(n, dtype=np.uint32),
            "blob/shape": np.tile(np.array([32, 32], dtype=np.uint32), (n, 1)),
            "blob/psize_A": np.full(n, 2.5, dtype=np.float32),
            "alignments3D/pose": np.zeros((n, 3), dtype=np.float32),
            "alignments3D/shift": np.zeros((n, 2), dtype=np.float32),
            "ctf/df1_A": p["rlnDefocusU"].to_numpy(np.float32),
            "ctf/df2_A": p["rlnDefocusV"].to_numpy(np.float32),
            "ctf/df_angle_rad": np.zeros(n, dtype=np.float32),
            "ctf/accel_kv": np.full(n, 300, dtype=np.float32),
            "ctf/cs_mm": np.full(n, 2.7, dtype=np.float32),
            "ctf/amp_contrast": np.full(n, 0.1, dtype=np.float32),
        }
        edit(fields)
        dtype = [(k, v.dtype, v.shape[1:]) for k, v in fields.items()]
        data = np.zeros(n, dtype=dtype)
        for k, v in fields.items():
            data[k] = v
        path = self.tmp / "bad.cs"
        with open(path, "wb") as fh:
            np.save(fh, data)
        return path

    def pdb(self, edit_line=None, name="bad.pdb") -> Path:
        lines = (self.sim / "base.pdb").read_text().splitlines()
        if edit_line is not None:
            lines = edit_line(lines)
        path = self.tmp / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def mrcs(self, data: np.ndarray, name="stack.mrcs") -> Path:
        path = self.tmp / name
        with mrcfile.new(path, overwrite=True) as m:
            m.set_data(data.astype(np.float32))
            m.voxel_size = 2.5
        return path


def _set(df, column, value, row=0):
    df[column] = df[column].astype(object)
    df.loc[row, column] = value


def _drop_column(df, column):
    del df[column]


def _atom_lines(lines):
    return [i for i, line in enumerate(lines) if line.startswith(("ATOM", "HETATM"))]


def _nan_coordinate(lines):
    i = _atom_lines(lines)[5]
    lines[i] = lines[i][:30] + f"{'nan':>8}" + lines[i][38:]
    return lines


def _all_at_origin(lines):
    for i in _atom_lines(lines):
        lines[i] = lines[i][:30] + f"{0.0:8.3f}{0.0:8.3f}{0.0:8.3f}" + lines[i][54:]
    return lines


def _only_water(lines):
    return ["HETATM    1  O   HOH W   1      10.000  10.000  10.000  1.00  0.00           O", "END"]


# -- the corpus ---------------------------------------------------------------------------------
def _cases(env: Env) -> dict[str, callable]:
    sim = env.sim
    star = env.star
    cases = {
        # RELION .star: values
        "voltage 0": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnVoltage", 0.0))), ["bad.star", "rlnVoltage"], env.out),
        "voltage negative": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnVoltage", -300.0))), ["bad.star", "rlnVoltage"], env.out),
        "amplitude contrast 1": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnAmplitudeContrast", 1.0))), ["bad.star", "rlnAmplitudeContrast"], env.out),
        "amplitude contrast negative": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnAmplitudeContrast", -0.1))), ["bad.star", "rlnAmplitudeContrast"], env.out),
        "negative defocus U": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnDefocusU", -15000.0, 3))), ["bad.star", "particle 4", "rlnDefocusU"], env.out),
        "zero defocus V": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnDefocusV", 0.0, 7))), ["bad.star", "particle 8", "rlnDefocusV"], env.out),
        "origin shift 1e30": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnOriginXAngst", 1e30, 2))), ["bad.star", "particle 3", "rlnOriginXAngst"], env.out),
        "angle nan": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnAngleRot", float("nan"), 5))), ["bad.star", "rlnAngle"], env.out),
        "defocus text": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnDefocusU", "abc", 1))), ["bad.star", "rlnDefocusU"], env.out),
        "cs text": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnSphericalAberration", "abc"))), ["bad.star", "rlnSphericalAberration"], env.out),
        "pixel size 0": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnImagePixelSize", 0.0))), ["bad.star", "pixel"], env.out),
        "pixel size negative": lambda: Case(env.train(star(lambda p, o: _set(o, "rlnImagePixelSize", -2.5))), ["bad.star", "pixel"], env.out),
        "no image names": lambda: Case(env.train(star(lambda p, o: _drop_column(p, "rlnImageName"))), ["bad.star", "rlnImageName"], env.out),
        "no tilt column": lambda: Case(env.train(star(lambda p, o: _drop_column(p, "rlnAngleTilt"))), ["bad.star", "rlnAngleTilt"], env.out),
        "no defocus column": lambda: Case(env.train(star(lambda p, o: _drop_column(p, "rlnDefocusU"))), ["bad.star", "rlnDefocusU"], env.out),
        "missing stack": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnImageName", f"1@{env.tmp / 'gone.mrcs'}"))), ["gone.mrcs", "not found"], env.out),
        "image past the stack's end": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnImageName", f"999@{sim / 'particles.mrcs'}", 4))), ["bad.star", "999"], env.out),
        "image index 0": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnImageName", f"0@{sim / 'particles.mrcs'}", 4))), ["bad.star", "rlnImageName"], env.out),
        "image number that is text": lambda: Case(env.train(star(lambda p, o: _set(p, "rlnImageName", f"first@{sim / 'particles.mrcs'}", 4))), ["bad.star", "first@"], env.out),
        "empty star": lambda: Case(env.train(_write(env.tmp / "empty.star", "")), ["empty.star"], env.out),
        "binary star": lambda: Case(env.train(_write(env.tmp / "binary.star", b"\x00\xff\xfe garbage \x00" * 50)), ["binary.star"], env.out),
        "star without particles": lambda: Case(env.train(star(lambda p, o: p.iloc[:0])), ["bad.star"], env.out),
        "unknown extension": lambda: Case(env.train(_write(env.tmp / "particles.xyz", "x")), ["particles.xyz", ".star"], env.out),
        "particles not found": lambda: Case(env.train(env.tmp / "absent.star"), ["absent.star", "not found"], env.out),
        # image stacks
        "truncated stack": lambda: Case(env.train(_truncated_stack_star(env)), ["short.mrcs"], env.out),
        "stack that is text": lambda: Case(env.train(_text_stack_star(env)), ["text.mrcs"], env.out),
        "all-zero stack": lambda: Case(env.train(_constant_stack_star(env, 0.0)), ["zeros.star", "blank"], env.out),
        "constant stack": lambda: Case(env.train(_constant_stack_star(env, 5.0, name="const")), ["const.star", "blank"], env.out),
        # cryoSPARC .cs
        "cs text where a number belongs": lambda: Case(env.train(env.cs(lambda f: f.update({"ctf/accel_kv": np.array(["300kV"] * 72, dtype="S8")}))), ["bad.cs", "ctf/accel_kv"], env.out),
        "cs path not UTF-8": lambda: Case(env.train(env.cs(lambda f: f.update({"blob/path": np.array([b"\xff\xfe\xfa.mrcs"] * 72, dtype="S200")}))), ["bad.cs", "blob/path"], env.out),
        "cs blob/idx -1": lambda: Case(env.train(env.cs(lambda f: f.update({"blob/idx": np.r_[np.arange(71), -1].astype(np.int64)}))), ["bad.cs", "blob/idx", "-1"], env.out),
        "cs without poses": lambda: Case(env.train(env.cs(lambda f: f.pop("alignments3D/pose"))), ["bad.cs", "alignments3D/pose"], env.out),
        "cs voltage 0": lambda: Case(env.train(env.cs(lambda f: f.update({"ctf/accel_kv": np.zeros(72, dtype=np.float32)}))), ["bad.cs", "voltage"], env.out),
        "cs that is not NumPy": lambda: Case(env.train(_write(env.tmp / "junk.cs", "not numpy")), ["junk.cs"], env.out),
        # cryoDRGN
        "binary stack list": lambda: Case(env.train(_write(env.tmp / "stacks.txt", b"\x00\x01\xff\xfe" * 64), *_good_pickles(env)), ["stacks.txt", "text"], env.out),
        "empty stack list": lambda: Case(env.train(_write(env.tmp / "stacks.txt", "\n\n"), *_good_pickles(env)), ["stacks.txt"], env.out),
        "pose pickle of the wrong shape": lambda: Case(env.train(sim / "particles.mrcs", "--poses", _pickle(env.tmp / "pose.pkl", (np.zeros((3, 3)), np.zeros(2))), "--ctf", _pickle(env.tmp / "ctf.pkl", np.zeros((72, 9)))), ["pose.pkl"], env.out),
        "ctf pickle of the wrong shape": lambda: Case(env.train(sim / "particles.mrcs", "--poses", _pickle(env.tmp / "pose.pkl", (np.tile(np.eye(3), (72, 1, 1)), np.zeros((72, 2)))), "--ctf", _pickle(env.tmp / "ctf.pkl", np.zeros((72, 4)))), ["ctf.pkl"], env.out),
        "malicious pose pickle": lambda: Case(env.train(sim / "particles.mrcs", "--poses", _evil_pickle(env.tmp / "evil.pkl"), "--ctf", _pickle(env.tmp / "ctf.pkl", np.zeros((72, 9)))), ["evil.pkl"], env.out),
        # structures
        "structure with a NaN coordinate": lambda: Case(env.train(sim / "particles.star", structure=env.pdb(_nan_coordinate)), ["bad.pdb", "finite"], env.out),
        "empty structure": lambda: Case(env.train(sim / "particles.star", structure=_write(env.tmp / "empty.pdb", "")), ["empty.pdb", "empty"], env.out),
        "all Cα at one point": lambda: Case(env.train(sim / "particles.star", structure=env.pdb(_all_at_origin)), ["bad.pdb", "Cα"], env.out),
        "structure without protein": lambda: Case(env.train(sim / "particles.star", structure=env.pdb(_only_water)), ["bad.pdb", "Cα"], env.out),
        "structure not found": lambda: Case(env.train(sim / "particles.star", structure=env.tmp / "absent.pdb"), ["absent.pdb", "not found"], env.out),
        "structure that is text": lambda: Case(env.train(sim / "particles.star", structure=_write(env.tmp / "words.pdb", "hello\nworld\n")), ["words.pdb"], env.out),
        "ground truth for another protein": lambda: Case(env.train(sim / "particles.star", "--ground-truth", _ground_truth(env, residues=10)), ["gt.npz", "residues"], env.out),
        "ground truth that is not npz": lambda: Case(env.train(sim / "particles.star", "--ground-truth", _write(env.tmp / "gt.npz", "text")), ["gt.npz"], env.out),
        # settings
        "--set batch_size=0": lambda: Case(env.train(sim / "particles.star", "--set", "batch_size=0"), ["batch_size"], env.out),
        "--set lr=-1": lambda: Case(env.train(sim / "particles.star", "--set", "lr=-1"), ["setting lr"], env.out),
        "--set batch_size=2.5": lambda: Case(env.train(sim / "particles.star", "--set", "batch_size=2.5"), ["batch_size", "whole number"], env.out),
        "--set validation_fraction=2": lambda: Case(env.train(sim / "particles.star", "--set", "validation_fraction=2"), ["validation_fraction"], env.out),
        "--set epochs=0": lambda: Case(env.train(sim / "particles.star", "--set", "epochs=0"), ["epochs"], env.out),
        "--set latent_dim=0": lambda: Case(env.train(sim / "particles.star", "--set", "latent_dim=0"), ["latent_dim"], env.out),
        "--set encoder=unknown": lambda: Case(env.train(sim / "particles.star", "--set", "encoder=huge"), ["encoder", "fast"], env.out),
        "--set unknown name": lambda: Case(env.train(sim / "particles.star", "--set", "learning_speed=3"), ["learning_speed"], env.out),
        "--set chain_window=0": lambda: Case(env.train(sim / "particles.star", "--set", "chain_window=0"), ["chain_window"], env.out),
        "--set threads=0": lambda: Case(env.train(sim / "particles.star", "--set", "threads=0"), ["threads"], env.out),
        "--set lr=NaN": lambda: Case(env.train(sim / "particles.star", "--set", "lr=NaN"), ["setting lr"], env.out),
        "--set pad_factor=0.5": lambda: Case(env.train(sim / "particles.star", "--set", "pad_factor=0.5"), ["pad_factor"], env.out),
        "--num-workers -3": lambda: Case(env.train(sim / "particles.star", "--num-workers", "-3"), ["--num-workers", "-3"], env.out),
        "--epochs 0": lambda: Case(env.train(sim / "particles.star", "--epochs", "0"), ["--epochs"], env.out),
        "--lr inf": lambda: Case(env.train(sim / "particles.star", "--lr", "inf"), ["--lr"], env.out),
        "batch larger than the data": lambda: Case(env.train(sim / "particles.star", "--batch-size", "5000"), ["batch"], env.out),
        # output directories
        "-o is a file (train)": lambda: Case(env.train(sim / "particles.star", out=_write(env.out / "a_file", "mine")), ["a_file", "not a directory"], env.out),
        "-o is a file (demo)": lambda: Case(["demo", "--quick", "-o", str(_write(env.out / "a_file", "mine"))], ["a_file", "not a directory"], env.out),
        "-o holds the user's base.pdb": lambda: Case(env.train(sim / "particles.star", structure=_user_file(env.out / "base.pdb", (sim / "base.pdb").read_text() + "REMARK mine\n")), ["base.pdb", "not written by cryogeom"], env.out),
        "-o holds the user's metrics.csv": lambda: Case(env.train(sim / "particles.star", out=_user_dir(env, "metrics.csv")), ["metrics.csv", "not written by cryogeom"], env.out),
        "-o holds the user's config.json": lambda: Case(env.train(sim / "particles.star", out=_user_dir(env, "config.json")), ["config.json", "not written by cryogeom"], env.out),
        "--resume without a checkpoint": lambda: Case(env.train(sim / "particles.star", "--resume"), ["checkpoint.pt"], env.out),
        "--resume and --force": lambda: Case(env.train(sim / "particles.star", "--resume", "--force"), ["--resume", "--force"], env.out),
        "a directory holding a trained run": lambda: Case(env.train(sim / "particles.star", out=env.run_copy()), ["holds another run", "--force"], env.run_copy()),
        # trained runs, damaged
        "run config.json not JSON": lambda: Case(["report", str(_damaged_run(env, "config.json", "{not json"))], ["config.json", "JSON"], env.run_copy()),
        "run config.json is a list": lambda: Case(["report", str(_damaged_run(env, "config.json", "[]"))], ["config.json", "object"], env.run_copy()),
        "model.pt without its keys": lambda: Case(["predict", str(_damaged_model(env, {"weights": torch.zeros(3)})), str(sim / "particles.star"), "-o", str(env.out / "pred")], ["model.pt", "'model'"], env.run_copy()),
        "model.pt that is a tensor": lambda: Case(["predict", str(_damaged_model(env, torch.zeros(3))), str(sim / "particles.star"), "-o", str(env.out / "pred")], ["model.pt", "checkpoint"], env.run_copy()),
        "model.pt that is not torch": lambda: Case(["predict", str(_damaged_run(env, "model.pt", "garbage")), str(sim / "particles.star"), "-o", str(env.out / "pred")], ["model.pt", "checkpoint"], env.run_copy()),
        "checkpoint without its keys on --resume": lambda: Case(env.train(sim / "particles.star", "--resume", out=_damaged_checkpoint(env)), ["checkpoint.pt", "'optimizer'"], env.run_copy()),
        "a swapped base.pdb": lambda: Case(["predict", str(_swapped_base(env)), str(sim / "particles.star"), "-o", str(env.out / "pred")], ["base.pdb", "residues"], env.run_copy()),
        "no such run": lambda: Case(["evaluate", str(env.tmp / "no_run"), "--ground-truth", str(sim / "ground_truth.npz")], ["no_run"], None),
        "ground truth for other particles": lambda: Case(["evaluate", str(env.run_copy()), "--ground-truth", str(_ground_truth(env, particles=10))], ["gt.npz", "particles"], env.run_copy()),
        # simulate
        "simulate --box 100000": lambda: Case(["simulate", "--box", "100000", "-o", str(env.out / "sim")], ["--box", "100000"], env.out),
        "simulate --per-conf 0": lambda: Case(["simulate", "--per-conf", "0", "-o", str(env.out / "sim")], ["--per-conf"], env.out),
        "simulate -o is a file": lambda: Case(["simulate", "--per-conf", "1", "--frames", "0:2", "-o", str(_write(env.out / "a_file", "mine"))], ["a_file", "not a directory"], env.out),
    }
    return cases


def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _user_file(path: Path, text: str) -> Path:
    return _write(path, text)


def _user_dir(env: Env, name: str) -> Path:
    _write(env.out / name, "the user's own file\n")
    return env.out


def _good_pickles(env: Env) -> list:
    poses = _pickle(env.tmp / "pose.pkl", (np.tile(np.eye(3), (72, 1, 1)), np.zeros((72, 2))))
    ctf = np.tile([32, 2.5, 15000, 15000, 0, 300, 2.7, 0.1, 0], (72, 1)).astype(np.float64)
    return ["--poses", poses, "--ctf", _pickle(env.tmp / "ctf.pkl", ctf)]


def _pickle(path: Path, value) -> Path:
    with open(path, "wb") as fh:
        pickle.dump(value, fh)
    return path


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/cryogeom-pwned",))


def _evil_pickle(path: Path) -> Path:
    return _pickle(path, _Evil())


def _truncated_stack_star(env: Env) -> Path:
    data = (env.sim / "particles.mrcs").read_bytes()
    short = _write(env.tmp / "short.mrcs", data[: len(data) // 2])
    return env.star(lambda p, o: p.__setitem__("rlnImageName", [f"{n.split('@')[0]}@{short}" for n in p["rlnImageName"]]), name="short.star")


def _text_stack_star(env: Env) -> Path:
    text = _write(env.tmp / "text.mrcs", "this is not an image stack\n" * 100)
    return env.star(lambda p, o: p.__setitem__("rlnImageName", [f"{n.split('@')[0]}@{text}" for n in p["rlnImageName"]]), name="text.star")


def _constant_stack_star(env: Env, value: float, name="zeros") -> Path:
    stack = env.mrcs(np.full((72, 32, 32), value), name=f"{name}.mrcs")
    return env.star(lambda p, o: p.__setitem__("rlnImageName", [f"{n.split('@')[0]}@{stack}" for n in p["rlnImageName"]]), name=f"{name}.star")


def _ground_truth(env: Env, residues: int | None = None, particles: int | None = None) -> Path:
    with np.load(env.sim / "ground_truth.npz") as gt:
        frame, ca = gt["frame"], gt["ca"]
    if residues is not None:
        ca = ca[:, :residues]
    if particles is not None:
        frame = frame[:particles]
    path = env.tmp / "gt.npz"
    np.savez(path, frame=frame, ca=ca)
    return path


def _damaged_run(env: Env, name: str, text: str) -> Path:
    run = env.run_copy()
    (run / name).write_text(text)
    return run


def _damaged_model(env: Env, value) -> Path:
    run = env.run_copy()
    torch.save(value, run / "model.pt")
    return run


def _damaged_checkpoint(env: Env) -> Path:
    run = env.run_copy()
    torch.save({"model": {}, "config": "{}"}, run / "checkpoint.pt")
    return run


def _swapped_base(env: Env) -> Path:
    run = env.run_copy()
    lines = (run / "base.pdb").read_text().splitlines()
    keep = [line for line in lines if not line.startswith("ATOM") or int(line[22:26]) <= 50]
    (run / "base.pdb").write_text("\n".join(keep) + "\n")
    return run


# -- the test -------------------------------------------------------------------------------------
def _case_names() -> list[str]:
    probe = Env.__new__(Env)  # the names only: no input is built
    probe.sim = probe.trained = probe.tmp = probe.out = Path("/nonexistent")
    return list(_cases(probe).keys())


@pytest.mark.parametrize("name", _case_names())
def test_bad_input_is_one_clean_line(name, tiny_dataset, tiny_run, tmp_path, capsys):
    env = Env(tiny_dataset, tiny_run, tmp_path)
    case = _cases(env)[name]()
    watched = case.watched
    before = _hashes(watched)
    capsys.readouterr()
    try:
        status = cryogeom(case.argv)
    except SystemExit as exc:  # argparse
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == case.status, f"exit {status}: {err}"
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "np.float64" not in err
    for fragment in case.fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    after = _hashes(watched)
    assert {k: v for k, v in after.items() if k in before} == before, "a file that was there before changed or vanished"
    assert not Path("/tmp/cryogeom-pwned").exists()


def test_the_corpus_is_large():
    assert len(_case_names()) >= 60
