"""Writing a simulated data set: particles.star/.mrcs, ground_truth.npz and simulation.json.

Files (in the output directory)
-------------------------------
* ``particles.mrcs`` — float32 images [n, D, D], streamed in order as they are rendered.
* ``particles.star`` — RELION 3.1 (:func:`cryogeom.particles.write_relion`): Euler angles of the
  poses, ``rlnOriginXAngst/YAngst`` (:func:`~cryogeom.imaging.rotations.relion_origin_from_shift`),
  per-particle defocus and astigmatism, voltage / Cs / amplitude contrast / pixel size in
  ``data_optics``.
* ``ground_truth.npz`` — ``frame`` int [n] (trajectory frame of each particle, .star order) and
  ``ca`` float [F, N, 3] (Å, every trajectory frame centred on its own Cα centroid: rotating
  ``ca[frame[i]]`` by particle i's pose, shifting by its shift and projecting puts each residue
  where it appears in image i), plus the true poses ``rotations`` [n, 3, 3] and
  ``shifts_angstrom`` [n, 2] (the .star's may carry errors), ``frames_simulated`` (the frames
  particles were drawn from), ``junk`` bool [n] and ``junk_kind`` int [n] (0: a true particle; 1, 2,
  3: :data:`~cryogeom.simulate.imperfect.JUNK_KINDS`, whose names are ``junk_kind_names``), and
  ``rotation_centre_offset_angstrom`` [3] (where the particles rotate relative to each frame's Cα
  centroid).
* ``simulation.json`` — the settings, seed, package version and canvas sizes, for the record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from cryogeom import __version__
from cryogeom.errors import InputError
from cryogeom.files import check_writable_dir
from cryogeom.particles import write_relion
from cryogeom.simulate.parallel import render_chunks
from cryogeom.simulate.simulator import ImageFormation, ParticleParameters

STAR_NAME = "particles.star"
MRCS_NAME = "particles.mrcs"
GROUND_TRUTH_NAME = "ground_truth.npz"
RECORD_NAME = "simulation.json"


def check_output_dir(out_dir: str | os.PathLike, *, force: bool) -> Path:
    """Refuse an existing non-empty directory (or a file) unless ``force``; does not create it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; expected an output directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"{out}: directory is not empty; choose another output directory or pass --force")
    check_writable_dir(out)
    return out


def write_dataset(
    out_dir: str | os.PathLike,
    formation: ImageFormation,
    params: ParticleParameters,
    *,
    seed: int,
    trajectory_frames: np.ndarray,
    ground_truth_ca_angstrom: np.ndarray,
    workers: int = 1,
    progress: bool = False,
    overwrite: bool = False,
    record: dict | None = None,
    written_poses: tuple[np.ndarray, np.ndarray] | None = None,
    ground_truth_extra: dict | None = None,
) -> Path:
    """Render ``params`` with ``formation`` and write the data set into ``out_dir`` (created).

    ``params.frame`` indexes the frames of ``formation.ensemble``; ``trajectory_frames`` [F_sim]
    maps them to trajectory frame numbers, which index ``ground_truth_ca_angstrom`` [F, N, 3]
    (already centred per frame). ``record`` adds entries to simulation.json. ``written_poses``
    (rotations [n, 3, 3], shifts [n, 2]) go to the .star instead of the true ones;
    ``ground_truth_extra`` adds arrays to ground_truth.npz.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = formation.config
    trajectory_frames = np.asarray(trajectory_frames, dtype=np.int64)
    frame = trajectory_frames[params.frame]
    chunks = render_chunks(formation, params, seed, workers=workers, progress=progress)
    write_relion(
        out / STAR_NAME,
        out / MRCS_NAME,
        chunks,
        rotations=params.rotations if written_poses is None else written_poses[0],
        shifts_angstrom=params.shifts_angstrom if written_poses is None else written_poses[1],
        ctf=params.ctf(config),
        pixel_size_angstrom=config.pixel_size_angstrom,
        overwrite=overwrite,
    )
    np.savez(
        out / GROUND_TRUTH_NAME,
        frame=frame,
        ca=np.asarray(ground_truth_ca_angstrom, dtype=np.float64),
        rotations=params.rotations,
        shifts_angstrom=params.shifts_angstrom,
        frames_simulated=trajectory_frames,
        **{"junk": np.zeros(len(params), dtype=bool), "junk_kind": np.zeros(len(params), dtype=np.int8),
           "rotation_centre_offset_angstrom": np.zeros(3), **(ground_truth_extra or {})},
    )
    info = {
        "cryogeom_version": __version__,
        "seed": int(seed),
        "n_particles": len(params),
        "settings": config.as_dict(),
        "projection_oversample": formation.oversample,
        "projection_kernel_width": formation.projector.width,
        "projection_box": formation.splat_box,
        "ctf_padded_box": formation.padded_box,
        "interaction_constant_rad_per_volt_angstrom": formation.interaction_constant,
    }
    info.update(record or {})
    (out / RECORD_NAME).write_text(json.dumps(info, indent=2, default=str) + "\n")
    return out
