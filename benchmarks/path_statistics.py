"""What a conformational path looks like, in numbers: amplitude, per-domain motion, geometry, clashes.

:func:`describe_path` measures a :class:`~cryogeom.structure.types.Trajectory` against its frame 0
(the reference) — the numbers docs/examples.md reports for the large example and the tests check.
Definitions:

* RMSD to frame 0: Cα, after least-squares superposition (Kabsch/QCP), per frame. Its mean is
  the EMD-RMSD of always predicting frame 0; the RMSD to the mean structure (mean of the frames
  superposed on frame 0) gives the other trivial baseline of DESIGN.md.
* Displacements: per residue, |x_i(t) − x_i(0)| after superposing frame t on frame 0 (all Cα);
  per domain the largest over frames and residues, and the median over residues of each
  residue's largest.
* Domain motion: each domain's rigid-body move relative to frame 0 — centroid shift (Å) and
  rotation angle (degrees, from superposing the domain on itself) — and its internal RMSD (what
  is left after that superposition). The *direction* of a domain's motion is the first principal
  axis of its centroid-shift series; |cos| between two domains' directions near 1 means they
  move along one line. *Synchrony* is |correlation| over frames of two domains' signed shifts
  along their own directions: near 1 for all pairs when one collective mode drives everything.
* Bonds: Cα–Cα distances of covalently consecutive residues (never across a gap), and the largest
  change of one from its length in frame 0 (a cis peptide is ~2.9 Å to begin with).
* Non-bonded Cα pairs: all pairs but consecutive bonded ones. Heavy-atom pairs: atoms of
  different residues, excluding covalently consecutive residues (peptide bond).
* A *new clash* is a pair closer than ``atom_clash_angstrom`` (heavy atoms) or
  ``ca_clash_angstrom`` (Cα) that was at least ``clash_margin_angstrom`` farther apart in frame 0:
  ``d(t) < min(limit, d(0) − margin)``. Pairs already that close in the deposited structure
  (hydrogen bonds, modelling) do not count unless they close in further.
* Principal components: of the superposed Cα coordinates [F, 3N] about their mean; the fractions
  of variance explained. One collective mode would put nearly all variance in PC1.
* Steps: Cα RMSD (no superposition) between consecutive frames, and the largest residue move.
* Size: the largest distance of a heavy atom from its frame's Cα centroid (the package renders
  about that centroid, so an image box needs at least twice this, plus the CTF's spread).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from MDAnalysis.analysis.align import rotation_matrix
from scipy.spatial import cKDTree

from cryogeom.structure.types import Trajectory


@dataclass
class DomainMotion:
    """One domain's motion relative to frame 0 (Å, degrees)."""

    name: str
    n_residues: int
    max_displacement: float
    median_max_displacement: float
    max_centroid_shift: float
    max_rotation_deg: float
    max_internal_rmsd: float


