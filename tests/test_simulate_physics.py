"""Physics of the simulator: scattering factors, the projected potential, the projection, the ice."""

import numpy as np
import pytest
import torch
from scipy import constants
from scipy.special import j0

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import electron_wavelength_angstrom
from cryogeom.imaging.rotations import euler_to_matrix
from cryogeom.physics.ice import IceModel, ice_phase_amplitude_rfft2, water_form_factor_squared
from cryogeom.simulate.ice import ice_phase_spectrum
from cryogeom.imaging.rotations import pose_points
from cryogeom.simulate.projection import project_atoms, project_atoms_reference
from cryogeom.physics.scattering import (
    POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2 as K,
    electron_scattering_factor,
    interaction_constant,
    projected_potential_atom,
    projected_potential_gaussians,
    scattering_coefficients,
)
from cryogeom.simulate.projection import oversample_for

ELEMENTS = ["H", "C", "N", "O", "S", "P"]


# -- constants ---------------------------------------------------------------------------------
def test_potential_constant_is_h2_over_2pi_m0_e():
    assert K == pytest.approx(47.878, abs=5e-4)


def test_interaction_constant_matches_kirkland_form():
    # Kirkland eq. 5.6 written differently: σ = (2π / λV) (m0c² + eV) / (2 m0c² + eV).
    for kv in (100.0, 200.0, 300.0):
        v = kv * 1e3
        rest_ev = constants.m_e * constants.c**2 / constants.e
        expected = 2 * np.pi / (float(electron_wavelength_angstrom(kv)) * v) * (rest_ev + v) / (2 * rest_ev + v)
        assert interaction_constant(kv) == pytest.approx(expected, rel=1e-4)  # λ formula rounds constants
    assert interaction_constant(300.0) == pytest.approx(6.53e-4, rel=2e-3)


# -- scattering factors and the projected potential of one atom ---------------------------------
def test_coefficients_are_the_peng_table_for_carbon():
    a, b = scattering_coefficients(["c"])
    np.testing.assert_allclose(a[0], [0.0893, 0.2563, 0.757, 1.0487, 0.3575])
    np.testing.assert_allclose(b[0], [0.2465, 1.71, 6.4094, 18.6113, 50.2523])


def test_unknown_element_is_an_input_error():
    with pytest.raises(InputError, match="'Xx'"):
        scattering_coefficients(["C", "Xx"])


def test_b_factor_multiplies_the_scattering_factor():
    s = np.linspace(0, 1.5, 31)
    plain = electron_scattering_factor(ELEMENTS, s)
    damped = electron_scattering_factor(ELEMENTS, s, b_factor_angstrom2=25.0)
    np.testing.assert_allclose(damped, plain * np.exp(-25.0 * s**2), rtol=1e-12)


@pytest.mark.parametrize("b_factor", [0.0, 20.0])
def test_projected_potential_integrates_to_k_f0(b_factor):
    # ∫ V_z d²r = 2π ∫ r V_z(r) dr = K f_e(0): numerical quadrature of the analytic real-space form.
    r = np.linspace(0, 30, 600_001)
    for element in ELEMENTS:
        integral = np.trapezoid(2 * np.pi * r * projected_potential_atom(element, r, b_factor), r)
        assert integral == pytest.approx(K * electron_scattering_factor([element], 0.0)[0], rel=1e-6)


def test_fourier_transform_of_projection_is_k_f_at_half_q():
    # The 2-D transform of a radial function is its Hankel transform: F(q) = 2π ∫ r V_z(r) J0(2π q r) dr.
    r = np.linspace(0, 30, 600_001)
    q = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
    for element in ("C", "O", "S"):
        vz = projected_potential_atom(element, r, 5.0)
        hankel = [np.trapezoid(2 * np.pi * r * vz * j0(2 * np.pi * qi * r), r) for qi in q]
        expected = K * electron_scattering_factor([element], q / 2, b_factor_angstrom2=5.0)[0]
        np.testing.assert_allclose(hankel, expected, rtol=1e-5)


