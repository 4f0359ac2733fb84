"""Fourier-crop particle images to a smaller box and write them as .mrcs + RELION 3.1 .star.

Reads any supported particle file (RELION .star, cryoSPARC .cs, cryoDRGN .mrcs/.txt/.star with
--poses and --ctf), crops each image's spectrum to D' pixels (the real-space mean is kept; the
pixel size becomes p·D/D'), and writes the images with their poses, shifts and CTF. The image
stack is streamed in batches, so stacks larger than memory work. Nothing is written on error.

Example:
  cryogeom downsample particles.star -D 64 -o particles.64.star
  cryogeom downsample J42_particles.cs --datadir /cryosparc/P3 -D 96 -o p96.star --mrcs p96.mrcs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cryogeom.cli._types import box_size, positive_float, positive_int
from cryogeom.errors import InputError
from cryogeom.particles import ParticleDataset, read_particles, write_relion


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="PARTICLES", help="particle file: .star, .cs, .mrcs/.mrc or .txt")
    parser.add_argument("-D", "--box", type=box_size, required=True, metavar="D", help="output box size in pixels (<= the input box)")
    parser.add_argument("-o", "--output", required=True, metavar="STAR", help="output RELION 3.1 .star file")
    parser.add_argument("--mrcs", metavar="MRCS", help="output image stack (default: the .star name with .mrcs)")
    parser.add_argument("--datadir", metavar="DIR", help="directory the input's stack paths are relative to")
    parser.add_argument("--poses", metavar="PKL", help="cryoDRGN pose.pkl (for .mrcs/.txt input)")
    parser.add_argument("--ctf", metavar="PKL", help="cryoDRGN ctf.pkl (for .mrcs/.txt input)")
    parser.add_argument("--pixel-size", type=positive_float, metavar="A", help="input pixel size in Å (overrides the file)")
    parser.add_argument("--batch-size", type=positive_int, default=512, metavar="B", help="images per read (default: 512)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    star = Path(args.output)
    mrcs = Path(args.mrcs) if args.mrcs else star.with_suffix(".mrcs")
    particles = read_particles(
        args.input, datadir=args.datadir, poses=args.poses, ctf=args.ctf, pixel_size_angstrom=args.pixel_size
    )
    if args.box > particles.box:
        raise InputError(f"--box {args.box}: larger than the input images ({particles.box} pixels); Fourier cropping only shrinks")
    pixel = np.unique(particles.pixel_size_angstrom)
    if pixel.size != 1:
        raise InputError(f"{args.input}: particles have {pixel.size} different pixel sizes; one .mrcs needs one (split by optics group)")
    dataset = ParticleDataset(particles, downsample_box=args.box)
    starts = range(0, len(dataset), args.batch_size)
    chunks = (
        dataset.get_batch(np.arange(s, min(s + args.batch_size, len(dataset))))["image"]
        for s in tqdm(starts, desc="downsample", unit="batch", disable=args.quiet)
    )
    write_relion(
        star,
        mrcs,
        chunks,
        rotations=particles.rotations,
        shifts_angstrom=particles.shifts_angstrom,
        ctf=particles.ctf_array(),
        pixel_size_angstrom=float(pixel[0]) * particles.box / args.box,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        new_pixel = float(pixel[0]) * particles.box / args.box
        print(f"wrote {len(dataset)} particles of {args.box} px ({new_pixel:.4g} Å/px) to {star} and {mrcs}")
    return 0
