"""DiskGNN's loading pipeline over a :class:`DiskFeatureStore`, each idea a switch.

DiskGNN (Liu et al., "DiskGNN: Bridging I/O Efficiency and Model Accuracy for Out-of-Core GNN Training",
SIGMOD 2025) trains on graphs whose node features live on disk. A naive loader gathers each mini-batch's rows from
a memory map: a 512-byte row costs a 4 KiB page (and the kernel's readahead around it), so the bytes read from disk
far exceed the bytes used (read amplification). Its four ideas, here:

(a) ``offline``: sample every mini-batch of the epoch first (``sample(seeds) -> n_id``), so the epoch's accesses
    are known before any feature is read.
(b) ``pack``: read the rows the epoch needs in one ascending pass over the feature file (whole chunks, sequential)
    and write each batch's rows contiguously, in batch order, to a per-epoch packed file; training then reads batch
    :math:`b` as one sequential range :math:`[o_b, o_b + m_b)` of it. Bytes read per epoch:
    :math:`\\text{scan} + \\sum_b m_b \\cdot r` against :math:`\\sum_b |n_b| \\cdot r` needed.
(c) ``cache_bytes``: the most frequently sampled nodes of the first epoch (degree when batches are not sampled
    offline) are kept in RAM under a byte budget (:class:`~graphlab.data.store.cache.HotNodeCache`) and never
    read from disk again (nor packed).
(d) ``prefetch``: a background thread loads (and, online, samples) the next batches into a bounded queue while the
    caller computes on the current one; file reads release the GIL.

All off, a batch is a sorted, deduplicated gather from the memory map (the store's ``multi_get``).
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from graphlab.data.store import manifest as mf
from graphlab.data.store.cache import HotNodeCache
from graphlab.data.store.feature_store import DiskFeatureStore
from graphlab.data.store.folder import _madvise, drop_file_cache

SCAN_ROWS = 65536
"""Rows per sequential read of the packing / cache-filling scan (32 MiB for 128 float32 features)."""
PACK_BUFFER_BYTES = 64 << 20
"""Dirty bytes of the packed file the packer lets accumulate before flushing and dropping them."""


@dataclass
class LoadedBatch:
    """One mini-batch: its seeds, what ``sample(seeds)`` returned, the global node ids and their features."""

    seeds: Tensor
    sample: Any
    n_id: Tensor
    x: Tensor


@dataclass
class LoaderStats:
    """Row and byte counts of the last epoch (rows are feature rows of ``row_bytes`` each)."""

    batches: int = 0
    seeds: int = 0
    rows_needed: int = 0
    rows_from_cache: int = 0
    rows_from_packed: int = 0
    rows_from_store: int = 0
    bytes_scanned: int = 0
    bytes_packed: int = 0
    row_bytes: int = 0

    @property
    def bytes_needed(self) -> int:
        return self.rows_needed * self.row_bytes


def node_ids(sample_output: Any) -> Tensor:
    """The global node ids of a sampler's output: a tensor itself, or its ``.node`` / ``.n_id``."""
    if isinstance(sample_output, Tensor):
        return sample_output
    for name in ("node", "n_id"):
        value = getattr(sample_output, name, None)
        if isinstance(value, Tensor):
            return value
    raise TypeError(f"sample(seeds) must return node ids (a Tensor) or an object with .node / .n_id, got "
                    f"{type(sample_output).__name__}")


