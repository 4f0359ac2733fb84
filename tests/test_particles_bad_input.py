"""Bad particle inputs raise InputError with one line naming the file and what was wrong."""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from cryogeom.errors import InputError
from cryogeom.particles import ParticleDataset, read_particles
from cryogeom.particles.cryodrgn import load_pickle

DATA = Path(__file__).parent / "data" / "particles"
BAD = DATA / "bad"


def raises_one_line(call, *fragments: str) -> str:
    """Run ``call``; it must raise InputError whose one-line message contains every fragment."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("truncated.star", ["truncated.mrcs", "truncated", "1792 bytes", "1664"]),
        ("missing_column.star", ["missing_column.star", "_rlnDefocusU"]),
        ("past_end.star", ["past_end.star", "row 2", "image 4", "stack_a.mrcs", "holds 3 images"]),
        ("missing_stack.star", ["missing_stack.star", "no_such_stack.mrcs", "not found"]),
        ("nonsquare.star", ["nonsquare.mrcs", "8x6", "square"]),
        ("mixed_box.star", ["mixed_box.star", "different box sizes", "8, 16"]),
    ],
)
def test_bad_star_inputs(name, fragments):
    raises_one_line(lambda: read_particles(BAD / name), *fragments)


def test_nan_pixels_detected_when_read_naming_file_and_image():
    ps = read_particles(BAD / "nan.star")  # metadata are fine; pixels are only read on demand
    ps.read_images([0, 2])  # the good images read
    raises_one_line(lambda: ps.read_images([0, 1]), "nan.mrcs", "image 2", "particle 1", "NaN")
    dataset = ParticleDataset(ps)
    raises_one_line(lambda: dataset[1], "nan.mrcs", "image 2")
    raises_one_line(lambda: dataset.get_batch([2, 1, 0]), "nan.mrcs", "image 2")


def test_unknown_extension_and_missing_file(tmp_path):
    raises_one_line(lambda: read_particles(BAD / "particles.xyz"), "particles.xyz", "unknown particle file type", ".star")
    raises_one_line(lambda: read_particles(tmp_path / "absent.star"), "absent.star", "not found")


def test_truncated_stack_read_directly():
    raises_one_line(lambda: read_particles(BAD / "truncated.mrcs", poses="p.pkl", ctf="c.pkl"), "truncated.mrcs", "truncated")


def test_not_an_mrc_stack(tmp_path):
    junk = tmp_path / "junk.mrcs"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    raises_one_line(lambda: read_particles(junk, poses="p.pkl", ctf="c.pkl"), "junk.mrcs", "MRC")


def test_not_a_star_file(tmp_path):
    junk = tmp_path / "junk.star"
    junk.write_bytes(b"\x00\x01 this is not a STAR file \xff")
    raises_one_line(lambda: read_particles(junk), "junk.star")


def test_non_numeric_metadata(tmp_path):
    text = (DATA / "relion31_two_groups.star").read_text().replace("15000.000000", "fifteen_k")
    star = tmp_path / "words.star"
    star.write_text(text)
    raises_one_line(lambda: read_particles(star, datadir=DATA), "words.star", "row 1", "_rlnDefocusU", "fifteen_k")


def test_particle_in_undefined_optics_group(tmp_path):
    lines = (DATA / "relion31_two_groups.star").read_text().splitlines()
    lines[-1] = lines[-1].replace("            2            1            2", "            7            1            2")
    star = tmp_path / "group7.star"
    star.write_text("\n".join(lines) + "\n")
    raises_one_line(lambda: read_particles(star, datadir=DATA), "group7.star", "optics group 7")


def test_mismatched_counts_between_stack_and_pickles(tmp_path):
    stack = DATA / "stacks" / "stack_a.mrcs"  # 3 images
    rot = np.stack([np.eye(3)] * 2)
    with open(tmp_path / "pose.pkl", "wb") as fh:
        pickle.dump((rot, np.zeros((2, 2))), fh)
    with open(tmp_path / "ctf.pkl", "wb") as fh:
        pickle.dump(np.tile([8, 1.0, 1e4, 1e4, 0, 300, 2.7, 0.1, 0], (3, 1)).astype(np.float32), fh)
    raises_one_line(
        lambda: read_particles(stack, poses=tmp_path / "pose.pkl", ctf=tmp_path / "ctf.pkl"),
        "pose.pkl",
        "2 particles",
        "has 3",
    )
    with open(tmp_path / "pose3.pkl", "wb") as fh:
        pickle.dump((np.stack([np.eye(3)] * 3), np.zeros((3, 2))), fh)
    with open(tmp_path / "ctf4.pkl", "wb") as fh:
        pickle.dump(np.tile([8, 1.0, 1e4, 1e4, 0, 300, 2.7, 0.1, 0], (4, 1)), fh)
    raises_one_line(
        lambda: read_particles(stack, poses=tmp_path / "pose3.pkl", ctf=tmp_path / "ctf4.pkl"),
        "ctf4.pkl",
        "4 particles",
    )


class _RunsCode:
    """Unpickling an instance runs a shell command (what a malicious pose.pkl would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps((_RunsCode(marker), np.zeros((1, 2))))
    # The pickle really calls os.system (posix.system) ...
    globals_named = [arg for op, arg, _ in pickletools.genops(payload) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")]
    assert "system" in globals_named
    evil = tmp_path / "pose.pkl"
    evil.write_bytes(payload)
    good_ctf = tmp_path / "ctf.pkl"
    with open(good_ctf, "wb") as fh:
        pickle.dump(np.tile([8, 1.0, 1e4, 1e4, 0, 300, 2.7, 0.1, 0], (3, 1)), fh)
    # ... but is refused, naming the file and the callable, and nothing ran.
    raises_one_line(lambda: load_pickle(evil), "pose.pkl", "refused", "system")
    raises_one_line(
        lambda: read_particles(DATA / "stacks" / "stack_a.mrcs", poses=evil, ctf=good_ctf), "pose.pkl", "system"
    )
    assert not marker.exists()


def test_corrupt_pickle(tmp_path):
    broken = tmp_path / "ctf.pkl"
    broken.write_bytes(pickle.dumps(np.zeros((3, 9)))[:40])
    raises_one_line(lambda: load_pickle(broken), "ctf.pkl", "not a readable pickle")


def test_cryosparc_missing_field_and_not_a_cs(tmp_path):
    records = np.zeros(2, dtype=[("blob/path", "S16"), ("blob/idx", np.uint32)])
    with open(tmp_path / "p.cs", "wb") as fh:
        np.save(fh, records)
    raises_one_line(lambda: read_particles(tmp_path / "p.cs"), "p.cs", "alignments3D/pose")
    (tmp_path / "junk.cs").write_text("hello")
    raises_one_line(lambda: read_particles(tmp_path / "junk.cs"), "junk.cs", "cryoSPARC")


def test_bad_datadir(tmp_path):
    raises_one_line(lambda: read_particles(DATA / "relion30.star", datadir=tmp_path / "nope"), "datadir", "nope")
