r"""NCN and NCNC link predictors (Wang, Yang, Zhang, ICLR 2024): the paper's MPNN encoders plus the heads of
:mod:`graphlab.nn.ncn`, under :class:`~graphlab.tasks.LinkPrediction`'s ``encode`` / ``decode`` contract.

The encoder runs once per batch on the graph the task gives (the training graph with the batch's targets
removed, or the evaluation graph); the decoder reads that same graph's neighbourhoods through a sorted CSR
(:func:`graphlab.ops.sorted_csr`, cached per ``edge_index``), so evaluation encodes once for every chunk.
Hyperparameter names follow the official ``NeighborOverlap.py`` flags in brackets.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlab import ops
from graphlab.nn.conv import GCNConv
from graphlab.nn.dropout import UniformDropout
from graphlab.nn.ncn import NCNCPredictor, NCNPredictor
from graphlab.nn.sparse_input import DropoutLinear

Conv = Literal["puregcn", "puresum", "puremean", "gcn", "sage", "gin"]
PURE = ("puregcn", "puresum", "puremean")


def _drop_edges(edge_index: Tensor, p: float, training: bool) -> tuple[Tensor, Optional[Tensor]]:
    """``gnnedp``: drop each edge with probability ``p`` and weight the kept ones :math:`1/(1-p)` (training only)."""
    if not training or p <= 0.0:
        return edge_index, None
    keep = torch.rand(edge_index.size(1), device=edge_index.device) > p
    kept = edge_index[:, keep]
    return kept, torch.full((kept.size(1),), 1.0 / (1.0 - p), device=edge_index.device)


class PureConv(nn.Module):
    r"""NCN's parameter-free convolutions on :math:`A` (rows = targets), with optional edge weights :math:`w`.

    * ``puregcn``: :math:`\tilde D^{-1/2}(A + I)\tilde D^{-1/2} x`, computed as
      :math:`n \odot (A (n \odot x) + n \odot x)` with :math:`n_v = (1 + \sum_u A_{vu})^{-1/2}`;
    * ``puresum``: :math:`A x`; ``puremean``: :math:`D^{-1} A x`.
    """

    def __init__(self, aggr: Literal["gcn", "sum", "mean"] = "gcn") -> None:
        super().__init__()
        self.aggr = aggr

    def __repr__(self) -> str:
        return f"PureConv(aggr={self.aggr!r})"

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        n = x.size(0)
        if edge_weight is None:
            rowptr, col, _ = ops.cached_csr(edge_index, n)
            weight = None
        else:
            csr = ops.to_csr(edge_index, n, edge_weight)
            rowptr, col, weight = csr.rowptr, csr.col, csr.weight
        if self.aggr != "gcn":
            return ops.gather_reduce(x, rowptr, col, "sum" if self.aggr == "sum" else "mean", edge_weight=weight)
        degree = rowptr.diff().to(x.dtype) if weight is None else ops.segment_reduce(weight.view(-1, 1).to(x.dtype),
                                                                                     rowptr).view(-1)
        norm = (1.0 + degree).rsqrt().view(-1, 1)
        x = norm * x
        return norm * (ops.gather_reduce(x, rowptr, col, "sum", edge_weight=weight) + x)


class LinearAggrConv(nn.Module):
    r"""The official code's ``sage`` / ``gin`` layers: PyG ``GCNConv`` without normalisation or self-loops, i.e.
    :math:`x'_v = \bigoplus_{u \in N(v)} W x_u + b` with :math:`\oplus` = mean (``sage``) or sum (``gin``)."""

    def __init__(self, in_channels: int, out_channels: int, aggr: Literal["mean", "sum"]) -> None:
        super().__init__()
        self.aggr = aggr
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        csr = ops.to_csr(edge_index, x.size(0), edge_weight)
        return ops.gather_reduce(self.lin(x), csr.rowptr, csr.col, self.aggr, edge_weight=csr.weight) + self.bias


class NCNEncoder(nn.Module):
    r"""The MPNN of NCN/NCNC (the official ``GCN`` class).

    .. math::
        h^{(0)} = \mathrm{Drop}_{gnndp}(W\, \mathrm{Drop}_{xdp}(x)) \;\text{(pure convs; an embedding table with
        ``use_embedding``)}, \qquad
        h^{(l)} = \phi_l(\mathrm{conv}_l(h^{(l-1)}, A)) \;[+\, h^{(l-1)} \text{ with } \texttt{residual}]

        h = \sum_l \gamma_l h^{(l)} \;\text{(jumping knowledge, learnable } \gamma \sim \mathcal N(0, 1)
        \text{, no softmax)} \quad\text{or}\quad h = h^{(L)}

    For pure convs :math:`\phi_l` is the identity, except ``Dropout(tdp)`` after the last layer. For ``gcn``
    (PyG-style GCN), ``sage`` and ``gin`` (the official code's mean/sum ``GCNConv`` variants) the input is
    ``Drop(xdp)(x)`` without a linear map, and every layer but the last is followed by [LayerNorm]-Dropout-ReLU
    (a one-layer network keeps it). Training-time edge dropout ``gnnedp`` rescales kept edges by :math:`1/(1-p)`.

    Args:
        in_channels: node feature width (ignored with ``use_embedding``).
        hidden_channels: ``hiddim``.
        num_layers: ``mplayers`` (0: the input map only).
        conv: ``model``: ``puregcn``, ``puresum``, ``puremean``, ``gcn``, ``sage`` or ``gin``.
        dropout: ``gnndp``; xdropout: ``xdp``; tail_dropout: ``tdp``; edge_dropout: ``gnnedp``.
        ln: ``ln`` (LayerNorm in the non-pure layers); residual: ``res``; jk: ``jk``.
        use_embedding: learn one vector per node (featureless graphs such as ogbl-ddi; orthogonal init);
            needs ``num_nodes``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 1, conv: Conv = "puregcn",
                 dropout: float = 0.0, xdropout: float = 0.0, tail_dropout: float = 0.0, edge_dropout: float = 0.0,
                 ln: bool = False, residual: bool = False, jk: bool = False, use_embedding: bool = False,
                 num_nodes: Optional[int] = None) -> None:
        super().__init__()
        if conv not in PURE + ("gcn", "sage", "gin"):
            raise ValueError(f"conv must be one of {PURE + ('gcn', 'sage', 'gin')}, got {conv!r}")
        if use_embedding and (num_nodes is None or num_nodes < 1):
            raise ValueError("use_embedding learns one vector per node: give num_nodes (e.g. 4267 for ogbl-ddi)")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.in_channels, self.hidden_channels, self.num_layers, self.conv = in_channels, hidden_channels, num_layers, conv
        self.edge_dropout, self.residual, self.use_embedding, self.num_nodes = edge_dropout, residual, use_embedding, num_nodes
        self.jk = jk and num_layers > 0
        pure = conv in PURE
        if use_embedding:
            self.embedding = nn.Embedding(num_nodes, hidden_channels)
            self.xemb = UniformDropout(dropout)
        else:
            self.embedding = None
            if pure or num_layers == 0:
                # Drop(xdp) then Linear as one DropoutLinear (the same random function, computed from the non-zeros
                # of sparse bag-of-words features); the Identity keeps the Linear's state-dict key ``xemb.1``
                self.xemb = nn.Sequential(nn.Identity(), DropoutLinear(in_channels, hidden_channels, p=xdropout),
                                          UniformDropout(dropout))
            else:
                self.xemb = nn.Sequential(UniformDropout(xdropout))
        width = hidden_channels if (use_embedding or pure or num_layers == 0) else in_channels
        self.convs, self.acts = nn.ModuleList(), nn.ModuleList()
        for layer in range(num_layers):
            last = layer == num_layers - 1
            if pure:
                self.convs.append(PureConv(conv.removeprefix("pure")))
                self.acts.append(UniformDropout(tail_dropout) if last else nn.Identity())
                continue
            if conv == "gcn":
                self.convs.append(GCNConv(width, hidden_channels))
            else:
                self.convs.append(LinearAggrConv(width, hidden_channels, "mean" if conv == "sage" else "sum"))
            width = hidden_channels
            keep_act = layer == 0 or not last  # the official code: an activation after layers 0 .. L-2, and layer 0
            self.acts.append(nn.Sequential(nn.LayerNorm(hidden_channels) if ln else nn.Identity(),
                                           UniformDropout(dropout), nn.ReLU()) if keep_act else nn.Identity())
        self.jk_weights = nn.Parameter(torch.empty(num_layers)) if self.jk else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters") and not isinstance(module, nn.Embedding):
                module.reset_parameters()
        if self.embedding is not None:
            nn.init.orthogonal_(self.embedding.weight)
        if self.jk_weights is not None:
            nn.init.normal_(self.jk_weights)

    def __repr__(self) -> str:
        return (f"NCNEncoder({self.in_channels}, {self.hidden_channels}, num_layers={self.num_layers}, "
                f"conv={self.conv!r}, jk={self.jk}, residual={self.residual})")

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if self.embedding is not None:
            if x.size(0) != self.num_nodes:
                raise ValueError(f"the graph has {x.size(0)} nodes but the embedding table has {self.num_nodes}: "
                                 "set num_nodes to the dataset's node count")
            h = self.xemb(self.embedding.weight)
        else:
            h = self.xemb(x)
        states = []
        for conv, act in zip(self.convs, self.acts):
            edges, weight = _drop_edges(edge_index, self.edge_dropout, self.training)
            out = act(conv(h, edges, weight))
            h = out + h if self.residual and out.shape == h.shape else out
            states.append(h)
        if self.jk_weights is not None:
            h = (torch.stack(states) * self.jk_weights.view(-1, 1, 1)).sum(0)
        return h


