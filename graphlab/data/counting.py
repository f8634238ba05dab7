r"""Substructure counting: random graphs labelled with exact counts of small patterns.

The counting benchmark of GNN-AK (Zhao et al., ICLR 2022) and of the SWL paper (Zhang et al., "A Complete
Expressiveness Hierarchy for Subgraph GNNs via Subgraph Weisfeiler-Lehman Tests", ICML 2023, ``GraphCount`` in
``subgraph23/SWL``) regresses, for each random graph, the number of times a pattern occurs in it. The counts are
**graph-level** there: ``GraphCount`` stores one row ``y`` per graph and the model mean-pools all pair states into
one prediction per graph; we follow that. Each target is divided by its standard deviation over the whole dataset
(``y / std(y)``, all splits together, as ``GraphCount.process`` does), so the reported MAE is the *normalised* MAE
of the papers (SWL, GNN-SSWL+: 0.0059 on triangles, 0.0063 on tailed triangles, 0.0075 on 4-cycles):

.. math::
    \mathrm{nMAE} = \frac{1}{|G|} \sum_{g} \frac{|\hat c_g - c_g|}{\sigma_c},
    \qquad \sigma_c = \mathrm{std}\{c_g\}_{g \in \text{dataset}} .

**Counts** (non-induced subgraph counts, i.e. the number of subgraphs of :math:`G` isomorphic to the pattern, as in
Chen et al., NeurIPS 2020, whose random-graph set the papers use), for adjacency :math:`A`, degrees :math:`d_i`,
:math:`m` edges and :math:`t_i` triangles through node :math:`i`:

.. math::
    \#K_3 = \tfrac13 \textstyle\sum_i t_i, \qquad
    \#\text{tailed triangle} = \textstyle\sum_i t_i (d_i - 2), \qquad
    \#\text{3-star} = \textstyle\sum_i \binom{d_i}{3}, \\
    \#C_4 = \tfrac18 \big(\mathrm{tr} A^4 - 2 \textstyle\sum_i d_i^2 + 2m\big), \qquad
    \#C_5 = \tfrac1{10} \big(\mathrm{tr} A^5 - 5\, \mathrm{tr} A^3 - 5 \textstyle\sum_i (d_i - 2) (A^3)_{ii}\big),

(closed-walk counts minus the walks that are not cycles) and :math:`\#K_4` by enumerating the cliques with
networkx. Triangles and 4-cliques come from networkx (``nx.triangles``, ``nx.enumerate_all_cliques``); the tests
check every count against a brute force over node subsets.

**Graphs.** The papers' file (``randomgraph.mat`` / ``randomgraph.pt``, 5000 graphs) is not in the SWL snapshot,
so the graphs are our own: a seeded mix of Erdős–Rényi graphs :math:`G(n, \bar d/(n-1))` with mean degree
:math:`\bar d \sim U[2, 6]` and random :math:`d`-regular graphs, :math:`d \in \{3, \dots, 6\}`, with
:math:`n \sim U\{10, \dots, 30\}` nodes (the statistics the papers describe: 5000 graphs, 10-30 nodes, random
regular and ER graphs). The numbers are therefore comparable in kind, not identical graphs. Split: a seeded 60/20/20
random split (the papers' file ships its own split). Generation takes ~10 s for 5000 graphs and is cached under
``<root>/substructure_count/`` in a file keyed by the generator settings.
"""

from __future__ import annotations

import hashlib
import io
import json
from math import comb
from pathlib import Path
from typing import Any, Literal, Optional

import networkx as nx
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as PyGDataLoader

from graphlab._io import atomic_write_bytes
from graphlab.data.base import DatasetInfo, GraphDataModule, PartLoaderMixin
from graphlab.data.splits import IndexSplit
from graphlab.data.subgraph import subgraph_transform

Target = Literal["triangle", "tailed_triangle", "star", "cycle4", "cycle5", "clique4"]
TARGETS: tuple[str, ...] = ("triangle", "tailed_triangle", "star", "cycle4", "cycle5", "clique4")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test
GENERATOR_VERSION = 1  # bump when the generator or the counts change: old cache files are then ignored
ER_MEAN_DEGREE = (2.0, 6.0)  # mean degree of the Erdős–Rényi half, uniform in this range
REGULAR_DEGREES = (3, 6)  # degree of the random-regular half, uniform integer in this range