@dataclass
class PathStatistics:
    """The numbers :func:`describe_path` measures (lengths in Å)."""

    n_frames: int
    n_residues: int
    n_atoms: int
    rmsd_to_first: np.ndarray
    rmsd_to_mean: np.ndarray
    domains: list[DomainMotion]
    direction_cosines: np.ndarray
    synchrony: np.ndarray
    pc_variance_fractions: np.ndarray
    bond_mean: float
    bond_sd: float
    bond_min: float
    bond_max: float
    bond_max_change: float
    min_nonbonded_ca: float
    min_nonbonded_ca_reference: float
    new_ca_clashes: int
    min_heavy_atom: float
    min_heavy_atom_reference: float
    min_heavy_atom_new_pairs: float
    new_atom_clashes: int
    frames_checked_for_atoms: int
    max_step_rmsd: float
    max_step_residue: float
    max_atom_radius: float
    settings: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The statistics as Markdown tables (what docs/examples.md shows)."""
        r = self.rmsd_to_first
        lines = [
            f"| quantity | value |",
            f"|---|---|",
            f"| frames × residues × heavy atoms | {self.n_frames} × {self.n_residues} × {self.n_atoms} |",
            f"| Cα RMSD to frame 0 (Kabsch): min / median / mean / max | {r[1:].min():.2f} / {np.median(r):.2f} / {r.mean():.2f} / {r.max():.2f} Å |",
            f"| Cα RMSD to the mean structure (Kabsch): mean / max | {self.rmsd_to_mean.mean():.2f} / {self.rmsd_to_mean.max():.2f} Å |",
            f"| fraction of variance in PC1 / PC2 / PC3 / PC4 / PC5 | {' / '.join(f'{v:.2f}' for v in self.pc_variance_fractions[:5])} |",
            f"| bonded Cα–Cα: mean ± sd (min – max) | {self.bond_mean:.3f} ± {self.bond_sd:.3f} ({self.bond_min:.2f} – {self.bond_max:.2f}) Å |",
            f"| largest change of a bonded Cα–Cα distance from frame 0 | {self.bond_max_change:.2f} Å |",
            f"| min non-bonded Cα–Cα, all frames (frame 0) | {self.min_nonbonded_ca:.2f} ({self.min_nonbonded_ca_reference:.2f}) Å |",
            f"| new Cα clashes (d < min({self.settings['ca_clash_angstrom']}, d₀ − {self.settings['clash_margin_angstrom']}) Å) | {self.new_ca_clashes} |",
            f"| min heavy-atom distance, all frames (frame 0) | {self.min_heavy_atom:.2f} ({self.min_heavy_atom_reference:.2f}) Å |",
            f"| min heavy-atom distance of pairs ≥ {self.settings['atom_clash_angstrom']} Å apart in frame 0 | {self.min_heavy_atom_new_pairs:.2f} Å |",
            f"| new heavy-atom clashes (d < min({self.settings['atom_clash_angstrom']}, d₀ − {self.settings['clash_margin_angstrom']}) Å), {self.frames_checked_for_atoms} frames | {self.new_atom_clashes} |",
            f"| largest step between consecutive frames: Cα RMSD / one residue | {self.max_step_rmsd:.2f} / {self.max_step_residue:.2f} Å |",
            f"| largest heavy-atom distance from the frame's Cα centroid (checked frames) | {self.max_atom_radius:.1f} Å |",
            "",
            "| domain | residues | max displacement (Å) | median of per-residue max (Å) | max centroid shift (Å) | max rotation (°) | max internal RMSD (Å) |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in self.domains:
            lines.append(f"| {d.name} | {d.n_residues} | {d.max_displacement:.1f} | {d.median_max_displacement:.1f} | "
                         f"{d.max_centroid_shift:.1f} | {d.max_rotation_deg:.1f} | {d.max_internal_rmsd:.2f} |")
        names = [d.name for d in self.domains]
        for title, matrix in (("|cos| between domains' directions of motion", self.direction_cosines),
                              ("|correlation| over frames of domains' shifts along their directions", self.synchrony)):
            lines += ["", f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for name, row in zip(names, matrix):
                lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
        return "\n".join(lines)


def _superpose(mobile: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mobile [n, 3] superposed on reference [n, 3], the rotation used)."""
    mc, rc = mobile.mean(0), reference.mean(0)
    rot, _ = rotation_matrix(mobile - mc, reference - rc)
    rot = np.asarray(rot)
    return (mobile - mc) @ rot.T + rc, rot


def _nonbonded_pairs(pairs: np.ndarray, residue_of: np.ndarray, bonded_next: np.ndarray) -> np.ndarray:
    ri, rj = residue_of[pairs[:, 0]], residue_of[pairs[:, 1]]
    consecutive = (np.abs(ri - rj) == 1) & bonded_next[np.minimum(ri, rj)]
    return pairs[(ri != rj) & ~consecutive]


