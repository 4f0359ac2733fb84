"""The contrast transfer function (paper appendix D, eqs. 7-11; CTFFIND4 form).

(Work in progress: the parameter container is fixed here so that readers and the simulator can
use it; the CTF itself follows.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


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
