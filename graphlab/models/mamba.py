r"""Graph Mamba models: :class:`GraphMamba` (Wang et al. 2024) and :class:`GMN` (Behrouz & Hashemi 2024).

Both run at node level (``pool=None``) or graph level (``pool`` = ``sum`` / ``mean`` / ``max``), take real
(``node_encoder="linear"``) or OGB categorical (``"atom"``) node features and optional edge features, and draw
their randomness (node orderings, random-walk tokens) from torch's global generator while training (one fresh
draw per step, seeded by ``seed_everything``) and from a generator seeded with ``eval_seed`` in evaluation, so
validation and test scores are deterministic.

References:
    Wang, Tsepa, Ma & Wang, *Graph-Mamba: Towards Long-Range Graph Sequence Modeling with Selective State Spaces*,
    arXiv 2402.00789 (code: bowang-lab/Graph-Mamba).
    Behrouz & Hashemi, *Graph Mamba: Towards Learning on Graphs with State Space Models*, KDD 2024,
    arXiv 2402.08678 (no code released).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from torch import Tensor, nn

from graphlab.models.gnn import Pool, _Readout
from graphlab.nn.mamba_graph import GMNLayer, GraphMambaLayer
from graphlab.transforms.tokens import (
    NeighbourhoodTokens,
    degree_sequences,
    neighbourhood_tokens,
    out_degree,
    token_subgraphs,
)

__all__ = ["GMN", "GraphMamba"]

NodeEncoder = Literal["linear", "atom"]
EdgeEncoder = Literal["none", "bond", "linear"]


class _Encoders(nn.Module):
    """Node features (linear or OGB atoms) and edge features (none, OGB bonds or linear) to the hidden width."""

    def __init__(self, in_channels: int, hidden: int, node_encoder: NodeEncoder, edge_encoder: EdgeEncoder,
                 edge_dim: int) -> None:
        super().__init__()
        if node_encoder not in ("linear", "atom"):
            raise ValueError(f"node_encoder must be 'linear' or 'atom', got {node_encoder!r}")
        if edge_encoder not in ("none", "bond", "linear"):
            raise ValueError(f"edge_encoder must be 'none', 'bond' or 'linear', got {edge_encoder!r}")
        if edge_encoder == "linear" and edge_dim < 1:
            raise ValueError("edge_encoder='linear' needs edge_dim >= 1 (the edge feature width)")
        self.node = AtomEncoder(hidden) if node_encoder == "atom" else nn.Linear(in_channels, hidden)
        self.edge: Optional[nn.Module] = None
        if edge_encoder == "bond":
            self.edge = BondEncoder(hidden)
        elif edge_encoder == "linear":
            self.edge = nn.Linear(edge_dim, hidden)

    def forward(self, x: Tensor, edge_attr: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        dtype = next(p.dtype for p in self.parameters() if p.is_floating_point())
        h = self.node(x.long()) if isinstance(self.node, AtomEncoder) else self.node(x.to(dtype))
        if self.edge is None:
            return h, None
        if edge_attr is None:
            raise ValueError("the model encodes edge features (edge_encoder != 'none') but the batch has no "
                             "`edge_attr`; set edge_encoder='none'")
        e = self.edge(edge_attr.long()) if isinstance(self.edge, BondEncoder) else self.edge(edge_attr.to(dtype))
        return h, e


def _check_common(in_channels: int, out_channels: int, hidden: int, num_layers: int, dropout: float) -> None:
    if min(in_channels, out_channels, hidden, num_layers) < 1:
        raise ValueError(f"in_channels, out_channels, hidden_channels and num_layers must be >= 1, got "
                         f"{in_channels}, {out_channels}, {hidden}, {num_layers}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _check_graph(x: Tensor, edge_index: Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"x must be [num_nodes, features], got shape {tuple(x.shape)}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"edge_index has dtype {edge_index.dtype} but must be torch.int64 or torch.int32; convert "
                         "it with edge_index.long()")
    if x.size(0) == 0:
        raise ValueError("the input has no nodes: the Mamba models need at least one node per batch; drop empty "
                         "graphs from the dataset (e.g. a pre_filter on data.num_nodes > 0)")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= x.size(0)):
        raise ValueError(f"edge_index holds node ids outside 0..{x.size(0) - 1} (max {int(edge_index.max())}); "
                         "the graph has x.size(0) nodes")


class GraphMamba(nn.Module):
    r"""Graph-Mamba (Wang et al. 2024): ``num_layers`` :class:`~graphlab.nn.mamba_graph.GraphMambaLayer` over
    nodes ordered by degree (the official ``Mamba_Hybrid_Degree_Noise`` ordering), then a head.

    Each layer draws its own ordering(s), as each official layer calls ``lexsort`` itself: in training one
    ordering per layer and step (ascending degree, :math:`U(0,1)` tie-break); in evaluation ``eval_orderings``
    orderings whose Mamba outputs are averaged (5 in the official code), drawn from a generator seeded with
    ``eval_seed``. ``num_buckets > 1`` splits each graph's nodes at random into that many sequences (the
    ``_Bucket`` variants for large graphs). ``ordering="random"`` is ``Mamba_Permute`` (a random permutation).

    Args:
        in_channels, out_channels: feature and output widths (linked from the DataModule by the CLI).
        hidden_channels: :math:`F` (Graph-Mamba: 96 on LRGB).
        num_layers: layers (Graph-Mamba: 3 or 4).
        d_state, d_conv, expand: Mamba's (16, 4, **1** as in the official configs).
        dropout: dropout of every branch.
        pool: graph readout (``None``: node-level output).
        node_encoder, edge_encoder, edge_dim: input encoders (``atom``/``bond`` for OGB molecules).
        ordering: ``"degree"`` or ``"random"``.
        tie_break: ``"random"`` (official) or ``"index"`` (deterministic; for tests and ablations).
        num_buckets: sequences per graph.
        eval_orderings: orderings averaged in evaluation.
        eval_seed: seed of the evaluation orderings.
        local: keep the GatedGCN branch.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 3,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 1,
        dropout: float = 0.0,
        pool: Pool = None,
        node_encoder: NodeEncoder = "linear",
        edge_encoder: EdgeEncoder = "none",
        edge_dim: int = 0,
        ordering: Literal["degree", "random"] = "degree",
        tie_break: Literal["random", "index"] = "random",
        num_buckets: int = 1,
        eval_orderings: int = 5,
        eval_seed: int = 0,
        local: bool = True,
    ) -> None:
        super().__init__()
        _check_common(in_channels, out_channels, hidden_channels, num_layers, dropout)
        if ordering not in ("degree", "random"):
            raise ValueError(f"ordering must be 'degree' or 'random', got {ordering!r}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (eval_orderings, num_buckets)):
            raise ValueError(f"eval_orderings and num_buckets must be >= 1 and ints, got {eval_orderings!r}, "
                             f"{num_buckets!r}")
        if tie_break not in ("random", "index"):
            raise ValueError(f"tie_break must be 'random' or 'index', got {tie_break!r}")
        self.in_channels, self.out_channels, self.pool = in_channels, out_channels, pool
        self.ordering, self.tie_break, self.num_buckets = ordering, tie_break, num_buckets
        self.eval_orderings, self.eval_seed = eval_orderings, eval_seed
        self.encoders = _Encoders(in_channels, hidden_channels, node_encoder, edge_encoder, edge_dim)
        self.layers = nn.ModuleList(
            GraphMambaLayer(hidden_channels, d_state, d_conv, expand, dropout, local,
                            edge_states=edge_encoder != "none") for _ in range(num_layers)
        )
        self.readout = _Readout(hidden_channels, out_channels, pool)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def orderings(self, edge_index: Tensor, num_nodes: int, batch: Optional[Tensor],
                  generator: Optional[torch.Generator], count: int) -> list[tuple[Tensor, Tensor, int]]:
        """``count`` node orderings (see :func:`graphlab.transforms.degree_sequences`)."""
        if self.ordering == "degree":
            key = out_degree(edge_index, num_nodes)
            tie_break = self.tie_break
        else:  # Mamba_Permute: a uniformly random order within each graph
            key, tie_break = torch.zeros(num_nodes, device=edge_index.device), "random"
        return [tuple(degree_sequences(key.to(edge_index.device), batch, num_buckets=self.num_buckets,
                                       tie_break=tie_break, generator=generator)) for _ in range(count)]

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None) -> Tensor:
        _check_graph(x, edge_index)
        h, e = self.encoders(x, edge_attr)
        generator = None
        if not self.training:
            generator = torch.Generator(device=x.device).manual_seed(self.eval_seed)
        count = 1 if self.training else self.eval_orderings
        for layer in self.layers:
            h, e = layer(h, edge_index, self.orderings(edge_index, x.size(0), batch, generator, count), e)
        return self.readout(h, batch)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.layers)}, "
                f"ordering={self.ordering!r}, num_buckets={self.num_buckets}, pool={self.pool})")