def test_gaussian_form_equals_analytic_form():
    r = np.linspace(0, 4, 41)
    weight, sigma = projected_potential_gaussians(ELEMENTS, 10.0)
    for i, element in enumerate(ELEMENTS):
        gauss = (weight[i] * np.exp(-(r[:, None] ** 2) / (2 * sigma[i] ** 2)) / (2 * np.pi * sigma[i] ** 2)).sum(-1)
        np.testing.assert_allclose(gauss, projected_potential_atom(element, r, 10.0), rtol=1e-12)


# -- projection ----------------------------------------------------------------------------------
def _random_atoms(n, rng, extent=6.0):
    elements = rng.choice(ELEMENTS, n)
    return elements, rng.uniform(-extent, extent, (n, 2))


@pytest.mark.parametrize("box", [24, 25])
@pytest.mark.parametrize("b_factor", [0.0, 4.0, 30.0])
def test_projection_matches_direct_fourier_reference(box, b_factor):
    rng = np.random.default_rng(3)
    elements, pos = _random_atoms(20, rng)
    weight, sigma = projected_potential_gaussians(elements, b_factor)
    pixel = 0.9
    oversample = oversample_for(b_factor, pixel)
    reference = project_atoms_reference(pos, weight, sigma, box, pixel)
    fast = project_atoms(torch.tensor(pos[None]), torch.tensor(weight), torch.tensor(sigma), box, pixel, oversample=oversample)[0]
    error = np.linalg.norm(fast.numpy() - reference) / np.linalg.norm(reference)
    assert error < {0.0: 5e-3, 4.0: 1e-3, 30.0: 1e-6}[b_factor]
    if b_factor == 0.0:  # oversampling is what makes it accurate: without it aliasing is ~30 %
        plain = project_atoms(torch.tensor(pos[None]), torch.tensor(weight), torch.tensor(sigma), box, pixel, oversample=1)[0]
        assert np.linalg.norm(plain.numpy() - reference) / np.linalg.norm(reference) > 0.1


def test_projection_float32_matches_float64():
    rng = np.random.default_rng(4)
    elements, pos = _random_atoms(50, rng)
    weight, sigma = projected_potential_gaussians(elements, 30.0)
    args = (torch.tensor(weight), torch.tensor(sigma), 32, 1.0)
    double = project_atoms(torch.tensor(pos[None]), *args)
    single = project_atoms(torch.tensor(pos[None], dtype=torch.float32), *args)
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.double().numpy(), double.numpy(), atol=1e-5 * double.abs().max().item())


def test_one_atom_projection_integrates_to_its_scattering_constant():
    # No CTF: the band-limited image sums (times pixel area) to K f_e(0), exactly the DC term.
    for element in ("H", "C", "S"):
        weight, sigma = projected_potential_gaussians([element], 0.0)
        image = project_atoms(torch.tensor([[[0.3, -0.7]]], dtype=torch.float64), torch.tensor(weight), torch.tensor(sigma), 24, 0.8, oversample=4)
        total = image.sum().item() * 0.8**2
        assert total == pytest.approx(K * electron_scattering_factor([element], 0.0)[0], rel=1e-9)