class NCN(nn.Module):
    r"""Neural Common Neighbor: :class:`NCNEncoder` + :class:`~graphlab.nn.ncn.NCNPredictor`.

    .. math:: s(i, j) = \mathrm{lin}\Big(\mathrm{xcnlin}\Big(\sum_{w \in N(i) \cap N(j)} h'_w\Big) \beta
              + \mathrm{xijlin}(h_i \odot h_j)\Big), \quad h = \mathrm{MPNN}(X, A)

    Args:
        in_channels: node feature width (linked from the DataModule).
        hidden_channels: ``hiddim`` (the predictor works at the same width, as the official code).
        num_layers, conv, dropout (``gnndp``), xdropout (``xdp``), tail_dropout (``tdp``), edge_dropout
            (``gnnedp``), ln, residual (``res``), jk, use_embedding, num_nodes: see :class:`NCNEncoder`.
        predictor_dropout (``predp``), predictor_edge_dropout (``preedp``), predictor_ln (``lnnn``), use_xlin,
            tailact, twolayerlin, beta, cn_max_neighbors (``cndeg``): see :class:`~graphlab.nn.ncn.NCNPredictor`.
        gnn_lr (``gnnlr``), predictor_lr (``prelr``): learning rates of the two parameter groups
            (:meth:`optimizer_param_groups`; the task's ``lr`` is then unused).
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 1, conv: Conv = "puregcn",
                 dropout: float = 0.0, xdropout: float = 0.0, tail_dropout: float = 0.0, edge_dropout: float = 0.0,
                 ln: bool = False, residual: bool = False, jk: bool = False, use_embedding: bool = False,
                 num_nodes: Optional[int] = None, predictor_dropout: float = 0.0, predictor_edge_dropout: float = 0.0,
                 predictor_ln: bool = False, use_xlin: bool = False, tailact: bool = False, twolayerlin: bool = False,
                 beta: float = 1.0, cn_max_neighbors: Optional[int] = None, gnn_lr: float = 1e-3,
                 predictor_lr: float = 1e-3) -> None:
        super().__init__()
        self.gnn_lr, self.predictor_lr = gnn_lr, predictor_lr
        self.encoder = NCNEncoder(in_channels, hidden_channels, num_layers, conv, dropout, xdropout, tail_dropout,
                                  edge_dropout, ln, residual, jk, use_embedding, num_nodes)
        self.predictor = self._predictor(hidden_channels, dict(
            dropout=predictor_dropout, edge_dropout=predictor_edge_dropout, ln=predictor_ln, use_xlin=use_xlin,
            tailact=tailact, twolayerlin=twolayerlin, beta=beta, max_neighbors=cn_max_neighbors))

    def _predictor(self, hidden_channels: int, kwargs: dict[str, Any]) -> NCNPredictor:
        return NCNPredictor(hidden_channels, hidden_channels, 1, **kwargs)

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Adam groups as the official code: the MPNN at ``gnn_lr``, the predictor at ``predictor_lr``."""
        return [{"params": list(self.encoder.parameters()), "lr": self.gnn_lr, "weight_decay": weight_decay},
                {"params": list(self.predictor.parameters()), "lr": self.predictor_lr, "weight_decay": weight_decay}]

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.encoder(x, edge_index)

    def decode(self, z: Tensor, pairs: Tensor, *, graph: Optional[Data] = None) -> Tensor:
        """Logits ``[P]`` of ``pairs`` ``[2, P]`` on ``graph``'s adjacency (``graph.edge_index``, both directions)."""
        if graph is None:
            raise ValueError(f"{type(self).__name__}.decode reads common neighbours: pass graph= (the Data the "
                             "encoder saw, with edge_index and num_nodes)")
        rowptr, col, _ = ops.sorted_csr(graph.edge_index, z.size(0))
        return self.predictor(z, rowptr, col, pairs).view(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index, graph=Data(edge_index=edge_index,
                                                                                    num_nodes=x.size(0)))


