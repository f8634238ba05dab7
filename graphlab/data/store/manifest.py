"""The on-disk format shared by :class:`DiskFeatureStore` and :class:`DiskGraphStore`.

A store is a folder::

    <store>/manifest.json           the commit point: every tensor the store holds, and nothing else
    <store>/<name>.<token>.bin      one raw row-major array per tensor (no header), memory-mapped on read

``manifest.json``::

    {"format": "graphlab-store", "version": 1,
     "tensors": {"<key>": ENTRY, ...},                       # DiskFeatureStore: (group, attr) -> ENTRY
     "edges":   {"<key>": {"edge_type": ..., "layout": "csr", "size": [n, m], "is_sorted": false,
                           "parts": {"rowptr": ENTRY, "col": ENTRY, "perm": ENTRY, ...}}}}

    ENTRY = {"file": "x.3f9a1c0d.bin", "shape": [N, F], "dtype": "float32", "storage": "float32",
             "layout": "row-major", "nbytes": N*F*4, "chunk_bytes": 67108864, "checksum": "blake2b-128",
             "chunks": ["<hex digest of bytes [0, 64 MiB)>", ...]}

A tensor exists iff the manifest names it and its file has exactly ``nbytes`` bytes. Files are written under a
temporary name, fsynced and renamed to a fresh name (a new ``token`` per version), and only then is the manifest
replaced (temp file, fsync, rename, fsync of the folder), so a crash at any point leaves the old manifest naming the
old, intact files or the new manifest naming the new, intact ones. Files the manifest does not name (a killed
writer's temporaries, a replaced version) are garbage that a store opened for writing removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from graphlab._io import atomic_write_json, file_lock

FORMAT = "graphlab-store"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK_BYTES = 64 << 20
"""Checksum granularity: one digest per 64 MiB of a file, so a corrupted byte is located to its chunk and a
partial verification can stop early."""
CHECKSUM = "blake2b-128"
VERIFY_AUTO_BYTES = 256 << 20
"""``verify="auto"`` hashes the files below this size when a store is opened (sizes are always checked)."""


class StoreCorruptedError(ValueError):
    """A store's file does not match its manifest: missing, truncated, or with a checksum mismatch."""


class StoreNotFoundError(FileNotFoundError):
    """The store folder or its ``manifest.json`` does not exist."""


# ---- dtypes: every torch dtype maps onto a numpy storage dtype of the same item size
_NUMPY_NATIVE = {
    torch.bool: np.bool_, torch.uint8: np.uint8, torch.int8: np.int8, torch.int16: np.int16,
    torch.int32: np.int32, torch.int64: np.int64, torch.uint16: np.uint16, torch.uint32: np.uint32,
    torch.uint64: np.uint64, torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64,
    torch.complex64: np.complex64, torch.complex128: np.complex128,
}
_UNSIGNED_BY_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_TORCH_UNSIGNED_BY_SIZE = {1: torch.uint8, 2: torch.uint16, 4: torch.uint32, 8: torch.uint64}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise StoreCorruptedError(f"the manifest names dtype {name!r}, which this torch ({torch.__version__}) does "
                                  "not have; open the store with the torch version that wrote it")
    return dtype


