"""Training configuration: every setting of a run in one dataclass, saved beside the results.

Two presets:

* ``default`` — the settings that reach a given accuracy fastest on a CPU (measured, see
  BENCHMARKS.md): the encoder sees and the renderer draws a Fourier-downsampled image
  (``train_pixel_angstrom`` ≈ 2 Å), a small stride-2 encoder that also sees the pose and, as a
  second channel, the base structure rendered at the particle's pose, both channels convolved
  with the particle's CTF and turned to the canonical in-plane angle of its pose; a
  two-Gaussians-per-residue density weighed by the atoms' contrast in ice; a larger learning
  rate with cosine decay over 8 epochs and a slower decoder; a geometry loss weight α = 0.005 (the paper's 0.05 held the reconstructions near
  the base structure: EMD-RMSD 2.7 Å against 1.6 Å on ADK at 50 e/Å²); and a chain loss δ = 0.5,
  the geometry loss over residues 1-3 bonds apart, which holds the Cα trace's local fold while the
  domains turn at their hinges (EMD-RMSD 1.08 Å against 1.37 Å without it on ADK at 50 e/Å²).
  β and γ are the paper's.
* ``paper`` — the paper's settings (section 3, appendices A-F): the paper's encoder at full
  resolution, one Gaussian per residue, Adam at a constant 1e-5, batch 128, CTF on a 300/80 padded
  box.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field

from cryogeom.model.density import DENSITY_MODELS

PRESETS = ("default", "paper")


@dataclass
class TrainConfig:
    # optimisation
    epochs: int = 8  # the cosine schedule ends here; longer schedules score worse on ADK (BENCHMARKS.md)
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # "cosine" (to lr_min over the run) or "constant"
    lr_min: float = 1e-5
    warmup_steps: int = 100
    decoder_lr_scale: float = 0.1
    max_minutes: float | None = None  # stop (and checkpoint) after this much training time
    # network
    latent_dim: int = 8
    encoder: str = "fast"  # "fast" or "paper"
    pose_conditioning: bool = True
    reference_channel: bool = True  # the encoder also sees the base structure's render at the particle's pose
    encoder_matched_filter: bool = True  # the encoder's channels convolved with the particle's CTF
    encoder_filter_b_factor_angstrom2: float | None = None  # with it, times exp(-B k² / 4)
    encoder_canonical_inplane: bool = True  # the encoder sees every particle turned to the canonical in-plane angle of its pose
    decoder_width: int = 350
    decoder_depth: int = 7
    density: str = "backbone-sidechain"  # "ca" (paper), "backbone-sidechain", "atoms"
    density_weights: str = "ice"  # richer densities: atoms weighed by their contrast in ice ("ice") or atomic number ("electrons")
    # images
    train_pixel_angstrom: float | None = 2.0  # Fourier-downsample to about this pixel size; None = full resolution
    pad_factor: float = 2.0
    invert_data: bool | None = None  # None: detect the contrast polarity from the data
    # losses: L = L_img + alpha L_geom + beta L_bond + gamma L_centering
    alpha: float = 0.005  # the paper's 0.05 anchors the path to the base too hard at 50 e/Å² (BENCHMARKS.md)
    beta: float = 0.005
    gamma: float = 0.1
    geometry_k: int | None = None  # None: all residue pairs (paper eq. 1); k: k nearest neighbours in the base
    chain_weight: float = 0.5  # δ: weight of L_chain, the geometry loss over residues 1…chain_window bonds apart (the trace's local fold)
    chain_window: int = 3
    # data
    validation_size: int = 4000
    validation_fraction: float = 0.1  # at most this fraction of the particles is held out
    validation_k: int = 1000  # with --ground-truth: held-out particles scored after every epoch (evaluate uses 4000)
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None = all cores
    # bookkeeping
    checkpoint_every_minutes: float = 5.0
    preset: str = "default"
    extra: dict = field(default_factory=dict)

    #: settings that take one of a few words, and the words
    CHOICES = {
        "lr_schedule": ("cosine", "constant"),
        "encoder": ("fast", "paper"),
        "density": DENSITY_MODELS,
        "density_weights": ("ice", "electrons"),
    }

    def check(self) -> None:
        """InputError (one line) for a setting outside its choices."""
        from cryogeom.errors import InputError

        for name, choices in self.CHOICES.items():
            if getattr(self, name) not in choices:
                raise InputError(f"setting {name}: expected one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if not isinstance(self.chain_window, int) or self.chain_window < 1:
            raise InputError(f"setting chain_window: expected a whole number of bonds >= 1, got {self.chain_window!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The configuration saved by a run; settings added since it was written take the value
        that reproduces what that run did (``_BEFORE_ADDED``), not today's default."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**_BEFORE_ADDED, **{k: v for k, v in values.items() if k in known}})

    def train_box(self, box: int, pixel_size_angstrom: float) -> int:
        """The box the encoder sees and the renderer draws: about ``train_pixel_angstrom`` per pixel."""
        if self.train_pixel_angstrom is None or self.train_pixel_angstrom <= pixel_size_angstrom:
            return box
        side = math.ceil(box * pixel_size_angstrom / self.train_pixel_angstrom)
        side += side % 2  # even boxes: the Fourier crop keeps a symmetric band
        return int(min(box, max(32, side)))


# Settings added after runs had been saved, with the behaviour those runs had.
_BEFORE_ADDED = {"encoder_matched_filter": False, "encoder_canonical_inplane": False, "density_weights": "electrons", "chain_weight": 0.0}


def preset(name: str, **overrides) -> TrainConfig:
    """The configuration of preset ``name`` with ``overrides`` applied."""
    if name == "default":
        cfg = TrainConfig()
    elif name == "paper":
        cfg = TrainConfig(
            lr=1e-5,
            lr_schedule="constant",
            warmup_steps=0,
            decoder_lr_scale=1.0,
            encoder="paper",
            pose_conditioning=False,
            reference_channel=False,
            encoder_matched_filter=False,
            encoder_canonical_inplane=False,
            alpha=0.05,
            chain_weight=0.0,
            density="ca",
            train_pixel_angstrom=None,
            pad_factor=300 / 80,
            epochs=400,
            preset="paper",
        )
    else:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
