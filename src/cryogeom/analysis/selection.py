"""A small grammar for selecting particles by latent region and quality (``cryogeom analyze --select``).

A selection is a comma-separated list of conditions, all of which must hold (a conjunction)::

    cluster=3           particles in k-means cluster 3 (clusters are numbered from 0)
    cluster=3,5         in cluster 3 or 5: bare numbers after cluster=... add clusters
    pc1<-0.5            PC1 score below -0.5 (scores in latent units, as in pcs.npy and pca.png)
    pc1>0.2,pc2<=0      PC1 above 0.2 and PC2 at most 0
    cluster=0,1,pc3>=1  in cluster 0 or 1, and PC3 at least 1
    junk<0.5            junk probability below 0.5: the clean particles (the run's particles.npz)
    junk>=0.5           the junk
    score>8             the particle's score (how well the model explains its image) above 8

Principal components are numbered from 1 (PC1 explains the most variance); comparisons are
``<``, ``<=``, ``>``, ``>=``; ``cluster==3`` is the same as ``cluster=3``. Names are
case-insensitive and spaces are ignored. Nothing is evaluated as Python.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np

from cryogeom.errors import InputError

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_CLUSTER = re.compile(r"cluster==?(\d+)", re.IGNORECASE)
_BARE = re.compile(r"\d+")
_PC = re.compile(rf"pc(\d+)(<=|>=|<|>)({_NUMBER})", re.IGNORECASE)
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_QUALITY = re.compile(rf"(junk|score)(<=|>=|<|>)({_NUMBER})", re.IGNORECASE)
#: per-particle arrays of a run's particles.npz that conditions may name
QUALITY_FIELDS = {"junk": "junk_probability", "score": "score"}


@dataclass(frozen=True)
class ClusterCondition:
    """The particle's k-means label is one of ``clusters``."""

    clusters: tuple[int, ...]

    def __str__(self) -> str:
        return "cluster=" + ",".join(map(str, self.clusters))


@dataclass(frozen=True)
class PCCondition:
    """The particle's score on principal component ``pc`` (1-based) compares to ``value`` by ``op``."""

    pc: int
    op: str
    value: float

    def __str__(self) -> str:
        return f"pc{self.pc}{self.op}{self.value:g}"


@dataclass(frozen=True)
class QualityCondition:
    """The particle's junk probability or score (the run's particles.npz) compares to ``value``."""

    field: str  # "junk" or "score"
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Selection:
    """A conjunction of conditions (see the module docstring); ``text`` is what the user wrote."""

    conditions: tuple[ClusterCondition | PCCondition | QualityCondition, ...]
    text: str

    @property
    def needs_quality(self) -> bool:
        return any(isinstance(c, QualityCondition) for c in self.conditions)

    def __str__(self) -> str:
        return ",".join(map(str, self.conditions))

    def check(self, n_pcs: int, n_clusters: int, *, name: str = "--select") -> None:
        """Raise :class:`InputError` if a condition names a PC beyond ``n_pcs`` or a cluster beyond ``n_clusters``."""
        for cond in self.conditions:
            if isinstance(cond, PCCondition) and cond.pc > n_pcs:
                raise InputError(f"{name} {self.text!r}: pc{cond.pc} does not exist; the latent space has {n_pcs} principal components")
            if isinstance(cond, ClusterCondition) and max(cond.clusters) >= n_clusters:
                bad = max(cond.clusters)
                raise InputError(f"{name} {self.text!r}: cluster {bad} does not exist; clusters are 0 to {n_clusters - 1}")

    def mask(self, pc_scores, labels, n_clusters: int | None = None, *, name: str = "--select", quality=None) -> np.ndarray:
        """bool [n]: which particles, with PC scores ``pc_scores`` [n, k] and cluster ``labels`` [n], match.

        ``n_clusters`` (default: the largest label + 1) bounds the cluster numbers a condition may name;
        ``quality`` ({"junk_probability": [n], "score": [n]}) serves junk and score conditions.
        """
        pc_scores = np.asarray(pc_scores)
        labels = np.asarray(labels)
        if pc_scores.ndim != 2 or labels.shape != (len(pc_scores),):
            raise ValueError(f"pc_scores [n, k] and labels [n] must agree, got {pc_scores.shape} and {labels.shape}")
        if n_clusters is None:
            n_clusters = int(labels.max()) + 1 if labels.size else 0
        self.check(pc_scores.shape[1], n_clusters, name=name)
        keep = np.ones(len(labels), dtype=bool)
        for cond in self.conditions:
            if isinstance(cond, ClusterCondition):
                keep &= np.isin(labels, cond.clusters)
            elif isinstance(cond, QualityCondition):
                values = None if quality is None else quality.get(QUALITY_FIELDS[cond.field])
                if values is None or len(values) != len(labels):
                    raise InputError(f"{name} {self.text!r}: {cond.field} needs the run's per-particle scores (particles.npz, "
                                     f"written by cryogeom train) for all {len(labels)} particles")
                keep &= _COMPARE[cond.op](np.asarray(values), cond.value)
            else:
                keep &= _COMPARE[cond.op](pc_scores[:, cond.pc - 1], cond.value)
        return keep


def parse_selection(text: str, *, name: str = "--select") -> Selection:
    """Parse a selection expression (see the module docstring); errors name ``name`` and the expression."""
    compact = re.sub(r"\s+", "", str(text))
    if not compact:
        raise InputError(f"{name}: empty selection; expected e.g. cluster=3, pc1<-0.5 or pc1>0.2,pc2<0")
    conditions: list[ClusterCondition | PCCondition | QualityCondition] = []
    for piece in compact.split(","):
        if (m := _CLUSTER.fullmatch(piece)) is not None:
            conditions.append(ClusterCondition((int(m.group(1)),)))
        elif _BARE.fullmatch(piece) is not None:
            if not conditions or not isinstance(conditions[-1], ClusterCondition):
                raise InputError(f"{name} {text!r}: bare number {piece!r} must follow cluster=..., as in cluster=3,5")
            previous = conditions.pop()
            conditions.append(ClusterCondition(previous.clusters + (int(piece),)))
        elif (m := _QUALITY.fullmatch(piece)) is not None:
            conditions.append(QualityCondition(m.group(1).lower(), m.group(2), float(m.group(3))))
        elif (m := _PC.fullmatch(piece)) is not None:
            pc = int(m.group(1))
            if pc < 1:
                raise InputError(f"{name} {text!r}: principal components are numbered from 1 (pc1), got {piece!r}")
            value = float(m.group(3))
            conditions.append(PCCondition(pc, m.group(2), value))
        else:
            what = "an empty condition (doubled or trailing comma)" if not piece else repr(piece)
            raise InputError(
                f"{name} {text!r}: cannot read {what}; expected cluster=N[,N...], pcK<X, pcK<=X, pcK>X, pcK>=X, junk<P or score>S, joined by commas"
            )
    return Selection(tuple(conditions), str(text))
