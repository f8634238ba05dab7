"""NCN / NCNC heads against dense computations of the paper's formulas (Wang, Yang, Zhang, ICLR 2024)."""

from __future__ import annotations

import pytest
import torch

from graphlab import ops
from graphlab.nn.ncn import NCNCPredictor, NCNPredictor, drop_csr_entries


def _graph(n: int = 12, p: float = 0.35, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random symmetric graph without self-loops: dense 0/1 ``A`` and its sorted CSR."""
    g = torch.Generator().manual_seed(seed)
    upper = (torch.rand(n, n, generator=g) < p).triu(1)
    dense = (upper | upper.T)
    edge_index = dense.nonzero().T.contiguous()
    rowptr, col, _ = ops.sorted_csr(edge_index, n)
    return dense, rowptr, col


def _pairs(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, n, (2, 20), generator=g)
    return torch.cat([pairs, torch.tensor([[0, 3], [0, 3]])], dim=1)  # and two i = j pairs


def _dense_ncn(model: NCNPredictor, h: torch.Tensor, dense: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """s(i,j) = lin(xcnlin(sum_{w in N(i) ∩ N(j)} h'_w) * beta + xijlin(h_i * h_j)), h' = h + xlin(h)."""
    h_prime = h + model.xlin(h) if model.xlin is not None else h
    mask = (dense[pairs[0]] & dense[pairs[1]]).to(h.dtype)
    z = mask @ h_prime
    return model.lin(model.xcnlin(z) * model.beta + model.xijlin(h[pairs[0]] * h[pairs[1]]))


@pytest.mark.parametrize("use_xlin,tailact,twolayerlin", [(True, True, False), (False, False, True)])
def test_ncn_matches_dense_formula(use_xlin, tailact, twolayerlin):
    torch.manual_seed(0)
    dense, rowptr, col = _graph()
    model = NCNPredictor(8, 8, dropout=0.3, edge_dropout=0.4, ln=True, use_xlin=use_xlin, tailact=tailact,
                         twolayerlin=twolayerlin, beta=0.7).eval()
    h = torch.randn(12, 8)
    pairs = _pairs(12)
    torch.testing.assert_close(model(h, rowptr, col, pairs), _dense_ncn(model, h, dense, pairs))


def _dense_ncnc(model: NCNCPredictor, h: torch.Tensor, dense: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The paper's completion, densely: p~ = alpha pt sig(s(l - o)) / (pt sig(s(l - o)) + 1 - sig(s(l - o)))
    with l the depth-0 (NCN) logit of the pair, evaluated on h' (as the official code calls itself)."""
    h_prime = h + model.xlin(h)
    n = h.size(0)
    every = torch.cartesian_prod(torch.arange(n), torch.arange(n)).T
    logit = _dense_ncn(model, h_prime, dense, every).view(n, n)  # P^(u, w)
    sig = torch.sigmoid(model.scale * (logit - model.offset))
    p_tilde = model.alpha * model.pt * sig / (model.pt * sig + 1 - sig)
    i, j = pairs
    a_i, a_j = dense[i].to(h.dtype), dense[j].to(h.dtype)
    weight = a_i * a_j + a_i * (1 - a_j) * p_tilde[j] + a_j * (1 - a_i) * p_tilde[i]
    z = weight @ h_prime
    return model.lin(model.xcnlin(z) * model.beta + model.xijlin(h[i] * h[j]))


def test_ncnc_completion_matches_dense_formula():
    torch.manual_seed(0)
    dense, rowptr, col = _graph(seed=3)
    model = NCNCPredictor(8, 8, dropout=0.2, ln=True, use_xlin=True, tailact=True, alpha=0.9, scale=4.3, offset=0.2,
                          pt=0.75, split_size=7).eval()
    h = torch.randn(12, 8)
    pairs = _pairs(12, seed=4)
    expected = _dense_ncnc(model, h, dense, pairs)
    torch.testing.assert_close(model(h, rowptr, col, pairs), expected)
    # the completion changes the score: depth 0 (plain NCN on the same weights) differs
    assert not torch.allclose(model(h, rowptr, col, pairs, depth=0), expected)


def test_ncnc_completion_is_not_differentiated_but_head_is():
    dense, rowptr, col = _graph(seed=5)
    model = NCNCPredictor(6, 6, use_xlin=True).eval()
    h = torch.randn(12, 6, requires_grad=True)
    model(h, rowptr, col, _pairs(12)).sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [NCNPredictor, NCNCPredictor])
def test_scores_are_symmetric(cls):
    torch.manual_seed(0)
    _, rowptr, col = _graph(n=15, seed=7)
    model = cls(8, 8, ln=True, use_xlin=True).eval()
    h = torch.randn(15, 8)
    pairs = _pairs(15, seed=8)
    torch.testing.assert_close(model(h, rowptr, col, pairs), model(h, rowptr, col, pairs.flip(0)))


@pytest.mark.parametrize("cls,kwargs", [(NCNPredictor, {}), (NCNCPredictor, {"learnable_pt": True})])
def test_gradcheck_float64(cls, kwargs):
    torch.manual_seed(0)
    _, rowptr, col = _graph(n=7, p=0.5, seed=9)
    model = cls(3, 3, use_xlin=True, **kwargs).double().eval()
    h = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    pairs = torch.tensor([[0, 1, 2, 4], [3, 5, 6, 4]])
    assert torch.autograd.gradcheck(lambda x: model(x, rowptr, col, pairs), (h,))


def test_learnable_pt_gets_gradient():
    _, rowptr, col = _graph(seed=2)
    model = NCNCPredictor(6, 6, learnable_pt=True).eval()
    model(torch.randn(12, 6), rowptr, col, _pairs(12)).sum().backward()
    assert model.ptlin[0].weight.grad.abs().sum() > 0


def test_drop_csr_entries_matches_mask():
    _, rowptr, col = _graph(n=20, seed=11)
    g = torch.Generator().manual_seed(0)
    new_rowptr, new_col = drop_csr_entries(rowptr, col, 0.4, generator=g)
    keep = torch.rand(col.numel(), generator=torch.Generator().manual_seed(0)) > 0.4
    rows = torch.repeat_interleave(torch.arange(20), rowptr.diff())
    expected_rowptr = torch.cat([torch.zeros(1, dtype=rowptr.dtype),
                                 torch.bincount(rows[keep], minlength=20).cumsum(0)])
    assert torch.equal(new_col, col[keep]) and torch.equal(new_rowptr, expected_rowptr)
    assert drop_csr_entries(rowptr, col, 0.0) == (rowptr, col)


def test_edge_dropout_only_in_training():
    _, rowptr, col = _graph(seed=12)
    model = NCNPredictor(4, 4, edge_dropout=0.9)
    model.eval()
    assert model.adjacency(rowptr, col)[1].numel() == col.numel()
    model.train()
    assert model.adjacency(rowptr, col)[1].numel() < col.numel()


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="in_channels .* must equal"):
        NCNPredictor(4, 8, use_xlin=True)
    with pytest.raises(ValueError, match="dropout and edge_dropout"):
        NCNPredictor(4, 4, edge_dropout=1.0)
    with pytest.raises(ValueError, match="pt is a prior probability"):
        NCNCPredictor(4, 4, pt=1.5)
    with pytest.raises(ValueError, match="depth must be >= 0"):
        NCNCPredictor(4, 4, depth=-1)


@pytest.mark.parametrize("n,p,rows_expected", [(60, 0.05, "subset"), (12, 0.6, "all")])
def test_xlin_on_the_members_only_matches_dense_formula_values_and_gradients(n, p, rows_expected):
    """h' is computed on the distinct common neighbours only (all nodes when they are more than half): same
    scores and gradients as the dense formula that transforms every node."""
    torch.manual_seed(0)
    dense, rowptr, col = _graph(n, p, seed=3)
    model = NCNPredictor(8, 8, dropout=0.3, ln=True, use_xlin=True, tailact=True).double().eval()
    rows_seen = []
    model.xlin[0].register_forward_hook(lambda module, args, out: rows_seen.append(args[0].size(0)))
    h = torch.randn(n, 8, dtype=torch.float64, requires_grad=True)
    pairs = _pairs(n)
    got = model(h, rowptr, col, pairs)
    members = int((dense[pairs[0]] & dense[pairs[1]]).any(0).sum())
    assert 0 < members and (members < n / 2) == (rows_expected == "subset")
    assert rows_seen == [members if rows_expected == "subset" else n]
    weight = torch.randn_like(got)
    grads = torch.autograd.grad((got * weight).sum(), [h, *model.parameters()])
    want = _dense_ncn(model, h, dense, pairs)
    want_grads = torch.autograd.grad((want * weight).sum(), [h, *model.parameters()])
    torch.testing.assert_close(got, want)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls", [NCNPredictor, NCNCPredictor])
def test_xcn_branch_on_nonempty_rows_only_matches_the_full_mlp(cls):
    """Rows with an empty set have z = 0, where xcnlin's first Linear is its bias: skipping them gives the same
    values and gradients (dense reference: the plain head on every row); also through forward on a sparse graph
    where most pairs have no common neighbour."""
    torch.manual_seed(8)
    model = cls(8, 8, ln=True, use_xlin=True, tailact=True).double().eval()
    z = torch.randn(30, 8, dtype=torch.float64)
    nonempty = torch.rand(30) < 0.2
    z[~nonempty] = 0.0
    z.requires_grad_()
    h_i, h_j = torch.randn(2, 30, 8, dtype=torch.float64).unbind(0)
    fast = model.head(z, h_i, h_j, nonempty)
    params = [z, *model.parameters()]
    g_fast = torch.autograd.grad(fast.sum(), params, allow_unused=True, materialize_grads=True)
    plain = model.lin(model.xcnlin(z) * model.beta + model.xijlin(h_i * h_j))
    g_plain = torch.autograd.grad(plain.sum(), params, allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(fast, plain)
    # z's empty rows are structural zeros (a sum over no members: nothing upstream of them gets a gradient)
    torch.testing.assert_close(g_fast[0][nonempty], g_plain[0][nonempty])
    for a, b in zip(g_fast[1:], g_plain[1:]):
        torch.testing.assert_close(a, b)
    # forward on a sparse graph (mostly empty common-neighbour sets) against the dense formula
    dense, rowptr, col = _graph(n=30, p=0.06, seed=3)
    pairs = _pairs(30, seed=4)
    assert (dense[pairs[0]] & dense[pairs[1]]).any(1).float().mean() < 0.75
    h = torch.randn(30, 8, dtype=torch.float64)
    model = NCNPredictor(8, 8, ln=True, use_xlin=True, tailact=True).double().eval()
    torch.testing.assert_close(model(h, rowptr, col, pairs), _dense_ncn(model, h, dense, pairs))


@pytest.mark.parametrize("cls", [NCNPredictor, NCNCPredictor])
def test_training_mode_fast_paths_equal_the_plain_modules_under_the_same_seed(cls, monkeypatch):
    """In training (dropout and edge dropout on), the fused dropout+ReLU, the in-place no-grad MLPs and the
    non-empty-rows xcnlin draw the same random numbers in the same order as the plain ``nn.Sequential`` calls:
    same seed, same scores and gradients."""
    import graphlab.nn.ncn as ncn_module

    dense, rowptr, col = _graph(n=40, p=0.1, seed=5)
    pairs = _pairs(40, seed=6)
    torch.manual_seed(12)
    model = cls(8, 8, dropout=0.05, edge_dropout=0.3, ln=True, use_xlin=True, tailact=True).double().train()
    h = torch.randn(40, 8, dtype=torch.float64, requires_grad=True)

    def scores_and_grads():
        torch.manual_seed(13)
        out = model(h, rowptr, col, pairs)
        return out, torch.autograd.grad(out.sum(), [h, *model.parameters()], allow_unused=True,
                                        materialize_grads=True)

    fast, g_fast = scores_and_grads()
    monkeypatch.setattr(ncn_module, "run_mlp", lambda mlp, x, owned=False: mlp(x))
    monkeypatch.setattr(cls, "xcn_branch", lambda self, z, nonempty=None: self.xcnlin(z))
    plain, g_plain = scores_and_grads()
    torch.testing.assert_close(fast, plain)
    for a, b in zip(g_fast, g_plain):
        torch.testing.assert_close(a, b)
