"""Built-in synthetic benchmarks: generated in memory, seeded, no files needed.

* :class:`CSLData`: the Circular Skip Links graphs (Murphy et al., ICML 2019), an
  expressivity benchmark that 1-WL message passing cannot solve without positional
  encodings.
* :class:`CSBMData`: a contextual stochastic block model (Deshpande et al., NeurIPS 2018,
  as used by GPR-GNN) with an edge-homophily knob, for node classification.
* :class:`RandomLinkData`: a community graph with community-correlated features, split for
  link prediction.

All three are tiny by default (a CLI fit takes seconds) and never touch the global random
state: every draw comes from ``numpy.random.default_rng`` seeded by the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as PyGDataLoader
from torch_geometric.transforms import Constant
from torch_geometric.utils import coalesce, to_undirected

from graphlab.data.base import (
    DatasetInfo,
    FullBatchLinkMixin,
    FullBatchMixin,
    GraphDataModule,
    PartLoaderMixin,
    check_split,
)
from graphlab.data.splits import (
    IndexSplit,
    check_node_ratios,
    fold_split,
    random_node_masks,
    split_edges,
    stratified_folds,
)
from graphlab.data.subgraph import subgraph_transform
from graphlab.transforms import AddLaplacianPE, AddRandomWalkPE, ReorderNodes
from graphlab.transforms.reorder import ReorderMethod

# --------------------------------------------------------------------------- CSL
CSL_NUM_NODES = 41
CSL_SKIPS = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)
CSL_COPIES_PER_CLASS = 15
CSL_NUM_FOLDS = 5


def circulant_edges(num_nodes: int, skip: int) -> Tensor:
    """Undirected ``edge_index`` of the circulant graph C(n, {1, skip}): a cycle plus skip links."""
    nodes = torch.arange(num_nodes)
    edges = torch.cat([torch.stack([nodes, (nodes + s) % num_nodes]) for s in (1, skip)], dim=1)
    return to_undirected(edges, num_nodes=num_nodes)


def csl_graphs(seed: int = 0) -> list[Data]:
    """The 150 CSL graphs: for each skip (class), 15 copies with random node relabellings."""
    rng = np.random.default_rng(seed)
    graphs = []
    for label, skip in enumerate(CSL_SKIPS):
        base = circulant_edges(CSL_NUM_NODES, skip)
        for _ in range(CSL_COPIES_PER_CLASS):
            perm = torch.from_numpy(rng.permutation(CSL_NUM_NODES))
            edge_index = coalesce(perm[base], num_nodes=CSL_NUM_NODES)
            graphs.append(Data(edge_index=edge_index, num_nodes=CSL_NUM_NODES, y=torch.tensor([label])))
    return graphs


class CSLData(PartLoaderMixin, GraphDataModule):
    """Circular Skip Links (Murphy et al., "Relational Pooling for Graph Representations", 2019).

    150 graphs: the 4-regular circulant graphs C(41, {1, s}) for the ten skips
    ``s`` in {2, 3, 4, 5, 6, 9, 11, 12, 13, 16} (the class), each in 15 copies with random
    node relabellings (seeded). All nodes look alike to 1-WL, so node features are
    positional encodings. Evaluation follows benchmarking-gnns: 5 stratified folds, fold
    ``fold`` is the test set, the next fold validates and the other three train (90/30/30).

    Args:
        root: unused (the data is generated); accepted so configs can share a ``root``.
        fold: which of the 5 folds is the test set (0..4).
        batch_size: graphs per batch (benchmarking-gnns uses 5).
        num_workers: DataLoader worker processes.
        positional_encoding: node features: ``"rwse"`` (random-walk return probabilities
            for walks of length 1..``pe_dim``, :class:`graphlab.transforms.AddRandomWalkPE`), ``"laplacian"``
            (``pe_dim`` Laplacian eigenvectors, :class:`graphlab.transforms.AddLaplacianPE`) or ``"none"``
            (a constant 1: the 1-WL-hard setting).
        pe_dim: walk length or number of eigenvectors.
        seed: seed of the relabellings and of the folds.
        subgraph: ``None`` (off) or the arguments of :class:`graphlab.transforms.SubgraphPairs`
            (``{policy: node_marking, max_dis: 5}``); the graphs are generated in memory, and so are their pairs.
    """

    def __init__(
        self,
        root: Optional[str] = None,
        fold: int = 0,
        batch_size: int = 5,
        num_workers: int = 0,
        positional_encoding: Literal["rwse", "laplacian", "none"] = "rwse",
        pe_dim: int = 20,
        seed: int = 0,
        subgraph: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(root)
        check_split(fold, CSL_NUM_FOLDS, "CSL")
        if pe_dim < 1 or batch_size < 1 or num_workers < 0:
            raise ValueError(f"need pe_dim >= 1, batch_size >= 1, num_workers >= 0; got {pe_dim}, "
                             f"{batch_size}, {num_workers}")
        if positional_encoding not in ("rwse", "laplacian", "none"):
            raise ValueError(f"positional_encoding must be 'rwse', 'laplacian' or 'none', got {positional_encoding!r}")
        self.fold = fold
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.positional_encoding = positional_encoding
        self.pe_dim = pe_dim
        self.seed = seed
        self.subgraph = subgraph
        self._pairs_transform = subgraph_transform(subgraph)  # validates the option now
        self._graphs: Optional[list[Data]] = None
        self._index: Optional[IndexSplit] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        width = 1 if self.positional_encoding == "none" else self.pe_dim
        return DatasetInfo(name="csl", level="graph", task_type="multiclass", num_features=width,
                           num_outputs=len(CSL_SKIPS), metric="acc", num_splits=CSL_NUM_FOLDS)

    @property
    def graphs(self) -> list[Data]:
        """The 150 graphs with node features ``x`` (generated once)."""
        if self._graphs is None:
            graphs = self._featurise(csl_graphs(self.seed))
            pairs = self._pairs_transform
            self._graphs = graphs if pairs is None else [pairs(g) for g in graphs]
        return self._graphs

    def _featurise(self, graphs: list[Data]) -> list[Data]:
        """Node features ``x`` of the chosen encoding (a transform from :mod:`graphlab.transforms`)."""
        if self.positional_encoding == "rwse":
            encode = AddRandomWalkPE(self.pe_dim, attr_name=None)
        elif self.positional_encoding == "laplacian":
            encode = AddLaplacianPE(self.pe_dim, attr_name=None)
        else:
            encode = Constant(1.0)  # x = ones [N, 1]
        return [encode(g) for g in graphs]

    @property
    def split_index(self) -> IndexSplit:
        """Train/val/test graph indices of fold ``fold``."""
        if self._index is None:
            labels = torch.cat([g.y for g in self.graphs])
            self._index = fold_split(stratified_folds(labels, CSL_NUM_FOLDS, self.seed), self.fold)
        return self._index

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.split_index

    def _loader(self, part: str, shuffle: bool) -> PyGDataLoader:
        graphs = [self.graphs[i] for i in getattr(self.split_index, part).tolist()]
        return PyGDataLoader(graphs, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                             persistent_workers=self.num_workers > 0)


# --------------------------------------------------------------------------- cSBM
@dataclass(frozen=True)
class SBMGraph:
    """A sampled contextual SBM: features, labels and undirected edges (both directions)."""

    x: Tensor
    y: Tensor
    edge_index: Tensor


def sample_csbm(num_nodes: int, num_features: int, num_classes: int, avg_degree: float, homophily: float,
                feature_signal: float, seed: int) -> SBMGraph:
    """Sample a contextual SBM whose expected edge homophily is ``homophily``.

    Classes are balanced. Same-class pairs link with probability ``p_in``, other pairs with
    ``p_out``, chosen so that the expected number of edges is ``num_nodes * avg_degree / 2``
    and a fraction ``homophily`` of them joins same-class nodes. Features are
    ``feature_signal * m_y + noise``: ``m_c`` a random unit vector per class, noise
    ``N(0, I / num_features)`` (so its norm is about 1).
    """
    _check_csbm(num_nodes, num_features, num_classes, avg_degree, homophily, feature_signal)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(num_nodes) % num_classes)
    sizes = np.bincount(y, minlength=num_classes)
    intra_pairs = float((sizes * (sizes - 1) / 2).sum())
    inter_pairs = num_nodes * (num_nodes - 1) / 2 - intra_pairs
    expected_edges = num_nodes * avg_degree / 2
    p_in = homophily * expected_edges / intra_pairs
    p_out = (1 - homophily) * expected_edges / inter_pairs
    if max(p_in, p_out) > 1:
        raise ValueError(
            f"avg_degree={avg_degree} with homophily={homophily} needs edge probability "
            f"{max(p_in, p_out):.2f} > 1 for {num_nodes} nodes; lower avg_degree or add nodes"
        )
    edge_index = _sample_block_edges(y, p_in, p_out, rng)
    means = rng.standard_normal((num_classes, num_features))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    x = feature_signal * means[y] + rng.standard_normal((num_nodes, num_features)) / np.sqrt(num_features)
    return SBMGraph(torch.from_numpy(x).to(torch.float), torch.from_numpy(y).to(torch.long), edge_index)


def _check_csbm(num_nodes: int, num_features: int, num_classes: int, avg_degree: float, homophily: float,
                feature_signal: float) -> None:
    if num_classes < 2 or num_nodes < 2 * num_classes or num_features < 1:
        raise ValueError(f"need num_classes >= 2, num_nodes >= 2 * num_classes and num_features >= 1; got "
                         f"{num_classes}, {num_nodes}, {num_features}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily is the expected fraction of same-class edges, in [0, 1]; got {homophily}")
    if avg_degree <= 0 or feature_signal < 0:
        raise ValueError(f"need avg_degree > 0 and feature_signal >= 0; got {avg_degree}, {feature_signal}")


# Rows of the pair-probability matrix sampled at once: bounds memory to ROWS x num_nodes.
_ROWS_PER_CHUNK = 1024


def _sample_block_edges(y: np.ndarray, p_in: float, p_out: float, rng: np.random.Generator) -> Tensor:
    """Independent Bernoulli draws for every pair ``i < j``, in row chunks."""
    n = len(y)
    rows, cols = [], []
    for start in range(0, n, _ROWS_PER_CHUNK):
        block = np.arange(start, min(start + _ROWS_PER_CHUNK, n))
        probs = np.where(y[block, None] == y[None, :], p_in, p_out)
        hits = (rng.random((len(block), n)) < probs) & (np.arange(n)[None, :] > block[:, None])
        r, c = np.nonzero(hits)
        rows.append(block[r])
        cols.append(c)
    edges = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)])).to(torch.long)
    return to_undirected(edges, num_nodes=n)


class CSBMData(FullBatchMixin, GraphDataModule):
    """Contextual stochastic block model for node classification with a homophily knob.

    Deshpande et al., "Contextual Stochastic Block Models" (NeurIPS 2018), as used by
    GPR-GNN (Chien et al., ICLR 2021) to sweep from heterophily to homophily. Here the knob
    is the expected *edge homophily* ``h`` in [0, 1] (the fraction of edges joining
    same-class nodes; ``1/num_classes`` is uninformative). For two classes it relates to
    GPR-GNN's ``phi`` through ``h = 1/2 + lambda / (2 sqrt(d))``. Full-batch: every loader
    yields the one graph with the masks of split ``split``.

    Args:
        num_nodes: nodes (balanced classes).
        num_features: feature dimension.
        num_classes: number of classes (blocks).
        homophily: expected edge homophily in [0, 1].
        avg_degree: expected average degree.
        feature_signal: distance scale of the class means relative to unit-norm noise
            (0 = features carry no label information).
        split: which random train/val/test split (its own seed), 0..``num_splits - 1``.
        num_splits: how many random splits the benchmark offers.
        train_ratio: fraction of nodes in the training mask.
        val_ratio: fraction in the validation mask (the test mask takes the rest).
        seed: seed of the graph and features (splits are seeded by ``(seed, split)``).
        root: unused (the data is generated); accepted so configs can share a ``root``.
        reorder: renumber the nodes by a locality ordering (:class:`graphlab.transforms.ReorderNodes`: ``rcm``,
            ``degree_bfs`` or ``community``); masks, labels and edges follow, and ``graphlab predict`` reports the
            original node ids. ``None`` (default): the generated order.
    """

    def __init__(
        self,
        num_nodes: int = 400,
        num_features: int = 32,
        num_classes: int = 2,
        homophily: float = 0.8,
        avg_degree: float = 5.0,
        feature_signal: float = 1.0,
        split: int = 0,
        num_splits: int = 10,
        train_ratio: float = 0.6,
        val_ratio: float = 0.2,
        seed: int = 0,
        root: Optional[str] = None,
        reorder: Optional[ReorderMethod] = None,
    ) -> None:
        super().__init__(root)
        _check_csbm(num_nodes, num_features, num_classes, avg_degree, homophily, feature_signal)
        check_split(split, num_splits, "CSBM")
        self.num_nodes, self.num_classes = num_nodes, num_classes
        self.feature_dim = num_features
        self.homophily, self.avg_degree, self.feature_signal = homophily, avg_degree, feature_signal
        self.split, self.total_splits = split, num_splits
        self.train_ratio, self.val_ratio = train_ratio, val_ratio
        self.seed = seed
        check_node_ratios(train_ratio, val_ratio)
        self.reorder = reorder
        self._reorder = ReorderNodes(reorder) if reorder is not None else None  # validates the method now
        self._graph: Optional[Data] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="csbm", level="node", task_type="multiclass", num_features=self.feature_dim,
                           num_outputs=self.num_classes, metric="acc", num_splits=self.total_splits)

    @property
    def graph(self) -> Data:
        """The sampled graph with the masks of ``split`` (generated once)."""
        if self._graph is None:
            g = sample_csbm(self.num_nodes, self.feature_dim, self.num_classes, self.avg_degree, self.homophily,
                            self.feature_signal, self.seed)
            train, val, test = random_node_masks(self.num_nodes, self.train_ratio, self.val_ratio,
                                                 [self.seed, self.split])
            graph = Data(x=g.x, edge_index=g.edge_index, y=g.y, train_mask=train, val_mask=val, test_mask=test)
            self._graph = graph if self._reorder is None else self._reorder(graph)
        return self._graph


# --------------------------------------------------------------------------- random links
class RandomLinkData(FullBatchLinkMixin, GraphDataModule):
    """Link prediction on a community graph whose links are predictable.

    The graph is a (contextual) stochastic block model: ``num_communities`` balanced
    communities, a fraction ``homophily`` of the edges inside communities, and node
    features ``feature_signal * m_community + noise`` (see :func:`sample_csbm`). Both the
    features (same community -> similar features) and the structure (common neighbours)
    predict links. The undirected edges are split into train/val/test positives; val and
    test get as many fixed negatives (non-edges). The message-passing graph holds the
    training edges only (both directions); ``pos_edge_index`` lists each positive once.

    Args:
        num_nodes: nodes.
        num_features: feature dimension.
        num_communities: SBM blocks.
        homophily: expected fraction of edges inside communities, in [0, 1].
        avg_degree: expected average degree.
        feature_signal: distance scale of the community means relative to unit-norm noise.
        val_ratio: fraction of edges held out for validation.
        test_ratio: fraction held out for testing.
        hits_k: the metric is ``hits@<hits_k>`` against the split's negatives.
        seed: seed of the graph, features and edge split.
        root: unused (the data is generated); accepted so configs can share a ``root``.
    """

    def __init__(
        self,
        num_nodes: int = 300,
        num_features: int = 16,
        num_communities: int = 4,
        homophily: float = 0.9,
        avg_degree: float = 8.0,
        feature_signal: float = 1.5,
        val_ratio: float = 0.1,
        test_ratio: float = 0.2,
        hits_k: int = 20,
        seed: int = 0,
        root: Optional[str] = None,
        reorder: Optional[ReorderMethod] = None,
    ) -> None:
        super().__init__(root)
        _check_csbm(num_nodes, num_features, num_communities, avg_degree, homophily, feature_signal)
        if not (0 < val_ratio and 0 < test_ratio and val_ratio + test_ratio < 1) or hits_k < 1:
            raise ValueError(f"need 0 < val_ratio, 0 < test_ratio, val_ratio + test_ratio < 1 and hits_k >= 1; "
                             f"got {val_ratio}, {test_ratio}, {hits_k}")
        self.num_nodes, self.feature_dim, self.num_communities = num_nodes, num_features, num_communities
        self.homophily, self.avg_degree, self.feature_signal = homophily, avg_degree, feature_signal
        self.val_ratio, self.test_ratio, self.hits_k = val_ratio, test_ratio, hits_k
        self.seed = seed
        self._parts: Optional[dict[str, Data]] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="random-link", level="link", task_type="link", num_features=self.feature_dim,
                           num_outputs=1, metric=f"hits@{self.hits_k}")

    @property
    def parts(self) -> dict[str, Data]:
        """``{"train", "val", "test"}`` Data objects sharing ``x`` and the message graph."""
        if self._parts is None:
            self._parts = self._build_parts()
        return self._parts

    def _build_parts(self) -> dict[str, Data]:
        g = sample_csbm(self.num_nodes, self.feature_dim, self.num_communities, self.avg_degree, self.homophily,
                        self.feature_signal, self.seed)
        s = split_edges(g.edge_index, self.num_nodes, self.val_ratio, self.test_ratio, self.seed + 1)
        message = to_undirected(s.train_pos, num_nodes=self.num_nodes)
        common = {"x": g.x, "edge_index": message, "num_nodes": self.num_nodes, "community": g.y}
        return {
            "train": Data(**common, pos_edge_index=s.train_pos),
            "val": Data(**common, pos_edge_index=s.val_pos, neg_edge_index=s.val_neg),
            "test": Data(**common, pos_edge_index=s.test_pos, neg_edge_index=s.test_neg),
        }