# --------------------------------------------------------------------------- counting
def count_substructures(graph: nx.Graph) -> dict[str, int]:
    """Exact non-induced counts of every pattern in :data:`TARGETS` for a simple undirected graph (module
    docstring for the formulas)."""
    if graph.is_directed() or graph.is_multigraph() or nx.number_of_selfloops(graph):
        raise ValueError("count_substructures needs a simple undirected graph (no self-loops, no multi-edges)")
    nodes = list(graph.nodes)
    if not nodes:
        return dict.fromkeys(TARGETS, 0)
    adj = nx.to_numpy_array(graph, nodelist=nodes, dtype=np.int64)
    deg = adj.sum(1)
    num_edges = int(deg.sum()) // 2
    tri_at = nx.triangles(graph)
    t = np.array([tri_at[v] for v in nodes], dtype=np.int64)
    a3 = adj @ adj @ adj
    a4 = a3 @ adj
    a5 = a4 @ adj
    cycle4 = int(np.trace(a4)) - 2 * int((deg * deg).sum()) + 2 * num_edges
    cycle5 = int(np.trace(a5)) - 5 * int(np.trace(a3)) - 5 * int(((deg - 2) * np.diag(a3)).sum())
    if cycle4 % 8 or cycle5 % 10:  # the closed-walk identities guarantee divisibility
        raise RuntimeError(f"cycle counts not integral ({cycle4}/8, {cycle5}/10): the adjacency is not simple")
    return {
        "triangle": int(t.sum()) // 3,
        "tailed_triangle": int((t * (deg - 2)).sum()),
        "star": int(sum(comb(int(d), 3) for d in deg)),
        "cycle4": cycle4 // 8,
        "cycle5": cycle5 // 10,
        "clique4": sum(1 for c in nx.enumerate_all_cliques(graph) if len(c) == 4),
    }


