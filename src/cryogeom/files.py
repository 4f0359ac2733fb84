"""Writing files atomically: every file cryogeom writes goes through :func:`atomic_output`.

A file is written to a hidden temporary name beside its target (``.NAME.XXXX.part``, created
with ``mkstemp`` so two processes never share one), flushed to disk, given the permissions the
user's umask allows, and renamed onto the target. The rename is atomic: a reader — or a user who
kills the process — sees the old file or the new one, never a half-written one. On any error the
temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from cryogeom.errors import InputError, WriteError

PathLike = str | os.PathLike


def free_bytes(path: PathLike) -> int:
    """Bytes free on the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def require_free_space(path: PathLike, needed_bytes: float, what: str) -> None:
    """:class:`InputError` before long work starts if ``path``'s file system lacks ``needed_bytes``."""
    free = free_bytes(path)
    if free < needed_bytes:
        raise InputError(f"{path}: {what} needs about {needed_bytes / 2**20:.0f} MB but only {free / 2**20:.0f} MB are free there")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[str]:
    """Yield a temporary path (a ``str``, which every writer accepts) beside ``path``; when the
    block succeeds it is renamed onto ``path``, else removed. The parent directory is created if
    needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the data reach the disk before the rename makes them visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"{path}: could not be written ({exc.strerror or exc}); what was there before is unchanged") from None
        if isinstance(exc, RuntimeError) and any(w in str(exc) for w in ("write failed", "failed writing")):  # torch.save on a full disk
            raise WriteError(f"{path}: could not be written ({str(exc).splitlines()[0]}); what was there before is unchanged") from None
        raise


def check_writable_dir(path: Path, what: str = "output directory") -> None:
    """:class:`InputError` unless ``path`` is (or can be made) a directory this process may write to."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, not a directory; expected the {what}")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{path}: {existing} is a file, not a directory")
    try:  # a real write: permission bits do not stop root, a read-only file system does
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".cryogeom-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{path}: cannot write in {existing} ({exc.strerror or exc})") from None


def check_output_dir(out: PathLike, names, *, force: bool, what: str = "output directory (-o)") -> Path:
    """``out`` as a Path after checking that it can be written to and, unless ``force``, that it
    holds none of the files ``names`` a command would write there."""
    out = Path(out)
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise InputError(f"{out}: already holds {', '.join(existing)}; use --force to replace them")
    check_writable_dir(out, what)
    return out


def check_writable(paths: Sequence[Path], *, overwrite: bool) -> None:
    """:class:`InputError` if a target exists (and ``overwrite`` is false), is a directory, or its
    directory is missing."""
    for path in paths:
        if path.exists() and not overwrite:
            raise InputError(f"{path}: file exists; pass overwrite=True (--overwrite) to replace it")
        if path.exists() and path.is_dir():
            raise InputError(f"{path}: is a directory; expected a file name")
        if not path.parent.is_dir():
            raise InputError(f"{path}: directory {path.parent} does not exist")


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[PathLike], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """Temporary paths for several ``paths`` written together: nothing reaches a target unless the
    whole block succeeds; then each is renamed onto its target, in the order given."""
    targets = [Path(p) for p in paths]
    check_writable(targets, overwrite=overwrite)
    with contextlib.ExitStack() as stack:
        # entered last to first, so that they are left (and renamed) first to last
        temps = [Path(stack.enter_context(atomic_output(t))) for t in reversed(targets)][::-1]
        yield temps


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: PathLike, obj, *, sort_keys: bool = False) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def save_npy(path: PathLike, array) -> Path:
    """Save ``array`` as ``.npy`` to ``path`` atomically (no pickled objects)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)
