"""The simulator's Fourier-space projection (gridding, a type-1 NUFFT), its white noise, and the whole
noiseless image against a direct float64 reference."""

import numpy as np
import pytest
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import ctf_rfft2
from cryogeom.imaging.fourier import centre_crop, centre_pad
from cryogeom.simulate import simulator
from cryogeom.simulate.fourier_projection import (
    GriddingProjector,
    atom_types,
    gridding_kernel,
    gridding_kernel_transform,
    kernel_shape,
    project_atoms_gridded,
)
from cryogeom.simulate.ice import white_noise_rfft2
from cryogeom.simulate.parallel import render_chunks
from cryogeom.imaging.rotations import pose_points
from cryogeom.simulate.projection import project_atoms, project_atoms_reference
from cryogeom.physics.scattering import projected_potential_gaussians
from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, SimulationConfig, draw_particles, particle_rng
from cryogeom.physics.solvent import displaced_solvent_gaussians

ELEMENTS = ["H", "C", "N", "O", "S", "P"]


def _atoms(n, rng, extent):
    return rng.choice(ELEMENTS, n), rng.uniform(-extent, extent, (n, 2))


def _relative_error(x, reference):
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64) - reference) / np.linalg.norm(reference))


# -- the projection ---------------------------------------------------------------------------------
@pytest.mark.parametrize("box", [24, 25])
@pytest.mark.parametrize("b_factor", [0.0, 4.0, 30.0])
def test_gridded_projection_matches_direct_fourier_sum(box, b_factor):
    # Atoms everywhere on the 0.9 Å × box canvas and beyond its edge: the canvas is periodic, as
    # the Fourier series of the reference is.
    rng = np.random.default_rng(3)
    elements, pos = _atoms(24, rng, extent=0.6 * box * 0.9)
    weight, sigma = projected_potential_gaussians(elements, b_factor)
    reference = project_atoms_reference(pos, weight, sigma, box, 0.9)
    double = project_atoms_gridded(torch.tensor(pos[None]), weight, sigma, box, 0.9)[0]
    single = project_atoms_gridded(torch.tensor(pos[None], dtype=torch.float32), weight, sigma, box, 0.9)[0]
    assert single.dtype == torch.float32
    assert _relative_error(double, reference) < 1e-9  # default width 12 in float64
    assert _relative_error(single, reference) < 2e-5  # default width 6 in float32


def test_error_falls_tenfold_per_kernel_point():
    rng = np.random.default_rng(5)
    elements, pos = _atoms(30, rng, extent=8.0)
    weight, sigma = projected_potential_gaussians(elements, 10.0)
    reference = project_atoms_reference(pos, weight, sigma, 32, 1.0)
    widths = (3, 4, 5, 6, 7, 8)
    errors = [_relative_error(project_atoms_gridded(torch.tensor(pos[None]), weight, sigma, 32, 1.0, width=w)[0], reference) for w in widths]
    for wider, narrower in zip(errors[1:], errors[:-1]):
        assert wider < narrower / 4  # ≈ 10x per point (odd and even widths alike)
    assert errors[widths.index(6)] < 2e-5 and errors[widths.index(8)] < 2e-7


def test_gridded_projection_equals_real_space_splatting():
    # Two independent methods for the same band-limited image (real-space erf splat, Fourier gridding).
    rng = np.random.default_rng(7)
    elements, pos = _atoms(60, rng, extent=9.0)
    weight, sigma = projected_potential_gaussians(elements, 30.0)
    splat = project_atoms(torch.tensor(pos[None]), torch.tensor(weight), torch.tensor(sigma), 40, 1.0)[0].numpy()
    gridded = project_atoms_gridded(torch.tensor(pos[None]), weight, sigma, 40, 1.0)[0].numpy()
    assert _relative_error(gridded, splat) < 1e-6


