"""The simulator: posed all-atom conformations → weak-phase cryo-EM images with CTF, ice, dose and noise.

Image formation of particle i (frame f, pose R, shift d, CTF parameters)
-------------------------------------------------------------------------
1. Atoms of frame f, centred on the frame's own Cα centroid (the frame of the ground truth), are
   moved to ``r' = R r + (dx, dy, 0)`` (:mod:`cryogeom.imaging.rotations`) and their projected
   potential ``V_z`` (V·Å) is computed band-limited on a canvas that holds the whole molecule
   (``splat_box`` pixels), as its spectrum: the structure factor of each element times that
   element's form factor (:class:`~cryogeom.simulate.fourier_projection.GriddingProjector`, a
   type-1 NUFFT; scattering factors with an isotropic atom B-factor,
   :mod:`cryogeom.physics.scattering`).
2. Phase ``φ = σ_e V_z`` (relativistic interaction constant σ_e, ≈ 6.53e-4 rad/(V·Å) at 300 kV),
   zero-padded to a canvas of ``padded_box`` pixels large enough that the CTF's point spread does
   not wrap round into the box (:func:`padded_box_for`). With ice, an amorphous-ice phase field
   (:mod:`cryogeom.simulate.ice`, drawn directly in Fourier space) is added over the whole canvas,
   and each atom removes the ice of its excluded volume (:mod:`cryogeom.physics.solvent`;
   ``displace_solvent``: one more Gaussian in each element's form factor), which lowers the
   protein's low-resolution contrast as in real data.
3. Weak-phase image ``I = 1 + 2 F⁻¹[CTF · E · F[φ]]`` with the package CTF
   (:func:`cryogeom.imaging.ctf.ctf_at_frequencies` on the rfft2 grid, paper eqs. 7-11; CTF(0) = -w, so the protein is dark)
   and an envelope ``E = exp(-B q²/4)`` standing for partial coherence, detector MTF and residual
   motion (``envelope_b_angstrom2``; the spatial and temporal coherence envelopes of a 300 kV FEG
   at 2 µm defocus amount to B ≈ 18 Å² at 1 Å/px, hence the default of 30 Å²). For the protein the
   envelope is applied as an extra B-factor of its atoms (``f(q/2) E(q) = Σ a_i exp(-(b_i + B) q²/4)``,
   identical); the ice spectrum is multiplied by E directly. Only the ``box`` pixels about the
   molecule's centre are transformed back.
4. Detector: expected electrons per pixel ``dose · pixel² · I``; Poisson shot noise
   (``numpy.random.Generator.poisson``) unless ``noiseless``.
5. Output pixels: ``normalise="relion"`` inverts the contrast and sets the background (outside the
   circle of diameter ``box``) to mean 0, sd 1 per image, as RELION's extraction does;
   ``"none"`` keeps raw counts (protein dark).

Random draws (:func:`draw_particles`) come from ``SeedSequence(seed, spawn_key=(0,))``; the noise of
particle i from ``SeedSequence(seed, spawn_key=(1, i))`` (:func:`particle_rng`: first the seed of the
torch generator of its ice field, :func:`~cryogeom.simulate.ice.torch_generator`, then its shot
noise), so a data set is the same whatever the number of workers, the chunking or the number of
images rendered together (:data:`IMAGES_PER_PASS`).

Speed: the time goes to the projection (spreading each atom onto a few grid points, a few FFTs),
the CTF canvas (the ice's normal numbers, the CTF, FFTs of the padded canvas) and the detector
(Poisson draws); ``benchmarks/bench_simulate.py`` measures it (figures in BENCHMARKS.md).

Defaults and their reasons: 300 kV, Cs 2.7 mm, 20,000 Å defocus, 1 Å/px, 80 px, 50 e/Å² (the
paper's ADK data); amplitude contrast 0.07, the usual value for protein in vitreous ice (cisTEM's
and the value most CTFFIND users set; the paper's authors used 0.06); astigmatism |Δf| uniform in
0-200 Å with a uniform angle (typical of well-corrected data); ice 300 Å thick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.fft
import torch

from cryogeom.errors import require
from cryogeom.imaging.ctf import CTFParams, ctf_at_frequencies, electron_wavelength_angstrom
from cryogeom.imaging.grid import frequencies_rfft2
from cryogeom.imaging.rotations import random_rotations
from cryogeom.simulate.detector import expected_counts, normalise_relion, shot_noise
from cryogeom.simulate.fourier_projection import GriddingProjector
from cryogeom.physics.ice import IceModel, ice_phase_amplitude_rfft2
from cryogeom.simulate.ice import ice_phase_spectra
from cryogeom.imaging.rotations import pose_points
from cryogeom.physics.scattering import interaction_constant, projected_potential_gaussians
from cryogeom.physics.solvent import displaced_solvent_gaussians

NORMALISATIONS = ("relion", "none")


@dataclass(frozen=True)
class SimulationConfig:
    """Microscope, sample and detector settings of a simulated data set (module docstring)."""

    box: int = 80
    pixel_size_angstrom: float = 1.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_min_angstrom: float = 20000.0
    defocus_max_angstrom: float = 20000.0
    astigmatism_max_angstrom: float = 200.0
    dose_per_angstrom2: float = 50.0
    envelope_b_angstrom2: float = 30.0
    atom_b_angstrom2: float = 0.0
    shift_max_angstrom: float = 0.0
    ice_thickness_angstrom: float = 300.0  # 0: no ice
    displace_solvent: bool = True  # with ice: each atom removes its volume of ice (solvent.py)
    noiseless: bool = False
    normalise: str = "relion"
    oversample: int | None = None  # projection gridding upsampling (fourier_projection.py); None: 2
    padded_box: int | None = None  # CTF canvas; None: chosen so the point spread does not wrap

    def validate(self) -> "SimulationConfig":
        """Raise :class:`InputError` naming the first bad setting; returns ``self``."""
        require(isinstance(self.box, (int, np.integer)) and self.box >= 8, f"box: expected an integer >= 8 pixels, got {self.box!r}")
        positive = ("pixel_size_angstrom", "voltage_kv", "dose_per_angstrom2", "defocus_min_angstrom")
        for name in positive:
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, f"{name}: expected a positive number, got {value!r}")
        nonnegative = ("cs_mm", "astigmatism_max_angstrom", "envelope_b_angstrom2", "atom_b_angstrom2", "shift_max_angstrom", "ice_thickness_angstrom")
        for name in nonnegative:
            value = getattr(self, name)
            require(math.isfinite(value) and value >= 0, f"{name}: expected a number >= 0, got {value!r}")
        require(0 <= self.amplitude_contrast < 1, f"amplitude_contrast: expected a value in [0, 1), got {self.amplitude_contrast!r}")
        require(
            math.isfinite(self.defocus_max_angstrom) and self.defocus_max_angstrom >= self.defocus_min_angstrom,
            f"defocus: expected MIN <= MAX, got {self.defocus_min_angstrom!r} {self.defocus_max_angstrom!r}",
        )
        require(
            self.astigmatism_max_angstrom / 2 < self.defocus_min_angstrom,
            f"astigmatism: expected less than twice the minimum defocus, got {self.astigmatism_max_angstrom!r} Å",
        )
        require(self.normalise in NORMALISATIONS, f"normalise: expected one of {', '.join(NORMALISATIONS)}, got {self.normalise!r}")
        require(self.oversample is None or (int(self.oversample) == self.oversample and 2 <= self.oversample <= 8), f"oversample: expected an integer in 2..8, got {self.oversample!r}")
        require(self.padded_box is None or self.padded_box >= self.box, f"padded_box: expected an integer >= box ({self.box}), got {self.padded_box!r}")
        return self

    def replace(self, **changes) -> "SimulationConfig":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ParticleParameters:
    """Per-particle ground truth, each an array with leading dimension n (the .star order)."""

    frame: np.ndarray  # [n] int: trajectory frame (index into the ensemble)
    rotations: np.ndarray  # [n, 3, 3]: R moves the atoms
    shifts_angstrom: np.ndarray  # [n, 2]: where the rotation centre lands (Å)
    defocus_u_angstrom: np.ndarray  # [n]
    defocus_v_angstrom: np.ndarray  # [n]
    astigmatism_angle_deg: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index) -> "ParticleParameters":
        return ParticleParameters(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def ctf(self, config: SimulationConfig, *, dtype=torch.float64, device=None) -> CTFParams:
        """The particles' :class:`CTFParams` (voltage, Cs, amplitude contrast from ``config``)."""
        return CTFParams.from_values(
            defocus_u_angstrom=self.defocus_u_angstrom,
            defocus_v_angstrom=self.defocus_v_angstrom,
            astigmatism_angle_deg=self.astigmatism_angle_deg,
            voltage_kv=config.voltage_kv,
            cs_mm=config.cs_mm,
            amplitude_contrast=config.amplitude_contrast,
            phase_shift_deg=0.0,
            batch_size=len(self),
            dtype=dtype,
            device=device,
        )


