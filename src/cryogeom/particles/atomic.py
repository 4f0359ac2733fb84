"""Write output files atomically: to a hidden temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

from cryogeom.errors import InputError


def check_writable(paths: Sequence[Path], *, overwrite: bool) -> None:
    """Raise :class:`InputError` if a target exists (and ``overwrite`` is false) or its directory is missing."""
    for path in paths:
        if path.exists() and not overwrite:
            raise InputError(f"{path}: file exists; pass overwrite=True (--overwrite) to replace it")
        if path.exists() and path.is_dir():
            raise InputError(f"{path}: is a directory; expected a file name")
        if not path.parent.is_dir():
            raise InputError(f"{path}: directory {path.parent} does not exist")


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield temporary paths for ``paths``; on success rename each onto its target, else delete them.

    Nothing is written to the targets unless the whole block succeeds (each rename is atomic;
    the files are renamed in the order given).
    """
    targets = [Path(p) for p in paths]
    check_writable(targets, overwrite=overwrite)
    temps = [t.with_name(f".{t.name}.{os.getpid()}.tmp") for t in targets]
    try:
        yield temps
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
