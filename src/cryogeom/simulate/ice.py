"""Amorphous ice in a simulated image: a Gaussian random phase field drawn in Fourier space.

The field has the power spectrum of :mod:`cryogeom.physics.ice` (a slab of vitreous water),
applied as an amplitude filter (:func:`~cryogeom.physics.ice.ice_phase_amplitude_rfft2`) to white
noise drawn directly as its ``rfft2``: random phases, amplitudes from the spectrum, on the
periodic simulation canvas.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryogeom.errors import InputError


def torch_generator(rng: np.random.Generator, device=None) -> torch.Generator:
    """A torch generator on ``device`` seeded by one draw of ``rng`` (torch fills normals faster than NumPy)."""
    return torch.Generator(device=device if device is not None else "cpu").manual_seed(int(rng.integers(2**63)))


def _unit_hermitian_gaussian(rngs, box: int, *, half_axis: int, dtype, device) -> torch.Tensor:
    """:func:`white_noise_rfft2` divided by ``box / √2`` (real and imaginary parts N(0, 1))."""
    half = box // 2 + 1
    shape = (box, half) if half_axis == -1 else (half, box)
    parts = torch.empty(len(rngs), *shape, 2, dtype=dtype, device=device)
    for field, rng in zip(parts, rngs):
        field.normal_(generator=torch_generator(rng, device))
    noise = torch.view_as_complex(parts)
    self_conjugate = torch.tensor([0, box // 2] if box % 2 == 0 else [0], device=device)  # k_x = 0, Nyquist
    values = noise.index_select(half_axis, self_conjugate)
    mirrored = values.index_select(-3 - half_axis, (-torch.arange(box, device=device)) % box).conj_physical_()
    return noise.index_copy_(half_axis, self_conjugate, values.add_(mirrored).mul_(1 / math.sqrt(2)))


def white_noise_rfft2(rngs, box: int, *, half_axis: int = -1, dtype=torch.float32, device=None) -> torch.Tensor:
    """``rfft2`` [n, box, box // 2 + 1] of n images of i.i.d. N(0, 1) pixels, drawn directly in
    Fourier space (one generator of ``rngs`` per image, through :func:`torch_generator`).

    The coefficients of ``rfft2(w)`` are independent complex Gaussians with ``E|X|² = box²`` (real and
    imaginary parts of variance box²/2), except that the columns ``k_x = 0`` and, for an even box,
    ``k_x = box/2`` are Hermitian in ``k_y`` (``X[-k_y] = conj X[k_y]``, real where ``k_y = -k_y``):
    this draws exactly that distribution, without the transform. ``half_axis=-2`` lays it out
    transposed, [n, box // 2 + 1 (k_x), box (k_y)].
    """
    if half_axis not in (-1, -2):
        raise InputError(f"half_axis: expected -1 or -2, got {half_axis!r}")
    return _unit_hermitian_gaussian(rngs, box, half_axis=half_axis, dtype=dtype, device=device).mul_(box / math.sqrt(2))


def ice_phase_spectra(rngs, amplitude_rfft2: torch.Tensor, *, half_axis: int = -1) -> torch.Tensor:
    """Random ice phase fields, one per generator of ``rngs`` [n], returned as their ``rfft2``
    [n, box, box // 2 + 1] (dtype/device of the filter, :func:`ice_phase_amplitude_rfft2`): the
    filter times :func:`white_noise_rfft2`. A field does not depend on which others are drawn with it.
    ``half_axis=-2``: filter and result transposed, [box // 2 + 1, box] and [n, box // 2 + 1, box].
    """
    if half_axis not in (-1, -2):
        raise InputError(f"half_axis: expected -1 or -2, got {half_axis!r}")
    box = amplitude_rfft2.shape[-3 - half_axis]
    noise = _unit_hermitian_gaussian(rngs, box, half_axis=half_axis, dtype=amplitude_rfft2.real.dtype, device=amplitude_rfft2.device)
    return noise.mul_(amplitude_rfft2 * (box / math.sqrt(2)))


def ice_phase_spectrum(rng: np.random.Generator, amplitude_rfft2: torch.Tensor) -> torch.Tensor:
    """One random ice phase field, returned as its ``rfft2`` [box, box // 2 + 1] (dtype/device of the filter)."""
    return ice_phase_spectra([rng], amplitude_rfft2)[0]