def draw_particles(n_frames: int, per_conf: int, config: SimulationConfig, seed: int, frame_weights=None) -> ParticleParameters:
    """Draw frames (``per_conf`` of each, shuffled; or ``n_frames · per_conf`` drawn with
    probabilities ``frame_weights`` [F]), uniform SO(3) poses, shifts and defocus.

    Shifts are uniform in a disc of radius ``shift_max_angstrom``; defocus uniform in
    [min, max]; astigmatism ``Δ`` uniform in [0, ``astigmatism_max_angstrom``] with
    ``defocus_u/v = f ± Δ/2`` and a uniform angle in [0°, 180°).
    """
    require(n_frames >= 1, f"trajectory: expected at least one frame, got {n_frames}")
    require(per_conf >= 1, f"per-conf: expected a positive number of images per frame, got {per_conf}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    n = n_frames * per_conf
    if frame_weights is None:
        frame = rng.permutation(np.repeat(np.arange(n_frames), per_conf))
    else:
        p = np.asarray(frame_weights, dtype=np.float64)
        require(p.shape == (n_frames,) and np.all(p >= 0) and p.sum() > 0, f"frame weights: expected {n_frames} values >= 0, not all 0")
        frame = rng.choice(n_frames, size=n, p=p / p.sum())
    rotations = random_rotations(n, rng)
    radius = config.shift_max_angstrom * np.sqrt(rng.uniform(size=n))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    shifts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    defocus = rng.uniform(config.defocus_min_angstrom, config.defocus_max_angstrom, size=n)
    astigmatism = rng.uniform(0, config.astigmatism_max_angstrom, size=n)
    return ParticleParameters(
        frame=frame,
        rotations=rotations,
        shifts_angstrom=shifts,
        defocus_u_angstrom=defocus + astigmatism / 2,
        defocus_v_angstrom=defocus - astigmatism / 2,
        astigmatism_angle_deg=rng.uniform(0, 180, size=n),
    )


def particle_rng(seed: int, index: int) -> np.random.Generator:
    """The noise generator of particle ``index`` (ice field, then shot noise)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, int(index))))


@dataclass
class AtomicEnsemble:
    """All-atom conformations, each centred on its own Cα centroid (the ground-truth frame)."""

    atoms_angstrom: np.ndarray  # [F, A, 3]
    elements: np.ndarray  # [A] element symbols
    ca_angstrom: np.ndarray  # [F, N, 3]

    @classmethod
    def from_frames(cls, atom_positions_angstrom, elements, ca_angstrom) -> "AtomicEnsemble":
        """Centre frames ``atom_positions [F, A, 3]`` and ``ca [F, N, 3]`` on each frame's Cα centroid."""
        atoms = np.asarray(atom_positions_angstrom, dtype=np.float64)
        ca = np.asarray(ca_angstrom, dtype=np.float64)
        elements = np.asarray(elements).astype(str)
        require(atoms.ndim == 3 and atoms.shape[-1] == 3, f"atom positions: expected [F, A, 3], got shape {atoms.shape}")
        require(ca.ndim == 3 and ca.shape[-1] == 3 and ca.shape[0] == atoms.shape[0], f"Cα positions: expected [F, N, 3] with F = {atoms.shape[0]}, got shape {ca.shape}")
        require(elements.shape == (atoms.shape[1],), f"atom elements: expected {atoms.shape[1]} symbols, got shape {elements.shape}")
        require(bool(np.isfinite(atoms).all() and np.isfinite(ca).all()), "coordinates: expected finite atom positions")
        centre = ca.mean(axis=1, keepdims=True)
        return cls(atoms_angstrom=atoms - centre, elements=elements, ca_angstrom=ca - centre)

    @classmethod
    def from_trajectory(cls, trajectory, frames=None) -> "AtomicEnsemble":
        """From a :class:`cryogeom.structure.types.Trajectory` with all-atom data (optionally a subset of frames)."""
        structure = trajectory.structure
        elements = getattr(structure, "atom_elements", None)
        require(elements is not None, "trajectory: expected all-atom data (atom elements) for the all-atom simulator")
        n_frames = len(trajectory.ca)
        frames = np.arange(n_frames) if frames is None else np.asarray(frames, dtype=np.int64)
        require(frames.size >= 1 and frames.min() >= 0 and frames.max() < n_frames, f"frames: expected indices in 0..{n_frames - 1}")
        atoms = np.stack([np.asarray(trajectory.atom_positions(int(f)), dtype=np.float64) for f in frames])
        return cls.from_frames(atoms, elements, np.asarray(trajectory.ca, dtype=np.float64)[frames])

    def about(self, offset_angstrom) -> "AtomicEnsemble":
        """The same frames rotating about the point ``offset_angstrom`` [3] from each frame's Cα
        centroid, as particles of a consensus refinement rotate about the map's box centre."""
        o = np.asarray(offset_angstrom, dtype=np.float64).reshape(3)
        return AtomicEnsemble(self.atoms_angstrom - o, self.elements, self.ca_angstrom - o)

    @property
    def n_frames(self) -> int:
        return self.atoms_angstrom.shape[0]

    def radius_angstrom(self) -> float:
        """The largest distance of any atom of any frame from its frame's centre (Å)."""
        return float(np.sqrt((self.atoms_angstrom**2).sum(-1)).max())


def point_spread_radius_angstrom(config: SimulationConfig) -> float:
    """Largest displacement (Å) the CTF gives any frequency of the image: max over q up to the corner
    of the Fourier box (√2 / (2·pixel)) of ``|λ f q - Cs λ³ q³|`` at the largest defocus (the
    stationary-phase displacement ``(1/2π) dχ/dq``)."""
    lam = float(electron_wavelength_angstrom(config.voltage_kv))
    defocus = config.defocus_max_angstrom + config.astigmatism_max_angstrom / 2
    cs = config.cs_mm * 1e7
    q = np.linspace(0, math.sqrt(2) / (2 * config.pixel_size_angstrom), 2048)
    return float(np.abs(lam * defocus * q - cs * lam**3 * q**3).max())


def padded_box_for(config: SimulationConfig, splat_box: int) -> int:
    """CTF canvas (pixels): the delocalised signal of anything on the ``splat_box`` canvas must not wrap
    round into the central ``box``: ``P >= (splat_box + box) / 2 + r_psf / pixel``, rounded up to a
    fast FFT size."""
    if config.padded_box is not None:
        return int(config.padded_box)
    spread = point_spread_radius_angstrom(config) / config.pixel_size_angstrom
    need = max(config.box, splat_box, math.ceil((splat_box + config.box) / 2 + spread) + 1)
    return int(scipy.fft.next_fast_len(need, real=True))


#: Images rendered together inside a chunk: enough to amortise the per-call overhead, few enough
#: that one pass's grids and canvases (~1-2 MB) stay in a core's cache.
IMAGES_PER_PASS = 4


class ImageFormation:
    """Renders particles of an :class:`AtomicEnsemble` under a :class:`SimulationConfig` (module docstring).

    Picklable (it is sent once to each worker process). ``dtype`` float32 is the fast default;
    float64 for checks (and a wider, more accurate gridding kernel).
    """

    def __init__(self, ensemble: AtomicEnsemble, config: SimulationConfig, *, dtype=torch.float32, device=None):
        self.config = config.validate()
        self.ensemble = ensemble
        self.dtype = dtype
        self.device = device
        b_total = config.atom_b_angstrom2 + config.envelope_b_angstrom2
        weight, sigma = projected_potential_gaussians(ensemble.elements, b_total)
        ice = IceModel(thickness_angstrom=config.ice_thickness_angstrom)
        if config.ice_thickness_angstrom > 0 and config.displace_solvent:
            solvent_weight, solvent_sigma = displaced_solvent_gaussians(ensemble.elements, ice.mean_potential_volt(), b_total)
            weight, sigma = np.concatenate([weight, solvent_weight], axis=1), np.concatenate([sigma, solvent_sigma], axis=1)
        self.weight = torch.as_tensor(weight, dtype=dtype, device=device)
        self.sigma = torch.as_tensor(sigma, dtype=dtype, device=device)
        self.interaction_constant = interaction_constant(config.voltage_kv)
        self.oversample = config.oversample or 2
        # The projection canvas holds every atom of every frame at any pose and shift, plus the
        # widest Gaussian term (5 σ).
        reach = ensemble.radius_angstrom() + config.shift_max_angstrom + 5 * float(sigma.max())
        self.splat_box = 2 * math.ceil(reach / config.pixel_size_angstrom) + 2
        self.padded_box = padded_box_for(config, self.splat_box)
        require(
            self.padded_box >= self.splat_box,
            f"padded_box: expected at least {self.splat_box} pixels to hold the molecule, got {self.padded_box}",
        )
        self.projector = GriddingProjector(weight, sigma, self.splat_box, config.pixel_size_angstrom, upsampling=self.oversample, dtype=dtype, device=device)
        self._atoms = torch.as_tensor(ensemble.atoms_angstrom, dtype=dtype, device=device)
        # On the CTF canvas the projection canvas occupies pixels 0 … splat_box - 1 (phase_spectrum()),
        # so the output box is the canvas's pixels splat_box // 2 - box // 2 + (0 … box - 1), mod P.
        first = self.splat_box // 2 - config.box // 2
        self._box_pixels = torch.as_tensor((first + np.arange(config.box)) % self.padded_box, device=device)
        # The CTF canvas's spectra are kept transposed, [k_x, k_y] (see phase_spectrum()).
        ky, kx = frequencies_rfft2(self.padded_box, config.pixel_size_angstrom, dtype=dtype, device=device)
        self._kx, self._ky = kx.T, ky.T  # [P // 2 + 1, 1] and [1, P]
        self.ice_filter = None
        if config.ice_thickness_angstrom > 0:
            filt = ice_phase_amplitude_rfft2(
                ice,
                self.padded_box,
                config.pixel_size_angstrom,
                self.interaction_constant,
                envelope_b_angstrom2=config.envelope_b_angstrom2,
            )
            self.ice_filter = torch.as_tensor(filt, dtype=dtype, device=device)  # [P, P // 2 + 1]
            self._ice_filter_transposed = self.ice_filter.T.contiguous()

    # -- stages ---------------------------------------------------------------------------------
    def positions(self, params: ParticleParameters) -> torch.Tensor:
        """Image-plane positions [n, A, 2] (Å; x, y) of the particles' posed atoms (step 1)."""
        atoms = self._atoms[torch.as_tensor(params.frame, device=self.device)]
        rotations = torch.as_tensor(params.rotations, dtype=self.dtype, device=self.device)
        shifts = torch.as_tensor(params.shifts_angstrom, dtype=self.dtype, device=self.device)
        return pose_points(atoms, rotations, shifts)

    def projected_potential_spectrum(self, params: ParticleParameters) -> torch.Tensor:
        """``rfft2`` [n, splat_box, splat_box // 2 + 1] of :meth:`projected_potential` (step 1,
        :class:`~cryogeom.simulate.fourier_projection.GriddingProjector`)."""
        positions = self.positions(params)
        return torch.cat([self.projector.spectrum(positions[s : s + IMAGES_PER_PASS]) for s in range(0, len(params), IMAGES_PER_PASS)])

    def projected_potential(self, params: ParticleParameters) -> torch.Tensor:
        """Band-limited projected potential [n, splat_box, splat_box] (V·Å) of the posed atoms, with
        the atom and envelope B-factors (step 1)."""
        return torch.fft.irfft2(self.projected_potential_spectrum(params), s=(self.splat_box,) * 2)

    def phase_spectrum(self, params: ParticleParameters) -> torch.Tensor:
        """``rfft2`` [n, P, P // 2 + 1] of the protein's phase ``σ_e V_z`` on the CTF canvas (step 2).

        The projection canvas is zero-padded to P pixels *after* its last row and column (its
        pixel 0 on canvas pixel 0, as ``rfft2(..., s=(P, P))`` pads): the canvas is periodic, the CTF
        shift-invariant and the ice stationary, so where the molecule sits on it does not matter.
        (Internally the spectrum is computed and used transposed, ``[k_x, k_y]``: then the long
        transforms along y run over contiguous memory, and only the molecule's rows are transformed
        along x.)
        """
        positions = self.positions(params)
        parts = [self._phase_spectrum_transposed(positions[s : s + IMAGES_PER_PASS]) for s in range(0, len(params), IMAGES_PER_PASS)]
        return torch.cat(parts).transpose(-1, -2)

    def _phase_spectrum_transposed(self, positions: torch.Tensor) -> torch.Tensor:
        image = torch.fft.irfft2(self.projector.spectrum(positions), s=(self.splat_box,) * 2)
        rows = torch.fft.rfft(image.mul_(self.interaction_constant), n=self.padded_box, dim=-1)  # [n, S, P // 2 + 1]
        return torch.fft.fft(rows.transpose(-1, -2), n=self.padded_box, dim=-1)  # [n, P // 2 + 1, P]

    def _intensity(self, positions: torch.Tensor, ctf: CTFParams, rngs, protein: bool = True) -> torch.Tensor:
        spectrum = self._phase_spectrum_transposed(positions)
        if not protein:  # empty ice: the same canvas and noise, no molecule
            spectrum.zero_()
        if self.ice_filter is not None and rngs is not None:
            spectrum += ice_phase_spectra(rngs, self._ice_filter_transposed, half_axis=-2)
        spectrum *= ctf_at_frequencies(ctf, self._kx, self._ky)
        # irfft2 computed only for the box: the y transform, keep the box's rows, then the x transform.
        columns = torch.fft.ifft(spectrum, dim=-1).index_select(-1, self._box_pixels)  # [n, P // 2 + 1, box]
        contrast = torch.fft.irfft(columns.transpose(-1, -2), n=self.padded_box, dim=-1).index_select(-1, self._box_pixels)
        return contrast.mul_(2.0).add_(1.0)

    def intensity(self, params: ParticleParameters, rngs=None, protein: bool = True) -> torch.Tensor:
        """Weak-phase image ``I`` [n, box, box] (1 = vacuum) (steps 2-3). ``rngs`` (one generator
        per particle) draw the ice; without them (or without ice) the image has no ice. Without
        ``protein`` the images hold only the ice (empty-ice junk)."""
        positions = self.positions(params)
        ctf = params.ctf(self.config, dtype=self.dtype, device=self.device)
        parts = []
        for s in range(0, len(params), IMAGES_PER_PASS):
            part = slice(s, s + IMAGES_PER_PASS)
            parts.append(self._intensity(positions[part], ctf[part], None if rngs is None else rngs[part], protein))
        return torch.cat(parts)

    def images(self, params: ParticleParameters, first_index: int, seed: int, *, indices=None, protein: bool = True) -> np.ndarray:
        """Output images float32 [n, box, box] of particles ``first_index …`` (or of the particle
        numbers ``indices`` [n], which seed their noise) (steps 2-5)."""
        cfg = self.config
        numbers = first_index + np.arange(len(params)) if indices is None else np.asarray(indices)
        rngs = [particle_rng(seed, int(i)) for i in numbers]
        intensity = self.intensity(params, rngs, protein).detach().cpu().numpy().astype(np.float64)
        counts = expected_counts(intensity, cfg.dose_per_angstrom2, cfg.pixel_size_angstrom)
        if not cfg.noiseless:
            counts = np.stack([shot_noise(c, rng) for c, rng in zip(counts, rngs)])
        if cfg.normalise == "relion":
            counts = normalise_relion(counts)
        return counts.astype(np.float32)
