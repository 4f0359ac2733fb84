"""Training configuration: every setting of a run, grouped by what it configures.

``TrainConfig`` holds five groups — :class:`Optimisation` (the schedule), :class:`Network` (what
is built: encoder, decoder, density, training resolution), :class:`Losses` (the loss weights),
:class:`Data` (hold-out, polarity, seed) and :class:`Runtime` (threads, workers, time budget,
checkpoint interval: how this process runs and for how long; on ``--resume`` these come from the
new command line). Every setting has a unique
name; ``--set NAME=VALUE`` and a run's ``config.json`` use these names, flat.

The loss is ``L = L_img + α L_geom + β L_bond + γ L_centering + δ L_chain`` (paper eq. 4 plus the
chain loss); α, β, γ, δ are ``geometry_weight``, ``bond_weight``, ``centering_weight`` and
``chain_weight``.

Two presets:

* ``default`` — settings chosen for accuracy per minute on a CPU (measurements in BENCHMARKS.md):
  the encoder sees and the renderer draws a Fourier-downsampled image (``train_pixel_angstrom``
  about 2 Å, coarser where the box would exceed ``max_train_box`` pixels), a small stride-2
  encoder that also sees the pose and, as a second channel, the base structure rendered at the
  particle's pose, both channels convolved with the particle's CTF and turned to the canonical
  in-plane angle of its pose; a normalised latent with noise while training (every direction of z
  on the same scale, :mod:`cryogeom.model.latent`) and a decoder learning at the encoder's rate,
  for proteins above 600 residues initialised so that its output depends on z from the first
  step (:mod:`cryogeom.model.decoder`);
  a two-Gaussians-per-residue density weighed by the atoms' contrast in ice; a larger learning
  rate with cosine decay over 8 epochs; α = 0.005 (a tenth of the paper's) and the chain loss
  δ = 0.5, the geometry loss over residues 1-3 bonds apart, which holds the Cα trace's local fold
  while domains turn at their hinges; above 600 residues the geometry loss holds each residue's
  32 nearest neighbours (``geometry_k = "auto"``). β and γ are the paper's.
* ``paper`` — the paper's settings (section 3, appendices A-F): the paper's encoder at full
  resolution and its free latent, PyTorch's initialisation, one Gaussian per residue, Adam at a constant 1e-5, batch 128, CTF on a 300/80 padded
  box, no chain loss.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from cryogeom.errors import InputError
from cryogeom.model.density import DENSITY_MODELS
from cryogeom.model.decoder import DECODER_INITS
from cryogeom.model.latent import LATENT_KINDS

PRESETS = ("default", "paper")


@dataclass
class Optimisation:
    epochs: int = 8  # the cosine schedule ends here
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # "cosine" (to lr_min over the run) or "constant"
    lr_min: float = 1e-5
    warmup_steps: int = 100
    decoder_lr_scale: float = 1.0  # the decoder's learning rate relative to lr


@dataclass
class Network:
    latent_dim: int = 8
    latent: str = "normalised"  # "normalised" (standardised z, noise while training) or "free" (the paper's); model/latent.py
    latent_noise_sd: float = 0.1  # with a normalised latent: sd of the noise added to z while training
    encoder: str = "fast"  # "fast" or "paper"
    pose_conditioning: bool = True
    reference_channel: bool = True  # the encoder also sees the base structure's render at the particle's pose
    encoder_matched_filter: bool = True  # the encoder's channels convolved with the particle's CTF
    encoder_filter_b_factor_angstrom2: float | None = None  # with it, times exp(-B k² / 4)
    encoder_canonical_inplane: bool = True  # every particle turned to the canonical in-plane angle of its pose
    decoder_width: int = 350
    decoder_depth: int = 7
    decoder_init: str = "auto"  # "variance-preserving", "default" (PyTorch's, the paper's code) or auto: see decoder_initialisation
    density: str = "backbone-sidechain"  # "ca" (paper), "backbone-sidechain", "atoms"
    density_weights: str = "ice"  # richer densities: atoms weighed by their contrast in ice ("ice") or atomic number ("electrons")
    train_pixel_angstrom: float | None = 2.0  # Fourier-downsample to about this pixel size; None = full resolution
    max_train_box: int | None = 56  # large boxes: train on at most this many pixels (a coarser pixel); None = no cap
    pad_factor: float = 2.0

    def train_box(self, box: int, pixel_size_angstrom: float) -> int:
        """The box the encoder sees and the renderer draws: about ``train_pixel_angstrom`` per pixel,
        and at most ``max_train_box`` pixels (a large box is trained at a coarser pixel: the render's
        cost grows with the pixels a protein covers)."""
        side = box
        if self.train_pixel_angstrom is not None and self.train_pixel_angstrom > pixel_size_angstrom:
            side = math.ceil(box * pixel_size_angstrom / self.train_pixel_angstrom)
        if self.max_train_box is not None:
            side = min(side, self.max_train_box)
        if side == box:
            return box
        side += side % 2  # even boxes: the Fourier crop keeps a symmetric band
        return int(min(box, max(32, side)))


@dataclass
class Losses:
    geometry_weight: float = 0.005  # α: the geometry degradation loss (the paper's 0.05 holds the path near the base)
    bond_weight: float = 0.005  # β: the bond-length loss
    centering_weight: float = 0.1  # γ: the centering loss
    chain_weight: float = 0.5  # δ: the geometry loss over residues 1…chain_window bonds apart (the trace's local fold)
    chain_window: int = 3
    geometry_k: int | str | None = "auto"  # None: all residue pairs (paper eq. 1); k: k nearest neighbours in the base; auto: see geometry_neighbours
    pose_refinement: bool = False  # learn a per-particle correction of each pose (model/pose_correction.py)
    pose_refinement_start_epoch: int = 1  # after the first epoch, once the network explains the particles
    pose_prior_rotation_deg: float = 2.0  # prior standard deviation of the rotation error, per axis
    pose_prior_shift_angstrom: float = 1.0  # prior standard deviation of the shift error, per axis
    pose_step_fraction: float = 1.0  # of the Fisher-scoring step of each visit (model/pose_correction.py)
    junk_weighting: bool = True  # weigh each particle's image loss by 1 - its junk probability (train/junk.py)


#: "auto" geometry loss: all pairs up to this many residues, above it each residue's nearest neighbours
LARGE_PROTEIN_RESIDUES = 600
LARGE_PROTEIN_GEOMETRY_K = 32


def geometry_neighbours(geometry_k: int | str | None, n_residues: int) -> int | None:
    """The k of the geometry loss for a protein of ``n_residues`` (None: all pairs). ``"auto"``: all
    pairs up to :data:`LARGE_PROTEIN_RESIDUES` residues; above, the :data:`LARGE_PROTEIN_GEOMETRY_K`
    nearest neighbours of each residue in the base structure — O(N) pairs instead of O(N²), and a
    large protein's domains are held in shape without every distance between them being held too."""
    if geometry_k == "auto":
        return LARGE_PROTEIN_GEOMETRY_K if n_residues > LARGE_PROTEIN_RESIDUES else None
    return geometry_k


