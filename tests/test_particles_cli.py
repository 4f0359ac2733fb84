"""``cryogeom downsample``: Fourier-cropped .mrcs + .star with the same metadata; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryogeom.cli import main as cli
from cryogeom.imaging.rotations import random_rotations
from cryogeom.particles import downsample_images, read_particles, write_relion


@pytest.fixture
def star(tmp_path):
    rng = np.random.default_rng(11)
    n, box = 12, 24
    ctf = {
        "defocus_u_angstrom": rng.uniform(1e4, 2e4, n),
        "defocus_v_angstrom": rng.uniform(1e4, 2e4, n),
        "astigmatism_angle_deg": rng.uniform(-90, 90, n),
        "voltage_kv": 300.0,
        "cs_mm": 2.7,
        "amplitude_contrast": 0.07,
        "phase_shift_deg": 0.0,
    }
    path = tmp_path / "in.star"
    write_relion(
        path,
        tmp_path / "in.mrcs",
        rng.normal(size=(n, box, box)).astype(np.float32),
        rotations=random_rotations(n, rng),
        shifts_angstrom=rng.normal(size=(n, 2)),
        ctf=ctf,
        pixel_size_angstrom=1.2,
    )
    return path


def test_downsample_command(star, tmp_path, capsys):
    out = tmp_path / "out" / "small.star"
    out.parent.mkdir()
    assert cli(["downsample", str(star), "-D", "15", "-o", str(out), "--batch-size", "5", "--quiet"]) == 0
    before, after = read_particles(star), read_particles(out)
    assert after.box == 15 and (out.parent / "small.mrcs").is_file()
    np.testing.assert_allclose(after.pixel_size_angstrom, 1.2 * 24 / 15, rtol=1e-6)
    np.testing.assert_allclose(after.rotations, before.rotations, atol=1e-6)
    np.testing.assert_allclose(after.shifts_angstrom, before.shifts_angstrom, atol=1e-6)
    np.testing.assert_allclose(after.ctf_array(), before.ctf_array(), atol=1e-5)
    torch.testing.assert_close(after.read_images(), downsample_images(before.read_images(), 15), rtol=1e-5, atol=1e-5)

    # Existing output: refused with a one-line error and exit status 2, file unchanged.
    stamp = out.read_bytes()
    assert cli(["downsample", str(star), "-D", "12", "-o", str(out), "--quiet"]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "exists" in message and "small.mrcs" in message
    assert out.read_bytes() == stamp
    assert cli(["downsample", str(star), "-D", "12", "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert read_particles(out).box == 12


def test_downsample_rejects_larger_box(star, tmp_path, capsys):
    assert cli(["downsample", str(star), "-D", "32", "-o", str(tmp_path / "big.star"), "--quiet"]) == 2
    assert "larger than the input images (24 pixels)" in capsys.readouterr().err
    assert not (tmp_path / "big.star").exists()
