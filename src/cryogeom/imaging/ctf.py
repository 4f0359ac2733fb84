"""The contrast transfer function (paper appendix D, eqs. 7-11; the CTFFIND4 form).

For spatial frequency ``k = (kx, ky)`` in 1/Å, ``g² = kx² + ky²`` and ``α_g = atan2(ky, kx)``::

    λ    = 12.2639 / sqrt(V + 0.97845e-6 V²)             (Å, V in volts; eq. 11)
    f    = ½ (f_u + f_v + (f_u - f_v) cos 2(α_g - α_ast))  (Å, positive = underfocus; eq. 8)
    χ    = π λ g² (f - ½ λ² g² C_s) + arctan(w / sqrt(1 - w²)) + φ
    CTF  = -sin χ                                         (eq. 7)

with ``C_s`` converted from mm to Å, ``w`` the amplitude contrast and ``φ`` the phase-plate
phase shift (radians here, degrees in :class:`CTFParams`). At ``k = 0`` without phase plate the
CTF is ``-sin(arcsin w) = -w``: protein density (positive) comes out dark at low frequency, as in
raw micrographs. An optional B-factor envelope ``exp(-B g² / 4)`` (B in Å²) multiplies it.

Converting from CTFFIND/RELION: ``rlnDefocusU/V`` → ``defocus_u/v_angstrom`` as they are,
``rlnDefocusAngle`` → ``astigmatism_angle_deg``, ``rlnVoltage`` (kV), ``rlnSphericalAberration``
(mm), ``rlnAmplitudeContrast``, ``rlnPhaseShift`` (degrees). The angle is measured from the image
x axis (array axis -1) towards y (array axis -2), see :mod:`cryogeom.imaging.grid`.

Evaluation: with ``cos 2α_g = (kx² - ky²)/g²`` and ``sin 2α_g = 2 kx ky / g²``, eq. 8 times g² is
``½(f_u + f_v) g² + ½(f_u - f_v) [(kx² - ky²) cos 2α_ast + 2 kx ky sin 2α_ast]``, a polynomial in
(kx, ky): no atan2, no division by g² at k = 0. ``tests/test_ctf.py`` checks it against eq. 8
evaluated literally in float64.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import torch

from cryogeom.errors import require
from cryogeom.imaging.grid import frequencies_rfft2


@dataclass
class CTFParams:
    """Per-particle CTF parameters, each a tensor [B] (or broadcastable to it).

    Defocus is positive for underfocus (RELION/CTFFIND convention); the astigmatism angle is the
    direction of ``defocus_u`` measured from the image x axis towards y, in degrees.
    """

    defocus_u_angstrom: torch.Tensor
    defocus_v_angstrom: torch.Tensor
    astigmatism_angle_deg: torch.Tensor
    voltage_kv: torch.Tensor
    cs_mm: torch.Tensor
    amplitude_contrast: torch.Tensor
    phase_shift_deg: torch.Tensor

    def to(self, *args, **kwargs) -> "CTFParams":
        return CTFParams(**{f.name: getattr(self, f.name).to(*args, **kwargs) for f in fields(self)})

    def __getitem__(self, index) -> "CTFParams":
        return CTFParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def stack(cls, values: torch.Tensor) -> "CTFParams":
        """From a tensor [B, 7] whose columns follow :meth:`field_names`."""
        return cls(*(values[..., i] for i in range(len(fields(cls)))))

    def as_tensor(self) -> torch.Tensor:
        """A tensor [B, 7] whose columns follow :meth:`field_names` (for batching in a Dataset)."""
        return torch.stack(torch.broadcast_tensors(*(getattr(self, n) for n in self.field_names())), dim=-1)

    @classmethod
    def from_values(
        cls,
        *,
        defocus_u_angstrom,
        defocus_v_angstrom=None,
        astigmatism_angle_deg=0.0,
        voltage_kv=300.0,
        cs_mm=2.7,
        amplitude_contrast=0.1,
        phase_shift_deg=0.0,
        batch_size: int | None = None,
        dtype=torch.float32,
        device=None,
    ) -> "CTFParams":
        """Parameters from scalars or sequences, broadcast to a common shape [B].

        ``defocus_v_angstrom`` defaults to ``defocus_u_angstrom`` (no astigmatism);
        ``batch_size`` repeats scalar parameters B times.
        """
        if defocus_v_angstrom is None:
            defocus_v_angstrom = defocus_u_angstrom
        values = [
            torch.as_tensor(v, dtype=dtype, device=device)
            for v in (defocus_u_angstrom, defocus_v_angstrom, astigmatism_angle_deg, voltage_kv, cs_mm, amplitude_contrast, phase_shift_deg)
        ]
        shape = torch.broadcast_shapes(*(v.shape for v in values))
        if batch_size is not None:
            shape = torch.broadcast_shapes(shape, (batch_size,))
        require(len(shape) <= 1, f"CTF parameters: expected scalars or 1-D sequences, got shape {tuple(shape)}")
        shape = shape if len(shape) == 1 else (1,)
        return cls(*(v.expand(shape).clone() for v in values))

    @property
    def batch_size(self) -> int:
        """B of the broadcast parameters (1 for scalars)."""
        shape = torch.broadcast_shapes(*(torch.as_tensor(getattr(self, n)).shape for n in self.field_names()))
        return shape[0] if len(shape) else 1

    @property
    def dtype(self) -> torch.dtype:
        return self.defocus_u_angstrom.dtype

    def validate(self, source: str = "CTF parameters") -> "CTFParams":
        """Raise :class:`InputError` if a value is unphysical; returns ``self``.

        Meant for readers (once per data set), not for the training hot path.
        """
        for name in self.field_names():
            value = getattr(self, name)
            require(bool(torch.isfinite(value).all()), f"{source}: field {name} has non-finite values")
        w = self.amplitude_contrast
        require(bool(((w >= 0) & (w < 1)).all()), f"{source}: field amplitude_contrast must lie in [0, 1), got {w.min().item():g}..{w.max().item():g}")
        require(bool((self.voltage_kv > 0).all()), f"{source}: field voltage_kv must be positive (kV)")
        require(bool((self.cs_mm >= 0).all()), f"{source}: field cs_mm must be >= 0 (mm)")
        return self


def electron_wavelength_angstrom(voltage_kv: torch.Tensor | float) -> torch.Tensor:
    """Relativistic electron wavelength (Å) at accelerating voltage ``voltage_kv`` (paper eq. 11).

    ``λ = 12.2639 / sqrt(V + 0.97845e-6 V²)`` with V in volts; 0.019687 Å at 300 kV.
    """
    v = torch.as_tensor(voltage_kv) * 1000.0
    return 12.2639 / torch.sqrt(v + 0.97845e-6 * v * v)


def ctf_point_spread_radius_angstrom(
    defocus_angstrom: float, voltage_kv: float, cs_mm: float, max_frequency_per_angstrom: float
) -> float:
    """How far (Å) the CTF moves the signal of frequencies up to ``max_frequency_per_angstrom``.

    The stationary-phase displacement of frequency k is ``(1/2π) dχ/dk = λ f k - C_s λ³ k³``
    (eq. 7); this returns its largest magnitude over ``0 <= k <= max_frequency_per_angstrom`` at
    defocus ``defocus_angstrom`` (use the largest of the data). A canvas must extend this far beyond
    the box for the CTF's point spread not to wrap round into it.
    """
    lam = float(electron_wavelength_angstrom(float(voltage_kv)))
    k = torch.linspace(0.0, float(max_frequency_per_angstrom), 4097, dtype=torch.float64)
    shift = lam * float(defocus_angstrom) * k - float(cs_mm) * 1e7 * lam**3 * k**3
    return float(shift.abs().max())


def ctf_at_frequencies(
    params: CTFParams,
    kx_per_angstrom: torch.Tensor,
    ky_per_angstrom: torch.Tensor,
    *,
    b_factor_angstrom2: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """The CTF (paper eqs. 7-11) of B particles at the given spatial frequencies.

    ``kx_per_angstrom`` and ``ky_per_angstrom`` (1/Å) broadcast against each other to a grid
    shared by all particles (1-D ``[K]`` or 2-D ``[H, W]``) or to a per-particle grid
    ``[B, H, W]`` (e.g. one pixel size per particle). Returns ``[B, K]`` or ``[B, H, W]`` in the
    params' dtype. ``b_factor_angstrom2`` (scalar or [B], Å²) applies ``exp(-B g² / 4)``.
    Differentiable with respect to the parameters.
    """
    dtype = params.dtype
    kx = torch.as_tensor(kx_per_angstrom, dtype=dtype)
    ky = torch.as_tensor(ky_per_angstrom, dtype=dtype, device=kx.device)
    kx, ky = torch.broadcast_tensors(kx, ky)
    require(1 <= kx.ndim <= 3, f"ctf_at_frequencies: frequencies must be [K], [H, W] or [B, H, W], got shape {tuple(kx.shape)}")
    if kx.ndim < 3:  # a grid shared by all particles
        kx, ky = kx[None], ky[None]
    extra = (None,) * (kx.ndim - 1)

    def per_particle(t):  # [B] -> [B, 1, ..., 1] to broadcast over the grid
        t = torch.as_tensor(t, dtype=dtype, device=kx.device)
        return t.reshape(-1)[(slice(None),) + extra]

    lam = electron_wavelength_angstrom(per_particle(params.voltage_kv))
    fu, fv = per_particle(params.defocus_u_angstrom), per_particle(params.defocus_v_angstrom)
    two_ast = torch.deg2rad(per_particle(params.astigmatism_angle_deg)) * 2.0
    cs_angstrom = per_particle(params.cs_mm) * 1e7
    w = per_particle(params.amplitude_contrast)
    # arctan(w / sqrt(1 - w²)) (eq. 7) written as atan2 so that it is defined at w = 0 and w -> 1.
    phase0 = torch.atan2(w, torch.sqrt(1.0 - w * w)) + torch.deg2rad(per_particle(params.phase_shift_deg))

    kx2, ky2 = kx * kx, ky * ky
    g2 = kx2 + ky2
    half_diff = 0.5 * (fu - fv)
    # g² f (eq. 8 times g², see the module docstring) and the Cs term -½ λ² g⁴ Cs.
    g2f = (0.5 * (fu + fv)) * g2 + (half_diff * torch.cos(two_ast)) * (kx2 - ky2) + (half_diff * torch.sin(two_ast)) * (2.0 * kx * ky)
    chi = (math.pi * lam) * (g2f - (0.5 * lam * lam * cs_angstrom) * (g2 * g2)) + phase0
    ctf = -torch.sin(chi)
    if b_factor_angstrom2 is not None:
        ctf = ctf * torch.exp(per_particle(b_factor_angstrom2) * (-0.25) * g2)
    return ctf


def _check_box(box, pixel_size_angstrom, where: str) -> None:
    require(isinstance(box, numbers.Integral) and not isinstance(box, bool) and box >= 1, f"{where}: box must be a positive integer, got {box!r}")
    pix = torch.as_tensor(pixel_size_angstrom)
    require(pix.ndim <= 1 and bool((pix > 0).all()), f"{where}: pixel_size_angstrom must be positive (a scalar or one per particle)")


def ctf_rfft2(
    params: CTFParams,
    box: int,
    pixel_size_angstrom: torch.Tensor | float,
    *,
    b_factor_angstrom2: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """The CTF [B, box, box // 2 + 1] on the ``torch.fft.rfft2`` grid of a ``[box, box]`` image.

    Unshifted layout (zero frequency at [0, 0]); odd and even ``box``; ``pixel_size_angstrom`` a
    scalar or [B] (Å). Multiply ``torch.fft.rfft2(image)`` by it (paper eq. 4). Paper eqs. 7-11.
    """
    _check_box(box, pixel_size_angstrom, "ctf_rfft2")
    device = params.defocus_u_angstrom.device
    ky, kx = frequencies_rfft2(box, pixel_size_angstrom, dtype=params.dtype, device=device)
    return ctf_at_frequencies(params, kx, ky, b_factor_angstrom2=b_factor_angstrom2)


def ctf_fft2(
    params: CTFParams,
    box: int,
    pixel_size_angstrom: torch.Tensor | float,
    *,
    b_factor_angstrom2: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """The CTF [B, box, box] on the full ``torch.fft.fft2`` grid (unshifted layout). Eqs. 7-11."""
    _check_box(box, pixel_size_angstrom, "ctf_fft2")
    device = params.defocus_u_angstrom.device
    dtype = params.dtype
    pix = torch.as_tensor(pixel_size_angstrom, dtype=dtype, device=device)
    f = torch.fft.fftfreq(box, dtype=dtype, device=device)
    if pix.ndim == 0:
        ky, kx = f[:, None] / pix, f[None, :] / pix
    else:
        ky, kx = f[None, :, None] / pix[:, None, None], f[None, None, :] / pix[:, None, None]
    return ctf_at_frequencies(params, kx, ky, b_factor_angstrom2=b_factor_angstrom2)


__all__ = ["CTFParams", "ctf_at_frequencies", "ctf_point_spread_radius_angstrom", "ctf_fft2", "ctf_rfft2", "electron_wavelength_angstrom"]
