"""Link prediction: score node pairs, train against sampled negatives."""

from __future__ import annotations

import copy
import inspect
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlab import ops
from graphlab.data.splits import pair_keys, sample_tail_negatives
from graphlab.eval.metrics import link_metric, ranking_metric
from graphlab.info import DatasetInfo, is_ranking_metric
from graphlab.tasks.base import GraphTask
from graphlab.tasks.checkpoint import load_model_weights


def bpr_loss(pos_score: Tensor, neg_score: Tensor, embeddings: Optional[Tensor] = None,
             decay: float = 0.0) -> Tensor:
    r"""Bayesian personalised ranking (Rendle et al. 2009) with L2 on the rows the batch touches:

    .. math::
        \frac1B \sum_b \mathrm{softplus}\big(s(u_b, j_b) - s(u_b, i_b)\big)
        + \lambda \frac{1}{2B} \sum_{r \in \text{rows}} \lVert e_r \rVert^2,

    ``pos_score``/``neg_score`` ``[B]`` (positive pair ``(u, i)``, its negative ``(u, j)``), ``embeddings``
    the initial-embedding rows of ``u``, ``i`` and ``j`` (Sheaf4Rec's and LightGCN's regulariser), ``decay`` = λ.
    """
    loss = F.softplus(neg_score - pos_score).mean()
    if embeddings is not None and decay:
        loss = loss + decay * 0.5 * embeddings.pow(2).sum() / max(pos_score.numel(), 1)
    return loss


def remove_target_links(edge_index: Tensor, targets: Tensor, num_nodes: int) -> Tensor:
    r"""The message-passing graph without the target links (NCN's target-link removal, ``--maskinput``).

    .. math::
        E' = E \setminus \{(u, v), (v, u) : (u, v) \in T\}

    Every column of ``edge_index`` (``[2, E]``) that joins a target pair of ``targets`` (``[2, B]``), in either
    direction, is dropped; every other column is kept, in order. Without it a model trained on its own targets
    learns that a positive pair is always an edge of the graph it sees, which no test pair is.
    """
    _check_pairs(targets, num_nodes, "target links")
    n = int(num_nodes)
    keys = edge_index[0] * n + edge_index[1]
    drop = torch.cat([targets[0] * n + targets[1], targets[1] * n + targets[0]])
    return edge_index[:, ~torch.isin(keys, drop)]


def sample_non_edges(edge_index: Tensor, num_nodes: int, num_samples: int) -> Tensor:
    r"""``num_samples`` node pairs drawn uniformly from the non-edges of ``edge_index``: ordered pairs
    :math:`(u, v)`, :math:`u \ne v`, with no column :math:`(u, v)` in ``edge_index`` (PyG ``negative_sampling``'s
    distribution), by rejection against the graph's sorted adjacency (:func:`graphlab.ops.sorted_csr`, cached per
    ``edge_index``, so a training loop over one graph sorts it once instead of hashing all its edges every step).
    Uses torch's global generator (``seed_everything`` fixes the draw). Returns ``[2, num_samples]``.
    """
    n = int(num_nodes)
    rowptr, col, _ = ops.sorted_csr(edge_index, n)  # row = target v, col = source u
    keys = torch.repeat_interleave(torch.arange(n, device=col.device), rowptr.diff()) * n + col
    free = n * (n - 1) - int((col != torch.repeat_interleave(torch.arange(n, device=col.device), rowptr.diff())).sum())
    if num_samples > 0 and free <= 0:
        raise ValueError(f"cannot sample negative pairs: the graph on {n} nodes has every pair as an edge")
    chunks, found = [], 0
    while found < num_samples:
        draw = int((num_samples - found) * n * (n - 1) / max(free, 1) * 1.1) + 16
        u = torch.randint(0, n, (draw,), device=col.device)
        v = torch.randint(0, max(n - 1, 1), (draw,), device=col.device)
        v = v + (v >= u).to(v.dtype)  # uniform over v != u
        key = v * n + u
        at = torch.searchsorted(keys, key).clamp(max=max(keys.numel() - 1, 0))
        keep = keys[at] != key if keys.numel() else torch.ones_like(key, dtype=torch.bool)
        pairs = torch.stack([u[keep], v[keep]])
        chunks.append(pairs)
        found += pairs.size(1)
    return torch.cat(chunks, dim=1)[:, :num_samples] if chunks else edge_index.new_zeros(2, 0)


