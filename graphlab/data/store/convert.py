"""Writing stores from in-memory graphs and from sources larger than memory, and the ``graphlab store`` command.

``graphlab store convert --source SOURCE --out DIR [--edges PATH] [--labels PATH] [--chunk-rows N] [--overwrite]``

SOURCE is an OGB node dataset (``ogbn-arxiv``; files under ``--root`` / ``$GRAPHLAB_DATA``), a graphlab
:class:`~graphlab.data.PyGData` node dataset name (``cora``, ``tolokers``, ...), ``npy:PATH`` (a ``[N, F]`` array read
through ``np.load(mmap_mode="r")`` chunk by chunk) or ``csv:PATH`` (one node per row, numeric columns, read with
``pandas.read_csv(chunksize=)``). ``--edges`` (``.npy`` ``[2, E]`` / ``[E, 2]`` or a two-column CSV) and ``--labels``
(``.npy`` / CSV, one value per node) go with the raw sources.

``graphlab store info DIR`` lists what a store holds; ``graphlab store verify DIR`` checks every checksum.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, EdgeAttr

from graphlab.data.store import manifest as mf
from graphlab.info import DatasetInfo
from graphlab.data.store.feature_store import DiskFeatureStore
from graphlab.data.store.graph_store import DiskGraphStore

DEFAULT_CHUNK_ROWS = 65536


def open_store(path: str | os.PathLike[str], mode: str = "r",
               verify: str = "auto") -> tuple[DiskFeatureStore, DiskGraphStore]:
    """The feature store and graph store of one folder, ready for PyG's loaders:
    ``NeighborLoader(open_store(path), ...)``-style ``data=(feature_store, graph_store)``."""
    return DiskFeatureStore(path, mode, verify), DiskGraphStore(path, mode, verify="none")


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # no progress bar without tqdm; the work is the same
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="row", disable=not enabled, leave=False)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def prepare_out(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse to replace an existing store (or a non-empty folder) unless ``overwrite``."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise ValueError(f"{path} already exists and is not empty; choose another --out or pass --overwrite "
                             "(overwrite=True) to replace it")
        if path.is_dir() and not (path / mf.MANIFEST).exists():
            raise ValueError(f"{path} is a non-empty folder but not a graphlab store; refusing to overwrite it "
                             "(choose another --out)")
    return path


def write_rows(store: DiskFeatureStore, attr: str, chunks: Iterable[np.ndarray | Tensor], shape: Sequence[Optional[int]],
               dtype: torch.dtype, progress: bool = False, total: Optional[int] = None) -> None:
    """Stream row chunks into ``(None, attr)``; committed when the last chunk is in."""
    bar = _progress(total or 0, attr, progress)
    try:
        with store.writer(None, attr, shape, dtype) as writer:
            for chunk in chunks:
                if isinstance(chunk, Tensor):
                    chunk = chunk.to(dtype)
                writer.append(chunk)
                bar.update(chunk.shape[0])
    finally:
        bar.close()


def _row_chunks(tensor: Tensor | np.ndarray, chunk_rows: int) -> Iterator[Any]:
    for start in range(0, tensor.shape[0], chunk_rows):
        yield tensor[start:start + chunk_rows]


def write_edges(graph_store: DiskGraphStore, edge_index: Tensor, num_nodes: int,
                layouts: Sequence[str] = ("csr", "csc"), weight: Optional[Tensor] = None,
                time: Optional[Tensor] = None) -> None:
    """``edge_index`` ``[2, E]`` as CSR (grouped by source) and/or CSC (grouped by target), each with ``perm``
    (original edge ids) and the permuted ``weight`` / ``time``."""
    edge_index = torch.as_tensor(edge_index).to(torch.long)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be [2, E], got {list(edge_index.shape)}")
    for layout in layouts:
        if layout not in ("csr", "csc"):
            raise ValueError(f"layouts are 'csr' and/or 'csc', got {layout!r}")
        key, other = (edge_index[0], edge_index[1]) if layout == "csr" else (edge_index[1], edge_index[0])
        key_sorted, perm = torch.sort(key, stable=True)
        ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(torch.bincount(key_sorted, minlength=num_nodes), 0)
        pair = (ptr, other[perm]) if layout == "csr" else (other[perm], ptr)
        extras = {"weight": None if weight is None else weight[perm], "time": None if time is None else time[perm]}
        graph_store.put_edges(pair, EdgeAttr(None, layout, size=(num_nodes, num_nodes)), perm=perm, **extras)


def write_store(path: str | os.PathLike[str], data: Data, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                overwrite: bool = False, layouts: Sequence[str] = ("csr", "csc"),
                progress: bool = False, info: Optional[DatasetInfo] = None) -> tuple[DiskFeatureStore, DiskGraphStore]:
    """Write a homogeneous PyG ``Data`` to a store: every node-level tensor (``x``, ``y``, masks, ...) in the
    feature store (``group_name=None``), the topology as CSR and CSC with edge ids (and ``edge_weight`` /
    ``edge_time`` if present) in the graph store. Returns both, opened read-only.

    Args:
        path: the store folder (must not exist or be empty unless ``overwrite``).
        data: the graph.
        chunk_rows: rows written per chunk.
        overwrite: replace an existing store.
        layouts: topology layouts to store.
        progress: show a progress bar per tensor.
        info: the dataset description, kept in the manifest's ``meta`` (``graphlab.data.DiskStoreData`` reads it).
    """
    if not isinstance(data, Data):
        raise TypeError(f"write_store takes a torch_geometric.data.Data, got {type(data).__name__}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    path = prepare_out(path, overwrite)
    num_nodes = int(data.num_nodes)
    features = DiskFeatureStore(path, mode="w")
    graph = DiskGraphStore(path, mode="a", verify="none")
    for key, value in data.items():
        if key in ("edge_index", "adj_t") or not isinstance(value, Tensor) or not data.is_node_attr(key):
            continue
        if value.dim() == 0 or value.shape[0] != num_nodes:
            continue
        write_rows(features, key, _row_chunks(value, chunk_rows), tuple(value.shape), value.dtype, progress,
                   num_nodes)
    if data.edge_index is not None:
        write_edges(graph, data.edge_index, num_nodes, layouts, weight=data.get("edge_weight"),
                    time=data.get("edge_time"))
    meta: dict[str, Any] = {"num_nodes": num_nodes}
    if info is not None:
        meta["info"] = dataclasses.asdict(info)
    features.folder.commit(lambda manifest: manifest.__setitem__("meta", meta))
    return open_store(path)


# ---- raw sources
def npy_chunks(path: Path, chunk_rows: int) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    array = np.load(path, mmap_mode="r")
    if array.ndim == 0:
        raise ValueError(f"{path}: a 0-dimensional array is not a node tensor")
    return array, (np.asarray(array[s:s + chunk_rows]) for s in range(0, array.shape[0], chunk_rows))


def csv_chunks(path: Path, chunk_rows: int, header: bool) -> Iterator[np.ndarray]:
    import pandas as pd

    with pd.read_csv(path, header=0 if header else None, chunksize=chunk_rows) as reader:
        for frame in reader:
            try:
                array = frame.to_numpy(dtype=np.float32)
            except ValueError as err:
                raise ValueError(f"{path}: non-numeric values ({err}); a CSV source holds numbers only (pass "
                                 "--header if its first line names the columns)") from None
            yield array


def load_small(path: Path, header: bool) -> np.ndarray:
    """An edges / labels file (``.npy`` or CSV), read whole."""
    if path.suffix == ".npy":
        return np.load(path)
    import pandas as pd

    return pd.read_csv(path, header=0 if header else None).to_numpy()


def convert_raw(source: str, out: Path, edges: Optional[Path], labels: Optional[Path], chunk_rows: int,
                header: bool, progress: bool) -> None:
    kind, _, file = source.partition(":")
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"{file} does not exist (from --source {source})")
    features = DiskFeatureStore(out, mode="w")
    if kind == "npy":
        array, chunks = npy_chunks(file, chunk_rows)
        dtype = torch.from_numpy(np.zeros(0, dtype=array.dtype)).dtype
        write_rows(features, "x", chunks, array.shape, dtype, progress, array.shape[0])
    else:
        chunks = csv_chunks(file, chunk_rows, header)
        first = next(chunks, None)
        if first is None:
            raise ValueError(f"{file}: the CSV has no rows")
        write_rows(features, "x", _chain(first, chunks), (None, first.shape[1]), torch.float32, progress)
    num_nodes = features.get_tensor_size(None, "x")[0]
    if labels is not None:
        y = torch.from_numpy(np.ascontiguousarray(load_small(labels, header))).reshape(num_nodes, -1).squeeze(1)
        features.put_tensor(y, group_name=None, attr_name="y", index=None)
    if edges is not None:
        edge_index = torch.from_numpy(np.ascontiguousarray(load_small(edges, header))).to(torch.long)
        if edge_index.dim() == 2 and edge_index.shape[1] == 2 and edge_index.shape[0] != 2:
            edge_index = edge_index.t()
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise ValueError(f"{edges}: node ids must lie in [0, {num_nodes}) (the feature rows)")
        write_edges(DiskGraphStore(out, mode="a", verify="none"), edge_index, num_nodes)
    features.folder.commit(lambda manifest: manifest.__setitem__("meta", {"num_nodes": num_nodes}))


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def load_dataset(source: str, root: Optional[str]) -> tuple[Data, DatasetInfo]:
    """A graphlab node dataset's full graph and description (OGB ``ogbn-*`` or a :class:`~graphlab.data.PyGData`
    name)."""
    if source.lower().replace("_", "-").startswith("ogbn-"):
        from graphlab.data.ogb import OGBNodeData

        module: Any = OGBNodeData(source, root=root, download=False)
        return module.graph, module.info
    from graphlab.data.pyg import PyGData

    module = PyGData(source, root=root)
    if module.spec.level != "node":
        raise ValueError(f"{source} is a graph-level dataset; graphlab store holds one node-level graph")
    return module.graph, module.info


def convert(source: str, out: str | os.PathLike[str], edges: Optional[str] = None, labels: Optional[str] = None,
            chunk_rows: int = DEFAULT_CHUNK_ROWS, overwrite: bool = False, root: Optional[str] = None,
            header: bool = False, progress: bool = True) -> Path:
    """``graphlab store convert`` as a function; returns the store folder."""
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be >= 1, got {chunk_rows}")
    out = prepare_out(out, overwrite)
    raw = source.startswith(("npy:", "csv:"))
    if not raw and (edges or labels):
        raise ValueError("--edges / --labels go with npy: and csv: sources; a dataset brings its own")
    if raw:
        convert_raw(source, out, Path(edges) if edges else None, Path(labels) if labels else None, chunk_rows,
                    header, progress)
    else:
        graph, info = load_dataset(source, root)
        write_store(out, graph, chunk_rows, overwrite=True, progress=progress, info=info)
    return out


def describe(path: str | os.PathLike[str]) -> str:
    """The ``graphlab store info`` text: every tensor and edge set with shape, dtype and size."""
    features, graph = open_store(path, verify="none")
    lines = [f"store {features.path} (format {mf.FORMAT} v{mf.VERSION}, {features.nbytes() / 2**20:.1f} MiB)"]
    for attr in features.get_all_tensor_attrs():
        entry = features._entry(attr.group_name, attr.attr_name)
        name = attr.attr_name if attr.group_name is None else f"{attr.group_name}.{attr.attr_name}"
        lines.append(f"  tensor {name:<16} {str(list(entry.shape)):<18} {entry.dtype:<9} {entry.nbytes:>14,d} B "
                     f"{entry.file}")
    for attr in graph.get_all_edge_attrs():
        record = graph._record(attr.edge_type, attr.layout)
        parts = ", ".join(f"{k}{v['shape']}" for k, v in record["parts"].items())
        lines.append(f"  edges  {str(attr.edge_type):<16} {attr.layout.value:<4} size={attr.size} {parts}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    """``graphlab store convert|info|verify ...``."""
    parser = argparse.ArgumentParser(prog="graphlab store", description="graphlab's out-of-core disk store")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="write a store from a dataset or raw files")
    conv.add_argument("--source", required=True,
                      help="ogbn-<name> | <PyGData name> | npy:PATH | csv:PATH")
    conv.add_argument("--out", required=True, help="the store folder to write")
    conv.add_argument("--edges", help="raw sources: edges as .npy [2,E]/[E,2] or a two-column CSV")
    conv.add_argument("--labels", help="raw sources: one label per node (.npy or CSV)")
    conv.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per written chunk")
    conv.add_argument("--root", help="dataset root (default $GRAPHLAB_DATA or ./data)")
    conv.add_argument("--header", action="store_true", help="CSV files start with a header line")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    conv.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name, text in (("info", "list the tensors and edges of a store"),
                       ("verify", "check every file's size and checksums")):
        sub.add_parser(name, help=text).add_argument("path", help="the store folder")
    args = parser.parse_args(argv)
    if args.command == "convert":
        out = convert(args.source, args.out, args.edges, args.labels, args.chunk_rows, args.overwrite, args.root,
                      args.header, progress=not args.no_progress)
        print(describe(out))
    elif args.command == "info":
        print(describe(args.path))
    else:
        features, _ = open_store(args.path, verify="full")
        print(f"{features.path}: OK, {len(features.folder.entries())} files, {features.nbytes():,d} bytes verified")
