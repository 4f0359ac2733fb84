"""Lazy image stacks: particle images read on demand from .mrcs/.mrc files, never all in memory.

An :class:`ImageStack` is a list of references ``(stack file, frame)`` — one per particle — over a
pool of stack files (:class:`StackFiles`). Nothing is read when the stack is built except each
file's header, checked once (``nz``, ``ny``, ``nx``, ``mode``, file length). Pixels are read on
demand with ``os.preadv`` at the frames' offsets, one read per run of consecutive frames, into a
buffer of the batch; the files are opened on first use and kept open (at most ``max_open`` at a
time, least recently used closed first, so that a data set spread over thousands of micrograph
stacks does not exhaust file descriptors). A stack larger than memory works: only the frames
asked for are read.

Why not a memory map: every page of a map that has been read counts in the process's resident
memory (RssFile) until the map is closed, so one pass over a 4 GB mapped stack shows a 4 GB
process, although the pages are only the kernel's file cache. ``pread`` goes through the same
cache but maps nothing: the resident memory of a training process stays that of the batches in
flight, however many particles it streams (measured in ``benchmarks/bench_loader_1m.py``). The
files are advised ``POSIX_FADV_RANDOM`` (training reads particles in random order; the kernel's
read-ahead would fetch neighbours that are not used).

Processes: open files are plain descriptors, valid in a ``fork``-ed child (torch ``DataLoader``
workers) and safe to share because ``pread`` does not move a file offset; pickling (``spawn``
workers) drops them, so a pickled stack is a few bytes per particle, never the pixels.

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
    dtype: np.dtype | None = None  # pixel type with the file's byte order (None: native, from the mode)
    data_offset: int = _HEADER_BYTES  # bytes before the first image (header + extended header)

    @property
    def pixel_dtype(self) -> np.dtype:
        return np.dtype(_REAL_MODES[self.mode]) if self.dtype is None else self.dtype

    @property
    def frame_bytes(self) -> int:
        return self.box * self.box * self.pixel_dtype.itemsize


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
                dtype = mrcfile.utils.data_dtype_from_header(header) if mode in _REAL_MODES else None
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
    return StackHeader(path=path, n_images=nz, box=nx, mode=mode, voxel_size_angstrom=voxel, dtype=dtype,
                       data_offset=_HEADER_BYTES + extended)  # fmt: skip


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
    """A pool of image-stack files, opened on demand and read with ``os.preadv``.

    ``read_frames(i, frames)`` returns frames (ascending, 0-based) of file ``i`` as an array
    ``[k, D, D]`` in the file's pixel type. At most ``max_open`` files are open at a time (least
    recently used closed first).
    """

    def __init__(self, headers: Sequence[StackHeader], *, max_open: int = 128):
        self.headers = list(headers)
        self.max_open = int(max_open)
        self._open: OrderedDict[int, object] = OrderedDict()  # file index -> open binary file

    def __len__(self) -> int:
        return len(self.headers)

    def _file(self, file_index: int):
        fh = self._open.get(file_index)
        if fh is not None:
            self._open.move_to_end(file_index)
            return fh
        header = self.headers[file_index]
        try:
            fh = open(header.path, "rb", buffering=0)
        except OSError as exc:
            raise InputError(f"{header.path}: cannot open the stack ({exc.strerror})") from None
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        self._open[file_index] = fh
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return fh

    def read_frames(self, file_index: int, frames: np.ndarray) -> np.ndarray:
        """Frames ``frames`` (ascending, 0-based) of file ``file_index``: [k, D, D], the file's pixel type.

        One ``preadv`` per run of consecutive frames, straight into the returned array.
        """
        header = self.headers[file_index]
        frames = np.asarray(frames, dtype=np.int64)
        out = np.empty((len(frames), header.box, header.box), dtype=header.pixel_dtype)
        if not len(frames):
            return out
        fd = self._file(file_index).fileno()
        size = header.frame_bytes
        view = memoryview(out.reshape(-1).view(np.uint8))
        starts = np.flatnonzero(np.diff(frames, prepend=frames[0] - 2) != 1)  # first row of each run
        ends = np.append(starts[1:], len(frames))
        for a, b in zip(starts.tolist(), ends.tolist()):
            done, want = 0, (b - a) * size
            offset = header.data_offset + int(frames[a]) * size
            while done < want:  # a regular file returns everything at once; loop for safety
                got = os.preadv(fd, [view[a * size + done : b * size]], offset + done)
                if got <= 0:
                    raise InputError(f"{header.path}: file ended while reading image {int(frames[a]) + 1} (truncated?)")
                done += got
        return out

    def close(self) -> None:
        """Close every open file of this pool (they re-open on the next read)."""
        for fh in self._open.values():
            fh.close()
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

        Reads are grouped by file and done in increasing frame order (one ``preadv`` per run of
        consecutive frames, see :meth:`StackFiles.read_frames`). Raises :class:`InputError` if any
        pixel is NaN or infinite.
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
            out[group] = self.files.read_frames(int(files[group[0]]), frames[group])  # frames ascending
        # NumPy, not torch: torch's multi-threaded isfinite took ~8 ms per 128 images on a loaded
        # 2-core machine, NumPy ~10 µs (the reads themselves take ~0.3 ms).
        if not np.isfinite(out).all():
            k = int(np.flatnonzero(~np.isfinite(out).reshape(len(out), -1).all(axis=1))[0])
            i = int(idx[k])
            path = self.files.headers[self.file_index[i]].path
            raise InputError(f"{path}: image {self.frame[i] + 1} (1-based; particle {i}) has NaN or infinite pixels")
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"ImageStack(n={self.n}, box={self.box}, files={len(self.files)})"
