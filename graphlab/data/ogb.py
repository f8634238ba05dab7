"""OGB datasets (node, link and graph property prediction) as graphlab DataModules.

The loaders wrap ``ogb``'s ``PygNodePropPredDataset``, ``PygLinkPropPredDataset`` and
``PygGraphPropPredDataset`` and use OGB's official splits and metrics (``master.csv``),
and fail fast, naming each missing file and its folder, unless ``download=True``, in which
case the archive is fetched from OGB and a network failure is reported the same way. The
fixes that let ``ogb`` 1.3.6 run offline on torch >= 2.6 (safe ``torch.load``, no
``input()`` prompts) live in :mod:`graphlab.data._ogb_compat`, applied where the dataset is
built (:meth:`_OGBDataModule.dataset`), never at import.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Optional

import ogb
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.loader import DataLoader as PyGDataLoader
from torch_geometric.utils import to_undirected

from graphlab.data._ogb_compat import download_ogb, load_ogb_dataset
from graphlab.data.base import (
    DatasetInfo,
    FullBatchLinkMixin,
    FullBatchMixin,
    GraphDataModule,
    PartLoaderMixin,
    download_or_raise,
    link_eval_loader,
    link_train_loader,
    log_degree_features,
    missing_files,
    missing_files_error,
)
from graphlab.data.subgraph import subgraph_transform, with_subgraph_pairs
from graphlab.transforms.reorder import ReorderMethod, ReorderNodes

Level = Literal["node", "link", "graph"]
Featureless = Literal["one_hot", "degree", "constant"]

_MASTER_DIR = {"node": "nodeproppred", "link": "linkproppred", "graph": "graphproppred"}
_TASK_TYPES = {
    "binary classification": "binary",
    "multiclass classification": "multiclass",
    "regression": "regression",
    "link prediction": "link",
}
# Link datasets whose valid/test splits give each source its own negatives (``source_node``, ``target_node``,
# ``target_node_neg [P, Q]``), with OGB's Q (the Evaluator's MRR convention).
PER_SOURCE_NEGATIVES = {"ogbl-citation2": 1000}
# A one-hot identity feature is a dense [N, N] float32 matrix: 10,000 nodes cost 400 MB.
MAX_ONE_HOT_NODES = 10_000


# --------------------------------------------------------------------------- metadata
def ogb_master(level: Level) -> pd.DataFrame:
    """OGB's ``master.csv`` for ``level`` as installed with ``ogb`` (one column per dataset)."""
    path = Path(ogb.__file__).parent / _MASTER_DIR[level] / "master.csv"
    return pd.read_csv(path, index_col=0, keep_default_na=False)


@dataclass(frozen=True)
class OGBMeta:
    """The ``master.csv`` record of one OGB dataset, with typed accessors."""

    name: str
    level: Level
    record: dict[str, str]

    @classmethod
    def lookup(cls, name: str, level: Level) -> "OGBMeta":
        """Find ``name`` (case-insensitive, ``_`` or ``-``) in ``level``'s master.csv."""
        key = name.strip().lower().replace("_", "-")
        master = ogb_master(level)
        if key not in master.columns:
            raise ValueError(
                f"unknown OGB {level} dataset {name!r}; known names: {', '.join(master.columns)}"
            )
        return cls(key, level, {k: str(v) for k, v in master[key].items()})

    def flag(self, field: str) -> bool:
        return self.record.get(field, "False") == "True"

    def files_list(self, field: str) -> list[str]:
        value = self.record.get(field, "None")
        return [] if value == "None" else value.split(",")

    @property
    def dir_name(self) -> str:
        return "_".join(self.name.split("-"))

    @property
    def version(self) -> str:
        return self.record["version"]

    @property
    def task_type(self) -> str:
        return self.record["task type"]

    @property
    def metric(self) -> str:
        return self.record["eval metric"]

    @property
    def split_name(self) -> str:
        return self.record["split"]

    @property
    def num_tasks(self) -> int:
        return int(self.record.get("num tasks", "1"))

    @property
    def num_classes(self) -> int:
        return int(self.record.get("num classes", "-1"))

    def expected_files(self) -> list[str]:
        """Files (relative to the dataset folder) that ``ogb`` reads to build the dataset."""
        return self._raw_files() + [f"split/{self.split_name}/{f}" for f in self._split_files()]

    def _raw_files(self) -> list[str]:
        label = {"node": "node-label", "graph": "graph-label", "link": None}[self.level]
        if self.flag("binary"):
            files = ["data.npz"] + ([f"{label}.npz"] if label else [])
        else:
            files = ["edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz"]
            files += ["node-feat.csv.gz"] if self.flag("has_node_attr") else []
            files += ["edge-feat.csv.gz"] if self.flag("has_edge_attr") else []
            extra = self.files_list("additional node files") + self.files_list("additional edge files")
            files += [f"{f}.csv.gz" for f in extra]
            files += [f"{label}.csv.gz"] if label else []
        return [f"raw/{f}" for f in files]

    def _split_files(self) -> list[str]:
        ext = "pt" if self.level == "link" else "csv.gz"
        return [f"{part}.{ext}" for part in ("train", "valid", "test")]