class GMN(nn.Module):
    r"""Graph Mamba Network (Behrouz & Hashemi 2024) with random-walk neighbourhood tokens.

    Tokens (:func:`graphlab.transforms.neighbourhood_tokens`: walk lengths :math:`0..m`, :math:`M` walks,
    :math:`s` repeats, ordered so the node's own token is last) are sampled once per forward pass (fresh every
    training step; from ``eval_seed`` in evaluation) and shared by the ``num_layers``
    :class:`~graphlab.nn.mamba_graph.GMNLayer` (local MPNN, pooled tokens, bidirectional Mamba over each node's
    :math:`K = (m+1)s` tokens, FFN). Positional/structural encodings (LapPE, RWSE) enter as node features from the
    DataModule (e.g. ``CSLData(positional_encoding=...)``), as in the paper's optional PE/SE step.

    Args:
        in_channels, out_channels, hidden_channels, num_layers, dropout, pool, node_encoder, edge_encoder,
            edge_dim: as :class:`GraphMamba`.
        walk_length: :math:`m` (``0``: node tokens only).
        num_walks: :math:`M`.
        repeats: :math:`s`.
        d_state, d_conv, expand: the Mamba blocks' (mamba-ssm defaults 16, 4, 2).
        local_encoder, token_pool, readout, parallel_mpnn, token_encoder: see
            :class:`~graphlab.nn.mamba_graph.GMNLayer` (``token_encoder="subgraph"``: the paper's local MPNN on
            each token's induced subgraph, built once per forward pass by
            :func:`graphlab.transforms.token_subgraphs` and shared by the layers).
        eval_seed: seed of the evaluation tokens.
        eval_samples: token samples averaged in evaluation (seeds ``eval_seed``, ``eval_seed + 1``, ...), as
            Graph-Mamba averages orderings; ``1``: one sample.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        walk_length: int = 2,
        num_walks: int = 4,
        repeats: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout: float = 0.0,
        pool: Pool = None,
        node_encoder: NodeEncoder = "linear",
        edge_encoder: EdgeEncoder = "none",
        edge_dim: int = 0,
        local_encoder: Literal["gatedgcn", "gin", "none"] = "gatedgcn",
        token_pool: Literal["mean", "sum"] = "mean",
        readout: Literal["last", "mean"] = "mean",
        parallel_mpnn: bool = False,
        eval_seed: int = 0,
        token_encoder: Literal["graph", "subgraph"] = "graph",
        eval_samples: int = 1,
    ) -> None:
        super().__init__()
        _check_common(in_channels, out_channels, hidden_channels, num_layers, dropout)
        for name, value, low in (("walk_length", walk_length, 0), ("num_walks", num_walks, 1),
                                 ("repeats", repeats, 1), ("eval_samples", eval_samples, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be >= {low} and an int, got {value!r}")
        self.in_channels, self.out_channels, self.pool = in_channels, out_channels, pool
        self.walk_length, self.num_walks, self.repeats, self.eval_seed = walk_length, num_walks, repeats, eval_seed
        self.eval_samples = eval_samples
        self.encoders = _Encoders(in_channels, hidden_channels, node_encoder, edge_encoder, edge_dim)
        self.layers = nn.ModuleList(
            GMNLayer(hidden_channels, walk_length + 1, d_state, d_conv, expand, dropout, local_encoder, token_pool,
                     readout, parallel_mpnn, edge_states=edge_encoder != "none", token_encoder=token_encoder)
            for _ in range(num_layers)
        )
        self.readout = _Readout(hidden_channels, out_channels, pool)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def tokens(self, edge_index: Tensor, num_nodes: int, sample: int = 0) -> NeighbourhoodTokens:
        """Sample the tokens of every node (global RNG in training, seed ``eval_seed + sample`` in evaluation)."""
        generator = None
        if not self.training:
            generator = torch.Generator(device=edge_index.device).manual_seed(self.eval_seed + sample)
        return neighbourhood_tokens(edge_index, num_nodes, self.walk_length, self.num_walks, self.repeats, generator)

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None, tokens: Optional[NeighbourhoodTokens] = None) -> Tensor:
        """``tokens`` overrides the sampling (e.g. fixed tokens, to test equivariance); without it, evaluation
        averages the outputs of ``eval_samples`` token samples."""
        _check_graph(x, edge_index)
        if tokens is not None:
            return self._forward(x, edge_index, edge_attr, batch, tokens)
        samples = 1 if self.training else self.eval_samples
        outputs = [self._forward(x, edge_index, edge_attr, batch, self.tokens(edge_index, x.size(0), i))
                   for i in range(samples)]
        return outputs[0] if samples == 1 else torch.stack(outputs).mean(0)

    def _forward(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor], batch: Optional[Tensor],
                 tokens: NeighbourhoodTokens) -> Tensor:
        h, e = self.encoders(x, edge_attr)
        sub_edge_index = sub_edge_id = None
        if self.layers[0].token_encoder == "subgraph":
            sub_edge_index, sub_edge_id = token_subgraphs(tokens, edge_index, x.size(0))
        for layer in self.layers:
            h, e = layer(h, edge_index, tokens.rowptr, tokens.col, tokens.hops, e, sub_edge_index, sub_edge_id)
        return self.readout(h, batch)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.layers)}, "
                f"m={self.walk_length}, M={self.num_walks}, s={self.repeats}, pool={self.pool})")
