"""The simulator end to end: determinism, detector statistics, normalisation, files, conventions.

The convention tests close the loop the whole package relies on: a particle simulated at a pose
and shift, written to a .star and read back through ``read_particles``, must match the package's
own forward model (residue Gaussians) rendered at the pose and shift the reader returns.
"""

import json

import numpy as np
import pytest
import torch

from cryogeom.cli import main as cli_main
from cryogeom.imaging.forward import ForwardModel, ForwardSettings
from cryogeom.imaging.fourier import shift_images
from cryogeom.imaging.rotations import euler_to_matrix
from cryogeom.particles import read_particles
from cryogeom.simulate.dataset import write_dataset
from cryogeom.imaging.grid import background_mask
from cryogeom.simulate.parallel import render_chunks
from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, ParticleParameters, SimulationConfig, draw_particles
from cryogeom.structure.read import read_structure, read_trajectory
from cryogeom.structure.residues import residue_sigma_and_electrons


@pytest.fixture(scope="module")
def blob():
    """A small two-frame 'protein': 90 atoms within ~7 Å, the first 12 standing in for Cα."""
    rng = np.random.default_rng(11)
    atoms = rng.normal(0, 3.5, (90, 3))
    frames = np.stack([atoms, atoms + rng.normal(0, 0.5, atoms.shape)])
    elements = rng.choice(["C", "N", "O", "S", "H"], 90, p=[0.4, 0.15, 0.15, 0.05, 0.25])
    return AtomicEnsemble.from_frames(frames + [3.0, -2.0, 1.0], elements, frames[:, :12] + [3.0, -2.0, 1.0])


@pytest.fixture(scope="module")
def adk():
    from MDAnalysisTests.datafiles import DCD2, PSF

    return read_trajectory(PSF, DCD2)


FAST = dict(box=32, defocus_min_angstrom=8000.0, defocus_max_angstrom=8000.0)


def _images(formation, params, seed=0, **kw):
    return np.concatenate(list(render_chunks(formation, params, seed, **kw)))


def test_ensemble_frames_are_centred_on_their_own_ca_centroid(blob):
    np.testing.assert_allclose(blob.ca_angstrom.mean(axis=1), 0, atol=1e-12)
    # the atoms moved with their frame's Cα centroid, not with the atoms' centroid
    assert np.abs(blob.atoms_angstrom.mean(axis=1)).max() > 0.1


def test_draw_particles_balances_frames_and_is_seeded():
    config = SimulationConfig(defocus_min_angstrom=1e4, defocus_max_angstrom=2e4, shift_max_angstrom=4.0)
    p = draw_particles(5, 7, config, seed=3)
    assert np.bincount(p.frame).tolist() == [7] * 5
    assert not np.array_equal(p.frame, np.sort(p.frame))  # shuffled
    assert np.linalg.norm(p.shifts_angstrom, axis=1).max() <= 4.0
    mean_defocus = (p.defocus_u_angstrom + p.defocus_v_angstrom) / 2
    assert mean_defocus.min() >= 1e4 and mean_defocus.max() <= 2e4
    assert np.all(p.defocus_u_angstrom - p.defocus_v_angstrom <= 200.0 + 1e-9)
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", p.rotations, p.rotations), np.broadcast_to(np.eye(3), (35, 3, 3)), atol=1e-12)
    again = draw_particles(5, 7, config, seed=3)
    np.testing.assert_array_equal(p.rotations, again.rotations)
    assert not np.array_equal(p.rotations, draw_particles(5, 7, config, seed=4).rotations)


def test_result_does_not_depend_on_workers_or_chunking(blob):
    config = SimulationConfig(**FAST)
    formation = ImageFormation(blob, config)
    params = draw_particles(2, 3, config, seed=5)
    one = _images(formation, params, seed=5, workers=1, chunk_size=4)
    two = _images(formation, params, seed=5, workers=2, chunk_size=1)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, _images(formation, params, seed=6, workers=1))


