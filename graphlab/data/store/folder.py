"""A store folder opened in one mode: its manifest, lazily opened memory maps (per process), verification and
commits. :class:`DiskFeatureStore` and :class:`DiskGraphStore` both sit on one."""

from __future__ import annotations

import mmap
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence

import numpy as np
import torch

from graphlab._io import fsync_dir
from graphlab.data.store import manifest as mf
from graphlab.data.store.writer import TensorWriter

Mode = Literal["r", "w", "a"]
Verify = Literal["auto", "full", "none"]


class StoreFolder:
    """The manifest and files of one store.

    Args:
        path: the store folder.
        mode: ``"r"`` read-only (default; the folder and manifest must exist), ``"a"`` read-write (created if
            missing), ``"w"`` create or empty an existing store.
        verify: on open, check every file's size (always) and its checksums: ``"auto"`` for files smaller than
            ``verify_bytes``, ``"full"`` for all, ``"none"`` for none.
        verify_bytes: the ``"auto"`` threshold.
        chunk_bytes: checksum granularity of the files this object writes.
    """

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "r", verify: Verify = "auto",
                 verify_bytes: int = mf.VERIFY_AUTO_BYTES, chunk_bytes: int = mf.CHUNK_BYTES) -> None:
        if mode not in ("r", "w", "a"):
            raise ValueError(f"mode must be 'r' (read-only), 'a' (read-write) or 'w' (create/empty), got {mode!r}")
        if verify not in ("auto", "full", "none"):
            raise ValueError(f"verify must be 'auto', 'full' or 'none', got {verify!r}")
        self.path = Path(path)
        self.mode = mode
        self.verify_bytes = verify_bytes
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        self.chunk_bytes = chunk_bytes
        if mode == "r":
            self.manifest = mf.read_manifest(self.path)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.manifest = mf.commit(self.path, self._reset if mode == "w" else lambda m: None)
            self._collect_garbage()
        self._pid = os.getpid()
        self._maps: dict[str, np.ndarray] = {}
        self.advice: Optional[str] = None
        limit = {"auto": verify_bytes, "full": None, "none": -1}[verify]
        self.check(contents_below=limit)

    @staticmethod
    def _reset(manifest: dict[str, Any]) -> None:
        manifest["tensors"].clear()
        manifest["edges"].clear()

    # ---- checks
    def entries(self) -> list[mf.Entry]:
        out = [mf.Entry.from_json(obj, f"{self.path / mf.MANIFEST} tensors[{key}]")
               for key, obj in self.manifest["tensors"].items()]
        for key, edge in self.manifest["edges"].items():
            out += [mf.Entry.from_json(obj, f"{self.path / mf.MANIFEST} edges[{key}].{name}")
                    for name, obj in edge["parts"].items()]
        return out

    def check(self, contents_below: Optional[int] = None) -> None:
        """Sizes of every file; checksums of files smaller than ``contents_below`` bytes (``None``: all; ``-1``:
        none). Raises :class:`~graphlab.data.store.manifest.StoreCorruptedError` naming the file."""
        for entry in self.entries():
            contents = contents_below is None or entry.nbytes < contents_below
            mf.verify_entry(self.path, entry, contents=contents)

    def verify(self) -> None:
        """Full check: every file's size and every chunk's checksum."""
        self.check(contents_below=None)

    # ---- writing
    def require_writable(self) -> None:
        if self.mode == "r":
            raise PermissionError(f"{self.path} is open read-only; open it with mode='a' to change it")

    def writer(self, stem: str, shape: Sequence[Optional[int]], dtype: torch.dtype,
               update: Callable[[dict[str, Any], mf.Entry], None]) -> TensorWriter:
        """A streaming writer whose finished file is committed by ``update(manifest, entry)``."""
        self.require_writable()

        def commit(entry: mf.Entry, tmp: Path) -> None:
            self.commit(lambda manifest: update(manifest, entry), moves=[(tmp, entry.file)])

        return TensorWriter(self.path, mf.new_file_name(stem), shape, dtype, commit, self.chunk_bytes)

    def stage(self, stem: str, tensor: torch.Tensor) -> tuple[mf.Entry, Path]:
        """Write ``tensor`` to a fsynced temporary file, not yet committed: pass ``(tmp, entry.file)`` to
        :meth:`commit`'s ``moves`` to commit several files in one manifest update."""
        self.require_writable()
        staged: dict[str, Any] = {}
        writer = TensorWriter(self.path, mf.new_file_name(stem), tuple(tensor.shape), tensor.dtype,
                              lambda entry, tmp: staged.update(entry=entry, tmp=tmp), self.chunk_bytes)
        try:
            tensor = tensor.detach().cpu().contiguous()
            row_bytes = int(np.prod(tensor.shape[1:], dtype=np.int64)) * tensor.element_size()
            rows = max(1, (16 << 20) // max(1, row_bytes))
            if tensor.dim() == 0:
                writer.append(tensor)
            for start in range(0, tensor.shape[0] if tensor.dim() else 0, rows):
                writer.append(tensor[start:start + rows])
            writer.finalize()
        except BaseException:
            writer.abort()
            raise
        return staged["entry"], staged["tmp"]

    def commit(self, update: Callable[[dict[str, Any]], None], moves: Sequence[tuple[Path, str]] = ()) -> None:
        """Under the manifest lock: rename each finished temporary ``moves[i][0]`` to its name in the folder, fsync
        the folder, apply ``update`` to the on-disk manifest and write it atomically (the commit point); then delete
        the files no entry names any more (replaced versions)."""
        self.require_writable()
        old_files = mf.referenced_files(self.manifest)
        with mf.manifest_lock(self.path):
            for tmp, name in moves:
                os.replace(tmp, self.path / name)
            if moves:
                fsync_dir(self.path)
            try:
                self.manifest = mf.commit(self.path, update, locked=True)
            except BaseException:
                for _, name in moves:
                    (self.path / name).unlink(missing_ok=True)
                raise
        for name in old_files - mf.referenced_files(self.manifest):
            (self.path / name).unlink(missing_ok=True)
            self._maps.pop(name, None)

    def _collect_garbage(self) -> None:
        with mf.manifest_lock(self.path):
            mf.collect_garbage(self.path, mf.referenced_files(mf.read_manifest(self.path)))

    def reload(self) -> None:
        self.manifest = mf.read_manifest(self.path)

    # ---- reading
    def array(self, entry: mf.Entry) -> np.ndarray:
        """The file as a numpy array of the storage dtype, memory-mapped copy-on-write (writes to it stay in this
        process), opened once per process: a forked DataLoader worker reopens its own maps."""
        if os.getpid() != self._pid:
            self._maps, self._pid = {}, os.getpid()
        array = self._maps.get(entry.file)
        if array is None:
            if entry.nbytes == 0:
                array = np.empty(entry.shape, dtype=entry.storage)
            else:
                mf.verify_entry(self.path, entry, contents=False)
                array = np.memmap(self.path / entry.file, dtype=entry.storage, mode="c", shape=entry.shape)
                _madvise(array, self.advice)
            self._maps[entry.file] = array
        return array

    def tensor(self, entry: mf.Entry) -> torch.Tensor:
        """The whole file as a torch tensor of its dtype (zero-copy)."""
        return mf.from_numpy(self.array(entry), entry.torch_dtype)

    def advise(self, advice: Optional[str]) -> None:
        """Access-pattern hint for the maps (now and later): ``"random"`` (no readahead: a page fault reads one
        page, so reads are counted at page granularity), ``"sequential"``, or ``None`` (the kernel's default)."""
        if advice not in (None, "random", "sequential", "normal"):
            raise ValueError(f"advice must be 'random', 'sequential', 'normal' or None, got {advice!r}")
        self.advice = advice
        for array in self._maps.values():
            _madvise(array, advice)

    def willneed(self, array: np.ndarray, rows: np.ndarray) -> None:
        """Under ``advice="random"``: ask the kernel to start reading the pages of ``rows`` (sorted ascending) now,
        all at once (``madvise(MADV_WILLNEED)`` per run of adjacent pages), so the gather that follows waits on
        I/O issued at the device's full queue depth instead of one page fault at a time; only those pages are read.
        """
        handle = getattr(array, "_mmap", None)
        if self.advice != "random" or handle is None or not rows.size or not hasattr(mmap, "MADV_WILLNEED"):
            return
        row_bytes = array.strides[0] if array.ndim else array.itemsize
        first = rows.astype(np.int64) * row_bytes // mmap.PAGESIZE
        last = ((rows.astype(np.int64) + 1) * row_bytes - 1) // mmap.PAGESIZE
        new_run = np.ones(rows.size, dtype=bool)
        new_run[1:] = first[1:] > last[:-1] + 1  # rows are sorted, so last is non-decreasing
        starts = np.flatnonzero(new_run)
        ends = np.append(starts[1:], rows.size) - 1
        for start_page, end_page in zip(first[starts].tolist(), last[ends].tolist()):
            handle.madvise(mmap.MADV_WILLNEED, start_page * mmap.PAGESIZE,
                           (end_page - start_page + 1) * mmap.PAGESIZE)

    def drop_page_cache(self) -> None:
        """Unmap this process's pages of every file and ask the kernel to drop them from its page cache
        (``madvise(MADV_DONTNEED)`` + ``posix_fadvise(POSIX_FADV_DONTNEED)``): the next reads come from disk.
        For benchmarks that cap the page cache; a no-op where the calls are missing."""
        for array in self._maps.values():
            _madvise(array, "dontneed")
        for entry in self.entries():
            drop_file_cache(self.path / entry.file)

    def close(self) -> None:
        self._maps.clear()

    def __getstate__(self) -> dict[str, Any]:  # pickled to spawned workers: maps are reopened there
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def remove_all(self) -> None:
        """Delete the whole folder (``overwrite``)."""
        self.close()
        shutil.rmtree(self.path)


_ADVICE = {"random": "MADV_RANDOM", "sequential": "MADV_SEQUENTIAL", "normal": "MADV_NORMAL",
           "dontneed": "MADV_DONTNEED"}


def _madvise(array: np.ndarray, advice: Optional[str]) -> None:
    handle = getattr(array, "_mmap", None)
    flag = getattr(mmap, _ADVICE.get(advice or "", ""), None)
    if handle is not None and flag is not None and hasattr(handle, "madvise"):
        handle.madvise(flag)


def drop_file_cache(path: Path) -> None:
    """``posix_fadvise(DONTNEED)`` on a whole file (after an fsync, so dirty pages can go too)."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