# --------------------------------------------------------------------------- DataModules
class _OGBDataModule(GraphDataModule):
    """Shared logic: name lookup, file checks, download, cached dataset and metadata."""

    level: Level = "graph"

    def __init__(self, name: str, root: Optional[str], download: bool) -> None:
        super().__init__(root)
        self.meta = OGBMeta.lookup(name, self.level)
        self._check_supported()
        self.name = self.meta.name
        self.download = download
        self._dataset: Optional[InMemoryDataset] = None
        self._info: Optional[DatasetInfo] = None

    def _check_supported(self) -> None:
        if self.meta.flag("is hetero"):
            raise ValueError(f"{self.meta.name} is heterogeneous; graphlab's OGB loaders support homogeneous graphs")

    @property
    def dataset_dir(self) -> Path:
        """``root/<name with _>``, or ``root/<name>_pyg`` when that exists (as ``ogb`` does)."""
        pyg_dir = self.root / f"{self.meta.dir_name}_pyg"
        return pyg_dir if pyg_dir.exists() else self.root / self.meta.dir_name

    def _how_to_get(self) -> str:
        return (
            f"With internet access graphlab downloads it (download=True) from {self.meta.record['url']}; "
            f"offline, copy the unzipped OGB folder (RELEASE_v{self.meta.version}.txt, raw/, split/) "
            f"to {self.root / self.meta.dir_name}."
        )

    def _ensure_files(self) -> None:
        """Check the folder before ``ogb`` sees it; download or raise a clear error."""
        folder = self.dataset_dir
        release = folder / f"RELEASE_v{self.meta.version}.txt"
        if folder.is_dir() and not release.is_file():
            raise FileNotFoundError(
                f"{self.meta.name}: {folder} exists but has no {release.name}, so ogb would stop to ask "
                f"(input()) whether to delete it. If the folder is a complete copy of the OGB dataset, add "
                f"{release} (OGB's release note); otherwise delete {folder} and use download=True."
            )
        expected = self.meta.expected_files()
        missing = missing_files(folder, expected) if folder.is_dir() else [release.name, *expected]
        if not missing:
            return
        if not self.download:
            raise missing_files_error(self.meta.name, folder, missing, self._how_to_get(), self.root,
                                      self.meta.record["url"])
        download_or_raise(lambda: download_ogb(self.meta, self.root), self.meta.name, folder, missing,
                          self._how_to_get(), self.root, self.meta.record["url"])
        still_missing = missing_files(self.dataset_dir, self.meta.expected_files())
        if still_missing:
            raise missing_files_error(self.meta.name, self.dataset_dir, still_missing,
                                      "The downloaded archive lacks them; report this upstream.")

    @property
    def dataset(self) -> InMemoryDataset:
        """The ``ogb`` dataset, processed on first use (cached)."""
        if self._dataset is None:
            self._ensure_files()
            self._dataset = load_ogb_dataset(self.level, self.meta, self.dataset_dir)
        return self._dataset

    def prepare_data(self) -> None:
        """Download (if allowed and needed) and process the dataset."""
        _ = self.dataset

    @property
    def info(self) -> DatasetInfo:
        if self._info is None:
            self._info = self._build_info()
        return self._info

    @abc.abstractmethod
    def _build_info(self) -> DatasetInfo:
        """The dataset description, from metadata (each OGB level defines it)."""

    # ---- cheap metadata: first rows of the raw CSVs, falling back to the processed data
    def _raw_width(self, file: str) -> Optional[int]:
        """Column count of ``raw/<file>`` read from its first row, None if unreadable cheaply."""
        path = self.dataset_dir / "raw" / file
        if self.meta.flag("binary") or not path.is_file():
            return None
        return int(pd.read_csv(path, compression="gzip", header=None, nrows=1).shape[1])

    def _raw_num_nodes(self) -> Optional[int]:
        path = self.dataset_dir / "raw" / "num-node-list.csv.gz"
        if self.meta.flag("binary") or not path.is_file():
            return None
        return int(pd.read_csv(path, compression="gzip", header=None)[0].sum())

    def _node_feature_width(self) -> int:
        width = self._raw_width("node-feat.csv.gz")
        if width is None:
            width = int(self.dataset[0].x.size(1))
        return width

    def _edge_feature_width(self) -> int:
        if not self.meta.flag("has_edge_attr"):
            return 0
        width = self._raw_width("edge-feat.csv.gz")
        if width is None:
            edge_attr = self.dataset[0].edge_attr
            width = 1 if edge_attr.dim() == 1 else int(edge_attr.size(1))
        return width