def test_relion_normalisation_background_and_polarity(blob):
    config = SimulationConfig(**FAST, dose_per_angstrom2=200.0)
    formation = ImageFormation(blob, config)
    params = draw_particles(2, 6, config, seed=1)
    images = _images(formation, params).astype(np.float64)
    mask = background_mask(config.box)
    np.testing.assert_allclose(images[:, mask].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(images[:, mask].std(axis=1), 1, atol=1e-5)
    # protein bright: the molecule's disc is above the background (on average over the noisy
    # images, and in every noiseless one); in raw counts the same particles are dark
    j = np.arange(config.box) - config.box // 2
    centre = (j[:, None] ** 2 + j[None, :] ** 2) <= 6**2
    assert images[:, centre].mean() > 0.1
    clean = config.replace(noiseless=True, ice_thickness_angstrom=0.0)
    bright = _images(ImageFormation(blob, clean), params)
    assert np.all(bright[:, centre].mean(axis=1) > 0)
    raw = _images(ImageFormation(blob, clean.replace(normalise="none")), params)
    assert np.all(raw[:, centre].mean(axis=1) < raw[:, mask].mean(axis=1))


def test_noiseless_is_the_expectation_and_counts_are_poisson(blob):
    config = SimulationConfig(**FAST, normalise="none", ice_thickness_angstrom=0.0, dose_per_angstrom2=40.0, pixel_size_angstrom=1.2)
    params = draw_particles(2, 10, config, seed=2)
    expectation = _images(ImageFormation(blob, config.replace(noiseless=True)), params).astype(np.float64)
    formation = ImageFormation(blob, config, dtype=torch.float64)
    intensity = formation.intensity(params).numpy()
    np.testing.assert_allclose(expectation, 40.0 * 1.2**2 * intensity, rtol=1e-5)
    counts = _images(ImageFormation(blob, config), params).astype(np.float64)
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    # In the flat background the counts have mean = variance = dose · pixel area.
    flat = counts[:, background_mask(config.box)]
    assert flat.mean() == pytest.approx(40.0 * 1.2**2, rel=0.01)
    assert flat.var() == pytest.approx(40.0 * 1.2**2, rel=0.06)
    z = (counts - expectation) / np.sqrt(expectation)
    assert z.mean() == pytest.approx(0, abs=0.02) and z.var() == pytest.approx(1, abs=0.05)


def test_protein_phase_contrast_is_weak_and_dark_without_noise(blob):
    config = SimulationConfig(**FAST, ice_thickness_angstrom=0.0)
    formation = ImageFormation(blob, config, dtype=torch.float64)
    params = draw_particles(2, 2, config, seed=0)
    intensity = formation.intensity(params).numpy()
    assert 0.7 < intensity.min() and intensity.max() < 1.3  # weak-phase regime
    assert np.all(intensity[:, 14:19, 14:19].mean(axis=(1, 2)) < 1)
    # the phase equals σ_e · projected potential, whose integral is K Σ f_e(0) over the atoms
    phase_integral = formation.interaction_constant * formation.projected_potential(params[:1]).sum().item() * config.pixel_size_angstrom**2
    weight_total = formation.interaction_constant * formation.weight.double().sum().item()
    assert phase_integral == pytest.approx(weight_total, rel=1e-5)


def test_ctf_padding_keeps_the_point_spread_from_wrapping(blob):
    # At 2 µm defocus the CTF delocalises signal by ~200 Å: the automatic canvas must give the same
    # image as a huge one, while a canvas without that margin visibly wraps.
    config = SimulationConfig(box=32, noiseless=True, ice_thickness_angstrom=0.0, normalise="none")
    params = draw_particles(2, 1, config, seed=0)
    formation = ImageFormation(blob, config, dtype=torch.float64)
    contrast = lambda f: f.intensity(params).numpy() - 1
    huge = contrast(ImageFormation(blob, config.replace(padded_box=1024), dtype=torch.float64))
    error = lambda x: np.linalg.norm(x - huge) / np.linalg.norm(huge)
    assert error(contrast(formation)) < 1e-3
    assert error(contrast(ImageFormation(blob, config.replace(padded_box=128), dtype=torch.float64))) > 0.05


def test_ice_adds_background_power(blob):
    base = SimulationConfig(**FAST, noiseless=True, normalise="none")
    params = draw_particles(2, 2, base, seed=0)
    dry = _images(ImageFormation(blob, base.replace(ice_thickness_angstrom=0.0)), params)
    wet = _images(ImageFormation(blob, base.replace(ice_thickness_angstrom=300.0)), params)
    thick = _images(ImageFormation(blob, base.replace(ice_thickness_angstrom=1200.0)), params)
    mask = background_mask(base.box)
    sd = [x[:, mask].std(axis=1).mean() for x in (dry, wet, thick)]
    assert sd[0] < sd[1] < sd[2]
    assert sd[2] / sd[1] == pytest.approx(2.0, rel=0.35)  # amplitude ∝ √thickness


def test_bad_settings_are_input_errors():
    from cryogeom.errors import InputError

    for bad in (dict(box=4), dict(pixel_size_angstrom=0.0), dict(dose_per_angstrom2=-1.0), dict(normalise="x"),
                dict(defocus_min_angstrom=2e4, defocus_max_angstrom=1e4), dict(amplitude_contrast=1.0)):
        with pytest.raises(InputError):
            SimulationConfig(**bad).validate()


# -- conventions: simulate → .star → read_particles → forward model ---------------------------------
def _simulate_one(tmp_path, trajectory, rotation, shift, *, box=48, pixel=1.5, frame=0):
    ensemble = AtomicEnsemble.from_trajectory(trajectory, [frame])
    config = SimulationConfig(box=box, pixel_size_angstrom=pixel, noiseless=True, ice_thickness_angstrom=0.0, astigmatism_max_angstrom=0.0)
    params = ParticleParameters(
        frame=np.array([0]),
        rotations=rotation[None],
        shifts_angstrom=np.asarray(shift, dtype=np.float64)[None],
        defocus_u_angstrom=np.array([15000.0]),
        defocus_v_angstrom=np.array([15000.0]),
        astigmatism_angle_deg=np.array([0.0]),
    )
    ca = trajectory.ca - trajectory.ca.mean(axis=1, keepdims=True)
    write_dataset(tmp_path, ImageFormation(ensemble, config), params, seed=0, trajectory_frames=[frame], ground_truth_ca_angstrom=ca)
    return read_particles(tmp_path / "particles.star"), np.load(tmp_path / "ground_truth.npz")


def _render(particles, trajectory, truth, rotation=None, shift=None, ctf=True):
    sigma, electrons = residue_sigma_and_electrons(trajectory.structure.resnames)
    model = ForwardModel(ForwardSettings(box=particles.box, pixel_size_angstrom=float(particles.pixel_size_angstrom[0]), b_factor_angstrom2=30.0))
    cloud = torch.tensor(truth["ca"][truth["frame"][0]])[None]
    return model(
        cloud,
        torch.tensor(particles.rotations if rotation is None else rotation[None]),
        torch.tensor(particles.shifts_angstrom if shift is None else np.asarray(shift, dtype=float)[None]),
        particles.ctf(dtype=torch.float64) if ctf else None,
        torch.tensor(sigma),
        torch.tensor(electrons),
    )[0].numpy()


def _correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_convention_simulated_particle_matches_forward_model(tmp_path, adk):
    rotation = euler_to_matrix(40.0, 70.0, -110.0)
    particles, truth = _simulate_one(tmp_path, adk, rotation, [3.0, -2.0])
    image = particles.read_images().numpy()[0].astype(np.float64)
    np.testing.assert_allclose(particles.rotations[0], rotation, atol=1e-5)
    np.testing.assert_allclose(particles.shifts_angstrom[0], [3.0, -2.0], atol=1e-5)
    render = _render(particles, adk, truth)
    # The .mrcs is RELION-normalised (protein bright); the forward model is raw (protein dark).
    good = _correlation(image, -render)
    assert good > 0.9
    # A wrong convention fails: the transposed rotation or the opposite shift sign.
    assert _correlation(image, -_render(particles, adk, truth, rotation=rotation.T)) < good - 0.2
    assert _correlation(image, -_render(particles, adk, truth, shift=[-3.0, 2.0])) < good - 0.2


def test_convention_relion_origin_is_undone_by_the_readers_shift(tmp_path, adk):
    # rlnOriginXAngst = +5 means the particle sits at x = -5 Å; the reader's shift puts it back.
    rotation = euler_to_matrix(10.0, 30.0, 50.0)
    particles, truth = _simulate_one(tmp_path, adk, rotation, [-5.0, 0.0])
    assert float(particles.table["rlnOriginXAngst"].iloc[0]) == pytest.approx(5.0)
    assert float(particles.table["rlnOriginYAngst"].iloc[0]) == pytest.approx(0.0, abs=1e-6)
    image = torch.tensor(particles.read_images().numpy().astype(np.float64))
    recentred = shift_images(image, -torch.tensor(particles.shifts_angstrom), float(particles.pixel_size_angstrom[0]))[0].numpy()
    centred_render = -_render(particles, adk, truth, shift=[0.0, 0.0])
    # Cross-correlation (circular, via FFT) of the re-centred image with the centred render: peak at 0.
    xc = np.fft.ifft2(np.fft.fft2(recentred) * np.conj(np.fft.fft2(centred_render))).real
    dy, dx = np.unravel_index(np.argmax(xc), xc.shape)
    box = xc.shape[0]
    assert ((dy + box // 2) % box - box // 2, (dx + box // 2) % box - box // 2) == (0, 0)
    # and before re-centring, the peak is at the shift (-5 Å = about -3.3 px at 1.5 Å/px)
    xc0 = np.fft.ifft2(np.fft.fft2(image[0].numpy()) * np.conj(np.fft.fft2(centred_render))).real
    dy0, dx0 = np.unravel_index(np.argmax(xc0), xc0.shape)
    assert (dx0 + box // 2) % box - box // 2 in (-3, -4) and (dy0 + box // 2) % box - box // 2 == 0


# -- the command line ---------------------------------------------------------------------------
def test_cli_writes_the_data_set(tmp_path, adk):
    from MDAnalysisTests.datafiles import DCD2, PSF

    out = tmp_path / "sim"
    args = ["simulate", "--topology", PSF, "--trajectory", DCD2, "--frames", "0:2", "--per-conf", "3", "--box", "32",
            "--pixel", "2", "--workers", "1", "--quiet", "--shift-max", "2", "--defocus", "10000", "20000", "-o", str(out)]
    assert cli_main(args) == 0
    particles = read_particles(out / "particles.star")
    assert len(particles) == 6 and particles.box == 32 and particles.pixel_size_angstrom[0] == pytest.approx(2.0)
    truth = np.load(out / "ground_truth.npz")
    assert sorted(truth["frame"].tolist()) == [0, 0, 0, 1, 1, 1]
    assert truth["ca"].shape == (102, 214, 3)
    np.testing.assert_allclose(truth["ca"].mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(truth["rotations"], particles.rotations, atol=1e-5)
    np.testing.assert_allclose(truth["shifts_angstrom"], particles.shifts_angstrom, atol=1e-5)
    assert np.all(np.linalg.norm(particles.shifts_angstrom, axis=1) <= 2.0 + 1e-5)
    assert np.all((particles.defocus_u_angstrom >= 10000 - 100) & (particles.defocus_u_angstrom <= 20000 + 100))
    assert particles.amplitude_contrast[0] == pytest.approx(0.07)
    base = read_structure(out / "base.pdb")
    assert base.n_atoms == adk.structure.n_atoms
    # base.pdb is frame 0 of the ground truth in the map's frame: the rotation centre (here the Cα
    # centroid) at the box centre, (D // 2) · pixel on each axis
    np.testing.assert_allclose(base.ca, truth["ca"][0] + 16 * 2.0, atol=1e-3)
    record = json.loads((out / "simulation.json").read_text())
    assert record["settings"]["box"] == 32 and record["n_particles"] == 6
    # a non-empty directory is refused without --force
    assert cli_main(args) == 2
    assert cli_main(args + ["--force"]) == 0


@pytest.mark.parametrize(
    "extra",
    [["--box", "7"], ["--pixel", "0"], ["--pixel", "-1"], ["--dose", "0"], ["--topology", "/nonexistent.psf"],
     ["--defocus", "3", "2", "1"], ["--frames", "5:2"], ["--normalise", "bright"]],
)
def test_cli_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra):
    from MDAnalysisTests.datafiles import DCD2, PSF

    out = tmp_path / "sim"
    with pytest.raises(SystemExit) as exit_info:
        base = ["simulate", "--topology", PSF, "--trajectory", DCD2, "--per-conf", "1", "--box", "32", "--quiet", "-o", str(out)]
        status = cli_main(base + extra)
        raise SystemExit(status)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    assert not out.exists()


def test_cli_defaults_to_the_builtin_adk_example(tmp_path):
    out = tmp_path / "sim"
    assert cli_main(["simulate", "--frames", "101", "--per-conf", "2", "--box", "24", "--pixel", "2", "--workers", "1", "--quiet", "-o", str(out)]) == 0
    truth = np.load(out / "ground_truth.npz")
    assert truth["frame"].tolist() == [101, 101] and truth["ca"].shape == (102, 214, 3)
    assert read_particles(out / "particles.star").pixel_size_angstrom[0] == pytest.approx(2.0)


def test_displaced_solvent_lowers_the_protein_contrast(blob):
    config = SimulationConfig(**FAST, noiseless=True, normalise="none")
    params = draw_particles(2, 1, config, seed=0)
    vacuum = ImageFormation(blob, config.replace(displace_solvent=False), dtype=torch.float64)
    wet = ImageFormation(blob, config, dtype=torch.float64)
    # the projected potential's integral drops by V0 · Σ v (the ice the atoms displace)
    integral = lambda f: f.projected_potential(params[:1]).sum().item() * config.pixel_size_angstrom**2
    from cryogeom.physics.ice import IceModel
    from cryogeom.physics.solvent import excluded_volume_angstrom3

    displaced = IceModel().mean_potential_volt() * excluded_volume_angstrom3(blob.elements).sum()
    assert integral(vacuum) - integral(wet) == pytest.approx(displaced, rel=1e-6)
    assert 0.2 < integral(wet) / integral(vacuum) < 0.8
