"""``DiskFeatureStore``: PyG's :class:`~torch_geometric.data.FeatureStore` on memory-mapped files.

PyG's loaders fetch every registered tensor of a mini-batch with one ``multi_get_tensor`` call whose index is the
batch's global node ids ``n_id``: unsorted and, across tensors, the same object. A gather from a memory map in that
order touches pages at random and reads a page once per id on it; here the index is sorted and deduplicated once per
call (``u, inv = unique(n_id)``), rows are read in ascending file order (each page at most once, in sequence) and
scattered back: ``out = X[u][inv]``, i.e. :math:`\\mathrm{out}_i = X_{n_i}`.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import FeatureStore, TensorAttr

from graphlab.data.store import manifest as mf
from graphlab.data.store.folder import Mode, StoreFolder, Verify
from graphlab.data.store.writer import TensorWriter

Group = Optional[Any]


class DiskFeatureStore(FeatureStore):
    """Node (or any row-indexed) tensors in a folder of memory-mapped files with a checksummed manifest.

    Each ``(group_name, attr_name)`` is one raw row-major file; ``index`` selects rows of dim 0. Reads are
    zero-copy for whole tensors and slices and a sorted, deduplicated gather for index tensors. Writes (``mode="a"``
    or ``"w"``) are atomic: a new file under a fresh name, fsynced, then the manifest (see
    :mod:`graphlab.data.store.manifest`). The maps open lazily in each process, so forked DataLoader workers read
    through their own.

    Args:
        path: the store folder.
        mode: ``"r"`` read-only (default), ``"a"`` read-write, ``"w"`` create or empty.
        verify: checksums checked on open: ``"auto"`` (files under ``verify_bytes``), ``"full"``, ``"none"``;
            file sizes are always checked. :meth:`verify` checks everything later.
        verify_bytes: the ``"auto"`` threshold (default 256 MiB).
        chunk_bytes: checksum granularity of written files (default 64 MiB).

    Example::

        store = DiskFeatureStore("/tmp/arxiv", mode="w")
        store.put_tensor(x, group_name=None, attr_name="x", index=None)
        with store.writer(None, "big", shape=(None, 128), dtype=torch.float32) as w:
            for chunk in chunks:
                w.append(chunk)
        x_batch = DiskFeatureStore("/tmp/arxiv").get_tensor(None, "x", index=n_id)
    """

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "r", verify: Verify = "auto",
                 verify_bytes: int = mf.VERIFY_AUTO_BYTES, chunk_bytes: int = mf.CHUNK_BYTES) -> None:
        super().__init__()
        self.folder = StoreFolder(path, mode, verify, verify_bytes, chunk_bytes)
        self.bytes_requested = 0
        """Bytes of rows returned by gets so far (what a caller asked for, duplicates included)."""

    # ---- metadata
    @property
    def path(self):
        return self.folder.path

    @property
    def mode(self) -> str:
        return self.folder.mode

    def _entry(self, group: Group, attr: str) -> Optional[mf.Entry]:
        obj = self.folder.manifest["tensors"].get(mf.entry_key(group, attr))
        return None if obj is None else mf.Entry.from_json(obj, f"{self.path} tensor {(group, attr)}")

    def _require(self, attr: TensorAttr) -> mf.Entry:
        entry = self._entry(attr.group_name, attr.attr_name)
        if entry is None:
            known = ", ".join(f"({a.group_name!r}, {a.attr_name!r})" for a in self.get_all_tensor_attrs()) or "none"
            raise KeyError(f"{self.path} holds no tensor ({attr.group_name!r}, {attr.attr_name!r}); it holds: {known}")
        return entry

    def get_all_tensor_attrs(self) -> List[TensorAttr]:
        return [TensorAttr(*mf.parse_key(key)) for key in self.folder.manifest["tensors"]]

    def _get_tensor_size(self, attr: TensorAttr) -> Optional[Tuple[int, ...]]:
        entry = self._entry(attr.group_name, attr.attr_name)
        return None if entry is None else tuple(entry.shape)

    def dtype(self, group: Group, attr: str) -> torch.dtype:
        return self._require(TensorAttr(group, attr)).torch_dtype

    def nbytes(self) -> int:
        """Bytes of every tensor file."""
        return sum(entry.nbytes for entry in self.folder.entries())

    def verify(self) -> None:
        """Check every file's size and every 64 MiB chunk's checksum; raises
        :class:`~graphlab.data.store.manifest.StoreCorruptedError` naming the file and chunk."""
        self.folder.verify()

    def file_entry(self, group: Group, attr: str) -> tuple["os.PathLike[str]", mf.Entry]:
        """The tensor's file path and manifest entry (size-checked), for readers that bypass the memory map."""
        entry = self._require(TensorAttr(group, attr))
        mf.verify_entry(self.path, entry, contents=False)
        return self.path / entry.file, entry

    def array(self, group: Group, attr: str) -> np.ndarray:
        """The tensor's memory map (numpy, storage dtype: ``bfloat16`` shows as ``uint16``); for fast paths that
        read rows themselves (:mod:`graphlab.data.store.pipeline`)."""
        return self.folder.array(self._require(TensorAttr(group, attr)))

    def advise(self, advice: Optional[str]) -> None:
        """Access-pattern hint for the memory maps: ``"random"`` (no readahead; index gathers then request exactly
        their pages up front with ``MADV_WILLNEED``), ``"sequential"``, ``None`` (kernel defaults)."""
        self.folder.advise(advice)

    def drop_page_cache(self) -> None:
        """Evict the store's files from this process's maps and the kernel's page cache (benchmarks)."""
        self.folder.drop_page_cache()

    # ---- reads
    def _get_tensor(self, attr: TensorAttr) -> Optional[Tensor]:
        return self._multi_get_tensor([attr])[0]

    def _multi_get_tensor(self, attrs: List[TensorAttr]) -> List[Optional[Tensor]]:
        """One sort + deduplication per distinct index object, shared by every tensor read with it."""
        plans: dict[int, tuple[Any, Optional[Tensor], Optional[Tensor]]] = {}
        out = []
        for attr in attrs:
            entry = self._require(attr)
            if id(attr.index) not in plans:
                plans[id(attr.index)] = (attr.index, *self._plan(attr.index, entry, attr))
            _, unique, inverse = plans[id(attr.index)]
            out.append(self._read(entry, attr, unique, inverse))
        return out

    def _plan(self, index: Any, entry: mf.Entry, attr: TensorAttr) -> tuple[Optional[Tensor], Optional[Tensor]]:
        """``(sorted unique rows, inverse)`` for an index tensor; ``(None, None)`` for whole/slice/int reads."""
        if index is None or isinstance(index, slice) or isinstance(index, (int, np.integer)):
            return None, None
        index = check_index(index, entry.shape[0] if entry.shape else 0, f"{self.path} {attr.attr_name!r}")
        if index.numel() == 0:
            return index, None
        if index.numel() == 1 or bool((index[1:] > index[:-1]).all()):
            return index, None  # already strictly increasing: read as is
        unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
        return unique, inverse

    def _read(self, entry: mf.Entry, attr: TensorAttr, unique: Optional[Tensor],
              inverse: Optional[Tensor]) -> Tensor:
        array = self.folder.array(entry)
        index = attr.index
        if not entry.shape and index is not None:
            raise IndexError(f"{self.path} {attr.attr_name!r} is 0-dimensional; get it with index=None")
        if index is None:
            rows = array
        elif isinstance(index, slice):
            rows = array[index]
        elif isinstance(index, (int, np.integer)):
            check_index(torch.tensor([int(index)]), entry.shape[0], f"{self.path} {attr.attr_name!r}")
            rows = array[int(index)]
        else:
            order = unique.numpy()
            self.folder.willneed(array, order)
            rows = array[order]  # ascending order: each page read at most once, in file order
        tensor = mf.from_numpy(np.asarray(rows), entry.torch_dtype)
        if inverse is not None:
            tensor = tensor[inverse]
        self.bytes_requested += tensor.numel() * tensor.element_size()
        return tensor

    # ---- writes
    def _put_tensor(self, tensor: Any, attr: TensorAttr) -> bool:
        self.folder.require_writable()
        if isinstance(tensor, np.ndarray):
            tensor = torch.from_numpy(np.ascontiguousarray(tensor))
        if not isinstance(tensor, Tensor):
            raise TypeError(f"put_tensor expects a torch.Tensor or numpy array, got {type(tensor).__name__}")
        group, name = attr.group_name, attr.attr_name
        check_name(group, name)
        entry = self._entry(group, name)
        if attr.index is None:
            if entry is not None and self.mode == "a":
                check_compatible(entry, tensor, f"{self.path} {name!r}", whole=True)
            self._write_whole(group, name, tensor)
            return True
        if entry is None:
            raise KeyError(f"{self.path} holds no tensor ({group!r}, {name!r}) to update rows of; put it whole "
                           "first (index=None)")
        check_compatible(entry, tensor, f"{self.path} {name!r}", whole=False)
        index = attr.index
        if isinstance(index, slice):
            index = torch.arange(entry.shape[0])[index]
        index = check_index(torch.as_tensor(index).reshape(-1), entry.shape[0], f"{self.path} {name!r}")
        if tensor.shape[0] != index.numel():
            raise ValueError(f"{self.path} {name!r}: {tensor.shape[0]} rows for an index of {index.numel()}")
        updated = self.folder.tensor(entry).clone()
        updated[index] = tensor
        self._write_whole(group, name, updated)
        return True

    def _write_whole(self, group: Group, name: str, tensor: Tensor) -> None:
        key = mf.entry_key(group, name)
        entry, tmp = self.folder.stage(_stem(group, name), tensor)
        self.folder.commit(lambda manifest: manifest["tensors"].__setitem__(key, entry.to_json()),
                           moves=[(tmp, entry.file)])

    def writer(self, group: Group, attr: str, shape: Sequence[Optional[int]], dtype: torch.dtype) -> TensorWriter:
        """A streaming writer for ``(group, attr)``: ``append(rows)`` chunks, ``finalize()`` (or leave the ``with``
        block) to commit. ``shape[0]`` may be ``None`` when the row count is unknown; until the commit the store
        still holds the previous version (if any)."""
        check_name(group, attr)
        entry = self._entry(group, attr)
        if entry is not None and self.mode == "a":
            check_compatible(entry, torch.empty(0, *shape[1:], dtype=dtype), f"{self.path} {attr!r}", whole=False)
        key = mf.entry_key(group, attr)

        def update(manifest: dict[str, Any], new: mf.Entry) -> None:
            manifest["tensors"][key] = new.to_json()

        return self.folder.writer(_stem(group, attr), shape, dtype, update)

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        self.folder.require_writable()
        key = mf.entry_key(attr.group_name, attr.attr_name)
        if key not in self.folder.manifest["tensors"]:
            return False
        self.folder.commit(lambda manifest: manifest["tensors"].pop(key, None))
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, mode={self.mode!r}, tensors={len(self.get_all_tensor_attrs())})"