def describe_path(trajectory: Trajectory, domains: dict[str, tuple[int, int]], *, atom_frame_stride: int = 1,
                  ca_clash_angstrom: float = 3.8, atom_clash_angstrom: float = 3.0,
                  clash_margin_angstrom: float = 0.5) -> PathStatistics:
    """Measure ``trajectory`` against its frame 0; ``domains``: name -> (first, last) residue number.

    Heavy-atom distances are checked on every ``atom_frame_stride``-th frame (and the last);
    everything else on all frames. Hydrogens, if any, are ignored.
    """
    s = trajectory.structure
    ca = trajectory.ca
    f_count, n = ca.shape[:2]
    ref = ca[0]
    superposed = np.empty_like(ca)
    rmsd = np.empty(f_count)
    for f in range(f_count):
        superposed[f], _ = _superpose(ca[f], ref)
        rmsd[f] = np.sqrt(((superposed[f] - ref) ** 2).sum(1).mean())
    disp = np.linalg.norm(superposed - ref, axis=-1)  # [F, N]

    label = np.full(n, -1)
    for d, (first, last) in enumerate(domains.values()):
        label[(s.resids >= first) & (s.resids <= last)] = d
    motions, directions, signed_shifts = [], [], []
    for d, name in enumerate(domains):
        sel = label == d
        shift = superposed[:, sel].mean(1) - ref[sel].mean(0)  # [F, 3]
        angles, internal = [], []
        for f in range(f_count):
            fitted, rot = _superpose(superposed[f, sel], ref[sel])
            angles.append(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
            internal.append(np.sqrt(((fitted - ref[sel]) ** 2).sum(1).mean()))
        per_residue_max = disp[:, sel].max(0)
        motions.append(DomainMotion(name, int(sel.sum()), float(per_residue_max.max()), float(np.median(per_residue_max)),
                                    float(np.linalg.norm(shift, axis=1).max()), float(max(angles)), float(max(internal))))
        directions.append(np.linalg.svd(shift, full_matrices=False)[2][0])
        signed_shifts.append(shift @ directions[-1])
    directions = np.array(directions)

    mean_structure = superposed.mean(0)
    rmsd_mean = np.array([np.sqrt(((_superpose(x, mean_structure)[0] - mean_structure) ** 2).sum(1).mean()) for x in ca])
    flat = superposed.reshape(f_count, -1)
    sv = np.linalg.svd(flat - flat.mean(0), compute_uv=False) ** 2

    bonded_next = np.zeros(n, bool)
    bonded_next[s.bonded_pairs.min(axis=1)] = True
    b = s.bonded_pairs
    bonds = np.linalg.norm(ca[:, b[:, 0]] - ca[:, b[:, 1]], axis=-1)

    residues = np.arange(n)
    ca_ref_pairs = _nonbonded_pairs(cKDTree(ref).query_pairs(8.0, output_type="ndarray"), residues, bonded_next)
    min_ca_ref = float(np.linalg.norm(ref[ca_ref_pairs[:, 0]] - ref[ca_ref_pairs[:, 1]], axis=1).min())
    min_ca, new_ca = np.inf, 0
    for f in range(f_count):
        p = _nonbonded_pairs(cKDTree(ca[f]).query_pairs(ca_clash_angstrom + 1.0, output_type="ndarray"), residues, bonded_next)
        dist = np.linalg.norm(ca[f, p[:, 0]] - ca[f, p[:, 1]], axis=1)
        d0 = np.linalg.norm(ref[p[:, 0]] - ref[p[:, 1]], axis=1)
        min_ca = min(min_ca, float(dist.min(initial=np.inf)))
        new_ca += int((dist < np.minimum(ca_clash_angstrom, d0 - clash_margin_angstrom)).sum())

    heavy = np.char.upper(np.asarray(s.atom_elements, dtype=str)) != "H"
    atom_res = s.atom_residue_index[heavy]
    atoms0 = s.atom_positions[heavy]
    frames = sorted(set(range(0, f_count, atom_frame_stride)) | {f_count - 1})
    min_atom, min_atom_new, new_atom, min_atom_ref, radius = np.inf, np.inf, 0, np.inf, 0.0
    for f in frames:
        atoms = trajectory.atom_positions(f)[heavy]
        radius = max(radius, float(np.linalg.norm(atoms - ca[f].mean(0), axis=1).max()))
        p = _nonbonded_pairs(cKDTree(atoms).query_pairs(atom_clash_angstrom + 0.5, output_type="ndarray"), atom_res, bonded_next)
        dist = np.linalg.norm(atoms[p[:, 0]] - atoms[p[:, 1]], axis=1)
        d0 = np.linalg.norm(atoms0[p[:, 0]] - atoms0[p[:, 1]], axis=1)
        min_atom = min(min_atom, float(dist.min(initial=np.inf)))
        far_before = d0 >= atom_clash_angstrom
        min_atom_new = min(min_atom_new, float(dist[far_before].min(initial=np.inf)))
        new_atom += int((dist < np.minimum(atom_clash_angstrom, d0 - clash_margin_angstrom)).sum())
        if f == 0:
            min_atom_ref = float(dist.min(initial=np.inf))

    steps = np.linalg.norm(np.diff(ca, axis=0), axis=-1) if f_count > 1 else np.zeros((1, n))
    return PathStatistics(
        n_frames=f_count, n_residues=n, n_atoms=int(heavy.sum()), rmsd_to_first=rmsd, rmsd_to_mean=rmsd_mean, domains=motions,
        direction_cosines=np.abs(directions @ directions.T), synchrony=np.abs(np.corrcoef(signed_shifts)),
        pc_variance_fractions=sv / sv.sum(),
        bond_mean=float(bonds.mean()), bond_sd=float(bonds.std()), bond_min=float(bonds.min()), bond_max=float(bonds.max()),
        bond_max_change=float(np.abs(bonds - bonds[0]).max()),
        min_nonbonded_ca=min_ca, min_nonbonded_ca_reference=min_ca_ref, new_ca_clashes=new_ca,
        min_heavy_atom=min_atom, min_heavy_atom_reference=min_atom_ref, min_heavy_atom_new_pairs=min_atom_new,
        new_atom_clashes=new_atom, frames_checked_for_atoms=len(frames),
        max_step_rmsd=float(np.sqrt((steps ** 2).mean(1)).max()), max_step_residue=float(steps.max()),
        max_atom_radius=radius,
        settings=dict(ca_clash_angstrom=ca_clash_angstrom, atom_clash_angstrom=atom_clash_angstrom,
                      clash_margin_angstrom=clash_margin_angstrom),
    )
