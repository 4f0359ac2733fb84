"""Maps from particles: the direct Fourier reconstruction recovers a known density, its FSC and
its MRC origin mean what they say, and the CTF correction matters."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from cryogeom.cli import main as cryogeom
from cryogeom.particles.read import read_particles
from cryogeom.physics.scattering import projected_potential_gaussians
from cryogeom.reconstruct import fourier
from cryogeom.reconstruct.fourier import fourier_shell_correlation, resolution_at
from cryogeom.reconstruct.maps import reconstruct
from cryogeom.structure.read import read_structure

BOX, PIXEL, ENVELOPE_B = 40, 2.0, 30.0


@pytest.fixture(scope="module")
def one_frame(tmp_path_factory):
    """Noiseless images of ADK's frame 0 (no ice, raw contrast), 1500 random views."""
    out = tmp_path_factory.mktemp("one_frame") / "sim"
    assert cryogeom(["simulate", "--frames", "0:1", "--per-conf", "1500", "--box", str(BOX), "--pixel", str(PIXEL),
                     "--noiseless", "--no-ice", "--no-displace-solvent", "--normalise", "none",
                     "--b-factor", str(ENVELOPE_B), "--seed", "1", "--workers", "1", "--quiet", "-o", str(out)]) == 0
    return out


def _direct_render(structure) -> np.ndarray:
    """The frame's potential on the map's grid, drawn directly in 3-D from the same atoms and
    scattering factors (each a sum of Gaussians, with the simulation's envelope B)."""
    weight, sigma = projected_potential_gaussians(structure.atom_elements, ENVELOPE_B)
    c = torch.as_tensor(np.arange(BOX) * PIXEL)  # a map with zero origin: the frame of base.pdb
    pos = torch.as_tensor(structure.atom_positions)
    vol = torch.zeros(BOX, BOX, BOX, dtype=torch.float64)
    for i in range(weight.shape[1]):
        s = torch.as_tensor(sigma[:, i])[:, None]
        g = [torch.exp(-((c[None] - pos[:, j, None]) ** 2) / (2 * s**2)) for j in range(3)]  # x, y, z
        w = torch.as_tensor(weight[:, i] / (2 * np.pi * sigma[:, i] ** 2) ** 1.5)
        vol += torch.einsum("az,ay,ax->zyx", g[2] * w[:, None], g[1], g[0])
    return vol.numpy()


def _lowpass(v: np.ndarray, resolution: float) -> np.ndarray:
    f = np.fft.fftfreq(BOX, d=PIXEL)
    kz, ky, kx = np.meshgrid(f, f, f, indexing="ij")
    return np.fft.ifftn(np.fft.fftn(v) * (np.sqrt(kx**2 + ky**2 + kz**2) < 1 / resolution)).real


def _correlation(a, b, resolution=8.0) -> float:
    return float(np.corrcoef(_lowpass(a, resolution).ravel(), _lowpass(b, resolution).ravel())[0, 1])


def test_noiseless_particles_give_back_their_density(one_frame):
    rec = reconstruct(read_particles(one_frame / "particles.star"), invert=False, progress=False)
    truth = _direct_render(read_structure(one_frame / "base.pdb"))
    assert _correlation(rec.full, truth) >= 0.95
    assert rec.fsc[: BOX // 4].min() > 0.95  # noiseless halves agree to half Nyquist
    assert rec.fsc_masked[: BOX // 4].min() > 0.95 and rec.resolution_masked_angstrom <= rec.resolution_angstrom + 0.5
    # a wrong pose convention (the transposed rotation) gives a blurred, wrong map: at 5 Å far worse
    wrong = read_particles(one_frame / "particles.star")
    wrong.rotations = np.swapaxes(wrong.rotations, -1, -2)
    bad = reconstruct(wrong, invert=False, progress=False)
    right_5, wrong_5 = _correlation(rec.full, truth, 5.0), _correlation(bad.full, truth, 5.0)
    assert wrong_5 < right_5 - 0.1, (right_5, wrong_5)
    assert bad.resolution_angstrom > rec.resolution_angstrom + 1.0, (rec.resolution_angstrom, bad.resolution_angstrom)


def test_the_ctf_correction_matters(one_frame, monkeypatch):
    particles = read_particles(one_frame / "particles.star")
    truth = _direct_render(read_structure(one_frame / "base.pdb"))
    corrected = _correlation(reconstruct(particles, invert=False, progress=False).full, truth, 5.0)
    monkeypatch.setattr(fourier, "ctf_at_frequencies", lambda params, kx, ky: torch.ones(len(params.voltage_kv), len(kx), dtype=torch.float64))
    plain = _correlation(reconstruct(particles, invert=False, progress=False).full, truth, 5.0)
    assert corrected > plain + 0.2, (corrected, plain)


def test_fsc_of_identical_maps_is_one_and_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 32, 32))
    freq, fsc = fourier_shell_correlation(a, a, 1.5)
    np.testing.assert_allclose(fsc, 1.0, atol=1e-12)
    assert freq[1] == pytest.approx(1 / (32 * 1.5)) and len(freq) == 16
    _, noise = fourier_shell_correlation(a, rng.normal(size=(32, 32, 32)), 1.5)
    assert np.abs(noise[4:]).max() < 0.2
    assert resolution_at(freq, np.r_[1.0, 1.0, 0.5, 0.1, 0.0, np.zeros(11)]) == pytest.approx(1 / (freq[2] + (0.5 - 0.143) / 0.4 * (freq[3] - freq[2])))