def decoder_initialisation(decoder_init: str, n_residues: int) -> str:
    """The decoder's initialisation for a protein of ``n_residues`` (:mod:`cryogeom.model.decoder`).
    ``"auto"``: variance-preserving above :data:`LARGE_PROTEIN_RESIDUES` residues, where an image
    holds much information about the conformation and the motion must be learnt fast; PyTorch's
    default below, where a decoder that answers to z from the start fits noise with distorted
    structures (measured on ADK: BENCHMARKS.md)."""
    if decoder_init == "auto":
        return "variance-preserving" if n_residues > LARGE_PROTEIN_RESIDUES else "default"
    return decoder_init


@dataclass
class Data:
    invert_data: bool | None = None  # None: detect the contrast polarity from the data
    validation_size: int = 4000
    validation_fraction: float = 0.1  # at most this fraction of the particles is held out
    validation_k: int = 1000  # with --ground-truth: held-out particles scored after every epoch (evaluate uses 4000)
    seed: int = 0
    rotation_centre: str | list = "box"  # where the particles rotate in the base structure's coordinates (structure/map_frame.py)


@dataclass
class Runtime:
    max_minutes: float | None = None  # stop (and checkpoint) after this much training time
    threads: int | None = None  # torch intra-op threads; None = all cores
    device: str = "auto"  # "auto" (a CUDA GPU where there is one), "cuda" or "cpu"
    num_workers: int = 0
    checkpoint_every_minutes: float = 5.0