class _TransductiveOGB(_OGBDataModule):
    """Node and link datasets: one graph, features built for featureless graphs."""

    def __init__(self, name: str, root: Optional[str], download: bool, featureless: Featureless) -> None:
        super().__init__(name, root, download)
        self.featureless = featureless

    def _num_nodes(self) -> int:
        num_nodes = self._raw_num_nodes()
        return int(self.dataset[0].num_nodes) if num_nodes is None else num_nodes

    def _input_width(self) -> int:
        if self.meta.flag("has_node_attr"):
            return self._node_feature_width()
        if self.featureless == "one_hot":
            num_nodes = self._num_nodes()
            _check_one_hot(self.meta.name, num_nodes)
            return num_nodes
        return 1

    def _features(self, data: Data, message_edges: Tensor) -> Tensor:
        """``x`` as float; for featureless graphs the ``featureless`` choice on ``message_edges``."""
        if self.meta.flag("has_node_attr"):
            return data.x.to(torch.float)
        num_nodes = int(data.num_nodes)
        if self.featureless == "one_hot":
            _check_one_hot(self.meta.name, num_nodes)
            return torch.eye(num_nodes)
        if self.featureless == "degree":
            return log_degree_features(message_edges, num_nodes)
        return torch.ones(num_nodes, 1)


def _check_one_hot(name: str, num_nodes: int) -> None:
    if num_nodes > MAX_ONE_HOT_NODES:
        raise ValueError(
            f"{name} has {num_nodes} nodes: one-hot features would be a dense {num_nodes}x{num_nodes} "
            f"matrix (limit {MAX_ONE_HOT_NODES} nodes); use featureless='degree' or 'constant'"
        )


