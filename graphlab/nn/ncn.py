r"""Neural Common Neighbor (NCN) and its completion (NCNC) as link-predictor heads.

Wang, Yang, Zhang, *Neural Common Neighbor with Completion for Link Prediction*, ICLR 2024 (arXiv 2302.00890).
The layer shapes follow the official code (GraphPKU/NeuralCommonNeighbor, ``model.py``: ``CNLinkPredictor`` and
``IncompleteCN1Predictor``); the neighbourhood sets come from :func:`graphlab.ops.neighbor_sets` (sorted-list
intersection on a CSR adjacency) and their weighted sums from :func:`graphlab.ops.gather_reduce`, so no
:math:`B \times N` matrix is ever built.

Symbols: :math:`h \in \mathbb{R}^{N \times F}` node states from an MPNN, :math:`(i, j)` a target pair,
:math:`N(v)` the neighbours of :math:`v` in the predictor's adjacency, :math:`B` target pairs per call,
:math:`M` entries of a pair-set.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphlab import ops
from graphlab.nn.dropout import UniformDropout, run_mlp


def _norm(dim: int, ln: bool) -> nn.Module:
    return nn.LayerNorm(dim) if ln else nn.Identity()


def drop_csr_entries(rowptr: Tensor, col: Tensor, p: float, generator: Optional[torch.Generator] = None,
                     ) -> tuple[Tensor, Tensor]:
    """Keep each stored entry of a CSR adjacency with probability ``1 - p`` (NCN's ``DropAdj`` on the predictor's
    adjacency: entries are dropped independently per direction and not rescaled, as the official code's set
    operations discard the values). Column order within a row is preserved, so a sorted CSR stays sorted."""
    if p <= 0.0:
        return rowptr, col
    keep = torch.rand(col.numel(), device=col.device, generator=generator) > p
    rows = torch.repeat_interleave(torch.arange(rowptr.numel() - 1, device=col.device), rowptr.diff())
    return ops.rowptr_from_sorted(rows[keep], rowptr.numel() - 1).to(rowptr.dtype), col[keep]


class NCNPredictor(nn.Module):
    r"""The NCN link predictor (``cn1`` in the official code).

    .. math::
        h'_v = h_v + \mathrm{xlin}(h_v) \quad (\text{with } \texttt{use\_xlin}; \text{else } h'_v = h_v)

        z_{ij} = \sum_{w \in N(i) \cap N(j)} h'_w

        s(i, j) = \mathrm{lin}\big(\mathrm{xcnlin}(z_{ij}) \cdot \beta + \mathrm{xijlin}(h_i \odot h_j)\big)

    with :math:`\beta` a learnable scalar (initialised to ``beta``). The paper writes the concatenation
    :math:`h_i \odot h_j \,\|\, \sum_w h_w`; the code sums two MLP branches, as here. The MLPs, with
    :math:`L` = Linear, :math:`N` = LayerNorm (if ``ln``), :math:`D` = Dropout(``dropout``), :math:`R` = ReLU:
    ``xlin`` = L-D-R-L-N-D-R; ``xcnlin`` = L-D-R-L-N-D-R[-L]; ``xijlin`` = L-N-D-R[-L] (``tailact`` drops the
    bracketed last Linear); ``lin`` = L-N-D-R[-L-N-D-R if ``twolayerlin``]-L(out).

    Args:
        in_channels: width :math:`F` of :math:`h`.
        hidden_channels: width of the MLPs (the official code uses ``in_channels``; ``xlin`` maps
            :math:`F \to F`, so ``use_xlin`` needs ``in_channels == hidden_channels``).
        out_channels: logits per pair (1).
        dropout: ``predp``, dropout inside every MLP.
        edge_dropout: ``preedp``, probability of dropping each entry of the predictor's adjacency in training.
        ln: ``lnnn``, LayerNorm in the MLPs.
        use_xlin, tailact, twolayerlin: the official flags of the same names.
        beta: initial :math:`\beta`.
        max_neighbors: ``cndeg``: subsample each common-neighbour set to this many entries, reweighted
            (``None``: all).

    Shapes:
        ``forward(h [N, F], rowptr [N + 1], col [E], pairs [2, B]) -> [B, out_channels]``; ``rowptr``/``col``
        a CSR with sorted, duplicate-free rows (:func:`graphlab.ops.sorted_csr`).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 1, dropout: float = 0.0,
                 edge_dropout: float = 0.0, ln: bool = False, use_xlin: bool = False, tailact: bool = False,
                 twolayerlin: bool = False, beta: float = 1.0, max_neighbors: Optional[int] = None) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0 or not 0.0 <= edge_dropout < 1.0:
            raise ValueError(f"dropout and edge_dropout must be in [0, 1), got {dropout} and {edge_dropout}")
        if use_xlin and in_channels != hidden_channels:
            raise ValueError(f"use_xlin adds xlin(h) to h, so in_channels ({in_channels}) must equal "
                             f"hidden_channels ({hidden_channels})")
        if max_neighbors is not None and max_neighbors < 1:
            raise ValueError(f"max_neighbors must be >= 1 or None, got {max_neighbors}")
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.dropout, self.edge_dropout, self.ln = dropout, edge_dropout, ln
        self.use_xlin, self.tailact, self.twolayerlin = use_xlin, tailact, twolayerlin
        self.beta_init, self.max_neighbors = beta, max_neighbors
        f, d, hid = in_channels, dropout, hidden_channels
        self.xlin = nn.Sequential(nn.Linear(f, hid), UniformDropout(d), nn.ReLU(), nn.Linear(hid, hid),
                                  _norm(hid, ln), UniformDropout(d), nn.ReLU()) if use_xlin else None
        self.xcnlin = nn.Sequential(nn.Linear(f, hid), UniformDropout(d), nn.ReLU(), nn.Linear(hid, hid),
                                    _norm(hid, ln), UniformDropout(d), nn.ReLU(),
                                    nn.Identity() if tailact else nn.Linear(hid, hid))
        self.xijlin = nn.Sequential(nn.Linear(f, hid), _norm(hid, ln), UniformDropout(d), nn.ReLU(),
                                    nn.Identity() if tailact else nn.Linear(hid, hid))
        second = [nn.Linear(hid, hid), _norm(hid, ln), UniformDropout(d), nn.ReLU()] if twolayerlin else []
        self.lin = nn.Sequential(nn.Linear(hid, hid), _norm(hid, ln), UniformDropout(d), nn.ReLU(), *second,
                                 nn.Linear(hid, out_channels))
        self.beta = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        nn.init.constant_(self.beta, self.beta_init)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, out={self.out_channels}, "
                f"dropout={self.dropout}, edge_dropout={self.edge_dropout}, use_xlin={self.use_xlin})")

    # ---- pieces shared with NCNC
    def transform(self, h: Tensor) -> Tensor:
        """:math:`h' = h + \\mathrm{xlin}(h)` (``h`` itself without ``use_xlin``)."""
        return h + run_mlp(self.xlin, h) if self.xlin is not None else h

    def transform_members(self, h: Tensor, members: ops.PairSets) -> tuple[Tensor, ops.PairSets]:
        """:math:`h'` at the nodes of ``members`` only, and ``members`` re-indexed into those rows.

        :math:`h'_w = h_w + \\mathrm{xlin}(h_w)` is row-wise (its dropout masks are drawn per row), so the rows
        that no set reads never reach the score: computing :math:`h'` on the ``U`` distinct members instead of all
        ``N`` nodes is the same random function of the sums (on Cora with target-link removal a training step's
        common neighbours are ~100 of 2708 nodes). When more than half of the nodes are members, all rows are
        transformed and ``members`` is returned as it is.
        """
        if self.xlin is None:
            return h, members
        n = h.size(0)
        used = torch.zeros(n, dtype=torch.bool, device=h.device)
        used[members.index] = True
        nodes = used.nonzero().view(-1)
        if 2 * nodes.numel() > n:
            return self.transform(h), members
        local = torch.full((n,), -1, dtype=members.index.dtype, device=h.device)
        local[nodes] = torch.arange(nodes.numel(), dtype=members.index.dtype, device=h.device)
        return self.transform(h[nodes]), members._replace(index=local[members.index])

    def head(self, z: Tensor, h_i: Tensor, h_j: Tensor, nonempty: Optional[Tensor] = None) -> Tensor:
        """:math:`\\mathrm{lin}(\\mathrm{xcnlin}(z) \\beta + \\mathrm{xijlin}(h_i \\odot h_j))`.

        ``nonempty`` (``[B]`` bool, optional): the rows whose set sum ``z`` may be non-zero; the others are zero
        rows, where ``xcnlin``'s first Linear is its bias, so it is applied to the ``nonempty`` rows only."""
        return run_mlp(self.lin, self.xcn_branch(z, nonempty) * self.beta + run_mlp(self.xijlin, h_i * h_j, owned=True),
                       owned=True)

    def xcn_branch(self, z: Tensor, nonempty: Optional[Tensor] = None) -> Tensor:
        r""":math:`\mathrm{xcnlin}(z)`, with the first Linear :math:`W z + b` evaluated only on the ``nonempty`` rows
        (:math:`W \cdot 0 + b = b` on the rest; with target-link removal most target pairs of a sparse graph have
        no common neighbour). Skipped when fewer than a quarter of the rows are empty."""
        first = self.xcnlin[0]
        if nonempty is None or 4 * int(nonempty.sum()) > 3 * nonempty.numel():
            return run_mlp(self.xcnlin, z)
        rows = nonempty.nonzero().view(-1)
        out = z.new_empty(z.size(0), first.out_features)  # a broadcast copy_: ~4x faster than expand().contiguous()
        out = out.copy_(first.bias) if first.bias is not None else out.zero_()
        return run_mlp(self.xcnlin[1:], out.index_put_((rows,), first(z[rows])), owned=True)

    def adjacency(self, rowptr: Tensor, col: Tensor) -> tuple[Tensor, Tensor]:
        """The predictor's adjacency: edge dropout in training, unchanged in evaluation."""
        return drop_csr_entries(rowptr, col, self.edge_dropout) if self.training else (rowptr, col)

    @staticmethod
    def set_sum(h_prime: Tensor, members: ops.PairSets, weight: Optional[Tensor] = None) -> Tensor:
        """:math:`\\sum_{w \\in S_b} \\omega_{b,w} h'_w` for every pair's set :math:`S_b` (``weight`` times the
        subsampling weight)."""
        if members.weight is not None:
            weight = members.weight if weight is None else weight * members.weight
        return ops.gather_reduce(h_prime, members.ptr, members.index, "sum", edge_weight=weight)

    def forward(self, h: Tensor, rowptr: Tensor, col: Tensor, pairs: Tensor) -> Tensor:
        rowptr, col = self.adjacency(rowptr, col)
        cn = ops.neighbor_sets(rowptr, col, pairs[0], pairs[1], sets=("cn",), max_neighbors=self.max_neighbors)
        z = self.set_sum(*self.transform_members(h, cn["cn"]))
        return self.head(z, h[pairs[0]], h[pairs[1]], cn["cn"].ptr.diff() > 0)