def _stem(group: Group, attr: str) -> str:
    return attr if group is None else f"{group if isinstance(group, str) else '__'.join(group)}.{attr}"


def check_name(group: Group, attr: Any) -> None:
    if not isinstance(attr, str) or not attr:
        raise TypeError(f"attr_name must be a non-empty string, got {attr!r}")
    if not (group is None or isinstance(group, str)
            or (isinstance(group, tuple) and all(isinstance(g, str) for g in group))):
        raise TypeError(f"group_name must be None, a string or a tuple of strings (an edge type), got {group!r}")


def check_compatible(entry: mf.Entry, tensor: Tensor, where: str, whole: bool) -> None:
    """In append mode a tensor keeps its dtype and row shape (and, for a whole put, nothing else changes)."""
    if tensor.dtype != entry.torch_dtype:
        raise TypeError(f"{where}: the store holds {entry.dtype}, the new data is {tensor.dtype}; cast it "
                        f"(.to(torch.{entry.dtype})) or remove the tensor first")
    if tuple(tensor.shape[1:]) != tuple(entry.shape[1:]) or tensor.dim() != len(entry.shape):
        raise ValueError(f"{where}: the store holds rows of shape {list(entry.shape[1:])} (tensor "
                         f"{list(entry.shape)}), the new data has shape {list(tensor.shape)}; reshape it or remove "
                         "the tensor first")


def check_index(index: Any, rows: int, where: str) -> Tensor:
    """A 1-D int64 tensor of row ids in ``[0, rows)``, or a clear error."""
    if isinstance(index, np.ndarray):
        index = torch.from_numpy(index)
    if not isinstance(index, Tensor):
        try:
            index = torch.as_tensor(index)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{where}: index must be an integer tensor/array, a slice, an int or None, got "
                            f"{type(index).__name__}") from None
    if index.dtype == torch.bool:
        raise TypeError(f"{where}: boolean index; pass mask.nonzero().view(-1) instead")
    if index.is_floating_point() or index.is_complex():
        raise TypeError(f"{where}: index has dtype {index.dtype}; row ids must be integers (.long())")
    index = index.reshape(-1).to(torch.long)
    if index.numel():
        low, high = int(index.min()), int(index.max())
        if low < 0:
            raise IndexError(f"{where}: index contains {low}; row ids must be >= 0 (negative indexing is not "
                             "supported)")
        if high >= rows:
            raise IndexError(f"{where}: index contains {high} but the tensor has {rows} rows")
    return index