# --------------------------------------------------------------------------- generator
def random_count_graphs(num_graphs: int, min_nodes: int, max_nodes: int, seed: int) -> list[nx.Graph]:
    """``num_graphs`` seeded random graphs: even positions Erdős–Rényi, odd positions random regular (module
    docstring). Every draw comes from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    graphs = []
    for i in range(num_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        graph_seed = int(rng.integers(2**31 - 1))
        if i % 2 == 0:
            mean_degree = float(rng.uniform(*ER_MEAN_DEGREE))
            graph = nx.gnp_random_graph(n, min(1.0, mean_degree / max(n - 1, 1)), seed=graph_seed)
        else:
            d = min(int(rng.integers(REGULAR_DEGREES[0], REGULAR_DEGREES[1] + 1)), n - 1)
            if (n * d) % 2:  # a d-regular graph on n nodes needs n * d even
                d -= 1
            graph = nx.random_regular_graph(d, n, seed=graph_seed)
        graphs.append(graph)
    return graphs


def _edge_index(graph: nx.Graph) -> Tensor:
    """``[2, 2m]`` both directions, sorted by (source, target)."""
    edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    both = np.concatenate([edges, edges[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    return torch.from_numpy(np.ascontiguousarray(both.T))


def check_generator_settings(num_graphs: int, min_nodes: int, max_nodes: int) -> None:
    if num_graphs < 5:
        raise ValueError(f"num_graphs must be >= 5 (one graph per split at least), got {num_graphs}")
    if min_nodes < 4 or max_nodes < min_nodes:
        raise ValueError(f"need 4 <= min_nodes <= max_nodes (every pattern has up to 5 nodes), got min_nodes="
                         f"{min_nodes}, max_nodes={max_nodes}")


def generate_counting_set(num_graphs: int = 5000, min_nodes: int = 10, max_nodes: int = 30,
                          seed: int = 0) -> dict[str, Tensor]:
    """Generate and count: ``{"edge_index" [2, ΣE], "edge_ptr" [G+1], "num_nodes" [G], "counts" [G, T]}``
    (``T`` = len(:data:`TARGETS`), long)."""
    check_generator_settings(num_graphs, min_nodes, max_nodes)
    graphs = random_count_graphs(num_graphs, min_nodes, max_nodes, seed)
    edges = [_edge_index(g) for g in graphs]
    counts = [[count_substructures(g)[name] for name in TARGETS] for g in graphs]
    edge_ptr = torch.zeros(num_graphs + 1, dtype=torch.long)
    torch.cumsum(torch.tensor([e.size(1) for e in edges]), 0, out=edge_ptr[1:])
    return {"edge_index": torch.cat(edges, 1), "edge_ptr": edge_ptr,
            "num_nodes": torch.tensor([g.number_of_nodes() for g in graphs]),
            "counts": torch.tensor(counts, dtype=torch.long)}


def counting_split(num_graphs: int, seed: int) -> IndexSplit:
    """Seeded random 60/20/20 split (sorted index tensors, disjoint, covering)."""
    perm = torch.from_numpy(np.random.default_rng([seed, 1]).permutation(num_graphs))
    num_train = round(SPLIT_FRACTIONS[0] * num_graphs)
    num_val = round(SPLIT_FRACTIONS[1] * num_graphs)
    parts = perm[:num_train], perm[num_train:num_train + num_val], perm[num_train + num_val:]
    return IndexSplit(*(p.sort().values for p in parts))


# --------------------------------------------------------------------------- datamodule
class SubstructureCountData(PartLoaderMixin, GraphDataModule):
    r"""Substructure counting on random graphs (GNN-AK, Zhao et al. 2022; SWL, Zhang et al. 2023): regress the
    graph-level count of ``target``, divided by its standard deviation over the dataset, so ``mae`` is the papers'
    normalised MAE (module docstring).

    Node features are a constant 1 (``x`` [n, 1]), as in SWL's ``GraphCount``; ``y`` is ``[1, 1]`` per graph
    (``[B, 1]`` per batch), the normalised count; ``count`` ``[1]`` holds the raw integer count.

    Args:
        root: data folder (default ``$GRAPHLAB_DATA`` or ``./data``); the generated set is cached in
            ``<root>/substructure_count/<key>.pt``, ``key`` a hash of the generator settings.
        target: ``triangle`` | ``tailed_triangle`` | ``star`` | ``cycle4`` | ``cycle5`` | ``clique4``.
        num_graphs: graphs in the dataset (5000, as the papers' set).
        min_nodes, max_nodes: node count range, uniform (10-30).
        seed: seed of the generator and of the 60/20/20 split.
        batch_size: graphs per batch (SWL's counting runs use 512).
        num_workers: DataLoader worker processes.
        subgraph: ``None`` (off) or the arguments of :class:`graphlab.transforms.SubgraphPairs`
            (``{policy, num_hops, max_dis}``): the pair fields of the subgraph models, computed in memory once per
            graph when the set is first read.
    """

    def __init__(
        self,
        root: Optional[str] = None,
        target: Target = "triangle",
        num_graphs: int = 5000,
        min_nodes: int = 10,
        max_nodes: int = 30,
        seed: int = 0,
        batch_size: int = 512,
        num_workers: int = 0,
        subgraph: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(root)
        self.subgraph = subgraph
        self._pairs_transform = subgraph_transform(subgraph)  # validates the option now
        if target not in TARGETS:
            raise ValueError(f"unknown counting target {target!r}; choose one of {', '.join(TARGETS)}")
        check_generator_settings(num_graphs, min_nodes, max_nodes)
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        self.target, self.num_graphs, self.min_nodes, self.max_nodes = target, num_graphs, min_nodes, max_nodes
        self.seed, self.batch_size, self.num_workers = seed, batch_size, num_workers
        self._graphs: Optional[list[Data]] = None
        self._index: Optional[IndexSplit] = None
        self._std: Optional[float] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name=f"count-{self.target}", level="graph", task_type="regression", num_features=1,
                           num_outputs=1, metric="mae")

    @property
    def settings(self) -> dict:
        """The generator settings the cache file is keyed by."""
        return {"version": GENERATOR_VERSION, "num_graphs": self.num_graphs, "min_nodes": self.min_nodes,
                "max_nodes": self.max_nodes, "seed": self.seed, "targets": list(TARGETS)}

    @property
    def cache_path(self) -> Path:
        key = hashlib.sha1(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.root) / "substructure_count" / f"{key}.pt"

    def raw_set(self) -> dict[str, Tensor]:
        """The generated set, from the cache when it exists (written atomically otherwise)."""
        path = self.cache_path
        if path.exists():
            stored = torch.load(path, weights_only=True)
            if stored.get("settings") != json.dumps(self.settings, sort_keys=True):
                raise ValueError(f"{path} holds a counting set of other settings ({stored.get('settings')}); "
                                 f"delete the file to regenerate it")
            return stored
        data = generate_counting_set(self.num_graphs, self.min_nodes, self.max_nodes, self.seed)
        data["settings"] = json.dumps(self.settings, sort_keys=True)
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(path, lambda f: f.write(buffer.getvalue()))
        return data

    @property
    def target_std(self) -> float:
        r""":math:`\sigma_c`: the standard deviation (unbiased, as ``torch.std``) of the target's raw counts over
        the whole dataset; multiply a prediction by it to get a count."""
        if self._std is None:
            _ = self.graphs
        return float(self._std)

    @property
    def graphs(self) -> list[Data]:
        """Every graph as a ``Data`` (``x``, ``edge_index``, ``y`` normalised count, ``count`` raw count)."""
        if self._graphs is None:
            raw = self.raw_set()
            counts = raw["counts"][:, TARGETS.index(self.target)]
            std = float(counts.double().std())
            if not std > 0:
                raise ValueError(f"every graph has the same {self.target} count ({int(counts[0])}), so the "
                                 f"normalised MAE is undefined; use more graphs or a wider node range")
            self._std = std
            ptr = raw["edge_ptr"].tolist()
            graphs = [
                Data(x=torch.ones(int(n), 1), edge_index=raw["edge_index"][:, ptr[i]:ptr[i + 1]], num_nodes=int(n),
                     y=torch.tensor([[float(c) / std]]), count=c.view(1))
                for i, (n, c) in enumerate(zip(raw["num_nodes"], counts))
            ]
            pairs = self._pairs_transform
            self._graphs = graphs if pairs is None else [pairs(g) for g in graphs]
        return self._graphs

    @property
    def split_index(self) -> IndexSplit:
        if self._index is None:
            self._index = counting_split(self.num_graphs, self.seed)
        return self._index

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.graphs

    def _loader(self, part: str, shuffle: bool) -> PyGDataLoader:
        graphs = [self.graphs[i] for i in getattr(self.split_index, part).tolist()]
        return PyGDataLoader(graphs, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                             persistent_workers=self.num_workers > 0)
