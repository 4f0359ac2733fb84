"""Regenerate the small hand-made particle files used by tests/test_particles_*.py.

Run from anywhere: ``python tests/data/particles/make_corpus.py``. Deterministic; writes only
into this directory. The .star files are written as literal text in the layout RELION itself
writes (not through cryogeom's writer), so the reader tests do not depend on the writer.

Image k of stack s has pixel (y, x) = 10 * s + k + 0.01 * (8 * y + x) — every image is
recognisable from its values (stack_a: s = 1, float32; stack_b: s = 2, int16 × 100 scaled).
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np

HERE = Path(__file__).resolve().parent
BOX = 8


def pattern(stack_id: int, n: int) -> np.ndarray:
    ramp = 0.01 * np.arange(BOX * BOX, dtype=np.float64).reshape(BOX, BOX)
    return np.stack([10 * stack_id + k + ramp for k in range(n)])


def write_stack(path: Path, data: np.ndarray, voxel: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, data, overwrite=True) as mrc:
        mrc.set_image_stack()
        mrc.voxel_size = voxel


RELION30 = """\
# A RELION 3.0 particle file: one data block, origins in pixels, pixel size from
# rlnDetectorPixelSize (um) and rlnMagnification: 5 um * 1e4 / 40000 = 1.25 A.

data_

loop_
_rlnImageName #1
_rlnMicrographName #2
_rlnAngleRot #3
_rlnAngleTilt #4
_rlnAnglePsi #5
_rlnOriginX #6
_rlnOriginY #7
_rlnDefocusU #8
_rlnDefocusV #9
_rlnDefocusAngle #10
_rlnVoltage #11
_rlnSphericalAberration #12
_rlnAmplitudeContrast #13
_rlnDetectorPixelSize #14
_rlnMagnification #15
000002@stacks/stack_a.mrcs mics/mic1.mrc    10.000000    20.000000    30.000000     1.500000    -2.000000 15000.000000 14000.000000    45.000000   300.000000     2.700000     0.100000     5.000000 40000.000000
000001@stacks/stack_b.mrcs mics/mic2.mrc  -120.000000   170.000000   -45.000000     0.000000     3.250000 21000.500000 20500.000000   -10.000000   200.000000     2.000000     0.070000     5.000000 40000.000000
000003@stacks/stack_a.mrcs mics/mic1.mrc     0.000000     0.000000    90.000000    -0.500000     0.000000 18000.000000 18000.000000     0.000000   300.000000     2.700000     0.100000     5.000000 40000.000000
"""

RELION31_TWO_GROUPS = """\

# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnImagePixelSize #7
_rlnImageSize #8
_rlnImageDimensionality #9
opticsGroup1            1     0.500000   300.000000     2.700000     0.100000     1.000000            8            2
opticsGroup2            2     1.000000   200.000000     2.000000     0.070000     2.000000            8            2


# version 30001

data_particles