def test_spectrum_is_the_rfft2_of_the_image_and_batches_are_independent():
    rng = np.random.default_rng(8)
    elements, pos = _atoms(40, rng, extent=6.0)
    weight, sigma = projected_potential_gaussians(elements, 20.0)
    projector = GriddingProjector(weight, sigma, 30, 1.1, dtype=torch.float64)
    batch = torch.tensor(np.stack([pos, pos[::-1] * 0.7, pos + 1.0]))
    spectra = projector.spectrum(batch)
    np.testing.assert_allclose(torch.fft.rfft2(projector.image(batch)).numpy(), spectra.numpy(), atol=1e-9 * spectra.abs().max().item())
    # Image 1 rendered alone is bit-identical to image 1 rendered in a batch.
    assert torch.equal(projector.spectrum(batch[1:2])[0], spectra[1])


def test_atom_types_group_equal_rows_of_gaussians():
    elements = ["C", "H", "C", "O", "H", "C"]
    weight, sigma = projected_potential_gaussians(elements, 5.0)
    solvent_w, solvent_s = displaced_solvent_gaussians(elements, 4.6, 5.0)
    types, type_weight, type_sigma = atom_types(np.concatenate([weight, solvent_w], 1), np.concatenate([sigma, solvent_s], 1))
    assert type_weight.shape == (3, 6) and type_sigma.shape == (3, 6)
    assert types[0] == types[2] == types[5] and types[1] == types[4] and len(set(types.tolist())) == 3
    np.testing.assert_array_equal(type_weight[types[3], :5], weight[3])


def test_kernel_transform_is_the_fourier_transform_of_the_kernel():
    # Φ(ν) by Gauss-Legendre against a plain Riemann sum of the kernel on a very fine grid.
    for half_width in (2, 2.5, 6):
        beta = kernel_shape(2 * half_width, 2)
        u = np.linspace(-half_width, half_width, 200_001)
        du = u[1] - u[0]
        phi = gridding_kernel(u, half_width, beta)
        for nu in (0.0, 0.1, 0.25, 0.4):
            direct = np.sum(phi * np.cos(2 * np.pi * nu * u)) * du
            assert gridding_kernel_transform(nu, half_width, beta) == pytest.approx(direct, rel=1e-6, abs=1e-9)
    # the torch form is the NumPy form
    d = torch.linspace(-3, 3, 101, dtype=torch.float64)
    np.testing.assert_allclose(gridding_kernel(d.clone(), 3, 7.0).numpy(), gridding_kernel(d.numpy(), 3, 7.0), rtol=1e-12)


def test_projector_bad_input_is_an_input_error():
    weight, sigma = projected_potential_gaussians(["C", "N"], 0.0)
    with pytest.raises(InputError, match="positions"):
        GriddingProjector(weight, sigma, 16, 1.0).spectrum(torch.zeros(1, 3, 2))
    with pytest.raises(InputError, match="upsampling"):
        GriddingProjector(weight, sigma, 16, 1.0, upsampling=1)
    with pytest.raises(InputError, match="width"):
        GriddingProjector(weight, sigma, 16, 1.0, width=1)
    with pytest.raises(InputError, match="oversample"):
        SimulationConfig(oversample=1).validate()