GROUPS = {"optimisation": Optimisation, "network": Network, "losses": Losses, "data": Data, "runtime": Runtime}
#: setting name -> its group
SETTINGS = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}
#: settings that take one of a few words, and the words
CHOICES = {
    "lr_schedule": ("cosine", "constant"),
    "encoder": ("fast", "paper"),
    "latent": LATENT_KINDS,
    "decoder_init": ("auto", *DECODER_INITS),
    "density": DENSITY_MODELS,
    "density_weights": ("ice", "electrons"),
    "device": ("auto", "cuda", "cpu"),
}
def _whole(minimum: int, optional: bool = False):
    def ok(v):
        return (optional and v is None) or (isinstance(v, int) and not isinstance(v, bool) and v >= minimum)
    return ok, f"a whole number >= {minimum}" + (" (or null)" if optional else "")


def _number(low: float, *, strict: bool, high: float | None = None, optional: bool = False):
    def ok(v):
        if optional and v is None:
            return True
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (v > low if strict else v >= low) and (high is None or v < high)
    what = f"a number {'>' if strict else '>='} {low:g}" + (f" and < {high:g}" if high is not None else "")
    return ok, what + (" (or null)" if optional else "")


def _rotation_centre():
    def ok(v):
        if isinstance(v, str):
            return v in ("box", "centroid")
        return (isinstance(v, (list, tuple)) and len(v) == 3
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))
    return ok, "box, centroid or three numbers [x, y, z] (Å)"


def _geometry_k():
    whole, _ = _whole(1, optional=True)
    return (lambda v: v == "auto" or whole(v)), "auto, a whole number >= 1 or null (all pairs)"


def _flag(optional: bool = False):
    return (lambda v: isinstance(v, bool) or (optional and v is None)), "true or false" + (" (or null)" if optional else "")


# What each setting accepts (the ones with a few words are in CHOICES).
_RULES = {
    "epochs": _whole(1), "batch_size": _whole(2), "lr": _number(0, strict=True), "lr_min": _number(0, strict=False),
    "warmup_steps": _whole(0), "decoder_lr_scale": _number(0, strict=True),
    "latent_dim": _whole(1), "latent_noise_sd": _number(0, strict=False), "pose_conditioning": _flag(), "reference_channel": _flag(), "encoder_matched_filter": _flag(),
    "encoder_filter_b_factor_angstrom2": _number(0, strict=False, optional=True), "encoder_canonical_inplane": _flag(),
    "decoder_width": _whole(1), "decoder_depth": _whole(1), "train_pixel_angstrom": _number(0, strict=True, optional=True),
    "pad_factor": _number(1, strict=False), "max_train_box": _whole(32, optional=True),
    "geometry_weight": _number(0, strict=False), "bond_weight": _number(0, strict=False), "centering_weight": _number(0, strict=False),
    "chain_weight": _number(0, strict=False), "chain_window": _whole(1), "geometry_k": _geometry_k(),
    "pose_refinement": _flag(), "pose_refinement_start_epoch": _whole(0), "pose_prior_rotation_deg": _number(0, strict=True),
    "pose_prior_shift_angstrom": _number(0, strict=True), "pose_step_fraction": _number(0, strict=True),
    "junk_weighting": _flag(),
    "invert_data": _flag(optional=True), "validation_size": _whole(0), "validation_fraction": _number(0, strict=False, high=1),
    "validation_k": _whole(1), "seed": _whole(0), "rotation_centre": _rotation_centre(),
    "max_minutes": _number(0, strict=True, optional=True), "threads": _whole(1, optional=True), "num_workers": _whole(0),
    "checkpoint_every_minutes": _number(0, strict=False),  # 0: after every step
}