loop_
_rlnImageName #1
_rlnAngleRot #2
_rlnAngleTilt #3
_rlnAnglePsi #4
_rlnOriginXAngst #5
_rlnOriginYAngst #6
_rlnDefocusU #7
_rlnDefocusV #8
_rlnDefocusAngle #9
_rlnPhaseShift #10
_rlnOpticsGroup #11
_rlnClassNumber #12
_rlnRandomSubset #13
000001@stacks/stack_a.mrcs    10.000000    20.000000    30.000000     1.500000    -2.000000 15000.000000 14000.000000    45.000000     0.000000            1            1            1
000002@stacks/stack_b.mrcs  -120.000000   170.000000   -45.000000     0.000000     3.250000 21000.500000 20500.000000   -10.000000    90.000000            2            3            2
000003@stacks/stack_a.mrcs     0.000000     0.000000    90.000000    -0.500000     0.000000 18000.000000 18000.000000     0.000000     0.000000            1            2            1
000001@stacks/stack_b.mrcs    45.000000    90.000000   180.000000     4.000000     4.000000 12000.000000 11000.000000    30.000000    45.000000            2            1            2
"""


def relion31(particle_lines: list[str], *, optics: str | None = None) -> str:
    optics = optics or (
        "opticsGroup1            1   300.000000     2.700000     0.100000     1.000000            8            2\n"
    )
    head = (
        "# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n_rlnVoltage #3\n"
        "_rlnSphericalAberration #4\n_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n_rlnImageSize #7\n"
        "_rlnImageDimensionality #8\n" + optics + "\n\n# version 30001\n\ndata_particles\n\nloop_\n"
    )
    columns = [
        "rlnImageName",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOriginYAngst",
        "rlnDefocusU",
        "rlnDefocusV",
        "rlnDefocusAngle",
        "rlnOpticsGroup",
    ]
    return head + "".join(f"_{c} #{i + 1}\n" for i, c in enumerate(columns)) + "".join(line + "\n" for line in particle_lines)


def row(image_name: str, group: int = 1) -> str:
    return f"{image_name} 10.0 20.0 30.0 1.0 -1.0 15000.0 14000.0 45.0 {group}"


def main() -> None:
    write_stack(HERE / "stacks" / "stack_a.mrcs", pattern(1, 3).astype(np.float32))
    write_stack(HERE / "stacks" / "stack_b.mrcs", np.round(pattern(2, 2) * 100).astype(np.int16))
    (HERE / "relion30.star").write_text(RELION30)
    (HERE / "relion31_two_groups.star").write_text(RELION31_TWO_GROUPS)

    bad = HERE / "bad"
    bad.mkdir(exist_ok=True)
    # A stack cut short: the header promises 3 images, the file holds 2.5.
    write_stack(bad / "truncated.mrcs", pattern(3, 3).astype(np.float32))
    raw = (bad / "truncated.mrcs").read_bytes()
    (bad / "truncated.mrcs").write_bytes(raw[: len(raw) - BOX * BOX * 4 // 2])
    (bad / "truncated.star").write_text(relion31([row("000001@truncated.mrcs")]))
    # Image 2 (1-based) of this stack has a NaN pixel.
    nan = pattern(4, 3).astype(np.float32)
    nan[1, 3, 4] = np.nan
    write_stack(bad / "nan.mrcs", nan)
    (bad / "nan.star").write_text(relion31([row(f"{i:06d}@nan.mrcs") for i in (1, 2, 3)]))
    # 8 x 6 images.
    write_stack(bad / "nonsquare.mrcs", np.zeros((2, 6, BOX), dtype=np.float32))
    (bad / "nonsquare.star").write_text(relion31([row("000001@nonsquare.mrcs")]))
    # A required column (rlnDefocusU) is missing.
    (bad / "missing_column.star").write_text(
        relion31([row("000001@../stacks/stack_a.mrcs")]).replace("_rlnDefocusU #7\n", "").replace(" 15000.0 14000.0", " 14000.0")
    )
    # Refers to image 4 of a 3-image stack.
    (bad / "past_end.star").write_text(relion31([row("000001@../stacks/stack_a.mrcs"), row("000004@../stacks/stack_a.mrcs")]))
    # Refers to a stack that does not exist.
    (bad / "missing_stack.star").write_text(relion31([row("000001@../stacks/no_such_stack.mrcs")]))
    # Two optics groups with different box sizes.
    optics = (
        "opticsGroup1            1   300.000000     2.700000     0.100000     1.000000            8            2\n"
        "opticsGroup2            2   300.000000     2.700000     0.100000     1.000000           16            2\n"
    )
    (bad / "mixed_box.star").write_text(
        relion31([row("000001@../stacks/stack_a.mrcs", 1), row("000002@../stacks/stack_a.mrcs", 2)], optics=optics)
    )
    # A particle file of an unknown type.
    (bad / "particles.xyz").write_text("not a particle file\n")


if __name__ == "__main__":
    main()
