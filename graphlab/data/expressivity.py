"""Pair benchmarks of expressivity: pairs of non-isomorphic graphs that a model should tell apart.

* **CSL** (Murphy et al., ICML 2019): the ten circulant graphs C(41, {1, s}), built in; every one of the
  45 pairs is 1-WL-equivalent (all graphs are 4-regular).
* **EXP** (Abboud et al., IJCAI 2021): 600 pairs of 1-WL-equivalent graphs (planar SAT encodings with a binary node
  feature) with different satisfiability labels, from ``<root>/EXP/raw/GRAPHSAT.pkl``.
  :class:`EXPData` is the classification task on the same 1200 graphs.
* **SR25**: the 15 strongly regular graphs srg(25, 12, 5, 6); all 105 pairs are 3-WL (2-FWL) equivalent, from
  ``<root>/SR25/raw/sr251256.g6``.
* **BREC** (Wang & Zhang, "Towards Better Evaluation of GNN Expressiveness with BREC Dataset", arXiv 2304.07702):
  400 pairs in seven categories, graph6 strings in ``<root>/BREC/raw/<file>.npy``: basic 60, (simple) regular 50,
  strongly regular 50, 4-vertex condition 20, distance regular 20 (the paper's "Regular" group is these four,
  140 pairs), extension 100, CFI 100.

``root`` is the data folder (``$GRAPHLAB_DATA`` when not given). Files are downloaded from the upstream repositories
at the pinned commits only when ``download=True``; a file on disk must match the pinned SHA-256, since the EXP file
is a pickle.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import networkx as nx
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as PyGDataLoader
from torch_geometric.utils import coalesce, to_undirected

from graphlab.data.base import (
    DatasetInfo,
    GraphDataModule,
    PartLoaderMixin,
    check_split,
    download_or_raise,
    missing_files_error,
    resolve_root,
)
from graphlab.data.splits import IndexSplit, fold_split, stratified_folds
from graphlab.data.subgraph import subgraph_transform
from graphlab.data.synthetic import CSL_NUM_NODES, CSL_SKIPS, circulant_edges

BENCHMARKS = ("csl", "exp", "sr25", "brec")


@dataclass(frozen=True)
class RawFile:
    """A pinned upstream file: where it lives below the data root, its address and its SHA-256."""

    path: str
    url: str
    sha256: str


_EXP_URL = "https://raw.githubusercontent.com/ralphabb/GNN-RNI/43c69c06462d3a165ba2b532d76cbc045fc767d7/Data/EXP/raw"
_SR25_URL = ("https://raw.githubusercontent.com/balcilar/gnn-matlang/0d90cb17056c1599bbd627f9c6cd994b160feadd/"
             "dataset/sr25/raw")
_BREC_URL = ("https://raw.githubusercontent.com/GraphPKU/BREC/966b5ed5c27bf6372ea081f90ef8c8b2a3342ebc/"
             "customize/Data/raw")

EXP_FILE = RawFile("EXP/raw/GRAPHSAT.pkl", f"{_EXP_URL}/GRAPHSAT.pkl",
                   "82f25cfab85e8bf51d518271afc12f45340f8a297d68994259c5b8bb9618ef17")
SR25_FILE = RawFile("SR25/raw/sr251256.g6", f"{_SR25_URL}/sr251256.g6",
                    "f55f86eb48cd61c3315c62341cc3a8c59289c58504edb3ab859d7ef2068b9aa4")
BREC_FILES: dict[str, RawFile] = {
    category: RawFile(f"BREC/raw/{name}", f"{_BREC_URL}/{name}", sha)
    for category, name, sha in (
        ("basic", "basic.npy", "adef7f761b803026b515d94172399f5db72fe73859b0e489a1edfaa5874aeec2"),
        ("regular", "regular.npy", "e9e85ff2003f50676e2a2ac7ef70b8ad919598c3042aaf8f5f6f43184bfdc663"),
        ("strongly_regular", "str.npy", "6de58d99b80b7ace4529d17cf8fe3d000b496b3c2a7ab7f59fe3f28f61746d6f"),
        ("4vertex", "4vtx.npy", "a9e593c485f3fa08d3db967d7c545a4f5cf7f417f016c9a77a5c1cc646786cea"),
        ("distance_regular", "dr.npy", "11b861e1439ddee4c58fa04b523e874c25fdbb4ba867f3ac9104711cb3739d89"),
        ("extension", "extension.npy", "9b76b59842f997a502a83724daba033d793c5fbc9c2aa758834beb78d2309d4a"),
        ("cfi", "cfi.npy", "e8d56d7c0a22768da8dfdcaae800bc8dc815fb10b1bf1b52dc7893ed68c4e92f"),
    )
}
"""BREC's seven categories in the paper's order (Table 1), with the raw file of each."""

BREC_COUNTS = {"basic": 60, "regular": 50, "strongly_regular": 50, "4vertex": 20, "distance_regular": 20,
               "extension": 100, "cfi": 100}
"""Pairs per BREC category (BREC paper, Section 3; 400 in all)."""
EXP_NUM_PAIRS = 600
SR25_NUM_GRAPHS = 15
CSL_NUM_PAIRS = len(CSL_SKIPS) * (len(CSL_SKIPS) - 1) // 2


@dataclass
class PairBenchmark:
    """Pairs of non-isomorphic graphs: ``pairs[i] = (G, H)``, each a :class:`~torch_geometric.data.Data` with
    ``edge_index``, ``num_nodes`` and node features ``x`` of width 1 (a constant, or EXP's binary label)."""

    benchmark: str
    category: str
    pairs: list[tuple[Data, Data]]

    @property
    def total(self) -> int:
        return len(self.pairs)


# --------------------------------------------------------------------------- public entry point
def parse_benchmark(spec: str) -> tuple[str, Optional[str]]:
    """``"brec:cfi"`` → ``("brec", "cfi")``, ``"exp"`` → ``("exp", None)``; unknown names raise ``ValueError``."""
    name, _, category = spec.strip().lower().partition(":")
    if name not in BENCHMARKS:
        raise ValueError(f"unknown expressivity benchmark {spec!r}: choose one of {', '.join(BENCHMARKS)} "
                         f"(BREC with an optional category, e.g. brec:cfi)")
    if category and name != "brec":
        raise ValueError(f"benchmark {name!r} has no categories (got {spec!r}); only brec takes one, e.g. brec:cfi")
    if category and category not in BREC_FILES:
        raise ValueError(f"unknown BREC category {category!r}: choose one of {', '.join(BREC_FILES)}")
    return name, category or None


def load_pair_benchmarks(spec: str, root: Optional[str] = None, download: bool = False) -> list[PairBenchmark]:
    """The pair sets of ``spec`` (``csl``, ``exp``, ``sr25``, ``brec`` for all seven categories, ``brec:<category>``).

    Raises:
        ValueError: an unknown benchmark or category.
        FileNotFoundError: the data files are missing (naming the folder, ``$GRAPHLAB_DATA`` and how to get them).
    """
    name, category = parse_benchmark(spec)
    if name == "csl":
        return [csl_pairs()]
    data_root = resolve_root(root)
    if name == "exp":
        return [exp_pairs(data_root, download)]
    if name == "sr25":
        return [sr25_pairs(data_root, download)]
    categories = [category] if category else list(BREC_FILES)
    return [brec_pairs(data_root, c, download) for c in categories]


# --------------------------------------------------------------------------- graphs
def _graph(edge_index: Tensor, num_nodes: int, x: Optional[Tensor] = None) -> Data:
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    features = torch.ones(num_nodes, 1) if x is None else x.view(num_nodes, -1).float()
    return Data(x=features, edge_index=edge_index, num_nodes=num_nodes)


def from_graph6(text: str | bytes) -> Data:
    """A graph6 string (str or bytes, without header) as ``Data`` with a constant feature."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    graph = nx.from_graph6_bytes(raw.strip())
    edges = torch.tensor(list(graph.edges()), dtype=torch.long).view(-1, 2).t()
    return _graph(edges, graph.number_of_nodes())


def csl_pairs() -> PairBenchmark:
    """The 45 pairs of the ten CSL classes C(41, {1, s}), one canonical graph per class."""
    graphs = [_graph(circulant_edges(CSL_NUM_NODES, s), CSL_NUM_NODES) for s in CSL_SKIPS]
    return PairBenchmark("csl", "all", list(itertools.combinations(graphs, 2)))


# --------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def raw_path(root: Path, file: RawFile, dataset: str, download: bool) -> Path:
    """The checked path of ``file`` below ``root``, downloaded first when missing and ``download``."""
    path = root / file.path
    if not path.is_file():
        how = (f"Point $GRAPHLAB_DATA (or root=) at the data folder that holds {file.path}, or pass download=True "
               f"(CLI: --download) to fetch it.")
        if not download:
            raise missing_files_error(dataset, path.parent, [path.name], how, root=root, url=file.url)
        from torch_geometric.data import download_url

        download_or_raise(lambda: download_url(file.url, str(path.parent), log=False), dataset, path.parent,
                          [path.name], how, root=root, url=file.url)
    actual = _sha256(path)
    if actual != file.sha256:
        raise ValueError(f"{dataset}: {path} has SHA-256 {actual}, not the pinned {file.sha256} of {file.url}; "
                         "replace it with the upstream file (it is never read unverified)")
    return path


def exp_graphs(root: Path, download: bool = False) -> list[Data]:
    """EXP's 1200 graphs (graph ``2i`` and ``2i + 1`` form pair ``i``), binary node feature ``x`` and label ``y``."""
    path = raw_path(root, EXP_FILE, "EXP", download)
    with open(path, "rb") as handle:
        stored = pickle.load(handle)  # checksum-verified above: the pinned upstream file
    graphs = []
    for old in stored:
        fields = {k: v for k, v in old.__dict__.items() if v is not None}
        graph = _graph(fields["edge_index"], int(fields["x"].shape[0]), fields["x"])
        graph.y = fields["y"].view(1).long()
        graphs.append(graph)
    if len(graphs) != 2 * EXP_NUM_PAIRS:
        raise ValueError(f"EXP: {path} holds {len(graphs)} graphs, expected {2 * EXP_NUM_PAIRS}")
    return graphs


def exp_pairs(root: Path, download: bool = False) -> PairBenchmark:
    graphs = exp_graphs(root, download)
    return PairBenchmark("exp", "all", [(graphs[2 * i], graphs[2 * i + 1]) for i in range(EXP_NUM_PAIRS)])


def sr25_pairs(root: Path, download: bool = False) -> PairBenchmark:
    """The 105 pairs of the 15 srg(25, 12, 5, 6) graphs."""
    path = raw_path(root, SR25_FILE, "SR25", download)
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    graphs = [from_graph6(line.removeprefix(b">>graph6<<")) for line in lines]
    if len(graphs) != SR25_NUM_GRAPHS:
        raise ValueError(f"SR25: {path} holds {len(graphs)} graphs, expected {SR25_NUM_GRAPHS}")
    return PairBenchmark("sr25", "all", list(itertools.combinations(graphs, 2)))


def brec_pairs(root: Path, category: str, download: bool = False) -> PairBenchmark:
    """One BREC category. Its ``.npy`` holds graph6 strings either as a flat array (pair ``i`` = items ``2i``,
    ``2i + 1``) or as rows of two (as BREC's ``customize/dataset_v3.py`` reads them)."""
    if category not in BREC_FILES:
        raise ValueError(f"unknown BREC category {category!r}: choose one of {', '.join(BREC_FILES)}")
    path = raw_path(root, BREC_FILES[category], f"BREC ({category})", download)
    strings = np.load(path, allow_pickle=False).reshape(-1)
    pairs = [(from_graph6(strings[2 * i]), from_graph6(strings[2 * i + 1])) for i in range(len(strings) // 2)]
    if len(pairs) != BREC_COUNTS[category]:
        raise ValueError(f"BREC ({category}): {path} holds {len(pairs)} pairs, expected {BREC_COUNTS[category]}")
    return PairBenchmark("brec", category, pairs)


# --------------------------------------------------------------------------- EXP classification
EXP_NUM_FOLDS = 10


class EXPData(PartLoaderMixin, GraphDataModule):
    """EXP as a binary graph classification task (Abboud et al., IJCAI 2021): 1200 graphs, the label is the
    satisfiability of the encoded formula; a 1-WL model stays at 50% accuracy.

    Splits follow the usual EXP protocol (GNN-RNI, ESAN, GNN-AK): 10 class-stratified folds; fold ``fold`` is the
    test set, the next fold validates and the other eight train (960/120/120).

    Args:
        root: data folder holding ``EXP/raw/GRAPHSAT.pkl`` (default ``$GRAPHLAB_DATA``).
        fold: the test fold (0..9).
        batch_size: graphs per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the folds.
        download: fetch the file from the pinned upstream commit when missing.
        subgraph: ``None`` (off) or the arguments of :class:`graphlab.transforms.SubgraphPairs`
            (``{policy, num_hops, max_dis}``): the pair fields of the subgraph models, computed once per graph
            in memory (EXP is small).
    """

    def __init__(self, root: Optional[str] = None, fold: int = 0, batch_size: int = 32, num_workers: int = 0,
                 seed: int = 0, download: bool = False, subgraph: Optional[dict[str, Any]] = None) -> None:
        super().__init__(root)
        self.subgraph = subgraph
        self._pairs_transform = subgraph_transform(subgraph)  # validates the option now
        check_split(fold, EXP_NUM_FOLDS, "EXP")
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0; got {batch_size}, {num_workers}")
        self.fold, self.batch_size, self.num_workers = fold, batch_size, num_workers
        self.seed, self.download = seed, download
        self._graphs: Optional[list[Data]] = None
        self._index: Optional[IndexSplit] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="exp", level="graph", task_type="multiclass", num_features=1, num_outputs=2,
                           metric="acc", num_splits=EXP_NUM_FOLDS)

    @property
    def graphs(self) -> list[Data]:
        if self._graphs is None:
            graphs = exp_graphs(resolve_root(self.root), self.download)
            pairs = self._pairs_transform
            self._graphs = graphs if pairs is None else [pairs(g.clone()) for g in graphs]
        return self._graphs

    @property
    def split_index(self) -> IndexSplit:
        if self._index is None:
            labels = torch.cat([g.y for g in self.graphs])
            self._index = fold_split(stratified_folds(labels, EXP_NUM_FOLDS, self.seed), self.fold)
        return self._index

    def setup(self, stage: Optional[str] = None) -> None:
        self.split_index  # noqa: B018 (loads the graphs and builds the folds once)

    def _loader(self, part: str, shuffle: bool) -> PyGDataLoader:
        index: Sequence[int] = getattr(self.split_index, part).tolist()
        return PyGDataLoader([self.graphs[i] for i in index], batch_size=self.batch_size, shuffle=shuffle,
                             num_workers=self.num_workers)


__all__ = ["BENCHMARKS", "BREC_COUNTS", "BREC_FILES", "EXPData", "PairBenchmark", "brec_pairs", "csl_pairs",
           "exp_pairs", "from_graph6", "load_pair_benchmarks", "parse_benchmark", "sr25_pairs"]