class NCNC(NCN):
    r"""NCN with common-neighbour completion: :class:`NCNEncoder` + :class:`~graphlab.nn.ncn.NCNCPredictor`.

    Args:
        depth, alpha, scale (``probscale``), offset (``proboffset``), pt, learnable_pt (``learnpt``),
            train_max_neighbors (``trndeg``), test_max_neighbors (``tstdeg``), split_size (``splitsize``):
            see :class:`~graphlab.nn.ncn.NCNCPredictor`.
        Others: see :class:`NCN`.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 1, conv: Conv = "puregcn",
                 dropout: float = 0.0, xdropout: float = 0.0, tail_dropout: float = 0.0, edge_dropout: float = 0.0,
                 ln: bool = False, residual: bool = False, jk: bool = False, use_embedding: bool = False,
                 num_nodes: Optional[int] = None, predictor_dropout: float = 0.0, predictor_edge_dropout: float = 0.0,
                 predictor_ln: bool = False, use_xlin: bool = False, tailact: bool = False, twolayerlin: bool = False,
                 beta: float = 1.0, cn_max_neighbors: Optional[int] = None, gnn_lr: float = 1e-3,
                 predictor_lr: float = 1e-3, depth: int = 1, alpha: float = 1.0, scale: float = 5.0,
                 offset: float = 3.0, pt: float = 0.5, learnable_pt: bool = False,
                 train_max_neighbors: Optional[int] = None, test_max_neighbors: Optional[int] = None,
                 split_size: Optional[int] = None) -> None:
        self._completion = dict(depth=depth, alpha=alpha, scale=scale, offset=offset, pt=pt, learnable_pt=learnable_pt,
                                train_max_neighbors=train_max_neighbors, test_max_neighbors=test_max_neighbors,
                                split_size=split_size)
        super().__init__(in_channels, hidden_channels, num_layers, conv, dropout, xdropout, tail_dropout, edge_dropout,
                         ln, residual, jk, use_embedding, num_nodes, predictor_dropout, predictor_edge_dropout,
                         predictor_ln, use_xlin, tailact, twolayerlin, beta, cn_max_neighbors, gnn_lr, predictor_lr)

    def _predictor(self, hidden_channels: int, kwargs: dict[str, Any]) -> NCNPredictor:
        return NCNCPredictor(hidden_channels, hidden_channels, 1, **kwargs, **self._completion)