# Names settings had in runs saved earlier.
_RENAMED = {"alpha": "geometry_weight", "beta": "bond_weight", "gamma": "centering_weight"}
# Settings added after runs had been saved, with the behaviour those runs had.
_BEFORE_ADDED = {"encoder_matched_filter": False, "encoder_canonical_inplane": False, "density_weights": "electrons", "chain_weight": 0.0,
                 "rotation_centre": "centroid", "pose_refinement": False, "junk_weighting": False,
                 "latent": "free", "latent_noise_sd": 0.0, "max_train_box": None,
                 "decoder_init": "default"}


@dataclass
class TrainConfig:
    optimisation: Optimisation = field(default_factory=Optimisation)
    network: Network = field(default_factory=Network)
    losses: Losses = field(default_factory=Losses)
    data: Data = field(default_factory=Data)
    runtime: Runtime = field(default_factory=Runtime)
    preset: str = "default"

    def get(self, name: str):
        """The setting ``name`` (a flat name, e.g. ``"lr"``)."""
        return getattr(getattr(self, SETTINGS[name]), name)

    def replace(self, **settings) -> "TrainConfig":
        """A copy with flat-named ``settings`` changed (``ValueError`` for an unknown name)."""
        unknown = [n for n in settings if n not in SETTINGS and n != "preset"]
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}")
        groups = {g: dataclasses.replace(getattr(self, g), **{n: v for n, v in settings.items() if SETTINGS.get(n) == g}) for g in GROUPS}
        return TrainConfig(**groups, preset=settings.get("preset", self.preset))

    def as_flat_dict(self) -> dict:
        """Every setting by its name (what ``config.json`` and ``--set`` use)."""
        out = {}
        for group in GROUPS:
            out.update(dataclasses.asdict(getattr(self, group)))
        out["preset"] = self.preset
        return out

    def check(self) -> None:
        """InputError (one line, naming the setting) for a setting of the wrong type or range."""
        for name in SETTINGS:
            value = self.get(name)
            if name in CHOICES:
                ok, expected = value in CHOICES[name], f"one of {', '.join(CHOICES[name])}"
            else:
                ok, expected = _RULES[name]
                ok = ok(value)
            if not ok:
                raise InputError(f"setting {name}: expected {expected}, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(self.as_flat_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The configuration saved by a run (flat names); settings added since it was written take
        the value that reproduces what that run did (``_BEFORE_ADDED``), not today's default."""
        values = {_RENAMED.get(k, k): v for k, v in values.items()}
        known = {k: v for k, v in {**_BEFORE_ADDED, **values}.items() if k in SETTINGS or k == "preset"}
        return cls().replace(**known)


def preset(name: str, **overrides) -> TrainConfig:
    """The configuration of preset ``name`` with flat-named ``overrides`` applied (None = keep)."""
    if name == "default":
        cfg = TrainConfig()
    elif name == "paper":
        cfg = TrainConfig().replace(
            lr=1e-5,
            lr_schedule="constant",
            warmup_steps=0,
            decoder_lr_scale=1.0,
            encoder="paper",
            latent="free",
            latent_noise_sd=0.0,
            decoder_init="default",
            pose_conditioning=False,
            reference_channel=False,
            encoder_matched_filter=False,
            encoder_canonical_inplane=False,
            geometry_weight=0.05,
            chain_weight=0.0,
            density="ca",
            train_pixel_angstrom=None,
            max_train_box=None,
            geometry_k=None,
            pad_factor=300 / 80,
            epochs=400,
            preset="paper",
        )
    else:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return cfg.replace(**{_RENAMED.get(k, k): v for k, v in overrides.items() if v is not None})
