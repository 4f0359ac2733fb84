"""Simulate a realistic all-atom cryo-EM particle data set with ground truth.

Every frame of a trajectory (all atoms, each centred on its own Cα centroid) is imaged --per-conf
times at uniformly random poses, with electron scattering factors, a weak-phase image through the
CTF (zero-padded so the point spread does not wrap), an amorphous-ice background that the protein
displaces, a dose and Poisson shot noise. The simulator shares nothing with the network's residue-Gaussian renderer.

Writes into DIR: particles.star (RELION 3.1), particles.mrcs, base.pdb (frame 0, all atoms, in the
coordinates of the consensus map a refinement of these particles would give: the particles rotate
about its box centre, (D/2)·pixel Å on each axis, as for a model fitted into a RELION map),
ground_truth.npz (frame [n], ca [F, N, 3], true poses, junk flags) and simulation.json.

Like a real consensus refinement's particles, the set can rotate about a point away from the
protein's Cα centroid (--rotation-centre-offset), carry pose and shift errors (--pose-error,
--shift-error), hold junk (--junk: empty ice, another protein, the right protein with a wrong pose)
and populate the frames unevenly (--populations two-state).

Example:
  cryogeom simulate -o adk_sim                        # built-in ADK path, 102 frames x 600 images
  cryogeom simulate -o real_like --rotation-centre-offset 7 --pose-error 3 --shift-error 0.7 --junk 0.1
  cryogeom simulate --topology adk.psf --trajectory adk.dcd --per-conf 100 --dose 50 \\
      --defocus 10000 25000 --shift-max 3 --workers 2 -o my_sim
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

from cryogeom.cli._types import box_size, fraction, nonnegative_float, positive_float, positive_int
from cryogeom.errors import InputError


def add_args(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("structure (default: the built-in ADK example)")
    src.add_argument("--example", choices=("adk", "adk-2d", "cftr"),
                     help="a built-in example: adk (214 residues, 102 frames), adk-2d (ADK's LID and NMP closing "
                          "independently: a 16 x 16 grid, 256 frames) or cftr (1,181 residues, 200 frames; needs --box 160 at 1 Å/px)")
    src.add_argument("--topology", metavar="TOP", help="topology or structure file (PSF, PDB, mmCIF, GRO, …)")
    src.add_argument("--trajectory", metavar="TRAJ", help="trajectory file (DCD, XTC, TRR, multi-model PDB, …)")
    src.add_argument("--frames", metavar="SEL", help="frames to image: START:STOP[:STEP] (Python slice) or a comma list (default: all)")

    data = parser.add_argument_group("data set")
    data.add_argument("-o", "--output", metavar="DIR", required=True, help="output directory (must be empty or new)")
    data.add_argument("--per-conf", type=positive_int, default=600, metavar="N", help="images per frame (default: 600, as the paper)")
    data.add_argument("--box", type=box_size, default=80, metavar="D", help="image size in pixels (default: 80)")
    data.add_argument("--pixel", type=positive_float, default=1.0, metavar="A", help="pixel size in Å (default: 1.0)")
    data.add_argument("--shift-max", type=nonnegative_float, default=0.0, metavar="A", help="random shifts uniform in a disc of this radius, Å (default: 0, centred)")
    data.add_argument("--normalise", choices=("relion", "none"), default="relion", help="relion: inverted, background mean 0 sd 1 (default); none: raw counts")
    data.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    data.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1), metavar="W", help="processes (default: 2 or the number of cores)")
    data.add_argument("--force", action="store_true", help="write into a non-empty output directory, replacing files")
    data.add_argument("--quiet", action="store_true", help="no progress bar")

    real = parser.add_argument_group("what a consensus refinement's particles have (default: none of it)")
    real.add_argument("--rotation-centre-offset", type=float, nargs="+", default=[0.0], metavar="A",
                      help="the particles rotate about a point this far (Å) from each frame's Cα centroid, in a seeded random direction, "
                           "or X Y Z: that vector (default: 0)")
    real.add_argument("--pose-error", type=nonnegative_float, default=0.0, metavar="DEG", help="RMS angle of a random error of the written poses, degrees (default: 0)")
    real.add_argument("--shift-error", type=nonnegative_float, default=0.0, metavar="A", help="RMS error of the written shifts, Å (default: 0)")
    real.add_argument("--junk", type=fraction, default=0.0, metavar="F", help="fraction of junk particles (default: 0)")
    real.add_argument("--junk-kinds", default="ice,other,pose", metavar="K,…",
                      help="kinds of junk, in equal shares: ice (empty ice), other (another protein), pose (the right protein, a wrong pose) (default: %(default)s)")
    real.add_argument("--populations", choices=("uniform", "two-state"), default="uniform",
                      help="how often each frame is imaged: uniform (--per-conf each) or two-state (two Gaussian-populated states) (default: %(default)s)")

    scope = parser.add_argument_group("microscope and detector")
    scope.add_argument("--voltage", type=positive_float, default=300.0, metavar="KV", help="accelerating voltage, kV (default: 300)")
    scope.add_argument("--cs", type=nonnegative_float, default=2.7, metavar="MM", help="spherical aberration, mm (default: 2.7)")
    scope.add_argument("--amplitude-contrast", type=float, default=0.07, metavar="W", help="amplitude contrast (default: 0.07)")
    scope.add_argument("--defocus", type=positive_float, nargs="+", default=[20000.0], metavar="A", help="defocus MIN [MAX] in Å, uniform in the range (default: 20000)")
    scope.add_argument("--astigmatism", type=nonnegative_float, default=200.0, metavar="A", help="astigmatism |defocus_u - defocus_v| uniform in 0..A Å, random angle (default: 200)")
    scope.add_argument("--dose", type=positive_float, default=50.0, metavar="E", help="electron dose, e/Å² (default: 50)")
    scope.add_argument("--noiseless", action="store_true", help="write the expected counts (no shot noise)")
    scope.add_argument("--b-factor", type=nonnegative_float, default=30.0, metavar="B", help="image envelope exp(-B q²/4) for coherence, detector, motion, Å² (default: 30)")
    scope.add_argument("--atom-b-factor", type=nonnegative_float, default=0.0, metavar="B", help="isotropic B-factor of every atom, Å² (default: 0)")
    scope.add_argument("--ice", action=argparse.BooleanOptionalAction, default=True, help="amorphous-ice background (default: on)")
    scope.add_argument("--ice-thickness", type=positive_float, default=300.0, metavar="A", help="ice thickness, Å (default: 300)")
    scope.add_argument("--displace-solvent", action=argparse.BooleanOptionalAction, default=True, help="with ice, atoms displace their volume of ice (default: on)")


def parse_frames(text: str | None, n_frames: int) -> np.ndarray:
    """``None`` → all frames; ``START:STOP[:STEP]`` → that slice; ``a,b,c`` → those frames."""
    if text is None:
        return np.arange(n_frames)
    text = text.strip()
    if re.fullmatch(r"-?\d*:-?\d*(:-?\d*)?", text):
        parts = [int(p) if p else None for p in text.split(":")]
        if len(parts) == 3 and parts[2] == 0:
            raise InputError(f"--frames {text!r}: the step must not be 0")
        frames = np.arange(n_frames)[slice(*parts)]
    elif re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        frames = np.array([int(p) for p in text.split(",")])
        bad = frames[(frames < 0) | (frames >= n_frames)]
        if bad.size:
            raise InputError(f"--frames {text!r}: frame {bad[0]} is outside 0..{n_frames - 1}")
    else:
        raise InputError(f"--frames {text!r}: expected START:STOP[:STEP] or a comma-separated list of frame numbers")
    if frames.size == 0:
        raise InputError(f"--frames {text!r}: selects no frame of the {n_frames}")
    return frames


def _config(args):
    from cryogeom.simulate.simulator import SimulationConfig

    if len(args.defocus) > 2:
        raise InputError(f"--defocus: expected MIN [MAX] in Å, got {len(args.defocus)} values")
    defocus_min, defocus_max = args.defocus[0], args.defocus[-1]
    if defocus_max < defocus_min:
        raise InputError(f"--defocus: expected MIN <= MAX, got {defocus_min:g} {defocus_max:g}")
    config = SimulationConfig(
        box=args.box,
        pixel_size_angstrom=args.pixel,
        voltage_kv=args.voltage,
        cs_mm=args.cs,
        amplitude_contrast=args.amplitude_contrast,
        defocus_min_angstrom=defocus_min,
        defocus_max_angstrom=defocus_max,
        astigmatism_max_angstrom=args.astigmatism,
        dose_per_angstrom2=args.dose,
        envelope_b_angstrom2=args.b_factor,
        atom_b_angstrom2=args.atom_b_factor,
        shift_max_angstrom=args.shift_max,
        ice_thickness_angstrom=args.ice_thickness if args.ice else 0.0,
        displace_solvent=args.displace_solvent,
        noiseless=args.noiseless,
        normalise=args.normalise,
    )
    return config.validate()


def _load_trajectory(args):
    if args.example is not None:
        if args.topology is not None or args.trajectory is not None:
            raise InputError("--example: give either a built-in example or --topology/--trajectory, not both")
        from cryogeom.examples import EXAMPLES

        return EXAMPLES[args.example](), f"built-in {args.example.upper()} example"
    if args.topology is None and args.trajectory is None:
        from cryogeom.examples import adk

        return adk(), "built-in ADK example"
    if args.topology is None:
        raise InputError("--trajectory: also give --topology (the trajectory's topology or structure file)")
    for name, value in (("--topology", args.topology), ("--trajectory", args.trajectory)):
        if value is not None and not Path(value).is_file():
            raise InputError(f"{name} {value}: file not found")
    from cryogeom.structure.read import read_trajectory

    source = args.topology if args.trajectory is None else f"{args.topology} + {args.trajectory}"
    return read_trajectory(args.topology, args.trajectory), source


def _coordinates(trajectory) -> dict:
    """The trajectory's known coordinates per frame for ground_truth.npz (a made landscape's), if any."""
    if trajectory.coordinates is None:
        return {}
    return {"coordinates": trajectory.coordinates, "coordinate_names": np.array(trajectory.coordinate_names)}


def main(args) -> int:
    from cryogeom.simulate.dataset import check_output_dir, write_dataset
    from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, draw_particles
    from cryogeom.structure.write import write_all_atom_pdb

    from cryogeom.simulate import imperfect
    from cryogeom.structure.map_frame import box_centre_angstrom

    # Everything is checked before anything is written.
    config = _config(args)
    if len(args.rotation_centre_offset) not in (1, 3):
        raise InputError(f"--rotation-centre-offset: expected one distance or three numbers X Y Z (Å), got {len(args.rotation_centre_offset)} values")
    kinds = [k.strip() for k in args.junk_kinds.split(",") if k.strip()]
    if not kinds or any(k not in imperfect.JUNK_KINDS for k in kinds):
        raise InputError(f"--junk-kinds {args.junk_kinds}: expected a comma list of {', '.join(imperfect.JUNK_KINDS)}")
    out = check_output_dir(args.output, force=args.force)
    trajectory, source = _load_trajectory(args)
    n_frames = len(trajectory.ca)
    frames = parse_frames(args.frames, n_frames)
    rng = imperfect.imperfection_rng(args.seed)
    offset = (imperfect.random_offset(args.rotation_centre_offset[0], rng) if len(args.rotation_centre_offset) == 1
              else np.asarray(args.rotation_centre_offset, dtype=np.float64))
    ensemble = AtomicEnsemble.from_trajectory(trajectory, frames).about(offset)
    formation = ImageFormation(ensemble, config)
    params = draw_particles(ensemble.n_frames, args.per_conf, config, args.seed,
                            frame_weights=imperfect.frame_weights(ensemble.n_frames, args.populations))
    junk_kind = imperfect.draw_junk(len(params), args.junk, kinds, rng)
    if np.any(junk_kind == 2):
        formation = imperfect.MixedFormation(formation, junk_kind, ImageFormation(imperfect.other_protein(), config))
    elif np.any(junk_kind):
        formation = imperfect.MixedFormation(formation, junk_kind)
    written = imperfect.written_poses(params, junk_kind, args.pose_error, args.shift_error, rng)
    from cryogeom.files import require_free_space

    require_free_space(out, 1.05 * len(params) * config.box**2 * 4 + 2**20, f"{len(params)} images of {config.box} px")
    ca = np.asarray(trajectory.ca, dtype=np.float64)
    ca_centred = ca - ca.mean(axis=1, keepdims=True)

    print(
        f"cryogeom simulate: {source}: {len(frames)} frames x {args.per_conf} = {len(params)} images, "
        f"{config.box} px at {config.pixel_size_angstrom:g} Å, {config.dose_per_angstrom2:g} e/Å², "
        f"{ensemble.atoms_angstrom.shape[1]} atoms; CTF canvas {formation.padded_box} px",
        file=sys.stderr,
    )
    write_dataset(
        out,
        formation,
        params,
        seed=args.seed,
        trajectory_frames=frames,
        ground_truth_ca_angstrom=ca_centred,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.force,
        record={"source": source, "command": " ".join(sys.argv), "rotation_centre_offset_angstrom": offset.tolist(),
                "pose_error_deg": args.pose_error, "shift_error_angstrom": args.shift_error, "junk_fraction": args.junk,
                "junk_kinds": kinds, "populations": args.populations},
        written_poses=written,
        ground_truth_extra={**_coordinates(trajectory), "junk": junk_kind > 0, "junk_kind": junk_kind, "junk_kind_names": np.array(imperfect.JUNK_KINDS),
                            "rotation_centre_offset_angstrom": offset, "written_rotations": written[0],
                            "written_shifts_angstrom": written[1]},
    )
    # base.pdb in the consensus map's coordinates: the rotation centre (frame 0's centroid + offset)
    # at the box centre of a map with zero origin
    centre = box_centre_angstrom(config.box, config.pixel_size_angstrom)
    base_atoms = np.asarray(trajectory.atom_positions(0), dtype=np.float64) - ca[0].mean(axis=0) - offset + centre
    write_all_atom_pdb(out / "base.pdb", trajectory.structure, base_atoms)
    print(f"cryogeom simulate: wrote {out}/particles.star, particles.mrcs, base.pdb, ground_truth.npz", file=sys.stderr)
    return 0