# -- the ice's white noise, drawn in Fourier space ---------------------------------------------------
@pytest.mark.parametrize("half_axis", [-1, -2])
@pytest.mark.parametrize("box", [31, 32])
def test_white_noise_rfft2_is_the_transform_of_white_noise(box, half_axis):
    rngs = [np.random.default_rng(i) for i in range(200)]
    spectra = white_noise_rfft2(rngs, box, dtype=torch.float64, half_axis=half_axis)
    if half_axis == -2:  # drawn transposed, [k_x, k_y]
        assert spectra.shape == (200, box // 2 + 1, box)
        spectra = spectra.transpose(-1, -2)
    fields = torch.fft.irfft2(spectra, s=(box, box))
    # A consistent rfft2 of a real image (Hermitian columns k_x = 0 and Nyquist): transforming the
    # field back gives the same coefficients.
    np.testing.assert_allclose(torch.fft.rfft2(fields).numpy(), spectra.numpy(), atol=1e-9 * box)
    # i.i.d. N(0, 1) pixels: mean 0, variance 1, no correlation between neighbours.
    values = fields.numpy()
    assert values.mean() == pytest.approx(0.0, abs=0.01)
    assert values.var() == pytest.approx(1.0, abs=0.02)
    for axis in (1, 2):
        assert np.mean(values * np.roll(values, 1, axis=axis)) == pytest.approx(0.0, abs=0.01)
    # each image comes from its own generator only
    again = white_noise_rfft2([np.random.default_rng(7)], box, dtype=torch.float64, half_axis=half_axis)[0]
    assert torch.equal(again if half_axis == -1 else again.T, spectra[7])


# -- the whole noiseless image ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def blob():
    rng = np.random.default_rng(11)
    atoms = rng.normal(0, 3.5, (90, 3))
    frames = np.stack([atoms, atoms + rng.normal(0, 0.5, atoms.shape)])
    elements = rng.choice(["C", "N", "O", "S", "H"], 90, p=[0.4, 0.15, 0.15, 0.05, 0.25])
    return AtomicEnsemble.from_frames(frames, elements, frames[:, :12])


def _reference_contrast(formation, params):
    """``I - 1`` the slow way: direct Fourier sum of the projection, centred zero padding, CTF, crop."""
    cfg = formation.config
    out = []
    for i in range(len(params)):
        atoms = torch.tensor(formation.ensemble.atoms_angstrom[params.frame[i]])
        positions = pose_points(atoms, torch.tensor(params.rotations[i : i + 1]), torch.tensor(params.shifts_angstrom[i : i + 1]))[0]
        potential = project_atoms_reference(positions.numpy(), formation.weight.double().numpy(), formation.sigma.double().numpy(), formation.splat_box, cfg.pixel_size_angstrom)
        phase = formation.interaction_constant * torch.tensor(potential)
        spectrum = torch.fft.rfft2(centre_pad(phase, formation.padded_box))
        ctf = ctf_rfft2(params[i : i + 1].ctf(cfg), formation.padded_box, cfg.pixel_size_angstrom)[0]
        out.append(2 * centre_crop(torch.fft.irfft2(ctf * spectrum, s=(formation.padded_box,) * 2), cfg.box).numpy())
    return np.stack(out)


def test_noiseless_image_matches_the_direct_reference(blob):
    # Ice on (so each atom displaces solvent), but no rngs: no random ice field in the intensity.
    config = SimulationConfig(box=32, defocus_min_angstrom=5000.0, defocus_max_angstrom=9000.0, shift_max_angstrom=3.0)
    params = draw_particles(2, 2, config, seed=4)
    reference = _reference_contrast(ImageFormation(blob, config, dtype=torch.float64), params)
    for dtype, tolerance in ((torch.float64, 1e-9), (torch.float32, 3e-5)):
        contrast = ImageFormation(blob, config, dtype=dtype).intensity(params).numpy() - 1
        assert _relative_error(contrast, reference) < tolerance


def test_images_do_not_depend_on_threads_or_images_per_pass(blob, monkeypatch):
    config = SimulationConfig(box=32, defocus_min_angstrom=8000.0, defocus_max_angstrom=8000.0)
    formation = ImageFormation(blob, config)
    params = draw_particles(2, 4, config, seed=9)
    reference = formation.images(params, 0, 9)
    monkeypatch.setattr(simulator, "IMAGES_PER_PASS", 3)
    assert np.array_equal(formation.images(params, 0, 9), reference)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        chunks = np.concatenate(list(render_chunks(formation, params, 9, workers=1, chunk_size=5)))
        assert torch.get_num_threads() == 2  # restored after rendering on one thread
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(chunks, reference)