class OGBNodeData(FullBatchMixin, _TransductiveOGB):
    """OGB node property prediction (``ogbn-*``), full-batch, with the official split.

    Every loader yields one :class:`~torch_geometric.data.Data` with float ``x`` ``[N, F]``,
    ``edge_index``, ``y`` (``[N]`` long for multiclass, ``[N, T]`` float for binary tasks
    such as ogbn-proteins) and 1-D boolean ``train_mask``/``val_mask``/``test_mask`` from
    OGB's ``split/<name>/`` files. Heterogeneous datasets (ogbn-mag) are not supported.

    Args:
        name: OGB name, e.g. ``"ogbn-arxiv"`` (case-insensitive; ``_`` works for ``-``).
        root: data root holding ``<name with _>/`` (default ``$GRAPHLAB_DATA`` or ``./data``).
        download: fetch the dataset from OGB when files are missing (needs internet).
        undirected: symmetrise ``edge_index`` (OGB's arxiv examples do; datasets stored
            with inverse edges, e.g. ogbn-products, are unchanged).
        featureless: node features for graphs without any (ogbn-proteins): ``"degree"``
            (``log(1 + degree)``, 1 column), ``"constant"`` (a column of ones) or
            ``"one_hot"`` (the identity, a learnable embedding through the first linear
            layer; at most ``MAX_ONE_HOT_NODES`` nodes).
        reorder: renumber the nodes by a locality ordering (:class:`graphlab.transforms.ReorderNodes`: ``rcm``,
            ``degree_bfs`` or ``community``); masks, targets and edges follow, and ``graphlab predict`` reports the
            original node ids. ``None`` (default): OGB's order.
    """

    level: Level = "node"

    def __init__(
        self,
        name: str = "ogbn-arxiv",
        root: Optional[str] = None,
        download: bool = True,
        undirected: bool = True,
        featureless: Featureless = "degree",
        reorder: Optional[ReorderMethod] = None,
    ) -> None:
        super().__init__(name, root, download, featureless)
        self.undirected = undirected
        self.reorder = reorder
        self._reorder = ReorderNodes(reorder) if reorder is not None else None  # validates the method now
        self._graph: Optional[Data] = None
        self.save_hyperparameters()

    def _build_info(self) -> DatasetInfo:
        task_type = _TASK_TYPES[self.meta.task_type]
        outputs = self.meta.num_classes if task_type == "multiclass" else self.meta.num_tasks
        return DatasetInfo(
            name=self.meta.name, level="node", task_type=task_type, num_features=self._input_width(),
            num_outputs=outputs, metric=self.meta.metric, ogb_name=self.meta.name,
            num_edge_features=self._edge_feature_width(),
        )

    @property
    def graph(self) -> Data:
        """The full graph with features, targets and the split masks (built once)."""
        if self._graph is None:
            self._graph = self._build_graph()
        return self._graph

    def _build_graph(self) -> Data:
        data = self.dataset[0]
        if self.undirected and not self.meta.flag("add_inverse_edge"):
            data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
        data.x = self._features(data, data.edge_index)
        multiclass = _TASK_TYPES[self.meta.task_type] == "multiclass"
        data.y = data.y.view(-1).to(torch.long) if multiclass else data.y.to(torch.float)
        split = self.dataset.get_idx_split()
        for mask_name, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
            mask = torch.zeros(int(data.num_nodes), dtype=torch.bool)
            mask[split[part]] = True
            data[mask_name] = mask
        return data if self._reorder is None else self._reorder(data)


