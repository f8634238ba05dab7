"""Sheaf4Rec: the layer against its formula, BPR, equivariance, and the MovieLens-100K DataModule."""

from __future__ import annotations

import pytest
import torch

from graphlab.data.movielens import NUM_ITEMS, NUM_USERS, MovieLens100K, sample_negative_items
from graphlab.models.sheaf import Sheaf4Rec, Sheaf4RecConv, bpr_loss
from graphlab.nn.sheaf import SheafGraph


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread, restored after


def bipartite(num_users: int = 6, num_items: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_users, num_items, generator=gen) < 0.4
    users, items = mask.nonzero().t()
    pos = torch.stack([users, items + num_users])
    return pos, torch.cat([pos, pos.flip(0)], 1), num_users + num_items


def test_conv_matches_formula():
    torch.manual_seed(0)
    pos, edge_index, n = bipartite()
    graph = SheafGraph.from_edge_index(edge_index, n)
    conv = Sheaf4RecConv(5, step_size=0.7)
    x = torch.randn(n, 5)
    f = torch.tanh(conv.sheaf_learner.linear(torch.cat([x[graph.row], x[graph.col]], 1))).squeeze(-1)
    adj = torch.zeros(n, n)
    adj[graph.row, graph.col] = -f * f[graph.rev]
    diag = torch.zeros(n).index_add_(0, graph.row, f * f)
    scale = (diag + 1).rsqrt()
    lap = scale[:, None] * (adj + torch.diag(diag)) * scale[None, :]
    torch.testing.assert_close(conv(x, graph), x - 0.7 * lap @ conv.linear(x), atol=1e-5, rtol=1e-5)


def test_encode_concatenates_layers_and_is_equivariant():
    torch.manual_seed(0)
    pos, edge_index, n = bipartite()
    model = Sheaf4Rec(n, latent_dim=4, num_layers=3)
    x = torch.eye(n)
    z = model.encode(x, edge_index)
    assert z.shape == (n, 16)
    torch.testing.assert_close(z[:, :4], model.embedding.weight.t())
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    torch.testing.assert_close(model.encode(x[perm], inverse[edge_index]), z[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(x, edge_index, pos), (z[pos[0]] * z[pos[1]]).sum(-1))


def test_bpr_loss_formula_and_training():
    torch.manual_seed(0)
    pos, edge_index, n = bipartite(8, 10)
    model = Sheaf4Rec(n, latent_dim=8, num_layers=2)
    x = torch.eye(n)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    known = torch.sort(pos[0] * 10 + (pos[1] - 8)).values
    losses = []
    for step in range(60):
        neg = sample_negative_items(pos[0], known, 8, 10, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        z, emb0 = model.encode(x, edge_index), model.embed(x)
        loss = bpr_loss(z, emb0, pos[0], pos[1], neg)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    z, emb0 = torch.randn(5, 3), torch.randn(5, 2)
    u, i, j = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 4])
    s_pos, s_neg = (z[u] * z[i]).sum(1), (z[u] * z[j]).sum(1)
    reg = 0.5 * (emb0[u].norm() ** 2 + emb0[i].norm() ** 2 + emb0[j].norm() ** 2) / 2
    torch.testing.assert_close(bpr_loss(z, emb0, u, i, j, decay=0.3),
                               torch.nn.functional.softplus(s_neg - s_pos).mean() + 0.3 * reg)


def test_negative_sampling_avoids_known_items():
    known = torch.sort(torch.tensor([0 * 4 + 0, 0 * 4 + 1, 0 * 4 + 2, 1 * 4 + 3])).values
    items = sample_negative_items(torch.tensor([0, 0, 0, 1, 1]), known, 2, 4, torch.Generator().manual_seed(0))
    assert (items[:3] == 2 + 3).all() and (items[3:] != 2 + 3).all()


def test_validation():
    with pytest.raises(ValueError, match="min_rating"):
        MovieLens100K(min_rating=0)
    with pytest.raises(ValueError, match="val_ratio"):
        MovieLens100K(val_ratio=0.6, test_ratio=0.5)


@pytest.mark.data
def test_movielens100k(copy_shared):
    root = copy_shared("MovieLens100K")
    dm = MovieLens100K(root=str(root), split_seed=3)
    dm.setup("fit")
    parts = dm.parts
    total = sum(parts[k].pos_edge_index.size(1) for k in ("train", "val", "test"))
    assert total == 27145 + 34174 + 21201  # ratings 3, 4 and 5 (PROVENANCE.md)
    assert parts["val"].pos_edge_index.size(1) == parts["test"].pos_edge_index.size(1) == round(0.1 * total)
    train = parts["train"]
    assert train.edge_index.size(1) == 2 * train.pos_edge_index.size(1)
    assert (train.pos_edge_index[0] < NUM_USERS).all() and (train.pos_edge_index[1] >= NUM_USERS).all()
    keys = {tuple(e) for k in ("train", "val", "test") for e in parts[k].pos_edge_index.t().tolist()}
    assert len(keys) == total
    for k in ("val", "test"):
        neg = parts[k].neg_edge_index
        assert (neg[1] >= NUM_USERS).all() and (neg[1] < NUM_USERS + NUM_ITEMS).all()
        assert not any(tuple(e) in keys for e in neg.t().tolist())
    assert dm.num_features == NUM_USERS + NUM_ITEMS and dm.info.level == "link"
