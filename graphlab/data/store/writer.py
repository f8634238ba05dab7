"""Streaming, atomic tensor writes: rows arrive in chunks, the file appears (and the manifest names it) only once
every row has been written, fsynced and renamed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from graphlab.data.store.manifest import CHUNK_BYTES, ChunkHasher, Entry, dtype_name, storage_dtype, to_numpy

Chunk = Union[torch.Tensor, np.ndarray]


class TensorWriter:
    """Write one tensor row-chunk by row-chunk without holding it in memory.

    ``append(chunk)`` adds rows (along dim 0) to ``<file>.tmp-<pid>`` and hashes them on the way;
    ``finalize()`` checks the row count, fsyncs and calls ``commit(entry, tmp_path)``, which renames the file to
    ``entry.file`` and updates the store's manifest (the commit point) under the manifest lock. Used as a context manager it finalises on a clean exit and deletes
    the temporary file on an exception, so a failed or killed writer never changes what the store holds.

    Args:
        folder: the store folder.
        file: final file name (fresh per version, see :func:`~graphlab.data.store.manifest.new_file_name`).
        shape: the full shape; ``shape[0]`` may be ``None`` (or ``-1``) when the row count is known only at the end.
        dtype: the torch dtype of every chunk.
        commit: called with the finished :class:`Entry` and the temporary path.
        chunk_bytes: checksum granularity.
    """

    def __init__(self, folder: Path, file: str, shape: Sequence[Optional[int]], dtype: torch.dtype,
                 commit: Callable[[Entry, Path], None], chunk_bytes: int = CHUNK_BYTES) -> None:
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype (e.g. torch.float32), got {dtype!r}")
        shape = tuple(shape)
        rows = shape[0] if shape else 1
        if rows is not None and rows != -1 and (not isinstance(rows, int) or rows < 0):
            raise ValueError(f"shape[0] must be a row count >= 0, None or -1 (unknown), got {rows!r}")
        if any(not isinstance(s, int) or s < 0 for s in shape[1:]):
            raise ValueError(f"shape[1:] must be sizes >= 0, got {list(shape)}")
        self.folder, self.file, self.dtype, self._commit = Path(folder), file, dtype, commit
        self.row_shape = shape[1:]
        self.scalar = len(shape) == 0
        self.rows_expected = None if rows in (None, -1) else rows
        self.rows_written = 0
        self._storage = storage_dtype(dtype)
        self._hasher = ChunkHasher(chunk_bytes)
        self._tmp = self.folder / f"{file}.tmp-{os.getpid()}"
        self._fh = open(self._tmp, "xb")
        self.entry: Optional[Entry] = None

    @property
    def path(self) -> Path:
        return self.folder / self.file

    def append(self, chunk: Chunk) -> None:
        """Append rows; ``chunk`` has shape ``[rows, *shape[1:]]`` and the writer's dtype (numpy arrays are taken
        as their torch equivalent)."""
        if self._fh is None:
            raise ValueError(f"{self.path}: the writer is finalised or aborted; open a new one")
        if isinstance(chunk, np.ndarray):
            array = np.ascontiguousarray(chunk)  # may be read-only (a np.load mmap): only its bytes are used
            dtype = torch.from_numpy(np.empty(0, dtype=array.dtype)).dtype
        elif isinstance(chunk, torch.Tensor):
            array, dtype = None, chunk.dtype
        else:
            raise TypeError(f"append expects a torch.Tensor or numpy array, got {type(chunk).__name__}")
        if dtype != self.dtype:
            raise TypeError(f"{self.path}: chunk dtype {dtype} differs from the writer's {self.dtype}; "
                            f"cast it first (chunk.to({self.dtype}))")
        shape = tuple(chunk.shape)
        if self.scalar:
            if shape != () or self.rows_written:
                raise ValueError(f"{self.path}: a 0-dimensional tensor takes exactly one 0-dimensional chunk")
            rows = 1
        else:
            if len(shape) != len(self.row_shape) + 1 or shape[1:] != self.row_shape:
                raise ValueError(f"{self.path}: chunk shape {list(shape)} does not fit rows of shape "
                                 f"{list(self.row_shape)}; chunks are [rows, {', '.join(map(str, self.row_shape))}]")
            rows = shape[0]
        if self.rows_expected is not None and self.rows_written + rows > self.rows_expected:
            raise ValueError(f"{self.path}: {self.rows_written + rows} rows appended, the shape says "
                             f"{self.rows_expected}")
        data = memoryview((to_numpy(chunk) if array is None else array).reshape(-1).view(np.uint8))
        self._fh.write(data)
        self._hasher.update(data)
        self.rows_written += rows

    def finalize(self) -> Entry:
        """Check the row count, fsync, rename, commit; returns the manifest entry."""
        if self._fh is None:
            if self.entry is not None:
                return self.entry
            raise ValueError(f"{self.path}: the writer was aborted")
        if self.rows_expected is not None and self.rows_written != self.rows_expected:
            self.abort()
            raise ValueError(f"{self.path}: {self.rows_written} rows written, the shape says {self.rows_expected}; "
                             "nothing was stored")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        shape = () if self.scalar else (self.rows_written, *self.row_shape)
        entry = Entry(file=self.file, shape=shape, dtype=dtype_name(self.dtype), nbytes=self._hasher.total,
                      chunks=self._hasher.finish(), chunk_bytes=self._hasher.chunk_bytes)
        try:
            self._commit(entry, self._tmp)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self.entry = entry
        return entry

    def abort(self) -> None:
        """Drop the temporary file (unless finalised: then it belongs to the store); the store is unchanged."""
        if self.entry is not None:
            return
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "TensorWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without finalize leaves nothing behind
        try:
            self.abort()
        except Exception:
            pass
