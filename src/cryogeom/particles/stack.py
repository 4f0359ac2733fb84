"""Lazy image stacks: particle images read on demand from memory-mapped .mrcs/.mrc files.

An :class:`ImageStack` is a list of references ``(stack file, frame)`` — one per particle — over a
pool of stack files (:class:`StackFiles`). Nothing is read when the stack is built except each
file's header, checked once (``nz``, ``ny``, ``nx``, ``mode``, file length). Pixels are read on
demand through ``mrcfile.mmap(path, mode="r")``; the maps are opened on first use and kept (at
most ``max_open`` at a time, least recently used closed first, so that a data set spread over
thousands of micrograph stacks does not exhaust file descriptors). A stack larger than memory
works: only the frames asked for are paged in.

Processes: the open maps belong to the process that opened them. After a ``fork`` (torch
``DataLoader`` workers) the pool notices the new process id and re-opens its maps; pickling
(``spawn`` workers) drops them, so a pickled stack is a few bytes per particle, never the pixels.

Every batch read is checked with ``torch.isfinite``; a NaN or infinite pixel raises
:class:`~cryogeom.errors.InputError` naming the file and the (1-based) image number.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import mrcfile
import mrcfile.utils
import numpy as np
import torch

from cryogeom.errors import InputError

# MRC modes holding real-valued pixels: int8, int16, float32, uint16, float16.
_REAL_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
_HEADER_BYTES = 1024


@dataclass(frozen=True)
class StackHeader:
    """What one stack file's header says: ``n_images`` frames of ``box`` × ``box`` pixels."""

    path: Path
    n_images: int
    box: int
    mode: int
    voxel_size_angstrom: float


