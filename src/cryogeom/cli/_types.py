"""argparse value types that reject bad values with a one-line message naming what was expected,
and argument groups that several subcommands share."""

from __future__ import annotations

import argparse
import math
from typing import Callable, TypeVar

T = TypeVar("T", int, float)


def _checked(convert: Callable[[str], T], ok: Callable[[T], bool], expected: str) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in "invalid <type> value" messages
    return parse


MAX_BOX = 4096

positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
nonnegative_float = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
positive_int = _checked(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
fraction = _checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
box_size = _checked(int, lambda v: 8 <= v <= MAX_BOX, f"a box size in pixels (integer from 8 to {MAX_BOX})")


def add_run_particle_args(p: argparse.ArgumentParser) -> None:
    """The particle-file options of commands that read a trained run's particles again."""
    p.add_argument("--particles", help="the run's particle file (default: the one recorded in RUN/config.json)")
    p.add_argument("--datadir", help="directory the image paths in the particle file are relative to")
    p.add_argument("--poses", help="cryoDRGN pose .pkl (for an .mrcs/.txt particle stack)")
    p.add_argument("--ctf", help="cryoDRGN CTF .pkl (for an .mrcs/.txt particle stack)")
