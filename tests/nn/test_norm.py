"""graphlab.nn.norm.batch_norm_relu against plain nn.BatchNorm1d + ReLU (+ Linear): values, gradients, running
statistics, eval mode, gradcheck, memory kept for backward, bad input; and SSWLPlusConv (which uses it) in training
mode against its plain-module definition."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from graphlab.nn.norm import batch_norm_relu, batch_norm_rows
from graphlab.nn.subgraph import SSWLPlusConv, pair_index_from_batch
from graphlab.ops.pairs import pair_atom
from graphlab.transforms import SubgraphPairs

TOL = dict(atol=1e-12, rtol=1e-10)
BN_SETTINGS = [dict(), dict(affine=False), dict(momentum=None), dict(track_running_stats=False),
               dict(momentum=0.3, eps=1e-3)]


def make_norm(features: int, seed: int, **kwargs) -> nn.BatchNorm1d:
    gen = torch.Generator().manual_seed(seed)
    norm = nn.BatchNorm1d(features, **kwargs).double()
    with torch.no_grad():
        if norm.affine:
            norm.weight.copy_(torch.randn(features, generator=gen, dtype=torch.float64))
            norm.bias.copy_(torch.randn(features, generator=gen, dtype=torch.float64))
        if norm.track_running_stats:
            norm.running_mean.copy_(torch.randn(features, generator=gen, dtype=torch.float64))
            norm.running_var.copy_(torch.rand(features, generator=gen, dtype=torch.float64) + 0.5)
    return norm


def plain(x: Tensor, norm: nn.BatchNorm1d, weight: Tensor | None, acc: Tensor | None) -> Tensor:
    """The definition: torch.relu(norm(x)) [then a bias-free linear map] [+ acc]."""
    h = torch.relu(norm(x))
    if weight is None:
        return h
    h = h @ weight.t()
    return h if acc is None else h + acc


@pytest.mark.parametrize("linear", ["none", "weight", "weight+acc"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("settings", BN_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_matches_batchnorm_relu(settings: dict, training: bool, linear: str) -> None:
    norm = make_norm(6, 0, **settings).train(training)
    ref = copy.deepcopy(norm)
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True) if linear != "none" else None
    acc = torch.randn(13, 4, generator=gen, dtype=torch.float64, requires_grad=True) if linear == "weight+acc" \
        else None
    for step in range(3):  # running statistics accumulate over steps (momentum=None: a cumulative average)
        x = (torch.randn(13, 6, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_()
        out, want = batch_norm_relu(x, norm, weight, acc), plain(x, ref, weight, acc)
        torch.testing.assert_close(out, want, **TOL)
        g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        inputs = [x] + [t for t in (weight, acc) if t is not None]
        got = torch.autograd.grad((out * g).sum(), inputs + list(norm.parameters()))
        expected = torch.autograd.grad((want * g).sum(), inputs + list(ref.parameters()))
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, **TOL)
        for (name, a), b in zip(norm.named_buffers(), ref.buffers()):
            torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"buffer {name} after step {step}: {m}")
    assert (out == 0).any() and (out != 0).any() or linear != "none"  # the ReLU is active on these inputs


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("linear", [False, True])
def test_gradcheck(training: bool, linear: bool) -> None:
    norm = make_norm(3, 2).train(training)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    acc = torch.randn(7, 2, generator=gen, dtype=torch.float64, requires_grad=True)

    def f(x: Tensor, gamma: Tensor, beta: Tensor, weight: Tensor, acc: Tensor) -> Tensor:
        # gamma, beta are norm's own parameters: gradcheck perturbs them in place, the function reads them
        return batch_norm_relu(x, norm, weight, acc) if linear else batch_norm_relu(x, norm)

    gamma, beta = norm.weight, norm.bias
    assert torch.autograd.gradcheck(f, (x, gamma, beta, weight, acc))
    counts = torch.tensor([2, 0, 1, 3, 1, 1, 2])
    assert torch.autograd.gradcheck(lambda x, gamma, beta: batch_norm_rows(x, counts, norm), (x, gamma, beta))


def saved_sizes(fn) -> list[int]:
    """Bytes of each distinct storage autograd keeps for backward while ``fn()`` runs."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return list(storages.values())


def test_fused_linear_keeps_one_row_tensor_less() -> None:
    """With the linear map fused, backward keeps the BN input but not the ReLU output (recomputed)."""
    norm = nn.BatchNorm1d(16)
    x = torch.randn(1000, 16, requires_grad=True)
    weight = torch.randn(16, 16, requires_grad=True)
    row_tensor = 1000 * 16 * 4
    fused = saved_sizes(lambda: batch_norm_relu(x, norm, weight))
    unfused = saved_sizes(lambda: torch.relu(norm(x)) @ weight.t())
    assert sorted(s for s in fused if s >= row_tensor) == [row_tensor], fused  # only x
    assert sorted(s for s in unfused if s >= row_tensor) == [row_tensor] * 2, unfused  # x and the ReLU output