def read_stack_header(path: str | os.PathLike) -> StackHeader:
    """Read and check the header of an .mrcs/.mrc image stack (no pixels are read).

    Raises :class:`InputError` for a missing or unreadable file, a complex or unknown data mode,
    non-square images, or a file shorter than its header says (truncated).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: stack file not found")
    try:
        # permissive: old stacks without the MRC2014 map ID still open; the checks below catch junk
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                header = mrc.header
                nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
                mode = int(header.mode)
                extended = int(header.nsymbt)
                voxel = float(mrc.voxel_size.x)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable MRC image stack ({exc})") from None
    if mode not in _REAL_MODES:
        raise InputError(f"{path}: MRC mode {mode} is not supported; expected real pixels (mode 0, 1, 2, 6 or 12)")
    if nx <= 0 or ny <= 0 or nz <= 0:
        raise InputError(f"{path}: header gives an empty stack (nx={nx}, ny={ny}, nz={nz})")
    if nx != ny:
        raise InputError(f"{path}: images are {nx}x{ny} pixels; expected square images")
    itemsize = np.dtype(_REAL_MODES[mode]).itemsize
    expected = _HEADER_BYTES + extended + nx * ny * nz * itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise InputError(
            f"{path}: file is truncated: header says {nz} images of {nx}x{ny} (mode {mode}) = {expected} bytes, file has {actual}"
        )
    return StackHeader(path=path, n_images=nz, box=nx, mode=mode, voxel_size_angstrom=voxel)


class StackPathResolver:
    """Finds the stack file a metadata file refers to, the way cryoDRGN does.

    A relative name is looked up under ``datadir`` (if given; also its base name there), then
    under the metadata file's directory; an absolute name is used as is, then its base name under
    ``datadir``. Each distinct name is resolved once. A name found nowhere raises
    :class:`InputError` naming the metadata file and every place tried.
    """

    def __init__(self, metadata_path: str | os.PathLike, datadir: str | os.PathLike | None = None):
        self.metadata_path = Path(metadata_path)
        self.base = self.metadata_path.resolve().parent
        self.datadir = None if datadir is None else Path(datadir)
        if self.datadir is not None and not self.datadir.is_dir():
            raise InputError(f"datadir {self.datadir}: not a directory")
        self._cache: dict[str, Path] = {}

    def candidates(self, name: str) -> list[Path]:
        p = Path(name)
        out: list[Path] = []
        if p.is_absolute():
            out.append(p)
            if self.datadir is not None:
                out.append(self.datadir / p.name)
        else:
            if self.datadir is not None:
                out += [self.datadir / p, self.datadir / p.name]
            out.append(self.base / p)
        return list(dict.fromkeys(Path(os.path.normpath(c)) for c in out))

    def __call__(self, name: str) -> Path:
        found = self._cache.get(name)
        if found is None:
            tried = self.candidates(name)
            found = next((c for c in tried if c.is_file()), None)
            if found is None:
                places = ", ".join(str(c) for c in tried)
                hint = "" if self.datadir is not None else " (give datadir if the stacks are elsewhere)"
                raise InputError(f"{self.metadata_path}: stack file {name!r} not found; tried {places}{hint}")
            self._cache[name] = found
        return found


class StackFiles:
    """A pool of image-stack files whose memory maps are opened on demand, once per process.

    ``frames(i)`` returns file ``i``'s pixels as a read-only ``numpy.memmap`` ``[nz, D, D]``.
    At most ``max_open`` maps are open at a time (least recently used closed first).
    """

    def __init__(self, headers: Sequence[StackHeader], *, max_open: int = 128):
        self.headers = list(headers)
        self.max_open = int(max_open)
        self._open: OrderedDict[int, mrcfile.mrcmemmap.MrcMemmap] = OrderedDict()
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.headers)

    def frames(self, file_index: int) -> np.ndarray:
        if self._pid != os.getpid():  # forked: the maps belong to the parent process
            self._open = OrderedDict()
            self._pid = os.getpid()
        mrc = self._open.get(file_index)
        if mrc is None:
            header = self.headers[file_index]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mrc = mrcfile.mmap(header.path, mode="r", permissive=True)
            except (ValueError, OSError) as exc:
                raise InputError(f"{header.path}: cannot memory-map the stack ({exc})") from None
            if mrc.data is None:
                raise InputError(f"{header.path}: cannot memory-map the stack (no data block)")
            self._open[file_index] = mrc
            while len(self._open) > self.max_open:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        else:
            self._open.move_to_end(file_index)
        header = self.headers[file_index]
        return mrc.data.reshape(header.n_images, header.box, header.box)

    def close(self) -> None:
        """Close every open map of this process (they re-open on the next read)."""
        if self._pid == os.getpid():
            for mrc in self._open.values():
                mrc.close()
        self._open = OrderedDict()

    def __getstate__(self):
        return {"headers": self.headers, "max_open": self.max_open}

    def __setstate__(self, state):
        self.__init__(state["headers"], max_open=state["max_open"])


class ImageStack:
    """Particle images [n, D, D], read lazily: ``read(indices)`` returns a float32 tensor.

    Image ``i`` is frame ``frame[i]`` (0-based) of file ``files.headers[file_index[i]]``.
    """

    def __init__(self, files: StackFiles, file_index: np.ndarray, frame: np.ndarray):
        self.files = files
        self.file_index = np.asarray(file_index, dtype=np.int64)
        self.frame = np.asarray(frame, dtype=np.int64)
        if self.file_index.shape != self.frame.shape or self.file_index.ndim != 1:
            raise ValueError("file_index and frame must be 1-D arrays of equal length")
        boxes = {h.box for h in files.headers}
        if len(boxes) > 1:
            sizes = ", ".join(f"{h.path.name}: {h.box}" for h in files.headers[:4])
            raise InputError(f"image stacks have different box sizes ({sizes}, ...); expected one box size for all particles")
        self.box = boxes.pop() if boxes else 0

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_references(
        cls,
        paths: Sequence[str | os.PathLike],
        file_index: Sequence[int] | np.ndarray,
        frames: Sequence[int] | np.ndarray,
        *,
        referenced_from: str | os.PathLike | None = None,
        max_open: int = 128,
    ) -> "ImageStack":
        """Image i is frame ``frames[i]`` (0-based) of stack file ``paths[file_index[i]]``.

        ``paths`` are the distinct (resolved) stack files; each one's header is read and checked
        once. A frame past the end of its file raises :class:`InputError` naming
        ``referenced_from`` (the metadata file) and the row.
        """
        file_index = np.asarray(file_index, dtype=np.int64)
        frames = np.asarray(frames, dtype=np.int64)
        if file_index.shape != frames.shape:
            raise ValueError("file_index and frames must have the same length")
        headers = [read_stack_header(p) for p in paths]
        counts = np.array([h.n_images for h in headers], dtype=np.int64)
        bad = np.flatnonzero((frames < 0) | (frames >= counts[file_index])) if len(frames) else []
        if len(bad):
            i = int(bad[0])
            where = f"{referenced_from}: row {i + 1}" if referenced_from is not None else f"image {i}"
            raise InputError(
                f"{where} refers to image {frames[i] + 1} of {headers[file_index[i]].path}, which holds {counts[file_index[i]]} images"
            )
        return cls(StackFiles(headers, max_open=max_open), file_index, frames)

    @classmethod
    def from_stack_files(cls, paths: Iterable[str | os.PathLike], *, max_open: int = 128) -> "ImageStack":
        """All frames of the given stack files, in order (a single .mrcs, or a cryoDRGN .txt list)."""
        headers = [read_stack_header(p) for p in paths]
        file_index = np.concatenate([np.full(h.n_images, i, dtype=np.int64) for i, h in enumerate(headers)])
        frame = np.concatenate([np.arange(h.n_images, dtype=np.int64) for h in headers])
        return cls(StackFiles(headers, max_open=max_open), file_index, frame)

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n(self) -> int:
        return len(self.frame)

    def subset(self, indices) -> "ImageStack":
        """The images at ``indices`` (sharing this stack's open files)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageStack(self.files, self.file_index[idx], self.frame[idx])

    def describe(self, index: int) -> str:
        """Human-readable location of image ``index``: ``'image 5 of /path/stack.mrcs'`` (1-based)."""
        return f"image {self.frame[index] + 1} of {self.files.headers[self.file_index[index]].path}"

    def read(self, indices=None) -> torch.Tensor:
        """Images at ``indices`` as a float32 tensor [k, D, D] (all images when None).

        Reads are grouped by file and done in increasing frame order (one fancy-index read of the
        memory map per file). Raises :class:`InputError` if any pixel is NaN or infinite.
        """
        idx = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise IndexError(f"image index out of range for a stack of {self.n} images")
        idx = idx % max(self.n, 1)
        out = np.empty((len(idx), self.box, self.box), dtype=np.float32)
        files = self.file_index[idx]
        frames = self.frame[idx]
        order = np.lexsort((frames, files))
        sorted_files = files[order]
        bounds = np.flatnonzero(np.diff(sorted_files)) + 1
        for group in np.split(order, bounds):
            if not len(group):
                continue
            data = self.files.frames(int(files[group[0]]))
            fr = frames[group]  # ascending
            if fr[-1] - fr[0] + 1 == len(fr):  # contiguous run: one slice
                out[group] = data[fr[0] : fr[-1] + 1]
            else:
                out[group] = data[fr]
        batch = torch.from_numpy(out)
        finite = torch.isfinite(batch).flatten(1).all(dim=1)
        if not bool(finite.all()):
            k = int(torch.nonzero(~finite)[0, 0])
            i = int(idx[k])
            path = self.files.headers[self.file_index[i]].path
            raise InputError(f"{path}: image {self.frame[i] + 1} (1-based; particle {i}) has NaN or infinite pixels")
        return batch

    def __repr__(self) -> str:
        return f"ImageStack(n={self.n}, box={self.box}, files={len(self.files)})"