class OGBLinkData(FullBatchLinkMixin, _TransductiveOGB):
    """OGB link property prediction (``ogbl-*``) with OGB's edge split, full-batch.

    The message-passing graph is the dataset's ``edge_index`` (OGB stores the training
    edges there, with inverse edges where ``add_inverse_edge``). The train loader yields
    it with ``pos_edge_index`` = ``split['train']['edge']`` (one column per stored edge;
    the task samples negatives); val/test loaders yield it with ``pos_edge_index`` and
    ``neg_edge_index`` from OGB's ``edge`` / ``edge_neg`` (a pool shared by every positive:
    ogbl-ddi, -collab, -ppa, -vessel). ogbl-citation2 (MRR) gives each positive
    ``(source_node[i], target_node[i])`` its own ``Q = 1000`` negatives
    ``(source_node[i], target_node_neg[i, q])``: ``neg_edge_index`` is then ``[2, P * Q]``
    positive-major (:func:`per_source_pairs`, ``info.negatives_per_positive = 1000``), and
    its directed citations are made undirected for message passing, as OGB's and NCN's
    citation2 code do. The knowledge graphs (wikikg2, biokg) are not supported.

    Args:
        name: OGB name, e.g. ``"ogbl-ddi"`` (case-insensitive; ``_`` works for ``-``).
        root: data root holding ``<name with _>/`` (default ``$GRAPHLAB_DATA`` or ``./data``).
        download: fetch the dataset from OGB when files are missing (needs internet).
        featureless: node features for graphs without any (ogbl-ddi): ``"one_hot"`` (the
            default: the identity, so the first linear layer is a learnable node embedding
            as in OGB's ddi baselines; at most ``MAX_ONE_HOT_NODES`` nodes), ``"degree"``
            (``log(1 + degree)`` on the message graph) or ``"constant"`` (ones).
        batch_size: training positives per optimisation step (e.g. NCN's 24576 on ogbl-ddi); ``None`` trains on
            all of them at once (:func:`~graphlab.data.base.link_train_loader`).
        val_edges_in_test_graph: at test time the validation positives join the message-passing graph (in both
            directions), as ogbl-collab's ``use_valedges_as_input`` protocol; training and validation use the
            training graph only.
        eval_batch_positives: cut validation and test into batches of this many positives, each with its
            negatives (:func:`~graphlab.data.base.link_eval_loader`; the split's metric is unchanged); ``None``: one
            batch per split.
    """

    level: Level = "link"

    def __init__(
        self,
        name: str = "ogbl-ddi",
        root: Optional[str] = None,
        download: bool = True,
        featureless: Featureless = "one_hot",
        batch_size: Optional[int] = None,
        val_edges_in_test_graph: bool = False,
        eval_batch_positives: Optional[int] = None,
    ) -> None:
        super().__init__(name, root, download, featureless)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
        if eval_batch_positives is not None and eval_batch_positives < 1:
            raise ValueError(f"eval_batch_positives must be >= 1 or None (one batch), got {eval_batch_positives}")
        self.batch_size, self.val_edges_in_test_graph = batch_size, val_edges_in_test_graph
        self.eval_batch_positives = eval_batch_positives
        self._parts: Optional[dict[str, Data]] = None
        self.save_hyperparameters()

    def train_dataloader(self) -> Any:
        return link_train_loader(self.parts["train"], self.batch_size)

    def val_dataloader(self) -> Any:
        return link_eval_loader(self.parts["val"], self.eval_batch_positives, self.negatives_per_positive)

    def test_dataloader(self) -> Any:
        return link_eval_loader(self.parts["test"], self.eval_batch_positives, self.negatives_per_positive)

    @property
    def negatives_per_positive(self) -> Optional[int]:
        """OGB's negatives per positive for per-source datasets (citation2: 1000), ``None`` for a shared pool."""
        return PER_SOURCE_NEGATIVES.get(self.meta.name)

    def _check_supported(self) -> None:
        super()._check_supported()
        if self.meta.task_type != "link prediction" or (self.meta.metric == "mrr"
                                                        and self.meta.name not in PER_SOURCE_NEGATIVES):
            raise ValueError(
                f"{self.meta.name} is a knowledge graph ({self.meta.metric} over (head, relation, tail) triples), "
                "which the link contract (node pairs) does not express; supported: ogbl-ddi, ogbl-collab, "
                "ogbl-ppa, ogbl-vessel, ogbl-citation2"
            )

    def _build_info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.meta.name, level="link", task_type="link", num_features=self._input_width(),
            num_outputs=1, metric=self.meta.metric, ogb_name=self.meta.name,
            num_edge_features=self._edge_feature_width(), negatives_per_positive=self.negatives_per_positive,
        )

    @property
    def parts(self) -> dict[str, Data]:
        """``{"train", "val", "test"}`` Data objects sharing ``x`` and ``edge_index``."""
        if self._parts is None:
            self._parts = self._build_parts()
        return self._parts

    def _build_parts(self) -> dict[str, Data]:
        data = self.dataset[0]
        per_source = self.negatives_per_positive
        edge_index = data.edge_index
        if per_source is not None and not self.meta.flag("add_inverse_edge"):
            edge_index = to_undirected(edge_index, num_nodes=data.num_nodes)  # citations: messages both ways
        x = self._features(data, edge_index)
        split = self.dataset.get_edge_split()
        pairs = {}
        for theirs in ("train", "valid", "test"):
            if per_source is None:
                neg = None if theirs == "train" else _edges(split[theirs], "edge_neg", self.meta.name)
                pairs[theirs] = (_edges(split[theirs], "edge", self.meta.name), neg)
            else:
                pairs[theirs] = per_source_pairs(split[theirs], self.meta.name, None if theirs == "train" else per_source)
        parts = {"train": Data(x=x, edge_index=edge_index, num_nodes=data.num_nodes, pos_edge_index=pairs["train"][0])}
        for ours, theirs in (("val", "valid"), ("test", "test")):
            parts[ours] = Data(x=x, edge_index=edge_index, num_nodes=data.num_nodes,
                               pos_edge_index=pairs[theirs][0], neg_edge_index=pairs[theirs][1])
        if self.val_edges_in_test_graph:
            val = parts["val"].pos_edge_index
            parts["test"].edge_index = to_undirected(torch.cat([edge_index, val], dim=1), num_nodes=data.num_nodes)
        return parts