def pread_into(fd: int, buffer: np.ndarray, offset: int) -> None:
    """Fill ``buffer`` from ``fd`` at byte ``offset`` (``os.preadv`` releases the GIL)."""
    view = memoryview(buffer.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise EOFError(f"file ended {len(view) - done} bytes early at offset {offset + done}")
        done += n


class DiskGNNLoader:
    """Mini-batches of sampled nodes with their features from a :class:`DiskFeatureStore`, DiskGNN-style.

    Args:
        store: the feature store.
        seeds: ``[S]`` global ids of the training (or evaluation) seeds.
        batch_size: seeds per batch.
        sample: ``sample(seeds) -> n_id`` (or an object with ``.node``: graphlab's
            :func:`~graphlab.data.sampler.sample_neighbors` output), global ids with the seeds first.
        group, attr: the feature tensor in the store (default ``(None, "x")``).
        offline: (a) sample the whole epoch before loading.
        pack: (b) pack each batch's rows into a per-epoch file (needs ``offline``).
        cache_bytes: (c) budget of the hot-node cache (0: no cache).
        prefetch: (d) batches loaded ahead by a background thread (0: none).
        degree: ``[N]`` node degrees: the cache's score when ``offline`` is off.
        shuffle: shuffle the seeds every epoch.
        generator: random source of the shuffle.
        pack_dir: folder of the packed file (default: the store's folder); deleted after the epoch.
        evict_packed: drop the packed file from the page cache once written, so training reads it from disk
            (benchmarks under a memory cap).
        scan_rows: rows per sequential read of the scan.
        pack_buffer_bytes: dirty bytes of the packed file after which it is flushed and dropped from the page
            cache while packing (bounds the packer's memory).
    """

    def __init__(self, store: DiskFeatureStore, seeds: Tensor, batch_size: int,
                 sample: Callable[[Tensor], Any], *, group: Any = None, attr: str = "x", offline: bool = True,
                 pack: bool = True, cache_bytes: int = 0, prefetch: int = 2, degree: Optional[Tensor] = None,
                 shuffle: bool = True, generator: Optional[torch.Generator] = None,
                 pack_dir: Optional[str | os.PathLike[str]] = None, evict_packed: bool = False,
                 scan_rows: int = SCAN_ROWS, pack_buffer_bytes: int = PACK_BUFFER_BYTES) -> None:
        if not isinstance(store, DiskFeatureStore):
            raise TypeError(f"store must be a DiskFeatureStore, got {type(store).__name__}")
        if batch_size < 1 or prefetch < 0 or cache_bytes < 0 or scan_rows < 1:
            raise ValueError(f"need batch_size >= 1, prefetch >= 0, cache_bytes >= 0, scan_rows >= 1; got "
                             f"{batch_size}, {prefetch}, {cache_bytes}, {scan_rows}")
        if pack and not offline:
            raise ValueError("pack=True needs offline=True: packing lays out the batches sampled before the epoch")
        if cache_bytes and not offline and degree is None:
            raise ValueError("a cache without offline sampling ranks nodes by degree: pass degree=[N] (e.g. "
                             "graph_store.csr()[0].diff())")
        self.store, self.group, self.attr = store, group, attr
        self.path, self.entry = store.file_entry(group, attr)
        if not self.entry.shape:
            raise ValueError(f"({group!r}, {attr!r}) is 0-dimensional; the loader reads rows")
        self.num_nodes = self.entry.shape[0]
        self.row_shape, self.dtype = tuple(self.entry.shape[1:]), self.entry.torch_dtype
        self.row_bytes = max(1, int(np.prod(self.row_shape, dtype=np.int64)) * self.entry.storage.itemsize)
        self.seeds = torch.as_tensor(seeds).reshape(-1).to(torch.long)
        if self.seeds.numel() and (int(self.seeds.min()) < 0 or int(self.seeds.max()) >= self.num_nodes):
            raise IndexError(f"seeds must lie in [0, {self.num_nodes})")
        if degree is not None and torch.as_tensor(degree).shape != (self.num_nodes,):
            raise ValueError(f"degree must have one entry per node ({self.num_nodes})")
        self.batch_size, self.sample = batch_size, sample
        self.offline, self.pack, self.cache_bytes, self.prefetch = offline, pack, cache_bytes, prefetch
        self.degree, self.shuffle, self.generator = degree, shuffle, generator
        self.pack_dir = Path(pack_dir) if pack_dir is not None else store.path
        self.evict_packed, self.scan_rows, self.pack_buffer_bytes = evict_packed, scan_rows, pack_buffer_bytes
        self.cache: Optional[HotNodeCache] = None
        self._cache_filled = False
        self.stats = LoaderStats(row_bytes=self.row_bytes)

    def __len__(self) -> int:
        return -(-self.seeds.numel() // self.batch_size)

    # ---- the epoch
    def __iter__(self) -> Iterator[LoadedBatch]:
        self.stats = LoaderStats(row_bytes=self.row_bytes)
        order = torch.randperm(self.seeds.numel(), generator=self.generator) if self.shuffle else None
        seeds = self.seeds if order is None else self.seeds[order]
        batches = list(seeds.split(self.batch_size))
        samples = [self.sample(b) for b in batches] if self.offline else None
        n_ids = [node_ids(s) for s in samples] if samples is not None else None
        if self.cache_bytes and self.cache is None:
            self._build_cache(n_ids)
        packed = self._pack_epoch(n_ids) if self.pack else None
        if self.cache is not None and not self._cache_filled:
            self._fill_cache()
        try:
            produce = self._produce(batches, samples, n_ids, packed)
            yield from (self._prefetched(produce) if self.prefetch else produce)
        finally:
            if packed is not None:
                packed.close()

    def _produce(self, batches: list[Tensor], samples: Optional[list[Any]], n_ids: Optional[list[Tensor]],
                 packed: Optional["_PackedEpoch"]) -> Iterator[LoadedBatch]:
        for b, seeds in enumerate(batches):
            out = samples[b] if samples is not None else self.sample(seeds)
            n_id = n_ids[b] if n_ids is not None else node_ids(out)
            x = packed.read(b, n_id, self.cache) if packed is not None else self._gather(n_id)
            self.stats.batches += 1
            self.stats.seeds += seeds.numel()
            self.stats.rows_needed += n_id.numel()
            if packed is not None:
                self.stats.rows_from_packed += packed.counts[b]
                self.stats.rows_from_cache += n_id.numel() - packed.counts[b]
            yield LoadedBatch(seeds, out, n_id, x)

    def _gather(self, n_id: Tensor) -> Tensor:
        """No packing: cache hits from RAM, the rest by a sorted, deduplicated gather from the memory map."""
        if self.cache is None:
            self.stats.rows_from_store += n_id.numel()
            return self.store.get_tensor(self.group, self.attr, index=n_id)
        hit, slot = self.cache.lookup(n_id)
        miss = torch.ones(n_id.numel(), dtype=torch.bool)
        miss[hit] = False
        miss = miss.nonzero().view(-1)
        x = torch.empty((n_id.numel(), *self.row_shape), dtype=self.dtype)
        x[hit] = self.cache.rows[slot]
        if miss.numel():
            x[miss] = self.store.get_tensor(self.group, self.attr, index=n_id[miss])
        self.stats.rows_from_cache += hit.numel()
        self.stats.rows_from_store += miss.numel()
        return x

    def _prefetched(self, produce: Iterator[LoadedBatch]) -> Iterator[LoadedBatch]:
        """Run ``produce`` in a thread, at most ``prefetch`` batches ahead."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def work() -> None:
            try:
                for item in produce:
                    while not stop.is_set():
                        try:
                            ready.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ready.put(done)
            except BaseException as err:  # handed to the consumer, raised there
                ready.put(err)

        thread = threading.Thread(target=work, name="graphlab-store-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    # ---- (c) the cache
    def _build_cache(self, n_ids: Optional[list[Tensor]]) -> None:
        self.cache = HotNodeCache(self.num_nodes, self.row_shape, self.dtype, self.cache_bytes)
        if n_ids is not None:
            score = torch.bincount(torch.cat(n_ids), minlength=self.num_nodes) if n_ids else torch.zeros(
                self.num_nodes)
        else:
            score = torch.as_tensor(self.degree).to(torch.float64) + 1e-9  # every node is a candidate
        self.cache.allocate(self.cache.select(score))
        self._cache_filled = False

    def _fill_cache(self) -> None:
        for lo, rows in self._scan(self.cache.ids):
            ids = self.cache.ids[(self.cache.ids >= lo) & (self.cache.ids < lo + rows.shape[0])]
            self.cache.fill(ids, rows[ids - lo])
        self._cache_filled = True

    # ---- (b) packing
    def _scan(self, ids: Tensor) -> Iterator[tuple[int, Tensor]]:
        """``(first row, rows)`` of every ``scan_rows`` chunk of the file that holds one of ``ids``, in ascending
        order, each read with one sequential ``pread``."""
        if ids.numel() == 0:
            return
        chunks = torch.unique(ids // self.scan_rows)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for chunk in chunks.tolist():
                lo = chunk * self.scan_rows
                hi = min(self.num_nodes, lo + self.scan_rows)
                buffer = np.empty((hi - lo, *self.row_shape), dtype=self.entry.storage)
                pread_into(fd, buffer, lo * self.row_bytes)
                if hasattr(os, "posix_fadvise"):  # read once: leave no pages behind in the page cache
                    os.posix_fadvise(fd, lo * self.row_bytes, buffer.nbytes, os.POSIX_FADV_DONTNEED)
                self.stats.bytes_scanned += buffer.nbytes
                yield lo, mf.from_numpy(buffer, self.dtype)
        finally:
            os.close(fd)

    def _pack_epoch(self, n_ids: list[Tensor]) -> "_PackedEpoch":
        """Write every batch's uncached rows, batch after batch, into one file, reading the feature file once in
        ascending order (and filling the cache on the way).

        Within a batch the rows are packed in ascending node order (``positions[b]`` puts them back in ``n_id``
        order), so each scan chunk writes one contiguous run per batch: the packed file's pages are written whole,
        and flushed and dropped from the page cache every ``pack_buffer_bytes``, without being read back."""
        cache = self.cache
        positions, missed = [], []
        for n in n_ids:
            keep = torch.arange(n.numel()) if cache is None else (cache.slot[n] < 0).nonzero().view(-1)
            nodes, order = torch.sort(n[keep], stable=True)
            positions.append(keep[order])
            missed.append(nodes)
        counts = [m.numel() for m in missed]
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]) if counts else np.zeros(1, np.int64)
        total = int(offsets[-1])
        nodes = torch.cat(missed) if missed else torch.empty(0, dtype=torch.long)
        occ_node, occ_row = torch.sort(nodes, stable=True)  # packed row occ_row[i] holds node occ_node[i]
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        path = self.pack_dir / f"packed-{os.getpid()}-{secrets.token_hex(4)}.epoch"
        fill_cache = cache is not None and not self._cache_filled
        need = torch.unique(torch.cat([occ_node, cache.ids]) if fill_cache else occ_node)
        try:
            packed = np.memmap(path, dtype=self.entry.storage, mode="w+", shape=(max(total, 1), *self.row_shape))
            _madvise(packed, "random")  # no readahead around write faults: flushed pages are not read back
            dirty = 0
            for lo, rows in self._scan(need):
                start, end = torch.searchsorted(occ_node, torch.tensor([lo, lo + rows.shape[0]])).tolist()
                if end > start:
                    packed[occ_row[start:end].numpy()] = mf.to_numpy(rows[occ_node[start:end] - lo])
                    dirty += (end - start) * self.row_bytes
                if fill_cache:
                    ids = cache.ids[(cache.ids >= lo) & (cache.ids < lo + rows.shape[0])]
                    cache.fill(ids, rows[ids - lo])
                if dirty >= self.pack_buffer_bytes:  # bound the packed file's share of the page cache
                    _flush_and_drop(packed, path)
                    dirty = 0
            packed.flush()
            if self.evict_packed:
                _flush_and_drop(packed, path)
            del packed
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if fill_cache:
            self._cache_filled = True
        self.stats.bytes_packed = total * self.row_bytes
        return _PackedEpoch(path, offsets, counts, positions, self.row_shape, self.entry.storage, self.dtype,
                            self.row_bytes)


def _flush_and_drop(packed: np.memmap, path: Path) -> None:
    """Write the packed map's dirty pages, unmap them and drop them from the page cache."""
    packed.flush()
    _madvise(packed, "dontneed")
    drop_file_cache(path)


@dataclass
class _PackedEpoch:
    """The packed file of one epoch: batch ``b``'s uncached rows are rows ``offsets[b]:offsets[b+1]``."""

    path: Path
    offsets: np.ndarray
    counts: list[int]
    positions: list[Tensor]
    row_shape: tuple[int, ...]
    storage: np.dtype
    dtype: torch.dtype
    row_bytes: int
    fd: int = field(default=-1)

    def __post_init__(self) -> None:
        self.fd = os.open(self.path, os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def read(self, b: int, n_id: Tensor, cache: Optional[HotNodeCache]) -> Tensor:
        buffer = np.empty((self.counts[b], *self.row_shape), dtype=self.storage)
        pread_into(self.fd, buffer, int(self.offsets[b]) * self.row_bytes)
        rows = mf.from_numpy(buffer, self.dtype)
        x = torch.empty((n_id.numel(), *self.row_shape), dtype=self.dtype)
        x[self.positions[b]] = rows
        if cache is not None:
            hit, slot = cache.lookup(n_id)
            x[hit] = cache.rows[slot]
        return x

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)