def test_atom_lands_at_its_pixel_under_the_pose_convention():
    # R = Euler(90, 0, 0) moves x to -y (RELION's matrix for rot=90 maps (1,0,0) to (0,-1,0)).
    rotation = euler_to_matrix(90.0, 0.0, 0.0)
    atom = np.array([[5.0, 0.0, 2.0]])
    moved = rotation @ atom[0]
    positions = pose_points(torch.tensor(atom), torch.tensor(rotation[None]), torch.tensor([[2.0, 1.0]]))
    np.testing.assert_allclose(positions[0, 0].numpy(), moved[:2] + [2.0, 1.0], atol=1e-12)
    weight, sigma = projected_potential_gaussians(["C"], 30.0)
    box, pixel = 32, 1.0
    image = project_atoms(positions, torch.tensor(weight), torch.tensor(sigma), box, pixel)[0].numpy()
    y, x = np.unravel_index(np.argmax(image), image.shape)
    assert (x - box // 2) * pixel == pytest.approx(positions[0, 0, 0].item(), abs=0.5)
    assert (y - box // 2) * pixel == pytest.approx(positions[0, 0, 1].item(), abs=0.5)


# -- ice -----------------------------------------------------------------------------------------
def test_structure_factor_limits_and_peak():
    model = IceModel()
    q = np.linspace(0, 1.0, 2001)
    s = model.structure_factor(q)
    assert s[0] == pytest.approx(model.s0)
    assert s[-1] == pytest.approx(1.0, abs=1e-3)
    assert q[np.argmax(s)] == pytest.approx(1 / 3.7, abs=0.005)


def test_water_form_factor_at_zero_is_the_sum_of_atoms():
    f_o, f_h = electron_scattering_factor(["O", "H"], 0.0)
    assert water_form_factor_squared(0.0) == pytest.approx((f_o + 2 * f_h) ** 2, rel=1e-12)


def test_ice_field_has_the_model_variance_and_peak():
    model, box, pixel, sigma_e = IceModel(thickness_angstrom=400.0), 128, 1.0, interaction_constant(300.0)
    filt = ice_phase_amplitude_rfft2(model, box, pixel, sigma_e)
    # Expected pixel variance: Σ_q S_φ(q) / (box·pixel)² over the full frequency grid.
    fy, fx = np.fft.fftfreq(box, pixel)[:, None], np.fft.fftfreq(box, pixel)[None, :]
    q = np.sqrt(fy**2 + fx**2)
    psd = sigma_e**2 * model.projected_potential_psd(q)
    psd[0, 0] = 0
    expected_var = psd.sum() / (box * pixel) ** 2
    rng = np.random.default_rng(0)
    fields = [torch.fft.irfft2(ice_phase_spectrum(rng, torch.tensor(filt)), s=(box, box)).numpy() for _ in range(20)]
    var = np.mean([f.var() for f in fields])
    assert var == pytest.approx(expected_var, rel=0.03)
    # The radially averaged power of the field peaks at the ice ring, 1/3.7 Å⁻¹.
    power = np.mean([np.abs(np.fft.fft2(f)) ** 2 for f in fields], axis=0)
    shells = np.round(q * box * pixel).astype(int)
    radial = np.bincount(shells.ravel(), power.ravel()) / np.bincount(shells.ravel())
    peak_q = np.argmax(radial[2 : box // 2]) + 2
    assert peak_q / (box * pixel) == pytest.approx(1 / 3.7, abs=1.5 / (box * pixel))


# -- displaced solvent ----------------------------------------------------------------------------
def test_excluded_volumes_add_up_to_the_protein_volume():
    from cryogeom.examples import adk
    from cryogeom.physics.solvent import excluded_volume_angstrom3

    trajectory = adk()
    total = excluded_volume_angstrom3(trajectory.structure.atom_elements).sum()
    # ADK: 214 residues, 23.6 kDa; protein partial specific volume 0.73 cm³/g -> 28,600 Å³.
    mass_dalton = 23_600
    assert total == pytest.approx(mass_dalton * 0.73 / 0.6022, rel=0.1)


def test_ice_mean_potential_is_that_of_vitreous_ice():
    assert IceModel().mean_potential_volt() == pytest.approx(4.5, abs=0.3)


def test_displaced_solvent_is_a_gaussian_sphere_of_the_excluded_volume():
    from cryogeom.physics.solvent import displaced_solvent_gaussians, excluded_volume_angstrom3

    weight, sigma = displaced_solvent_gaussians(["C", "O"], 4.6)
    volume = excluded_volume_angstrom3(["C", "O"])
    np.testing.assert_allclose(weight[:, 0], -4.6 * volume)
    # The 3-D Gaussian sphere exp(-π r² / v^(2/3)) integrates to v; its projection has σ² = v^(2/3) / 2π.
    r = np.linspace(0, 12, 200_001)
    for v, s in zip(volume, sigma[:, 0]):
        sphere = np.exp(-np.pi * r**2 / v ** (2 / 3))
        assert np.trapezoid(4 * np.pi * r**2 * sphere, r) == pytest.approx(v, rel=1e-8)
        assert s**2 == pytest.approx(v ** (2 / 3) / (2 * np.pi))