def per_source_pairs(part: dict[str, Any], name: str,
                     negatives_per_positive: Optional[int] = None) -> tuple[Tensor, Optional[Tensor]]:
    r"""OGB's per-source split (``source_node [P]``, ``target_node [P]``, ``target_node_neg [P, Q]``) as node pairs.

    Positives :math:`(s_i, t_i)` as ``[2, P]``; with ``negatives_per_positive = Q`` also the negatives
    :math:`(s_i, t^-_{i,q})` as ``[2, P * Q]`` **positive-major** (column :math:`iQ + q`), the layout
    :func:`~graphlab.eval.metrics.link_metric` ranks per positive (OGB's MRR). ``None`` (the training part): no
    negatives (the task samples them).
    """
    keys = ("source_node", "target_node") + (("target_node_neg",) if negatives_per_positive is not None else ())
    missing = [k for k in keys if k not in part]
    if missing:
        raise ValueError(f"{name}: the split has no {missing} entries (keys: {sorted(part)}); per-source link splits "
                         "need source_node, target_node and, for valid/test, target_node_neg")
    src, dst = (torch.as_tensor(part[k]).to(torch.long).view(-1) for k in ("source_node", "target_node"))
    if src.numel() != dst.numel():
        raise ValueError(f"{name}: source_node has {src.numel()} entries but target_node {dst.numel()}")
    pos = torch.stack([src, dst])
    if negatives_per_positive is None:
        return pos, None
    neg_dst = torch.as_tensor(part["target_node_neg"]).to(torch.long)
    if neg_dst.shape != (src.numel(), negatives_per_positive):
        raise ValueError(f"{name}: target_node_neg should be [{src.numel()}, {negatives_per_positive}] (each source's "
                         f"own {negatives_per_positive} negatives), got {list(neg_dst.shape)}")
    neg = torch.stack([src.repeat_interleave(negatives_per_positive), neg_dst.reshape(-1)])
    return pos, neg


def _edges(part: dict[str, Tensor], key: str, name: str) -> Tensor:
    """OGB's ``[E, 2]`` edge list as a ``[2, E]`` long tensor."""
    if key not in part:
        raise ValueError(f"{name}: the split has no {key!r} entry (keys: {sorted(part)})")
    return part[key].to(torch.long).t().contiguous()


class OGBGraphTargets:
    """Per-graph transform to the graph batch contract.

    ``y`` becomes ``[1, T]`` float (binary/regression; NaN kept) or ``[1]`` long
    (multiclass); graphs without node features get ``x`` = ones ``[N, 1]``.
    """

    def __init__(self, task_type: str, constant_x: bool) -> None:
        self.task_type = task_type
        self.constant_x = constant_x

    def __call__(self, data: Data) -> Data:
        if self.task_type == "multiclass":
            data.y = data.y.view(-1).to(torch.long)
        else:
            data.y = data.y.view(1, -1).to(torch.float)
        if self.constant_x:
            data.x = torch.ones(int(data.num_nodes), 1)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task_type}, constant_x={self.constant_x})"