def test_the_map_file_puts_the_structure_in_its_density(one_frame, tmp_path, capsys):
    out = tmp_path / "maps"
    assert cryogeom(["reconstruct", str(one_frame / "particles.star"), "-o", str(out), "--no-invert-data", "--no-progress"]) == 0
    assert "FSC = 0.143 at" in capsys.readouterr().out
    with mrcfile.open(out / "map.mrc") as m:
        data = m.data.astype(np.float64)
        voxel = float(m.voxel_size.x)
        origin = np.array([float(m.header.origin.x), float(m.header.origin.y), float(m.header.origin.z)])
    assert voxel == pytest.approx(PIXEL)
    ca = read_structure(one_frame / "base.pdb").ca
    index = np.rint((ca - origin) / voxel).astype(int)  # x, y, z
    at_ca = data[index[:, 2], index[:, 1], index[:, 0]]
    assert at_ca.mean() > data.mean() + 2 * data.std()
    # shifted by 3 voxels the structure sits beside its density
    off = data[np.clip(index[:, 2] + 3, 0, BOX - 1), index[:, 1], index[:, 0]]
    assert at_ca.mean() > 1.5 * off.mean()
    assert (out / "half1.mrc").is_file() and (out / "fsc.csv").read_text().startswith("frequency_per_angstrom")


def test_too_few_particles_is_one_line(tiny_dataset, tmp_path, capsys):
    from cryogeom.particles import write_star_subset

    few = tmp_path / "few.star"
    write_star_subset(tiny_dataset / "particles.star", np.arange(15), few)
    status = cryogeom(["reconstruct", str(few), "-o", str(tmp_path / "maps"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "few.star" in err and "at least 20" in err
    assert not (tmp_path / "maps").exists()


def test_particles_of_two_voxel_sizes_are_one_line(capsys, tmp_path):
    from pathlib import Path

    star = Path(__file__).parent / "data" / "particles" / "relion31_two_groups.star"
    status = cryogeom(["reconstruct", str(star), "-o", str(tmp_path / "maps"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "relion31_two_groups.star" in err and "pixel sizes" in err


def test_a_latent_region_of_a_run(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    status = cryogeom(["reconstruct", str(run), "--select", "cluster=0", "-o", str(tmp_path / "maps"), "--no-progress"])
    assert status == 2 and "cryogeom analyze" in capsys.readouterr().err  # no analysis yet
    assert cryogeom(["analyze", str(run), "--clusters", "2", "--traversal-points", "5", "--no-progress"]) == 0
    labels = np.load(run / "analysis" / "labels.npy")
    k = int(np.argmax(np.bincount(labels)))
    capsys.readouterr()
    assert cryogeom(["reconstruct", str(run), "--select", f"cluster={k}", "-o", str(tmp_path / "maps"), "--no-progress"]) == 0
    assert f"reconstructed {int(np.sum(labels == k))} particles" in capsys.readouterr().out
    with mrcfile.open(tmp_path / "maps" / "map.mrc") as m:
        assert m.data.shape == (32, 32, 32) and float(m.voxel_size.x) == pytest.approx(2.5)
