"""Node classification on one full graph or on mini-batches of graphs, with the split's node masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphlab.tasks.base import GraphTask


class NodeClassification(GraphTask):
    r"""Node classification with the split's boolean masks.

    The loss follows ``info.task_type``: ``multiclass`` (labels ``[N]`` class ids) takes the cross-entropy over
    the split's nodes,
    :math:`\mathcal{L} = -\frac{1}{|V_{tr}|}\sum_{v \in V_{tr}} \log \mathrm{softmax}(f(X, A)_v)_{y_v}`;
    ``binary`` (multi-label 0/1 targets ``[N, T]``, e.g. the bits of an integer) the binary cross-entropy with
    logits over the split's nodes and all ``T`` labels. The model maps ``(x, edge_index)`` to logits
    ``[N, C]`` / ``[N, T]``. Each loader may yield one full graph (transductive) or batches of graphs, each
    carrying the mask of its split. Datasets with several fixed splits choose one with the DataModule's
    ``split`` argument. Logged: ``train_loss``, ``val_loss``, ``{train,val,test}_<metric>``.
    """

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        if self.info.task_type == "binary":
            return F.binary_cross_entropy_with_logits(logits, y.view(logits.shape).to(logits.dtype))
        if self.info.task_type != "multiclass":
            raise ValueError(f"node classification supports task_type 'multiclass' or 'binary', got "
                             f"{self.info.task_type!r}")
        return F.cross_entropy(logits, y)

    def _step(self, batch: Data, stage: str) -> Tensor:
        if batch.x is None:
            raise ValueError("node classification needs node features `x`; the DataModule gave none")
        mask = getattr(batch, f"{stage}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{stage}_mask`: node classification needs train/val/test masks")
        logits = self.call_model(batch)
        loss = self.loss(logits[mask], batch.y[mask])
        self.log_loss(stage, loss, int(mask.sum()))
        self.collect(stage, batch.y[mask], logits[mask], **self._row_ids(batch, mask))
        return loss

    @staticmethod
    def _row_ids(batch: Data, mask: Tensor) -> dict[str, Tensor]:
        """What names the masked nodes across DDP ranks (see :meth:`GraphTask.collect`): a sampled subgraph
        (PyG's NeighborLoader layout) their global ids ``n_id`` (the split metric then counts each node once, in node
        order, in one process too); a batch of graphs (``ptr``) each node's graph and its id within that graph."""
        n_id = getattr(batch, "n_id", None)
        if n_id is not None:
            return {"index": n_id[mask]}
        ptr, graph_of = getattr(batch, "ptr", None), getattr(batch, "batch", None)
        if ptr is None or graph_of is None:
            return {}
        node = mask.nonzero().view(-1)
        graph = graph_of[node]
        return {"item_rows": torch.stack([graph, node - ptr[graph]], dim=1)}

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        mask = getattr(batch, "train_mask", None)
        loss = self._step(batch, "train")
        return self.add_auxiliary_losses(loss, int(mask.sum()))

    def validation_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "val")  # per-dataloader metrics: GraphTask.collect

    def test_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")  # per-dataloader metrics: GraphTask.collect

    def predict_step(self, batch: Data, batch_idx: int) -> dict[str, Tensor]:
        """``{"node_id", "prob" [n, C], "label"}`` for the nodes of :attr:`predict_split` (softmax over classes for
        multiclass, a sigmoid per label for binary), by increasing node id. ``node_id`` is the node's id in the whole
        graph: a sampled batch (``n_id``, :class:`graphlab.data.SampledNodeData`) maps its local ids through ``n_id``.
        On a graph renumbered by :class:`graphlab.transforms.ReorderNodes` (it carries ``node_perm``,
        ``perm[new] = old``, sliced with the batch's nodes like every node attribute) the ids are the user's original
        ones, so the rows are those of the same run on the graph as given."""
        mask = getattr(batch, f"{self.predict_split}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{self.predict_split}_mask`: node prediction needs the split's mask")
        rows = mask.nonzero().view(-1)
        node_perm = getattr(batch, "node_perm", None)
        n_id = getattr(batch, "n_id", None)
        ids = node_perm[rows] if node_perm is not None else rows if n_id is None else n_id[rows]
        ids, order = torch.sort(ids)
        rows = rows[order]
        logits = self.call_model(batch)[rows]
        prob = torch.sigmoid(logits) if self.info.task_type == "binary" else logits.softmax(dim=-1)
        return {"node_id": ids, "prob": prob, "label": batch.y[rows]}