class OGBGraphData(PartLoaderMixin, _OGBDataModule):
    """OGB graph property prediction (``ogbg-*``) with the official (scaffold) split.

    Loaders yield PyG ``Batch`` objects; ``y`` is ``[B, T]`` float with NaN for missing
    labels (binary, regression) or ``[B]`` long (multiclass, ogbg-ppa). Molecule
    datasets keep OGB's integer atom/bond features (``info.categorical_features``: embed
    them with ``ogb``'s ``AtomEncoder``/``BondEncoder``); graphs without node features
    get a constant ``x``. ogbg-code2 (sequence targets) is not supported.

    Args:
        name: OGB name, e.g. ``"ogbg-molbace"`` (case-insensitive; ``_`` works for ``-``).
        root: data root holding ``<name with _>/`` (default ``$GRAPHLAB_DATA`` or ``./data``).
        batch_size: graphs per batch.
        num_workers: DataLoader worker processes.
        download: fetch the dataset from OGB when files are missing (needs internet).
        subgraph: ``None`` (off) or the arguments of :class:`graphlab.transforms.SubgraphPairs`, e.g.
            ``{policy: ego, num_hops: 3, max_dis: 5}``: the pairs of node-based subgraph GNNs, computed once and
            cached in ``<dataset folder>/subgraph/<key>/`` (:mod:`graphlab.data.subgraph`).
    """

    level: Level = "graph"
    _val_part = "valid"  # OGB's name of the validation split

    def __init__(
        self,
        name: str = "ogbg-molhiv",
        root: Optional[str] = None,
        batch_size: int = 32,
        num_workers: int = 0,
        download: bool = True,
        subgraph: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(name, root, download)
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.subgraph = subgraph
        self._pairs_transform = subgraph_transform(subgraph)  # validates the option now
        self._pairs: Optional[InMemoryDataset] = None
        self.save_hyperparameters()

    @property
    def dataset(self) -> InMemoryDataset:
        """The ``ogb`` dataset, or with ``subgraph`` its cached :class:`~graphlab.data.subgraph.SubgraphPairsDataset`."""
        base = super().dataset
        if self._pairs_transform is None:
            return base
        if self._pairs is None:
            self._pairs = with_subgraph_pairs(base, self._pairs_transform, self.dataset_dir)
        return self._pairs

    def _check_supported(self) -> None:
        super()._check_supported()
        if self.meta.task_type not in _TASK_TYPES:
            raise ValueError(
                f"{self.meta.name} has task type {self.meta.task_type!r}; supported: binary/multiclass "
                "classification and regression"
            )

    @property
    def task_type(self) -> str:
        return _TASK_TYPES[self.meta.task_type]

    @property
    def categorical(self) -> bool:
        """OGB molecules store atom and bond features as integer categories."""
        return self.meta.record.get("data type") == "mol"

    def _build_info(self) -> DatasetInfo:
        has_x = self.meta.flag("has_node_attr")
        outputs = self.meta.num_classes if self.task_type == "multiclass" else self.meta.num_tasks
        return DatasetInfo(
            name=self.meta.name, level="graph", task_type=self.task_type,
            num_features=self._node_feature_width() if has_x else 1, num_outputs=outputs,
            metric=self.meta.metric, ogb_name=self.meta.name, num_edge_features=self._edge_feature_width(),
            categorical_features=self.categorical and has_x,
        )

    @cached_property
    def split_index(self) -> dict[str, Tensor]:
        """OGB's ``{"train", "valid", "test"}`` graph indices."""
        return super().dataset.get_idx_split()

    def setup(self, stage: Optional[str] = None) -> None:
        self.dataset.transform = OGBGraphTargets(self.task_type, not self.meta.flag("has_node_attr"))
        _ = self.split_index

    def _loader(self, part: str, shuffle: bool) -> PyGDataLoader:
        if self.dataset.transform is None:
            self.setup()
        return PyGDataLoader(
            self.dataset[self.split_index[part]], batch_size=self.batch_size, shuffle=shuffle,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
        )