def test_bad_input() -> None:
    norm = nn.BatchNorm1d(4)
    with pytest.raises(TypeError, match="BatchNorm1d"):
        batch_norm_relu(torch.randn(5, 4), nn.LayerNorm(4))
    with pytest.raises(ValueError, match=r"shape \[R, 4\]"):
        batch_norm_relu(torch.randn(5, 3), norm)
    with pytest.raises(ValueError, match="weight must be"):
        batch_norm_relu(torch.randn(5, 4), norm, torch.randn(2, 3))
    with pytest.raises(ValueError, match="acc must come with weight"):
        batch_norm_relu(torch.randn(5, 4), norm, None, torch.randn(5, 2))
    with pytest.raises(ValueError, match="acc must come with weight"):
        batch_norm_relu(torch.randn(5, 4), norm, torch.randn(2, 4), torch.randn(4, 2))
    with pytest.raises(ValueError, match="more than 1 row"):
        batch_norm_relu(torch.randn(1, 4), norm.train())


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("settings", BN_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_batch_norm_rows_equals_batchnorm_of_the_repeated_rows(settings: dict, training: bool) -> None:
    norm = make_norm(5, 5, **settings).train(training)
    ref = copy.deepcopy(norm)
    gen = torch.Generator().manual_seed(6)
    counts = torch.tensor([3, 1, 0, 4, 2, 7])  # a zero: a row that stands for no pair row
    for _ in range(2):
        x = (torch.randn(6, 5, generator=gen, dtype=torch.float64) * 3 - 1).requires_grad_()
        out = batch_norm_rows(x, counts, norm)
        want = ref(x.repeat_interleave(counts, 0))
        torch.testing.assert_close(out.repeat_interleave(counts, 0), want, **TOL)
        g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
        got = torch.autograd.grad((out.repeat_interleave(counts, 0) * g).sum(), [x, *norm.parameters()])
        expected = torch.autograd.grad((want * g).sum(), [x, *ref.parameters()])
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, **TOL)
        for a, b in zip(norm.buffers(), ref.buffers()):
            torch.testing.assert_close(a, b, **TOL)
    with pytest.raises(ValueError, match="counts must be an integer tensor"):
        batch_norm_rows(x, counts.double(), norm)
    with pytest.raises(ValueError, match="more than 1 row"):
        batch_norm_rows(x, torch.tensor([0, 1, 0, 0, 0, 0]), norm.train())


# --------------------------------------------------------------------------------------------- SSWLPlusConv
def sswl_plain(conv: SSWLPlusConv, h: Tensor, index, edge_attr: Tensor | None) -> Tensor:
    r"""The layer's definition with its own nn modules: ReLU(BN(Σ_a MLP_a((1+ε_a) h + AGG_a(h))))."""
    total = 0
    for i, a in enumerate(conv.atoms):
        e = conv.edge_lins[a](edge_attr) if a in conv.edge_lins and edge_attr is not None else None
        agg = pair_atom(h, index, a, e, conv.edge_mode)
        total = total + conv.mlps[a](((1 + conv.eps[i]) * h if conv.gin else 0) + agg)
    return torch.relu(conv.norm(total))


def small_batch(policy: str = "node_marking") -> Batch:
    t = SubgraphPairs(max_dis=3, policy=policy)
    graphs = [Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 0, 2, 3], [1, 0, 2, 1, 0, 2, 3, 2]]), num_nodes=4),
              Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3)]
    return Batch.from_data_list([t(g) for g in graphs])


@pytest.mark.parametrize("config", [dict(atoms=("uL", "vL", "vv"), edge_dim=2), dict(atoms=("uL", "vL", "vv")),
                                    dict(atoms=("uL", "vL", "vv"), edge_dim=2, edge_mode="gine"),
                                    dict(atoms=("uG",), gin=False), dict(atoms=("vG",), gin=False)],
                         ids=["sswl+edges", "sswl+", "gine", "pool-uG", "pool-vG"])
@pytest.mark.parametrize("policy", ["node_marking", "ego", "edge_deletion"])
def test_sswl_plus_conv_training_mode_matches_plain_modules(config: dict, policy: str) -> None:
    if policy == "edge_deletion" and "vv" in config.get("atoms", ()):
        pytest.skip("vv needs node-rooted subgraphs")
    batch = small_batch(policy)
    index = pair_index_from_batch(batch.edge_index, batch.ptr, batch.get("pair_mask"),
                                  batch.get("deleted_edge_index"))
    conv = SSWLPlusConv(3, 5, **config).double().train()
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    ref = copy.deepcopy(conv)
    for _ in range(2):
        h = torch.randn(index.num_pairs, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        e = torch.randn(batch.edge_index.size(1), 2, generator=gen, dtype=torch.float64) \
            if config.get("edge_dim") else None
        out, want = conv(h, index, e), sswl_plain(ref, h, index, e)
        torch.testing.assert_close(out, want, **TOL)
        g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        got = torch.autograd.grad((out * g).sum(), [h, *(p for p in conv.parameters() if p.requires_grad)],
                                  allow_unused=True)
        expected = torch.autograd.grad((want * g).sum(), [h, *(p for p in ref.parameters() if p.requires_grad)],
                                       allow_unused=True)
        for a, b in zip(got, expected):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, **TOL)
        for a, b in zip(conv.buffers(), ref.buffers()):
            torch.testing.assert_close(a, b, **TOL)
    assert list(conv.state_dict()) == list(ref.state_dict())  # checkpoints keep their keys