def _check_pairs(pairs: Tensor, num_nodes: int, what: str) -> None:
    """``pairs`` must be a ``[2, P]`` integer tensor of node indices in ``[0, num_nodes)``."""
    if pairs.dim() != 2 or pairs.size(0) != 2 or pairs.is_floating_point():
        raise ValueError(f"{what} must be a [2, P] integer tensor of node pairs, got {tuple(pairs.shape)} "
                         f"{pairs.dtype}")
    if pairs.numel() == 0:
        return
    lo, hi = int(pairs.min()), int(pairs.max())
    if lo < 0 or hi >= num_nodes:
        raise ValueError(f"{what} has node index {hi if hi >= num_nodes else lo} but the graph has {num_nodes} nodes "
                         f"(valid: 0..{num_nodes - 1}): check the DataModule's pairs against its num_nodes")


class LinkPrediction(GraphTask):
    r"""Link prediction and recommendation with sampled negatives.

    Training, ``loss="bce"``: minimise
    :math:`-\log\sigma(s(u,v)) - \log(1-\sigma(s(u',v')))` over positive training edges
    :math:`(u,v)` and uniformly sampled non-edges :math:`(u',v')`, ``num_negatives`` per
    positive. ``loss="bpr"``: :func:`bpr_loss`, each positive :math:`(u, v)` against ``num_negatives``
    corrupted tails :math:`(u, v')` (``v'`` drawn from the batch's ``dst_candidates``, e.g. all items, or from
    all nodes, never a training edge), plus ``l2_decay`` times the L2 of the model's initial embeddings
    (``model.embed(x)``) of the touched rows.

    Evaluation: ``hits@K`` / ``mrr`` score the split's fixed positives and negatives with
    :func:`~graphlab.eval.metrics.link_metric` (OGB's conventions: a shared pool of negatives, or each positive
    ranked against its own ``info.negatives_per_positive`` negatives); ``recall@K`` / ``ndcg@K`` rank, for every query node of the batch's
    ``rank_src``, all candidates of ``rank_dst`` except its ``rank_exclude`` pairs, with the split's positives
    as the relevant set (:func:`~graphlab.eval.metrics.ranking_metric`, averaged over queries with a positive).
    ``val_loss`` is the BCE of the fixed positives and negatives in every case.

    The model either defines an encoder/decoder pair, or ``forward(x, edge_index, edge_label_index) -> [P]``
    logits (called once per chunk of pairs). The encoder/decoder contract:

    * ``encode(x, edge_index) -> z``: node states, computed once per batch;
    * ``decode(z, pairs, *, graph) -> [P]``: logits of the node pairs ``pairs`` (``[2, P]``, a chunk of at most
      ``eval_batch_size`` pairs). ``graph`` is the batch the encoder saw (a PyG ``Data``: ``edge_index``,
      ``num_nodes`` and whatever a transform cached on it, e.g. a CSR adjacency), the same object for every
      chunk of the batch, so a decoder that reads neighbourhoods (common neighbours, NCN) scores pairs
      without re-encoding. ``graph`` is keyword-only; decoders that ignore it accept it as ``graph=None``.

    Training batches: the train loader yields the message-passing graph with a batch of positives (all of them,
    or ``batch_size`` of them per step when the DataModule cuts them, e.g. NCN's 1152 on Cora). Negatives are
    drawn afresh for every batch (uniform non-edges of the training graph, :func:`sample_non_edges`). With
    ``remove_target_links`` the batch's positives are deleted from the graph the model sees, in both directions
    (:func:`remove_target_links`), for the encoder and for a decoder that reads neighbourhoods alike.

    Args:
        num_negatives: negatives sampled per positive training edge.
        remove_target_links: train on the graph without the batch's positive links (NCN's ``--maskinput``).
        eval_batch_size: pairs scored at once during evaluation.
        loss: ``"bce"`` or ``"bpr"``.
        l2_decay: λ of the BPR embedding regulariser (needs ``model.embed``); 0 disables it.
        init_from: warm start: a checkpoint (a graphlab run's ``.ckpt``, or a saved ``model.state_dict()``) whose
            weights are copied into the model when ``fit`` starts, by name, e.g. NCNC from a trained NCN (the
            official ``--loadmod``); weights only the model has keep their initialisation, a shape mismatch is an
            error (:func:`~graphlab.tasks.checkpoint.load_model_weights`). Skipped when ``fit`` resumes from
            ``ckpt_path``.
        model, lr, weight_decay, optimizer, lr_scheduler, info, aux_loss_weights: see
            :class:`~graphlab.tasks.base.GraphTask`.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        lr_scheduler: Literal["none", "plateau", "cosine"] = "none",
        info: Optional[DatasetInfo] = None,
        num_negatives: int = 1,
        eval_batch_size: int = 65536,
        loss: Literal["bce", "bpr"] = "bce",
        l2_decay: float = 0.0,
        remove_target_links: bool = False,
        init_from: Optional[str] = None,
        aux_loss_weights: Optional[dict[str, float]] = None,
    ) -> None:
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if l2_decay < 0 or (l2_decay and loss != "bpr"):
            raise ValueError(f"l2_decay must be >= 0 and is used by loss='bpr' only, got {l2_decay} with {loss!r}")
        if l2_decay and not callable(getattr(model, "embed", None)):
            raise ValueError(f"l2_decay > 0 regularises the initial embeddings, but {type(model).__name__} has no "
                             "`embed(x)` method: set l2_decay to 0 or use a model with an embedding table")
        _check_decode_contract(model)
        super().__init__(model, lr, weight_decay, optimizer, lr_scheduler, info, aux_loss_weights)
        self.num_negatives = num_negatives
        self.eval_batch_size = eval_batch_size
        self.loss_name, self.l2_decay = loss, l2_decay
        self.remove_target_links = remove_target_links
        self.init_from = init_from

    def scorer(self, batch: Data) -> Callable[[Tensor], Tensor]:
        """A function ``pairs [2, P] -> [P]`` logits on the batch's graph (encodes once when the model can)."""
        encode, decode = getattr(self.model, "encode", None), getattr(self.model, "decode", None)
        if callable(encode) and callable(decode):
            z = encode(batch.x, batch.edge_index)
            return lambda pairs: decode(z, pairs, graph=batch)
        return lambda pairs: self.call_model(batch, edge_label_index=pairs)

    def score(self, batch: Data, pairs: Tensor, scorer: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """Logits of the node pairs ``pairs`` (``[2, P]``), ``eval_batch_size`` pairs at a time (with ``scorer``
        from :meth:`scorer` when the batch was already encoded)."""
        _check_pairs(pairs, int(batch.num_nodes), "the pairs to score")
        score = scorer if scorer is not None else self.scorer(batch)
        chunks = pairs.split(self.eval_batch_size, dim=1)
        if not chunks:
            return pairs.new_zeros(0, dtype=torch.get_default_dtype())
        return torch.cat([score(c) for c in chunks])

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        if self.loss_name == "bpr":
            loss = self._bpr_step(batch)
            self.log("train_loss", loss, prog_bar=True, batch_size=batch.pos_edge_index.size(1))
            return self.add_auxiliary_losses(loss, batch.pos_edge_index.size(1))
        pos = batch.pos_edge_index
        if pos.size(1) == 0:
            raise ValueError("the training batch has no positive pairs (pos_edge_index is [2, 0]): check the "
                             "DataModule's training split and batch_size")
        neg = sample_non_edges(batch.edge_index, int(batch.num_nodes), pos.size(1) * self.num_negatives)
        graph = batch
        if self.remove_target_links:
            graph = copy.copy(batch)
            graph.edge_index = remove_target_links(batch.edge_index, pos, int(batch.num_nodes))
        logits = self.score(graph, torch.cat([pos, neg], dim=1))
        labels = torch.cat([logits.new_ones(pos.size(1)), logits.new_zeros(neg.size(1))])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.log("train_loss", loss, prog_bar=True, batch_size=pos.size(1))
        return self.add_auxiliary_losses(loss, pos.size(1))

    def _bpr_step(self, batch: Data) -> Tensor:
        pos = batch.pos_edge_index.repeat(1, self.num_negatives)
        candidates = getattr(batch, "dst_candidates", None)
        if candidates is None:
            candidates = torch.arange(batch.num_nodes, device=pos.device)
        tails = sample_tail_negatives(pos[0], candidates, pair_keys(batch.edge_index, batch.num_nodes),
                                      batch.num_nodes)
        pairs = torch.cat([pos, torch.stack([pos[0], tails])], dim=1)
        scores = self.score(batch, pairs)
        rows = None
        if self.l2_decay:
            rows = self.model.embed(batch.x)[torch.cat([pos[0], pos[1], tails])]
        return bpr_loss(scores[: pos.size(1)], scores[pos.size(1):], rows, self.l2_decay)

    def _evaluate(self, batch: Data, stage: str) -> None:
        for key in ("pos_edge_index", "neg_edge_index"):
            if getattr(batch, key, None) is None:
                raise ValueError(f"the {stage} batch has no `{key}`: link evaluation needs fixed positives and negatives")
        if batch.pos_edge_index.size(1) == 0:
            raise ValueError(f"the {stage} batch has no positive pairs (pos_edge_index is [2, 0]): the DataModule's "
                             f"{stage} split is empty")
        self._check_negative_count(batch, stage)
        pos_neg = torch.cat([batch.pos_edge_index, batch.neg_edge_index], dim=1)
        scorer = self.scorer(batch)  # encode once for the loss and the ranking
        scores = self.score(batch, pos_neg, scorer)
        num_pos = batch.pos_edge_index.size(1)
        labels = torch.cat([scores.new_ones(num_pos), scores.new_zeros(scores.numel() - num_pos)])
        self.log(f"{stage}_loss", F.binary_cross_entropy_with_logits(scores, labels), batch_size=num_pos, sync_dist=True)
        if self.info is not None and is_ranking_metric(self.info.metric):
            per_query = self.rank(batch, stage, scorer)
            self.collect(stage, torch.ones_like(per_query), per_query)
        else:
            self.collect(stage, labels, scores)

    def _check_negative_count(self, batch: Data, stage: str) -> None:
        """Each positive's own ``Q`` negatives must all be there (else its rank would silently mix rows)."""
        per_positive = self.info.negatives_per_positive
        num_pos, num_neg = batch.pos_edge_index.size(1), batch.neg_edge_index.size(1)
        if per_positive is not None and num_neg != per_positive * num_pos:
            raise ValueError(
                f"the {stage} batch has {num_pos} positives and {num_neg} negatives, but {self.info.name} declares "
                f"negatives_per_positive={per_positive} (so {per_positive * num_pos} negatives, positive-major): fix "
                "the DataModule's neg_edge_index or its DatasetInfo"
            )

    def on_fit_start(self) -> None:
        """Warm-start from ``init_from`` (unless resuming); record the negatives per positive beside the metric: an
        MRR means little without it."""
        if self.init_from is not None and self.trainer.ckpt_path is None:
            missing, unexpected = load_model_weights(self.model, self.init_from)
            rank_zero_info(f"[graphlab] init_from {self.init_from}: loaded the shared weights; kept the initial "
                           f"{missing or 'none'}; ignored {unexpected or 'none'}")
        if self.logger is not None and self.info.negatives_per_positive is not None:
            self.logger.log_hyperparams({"metric": self.info.metric_label,
                                         "negatives_per_positive": self.info.negatives_per_positive})

    @torch.no_grad()
    def rank(self, batch: Data, stage: str = "eval", scorer: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """Per-query ``recall@K`` / ``ndcg@K`` of the batch's full ranking (see the class docstring)."""
        fields = ("rank_src", "rank_dst", "rank_exclude")
        missing = [k for k in fields if getattr(batch, k, None) is None]
        if missing:
            raise ValueError(f"the {stage} batch has no {missing}: {self.info.metric} ranks every `rank_dst` node for "
                             f"each `rank_src` node; use a DataModule that provides {list(fields)} or metric hits@K")
        src, dst = batch.rank_src, batch.rank_dst
        row_of = torch.full((batch.num_nodes,), -1, dtype=torch.long, device=src.device)
        col_of = row_of.clone()
        row_of[src], col_of[dst] = torch.arange(src.numel(), device=src.device), torch.arange(dst.numel(), device=src.device)

        def dense(pairs: Tensor) -> Tensor:
            rows, cols = row_of[pairs[0]], col_of[pairs[1]]
            keep = (rows >= 0) & (cols >= 0)
            out = torch.zeros(src.numel(), dst.numel(), dtype=torch.bool, device=src.device)
            out[rows[keep], cols[keep]] = True
            return out

        relevant, excluded = dense(batch.pos_edge_index), dense(batch.rank_exclude)
        scores = self._score_grid(scorer if scorer is not None else self.scorer(batch), src, dst).masked_fill(excluded, float("-inf"))
        return ranking_metric(scores, relevant & ~excluded, self.info.metric)

    def _score_grid(self, score: Callable[[Tensor], Tensor], src: Tensor, dst: Tensor) -> Tensor:
        """``[len(src), len(dst)]`` scores, about ``eval_batch_size`` pairs at a time."""
        out = []
        for chunk in src.split(max(1, self.eval_batch_size // max(dst.numel(), 1))):
            pairs = torch.stack([chunk.repeat_interleave(dst.numel()), dst.repeat(chunk.numel())])
            out.append(score(pairs).view(chunk.numel(), dst.numel()))
        return torch.cat(out)

    def compute_metric(self, y_true: Tensor, y_pred: Tensor) -> float:
        if is_ranking_metric(self.info.metric):  # collected per-query values (see _evaluate)
            return float(y_pred.mean())
        positive = y_true.bool()
        return link_metric(self.info, y_pred[positive], y_pred[~positive])

    def validation_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val")  # per-dataloader metrics: GraphTask.collect

    def test_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "test")  # per-dataloader metrics: GraphTask.collect

    def predict_step(self, batch: Data, batch_idx: int) -> dict[str, Tensor]:
        """``{"src", "dst", "prob"}`` of the batch's ``edge_label_index`` pairs, and ``label`` (1 for the split's
        positives, 0 for its negatives) when the batch has ``edge_label``."""
        pairs = getattr(batch, "edge_label_index", None)
        if pairs is None:
            raise ValueError("predict batches need `edge_label_index` [2, P]: the node pairs to score")
        out = {"src": pairs[0], "dst": pairs[1], "prob": torch.sigmoid(self.score(batch, pairs))}
        if getattr(batch, "edge_label", None) is not None:
            out["label"] = batch.edge_label
        return out


def _check_decode_contract(model: nn.Module) -> None:
    """A model with ``encode`` and ``decode`` must let the task pass ``graph=`` to ``decode``."""
    decode = getattr(model, "decode", None)
    if not (callable(getattr(model, "encode", None)) and callable(decode)):
        return
    params = inspect.signature(decode).parameters
    takes_graph = "graph" in params and params["graph"].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not (takes_graph or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())):
        raise TypeError(
            f"{type(model).__name__}.decode{inspect.signature(decode)} does not accept the keyword `graph`: "
            "LinkPrediction calls decode(z, pairs, graph=batch); add `*, graph: Optional[Data] = None` to it"
        )