def storage_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype a torch dtype is stored as: itself where numpy has it, else an unsigned integer of the same
    size whose bits are reinterpreted (``bfloat16`` -> ``uint16``, ``float8_*`` -> ``uint8``)."""
    if dtype in _NUMPY_NATIVE:
        return np.dtype(_NUMPY_NATIVE[dtype])
    size = torch.empty((), dtype=dtype).element_size()
    if size not in _UNSIGNED_BY_SIZE or dtype.is_complex:
        raise TypeError(f"dtype {dtype} cannot be stored (no same-size integer view); convert the tensor first")
    return np.dtype(_UNSIGNED_BY_SIZE[size])


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous CPU numpy view of ``tensor`` in its storage dtype (bits unchanged)."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype not in _NUMPY_NATIVE:
        tensor = tensor.view(_TORCH_UNSIGNED_BY_SIZE[tensor.element_size()])
    return tensor.numpy()


def from_numpy(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """The inverse of :func:`to_numpy` (zero-copy)."""
    tensor = torch.from_numpy(array)
    return tensor if tensor.dtype == dtype else tensor.view(dtype)


# ---- entries
@dataclass
class Entry:
    """One tensor file as the manifest records it."""

    file: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    chunks: list[str]
    chunk_bytes: int = CHUNK_BYTES

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch_dtype(self.dtype)

    @property
    def storage(self) -> np.dtype:
        return storage_dtype(self.torch_dtype)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "shape": list(self.shape), "dtype": self.dtype, "storage": self.storage.name,
                "layout": "row-major", "nbytes": self.nbytes, "chunk_bytes": self.chunk_bytes,
                "checksum": CHECKSUM, "chunks": list(self.chunks)}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> "Entry":
        try:
            entry = cls(file=str(obj["file"]), shape=tuple(int(s) for s in obj["shape"]), dtype=str(obj["dtype"]),
                        nbytes=int(obj["nbytes"]), chunks=[str(c) for c in obj["chunks"]],
                        chunk_bytes=int(obj.get("chunk_bytes", CHUNK_BYTES)))
            layout, checksum = obj.get("layout", "row-major"), obj.get("checksum", CHECKSUM)
        except (KeyError, TypeError, ValueError) as err:
            raise StoreCorruptedError(f"{where}: malformed manifest entry ({err!r}); rewrite the store") from None
        if layout != "row-major" or checksum != CHECKSUM:
            raise StoreCorruptedError(f"{where}: layout {layout!r} / checksum {checksum!r} is not supported "
                                      f"(this version reads 'row-major' / {CHECKSUM!r})")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * entry.storage.itemsize
        if expected != entry.nbytes or "/" in entry.file or entry.file.startswith("."):
            raise StoreCorruptedError(f"{where}: the manifest entry is inconsistent (shape {list(entry.shape)} of "
                                      f"{entry.dtype} is {expected} bytes, nbytes says {entry.nbytes}); rewrite the "
                                      "store")
        return entry


def chunk_digest(data: memoryview | bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ChunkHasher:
    """Digests of consecutive ``chunk_bytes`` pieces of a byte stream fed in arbitrary pieces."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self.digests: list[str] = []
        self._hasher = hashlib.blake2b(digest_size=16)
        self._filled = 0
        self.total = 0

    def update(self, data: memoryview) -> None:
        data = data.cast("B")
        while len(data):
            take = min(len(data), self.chunk_bytes - self._filled)
            self._hasher.update(data[:take])
            self._filled += take
            self.total += take
            data = data[take:]
            if self._filled == self.chunk_bytes:
                self._close_chunk()

    def _close_chunk(self) -> None:
        self.digests.append(self._hasher.hexdigest())
        self._hasher = hashlib.blake2b(digest_size=16)
        self._filled = 0

    def finish(self) -> list[str]:
        if self._filled:
            self._close_chunk()
        return self.digests


def file_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[int, memoryview]]:
    """``(chunk number, bytes)`` of a file, read sequentially one chunk at a time."""
    buffer = bytearray(chunk_bytes)
    with open(path, "rb", buffering=0) as f:
        number = 0
        while True:
            n = f.readinto(buffer)
            if not n:
                return
            yield number, memoryview(buffer)[:n]
            number += 1


def verify_entry(folder: Path, entry: Entry, contents: bool) -> None:
    """Raise :class:`StoreCorruptedError` naming the file (and chunk) unless it matches ``entry``."""
    path = folder / entry.file
    fix = "rewrite it (graphlab store convert ... --overwrite) or restore the folder from a backup"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreCorruptedError(f"{path}: the manifest names this file but it does not exist; {fix}") from None
    if size != entry.nbytes:
        raise StoreCorruptedError(f"{path}: {size} bytes on disk, the manifest says {entry.nbytes} (shape "
                                  f"{list(entry.shape)}, {entry.dtype}): the file is truncated or was replaced; {fix}")
    if not contents:
        return
    expected_chunks = -(-entry.nbytes // entry.chunk_bytes)
    if len(entry.chunks) != expected_chunks:
        raise StoreCorruptedError(f"{path}: the manifest lists {len(entry.chunks)} checksums for "
                                  f"{expected_chunks} chunks; {fix}")
    for number, data in file_chunks(path, entry.chunk_bytes):
        if chunk_digest(data) != entry.chunks[number]:
            start = number * entry.chunk_bytes
            raise StoreCorruptedError(f"{path}: checksum mismatch in chunk {number} (bytes {start}.."
                                      f"{start + len(data) - 1}): the contents are corrupted; {fix}")


# ---- the manifest file
def empty_manifest() -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "tensors": {}, "edges": {}}