class NCNCPredictor(NCNPredictor):
    r"""NCN with common-neighbour completion (NCNC, ``incn1cn1`` in the official code).

    Besides the observed common neighbours, the neighbours of one end that are not neighbours of the other are
    counted with the probability that the missing link exists, predicted by the same head one level shallower
    (:math:`\hat P`, depth 0 is NCN) without gradient:

    .. math::
        \tilde p(u, w) = \alpha \, \frac{p_t \, \sigma(s(\ell_{uw} - o))}{p_t \, \sigma(s(\ell_{uw} - o))
                         + 1 - \sigma(s(\ell_{uw} - o))}, \qquad \ell_{uw} = \hat P(u, w)

        z_{ij} = \sum_{w \in N(i) \cap N(j)} h'_w + \sum_{w \in N(i) \setminus N(j)} \tilde p(j, w)\, h'_w
                 + \sum_{w \in N(j) \setminus N(i)} \tilde p(i, w)\, h'_w

        s(i, j) = \mathrm{lin}\big(\mathrm{xcnlin}(z_{ij}) \cdot \beta + \mathrm{xijlin}(h_i \odot h_j)\big)

    :math:`s` = ``scale`` (``probscale``), :math:`o` = ``offset`` (``proboffset``), :math:`p_t` = ``pt`` (or,
    with ``learnable_pt``, :math:`p_t = \sigma(\mathrm{ptlin}(h_i \odot h_j))` per target pair), :math:`\alpha` =
    ``alpha``. As in the official code, :math:`\hat P` is called on :math:`h'` (so its own :math:`h_i \odot h_j`
    and common-neighbour sum use :math:`h'` and :math:`h' + \mathrm{xlin}(h')`), on the adjacency after this
    level's edge dropout (and drops edges again in training), with the MLPs' dropout of the current mode.

    Args:
        depth: completion steps (1 = NCNC, 2 = NCNC2).
        alpha, scale, offset, pt, learnable_pt: the calibration above.
        train_max_neighbors, test_max_neighbors: ``trndeg`` / ``tstdeg``: subsample each one-sided set to this
            many entries, reweighted (``None``: all).
        split_size: score at most this many completion pairs per :math:`\hat P` call (``splitsize``, memory only).
        Others: see :class:`NCNPredictor`.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 1, dropout: float = 0.0,
                 edge_dropout: float = 0.0, ln: bool = False, use_xlin: bool = False, tailact: bool = False,
                 twolayerlin: bool = False, beta: float = 1.0, max_neighbors: Optional[int] = None,
                 depth: int = 1, alpha: float = 1.0, scale: float = 5.0, offset: float = 3.0, pt: float = 0.5,
                 learnable_pt: bool = False, train_max_neighbors: Optional[int] = None,
                 test_max_neighbors: Optional[int] = None, split_size: Optional[int] = None) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0 (1 = NCNC, 2 = NCNC2, 0 = NCN), got {depth}")
        if not 0.0 < pt < 1.0:
            raise ValueError(f"pt is a prior probability in (0, 1), got {pt}")
        for name, value in (("train_max_neighbors", train_max_neighbors), ("test_max_neighbors", test_max_neighbors),
                            ("split_size", split_size)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        super().__init__(in_channels, hidden_channels, out_channels, dropout, edge_dropout, ln, use_xlin, tailact,
                         twolayerlin, beta, max_neighbors)
        self.depth, self.learnable_pt, self.split_size = depth, learnable_pt, split_size
        self.train_max_neighbors, self.test_max_neighbors = train_max_neighbors, test_max_neighbors
        self.alpha, self.scale, self.offset, self.pt = alpha, scale, offset, pt
        self.ptlin = nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, 1),
                                   nn.Sigmoid()) if learnable_pt else None
        self.reset_parameters()

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, depth={self.depth}, alpha={self.alpha}, pt={self.pt})"

    def completion_probability(self, logit: Tensor, pt: Tensor | float) -> Tensor:
        r""":math:`\tilde p = \alpha p_t \sigma(s(\ell - o)) / (p_t \sigma(s(\ell - o)) + 1 - \sigma(s(\ell - o)))`."""
        p0 = torch.sigmoid(self.scale * (logit - self.offset))
        return self.alpha * pt * p0 / (pt * p0 + 1 - p0)

    def _score_chunks(self, h_prime: Tensor, rowptr: Tensor, col: Tensor, pairs: Tensor, depth: int) -> Tensor:
        step = self.split_size or max(pairs.size(1), 1)
        parts = [self.forward(h_prime, rowptr, col, chunk, depth=depth).flatten() for chunk in pairs.split(step, 1)]
        return torch.cat(parts) if parts else h_prime.new_zeros(0)

    def _completed_sum(self, h_prime: Tensor, rowptr: Tensor, col: Tensor, pairs: Tensor,
                       sets: dict[str, ops.PairSets], h_ij: Tensor, depth: int) -> Tensor:
        """:math:`\\sum_{N(i) \\setminus N(j)} \\tilde p(j, w) h'_w + \\sum_{N(j) \\setminus N(i)} \\tilde p(i, w) h'_w`."""
        pt = self.ptlin(h_ij).flatten() if self.ptlin is not None else None
        out = h_prime.new_zeros(pairs.size(1), h_prime.size(1))
        # w in N(i) \ N(j) is completed by the pair (j, w); w in N(j) \ N(i) by (i, w)
        for name, other_end in (("src_only", pairs[1]), ("dst_only", pairs[0])):
            members = sets[name]
            rows = torch.repeat_interleave(torch.arange(pairs.size(1), device=pairs.device), members.ptr.diff())
            with torch.no_grad():
                logit = self._score_chunks(h_prime, rowptr, col, torch.stack([other_end[rows], members.index]),
                                           depth - 1)
            p = self.completion_probability(logit, pt[rows] if pt is not None else self.pt)
            out = out + self.set_sum(h_prime, members, p)
        return out

    def forward(self, h: Tensor, rowptr: Tensor, col: Tensor, pairs: Tensor, depth: Optional[int] = None) -> Tensor:
        depth = self.depth if depth is None else depth
        rowptr, col = self.adjacency(rowptr, col)
        h_i, h_j = h[pairs[0]], h[pairs[1]]
        if depth == 0:
            sets = ops.neighbor_sets(rowptr, col, pairs[0], pairs[1], sets=("cn",), max_neighbors=self.max_neighbors)
            return self.head(self.set_sum(*self.transform_members(h, sets["cn"])), h_i, h_j,
                             sets["cn"].ptr.diff() > 0)
        h_prime = self.transform(h)  # one draw of h', shared by this level's sums and the completion's inputs
        limit = self.train_max_neighbors if self.training else self.test_max_neighbors
        sets = ops.neighbor_sets(rowptr, col, pairs[0], pairs[1], sets=("cn", "src_only", "dst_only"),
                                 max_neighbors={"cn": self.max_neighbors, "src_only": limit, "dst_only": limit})
        z = self.set_sum(h_prime, sets["cn"]) + self._completed_sum(h_prime, rowptr, col, pairs, sets, h_i * h_j, depth)
        return self.head(z, h_i, h_j)