def read_manifest(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise StoreNotFoundError(f"no store at {folder}: the folder does not exist; write one with "
                                 "graphlab store convert --out ... or DiskFeatureStore(path, mode='w')")
    path = folder / MANIFEST
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StoreNotFoundError(f"{path} does not exist: {folder} is not a graphlab store (or its writer never "
                                 "finished); write it again with graphlab store convert --overwrite") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise StoreCorruptedError(f"{path}: not valid JSON ({err}); the manifest is corrupted, rewrite the "
                                  "store") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise StoreCorruptedError(f"{path}: not a {FORMAT} manifest; point the store at a folder that "
                                  "graphlab wrote")
    if obj.get("version") != VERSION:
        raise StoreCorruptedError(f"{path}: format version {obj.get('version')!r}, this graphlab reads version "
                                  f"{VERSION}; convert the store again")
    obj.setdefault("tensors", {})
    obj.setdefault("edges", {})
    return obj


def manifest_lock(folder: Path):
    """The lock every manifest change (and every rename of a finished file into the folder) holds."""
    return file_lock(folder / MANIFEST)


def commit(folder: Path, update: Callable[[dict[str, Any]], None], locked: bool = False) -> dict[str, Any]:
    """Read-modify-write the manifest under its lock (``locked``: the caller holds it): ``update(manifest)`` edits
    it in place; the result is written atomically and returned. Stores open on the same folder never lose each
    other's commits."""
    if not locked:
        with manifest_lock(folder):
            return commit(folder, update, locked=True)
    path = folder / MANIFEST
    manifest = read_manifest(folder) if path.exists() else empty_manifest()
    update(manifest)
    atomic_write_json(path, manifest)
    return manifest


def new_file_name(stem: str) -> str:
    """A fresh file name for a new version of a tensor: readable stem, random token."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:80] or "tensor"
    return f"{safe}.{secrets.token_hex(4)}.bin"


def referenced_files(manifest: dict[str, Any]) -> set[str]:
    files = {entry["file"] for entry in manifest["tensors"].values()}
    for edge in manifest["edges"].values():
        files.update(part["file"] for part in edge["parts"].values())
    return files


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_garbage(folder: Path, keep: Iterable[str]) -> list[str]:
    """Remove ``*.bin`` files that the manifest does not name, the temporaries of writers that no longer run and
    half-written manifest temporaries (call under the manifest lock: finished files are renamed in, and manifests
    written, only under it). Returns the removed names."""
    keep = set(keep)
    removed = []
    for path in folder.iterdir():
        name = path.name
        stem, tmp, pid = name.rpartition(".tmp-")
        dead_writer = bool(tmp) and stem.endswith(".bin") and pid.isdigit() and not _pid_alive(int(pid))
        manifest_tmp = name.startswith(f".{MANIFEST}.") and name.endswith(".tmp")
        if (name.endswith(".bin") and name not in keep) or dead_writer or manifest_tmp:
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


def entry_key(group: Optional[Any], attr: str) -> str:
    """The manifest key of a (group, attr) pair: JSON of ``[group, attr]`` (group None, a str, or a tuple)."""
    return json.dumps([list(group) if isinstance(group, tuple) else group, attr])


def parse_key(key: str) -> tuple[Optional[Any], str]:
    group, attr = json.loads(key)
    return (tuple(group) if isinstance(group, list) else group), attr
