"""Sheaf4Rec: the layer against its formula, BPR, equivariance, and the MovieLens-100K DataModule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graphlab.data.movielens import NUM_ITEMS, NUM_USERS, MovieLens100K
from graphlab.data.splits import pair_keys, sample_tail_negatives
from graphlab.models.sheaf import Sheaf4Rec, Sheaf4RecConv
from graphlab.tasks import bpr_loss
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


def dense_sheaf4rec_scores(model: Sheaf4Rec, x: torch.Tensor, edge_index: torch.Tensor, pairs: torch.Tensor):
    """The paper's model from its equations, with a dense Laplacian built edge by edge: E_0 = x W_emb^T,
    E_{l+1} = E_l - alpha Delta_{F(E_l)} (E_l W^T + b), Z = [E_0 || ... || E_L], s(u, i) = z_u^T z_i."""
    n = x.size(0)
    edges = edge_index.t().tolist()
    h = x @ model.embedding.weight.t()
    outs = [h]
    for conv in model.convs:
        w = conv.sheaf_learner.linear.weight.view(-1)
        f = {(u, v): torch.tanh(w @ torch.cat([h[u], h[v]])) for u, v in edges}  # F_{u <| (u,v)}
        lap = torch.zeros(n, n)
        for u, v in edges:
            lap[u, u] += f[(u, v)] ** 2
            lap[u, v] = -f[(u, v)] * f[(v, u)]
        scale = (torch.diagonal(lap) + 1).rsqrt()
        lap = scale[:, None] * lap * scale[None, :]
        h = h - conv.step_size * lap @ (h @ conv.linear.weight.t() + conv.linear.bias)
        outs.append(h)
    z = torch.cat(outs, dim=1)
    return torch.stack([torch.dot(z[u], z[i]) for u, i in pairs.t().tolist()])


def test_scores_match_the_dense_model():
    torch.manual_seed(0)
    pos, edge_index, n = bipartite()
    model = Sheaf4Rec(n, latent_dim=4, num_layers=3, step_size=0.8)
    x = torch.eye(n)
    pairs = torch.cat([pos, torch.tensor([[0, 1], [n - 1, n - 2]])], dim=1)  # positives and two other pairs
    with torch.no_grad():
        torch.testing.assert_close(model(x, edge_index, pairs), dense_sheaf4rec_scores(model, x, edge_index, pairs),
                                   atol=1e-5, rtol=1e-5)


def test_bpr_loss_formula_and_training():
    torch.manual_seed(0)
    pos, edge_index, n = bipartite(8, 10)
    model = Sheaf4Rec(n, latent_dim=8, num_layers=2)
    x, items = torch.eye(n), torch.arange(8, n)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    known = pair_keys(pos, n)
    losses = []
    for step in range(60):
        neg = sample_tail_negatives(pos[0], items, known, n, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        z, emb0 = model.encode(x, edge_index), model.embed(x)
        rows = emb0[torch.cat([pos[0], pos[1], neg])]
        loss = bpr_loss(model.decode(z, pos), model.decode(z, torch.stack([pos[0], neg])), rows, decay=1e-4)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    z, emb0 = torch.randn(5, 3), torch.randn(5, 2)
    u, i, j = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 4])
    s_pos, s_neg = (z[u] * z[i]).sum(1), (z[u] * z[j]).sum(1)
    reg = 0.5 * (emb0[u].norm() ** 2 + emb0[i].norm() ** 2 + emb0[j].norm() ** 2) / 2
    rows = emb0[torch.cat([u, i, j])]
    torch.testing.assert_close(bpr_loss(s_pos, s_neg, rows, decay=0.3),
                               torch.nn.functional.softplus(s_neg - s_pos).mean() + 0.3 * reg)


def test_negative_sampling_avoids_known_pairs():
    n = 6  # users 0, 1; items 2..5
    known = pair_keys(torch.tensor([[0, 0, 0, 1], [2, 3, 4, 5]]), n)
    tails = sample_tail_negatives(torch.tensor([0, 0, 0, 1, 1]), torch.arange(2, 6), known, n,
                                  torch.Generator().manual_seed(0))
    assert (tails[:3] == 5).all() and ((tails[3:] >= 2) & (tails[3:] != 5)).all()
    with pytest.raises(RuntimeError, match="every candidate"):
        sample_tail_negatives(torch.tensor([0]), torch.tensor([2, 3]), pair_keys(torch.tensor([[0, 0], [2, 3]]), n), n)
    with pytest.raises(ValueError, match="no candidate"):
        sample_tail_negatives(torch.tensor([0]), torch.tensor([], dtype=torch.long), known, n)


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


@pytest.mark.data
def test_movielens100k_ranking_fields_and_minibatches(copy_shared):
    root = copy_shared("MovieLens100K")
    dm = MovieLens100K(root=str(root), split_seed=1, batch_size=4096)
    dm.setup("fit")
    train, val, test = (dm.parts[k] for k in ("train", "val", "test"))
    assert torch.equal(val.rank_src, torch.arange(NUM_USERS))
    assert torch.equal(val.rank_dst, torch.arange(NUM_USERS, NUM_USERS + NUM_ITEMS))
    assert torch.equal(val.rank_exclude, train.pos_edge_index)  # validation ranks skip training interactions
    assert torch.equal(test.rank_exclude, torch.cat([train.pos_edge_index, val.pos_edge_index], 1))
    assert torch.equal(train.dst_candidates, val.rank_dst)
    batches = list(dm.train_dataloader())
    assert [b.pos_edge_index.size(1) for b in batches[:-1]] == [4096] * (len(batches) - 1)
    seen = torch.cat([b.pos_edge_index for b in batches], 1)
    assert sorted(map(tuple, seen.t().tolist())) == sorted(map(tuple, train.pos_edge_index.t().tolist()))
    assert all(b.edge_index is train.edge_index for b in batches)  # the message graph stays whole


def write_two_community_ratings(raw: Path, users: int = 40, items: int = 40, seed: int = 0) -> None:
    """u.data where users of community c rate (4-5 stars) a random half of community c's items only."""
    gen = torch.Generator().manual_seed(seed)
    lines = []
    for u in range(users):
        for i in range(items):
            if u % 2 == i % 2 and torch.rand((), generator=gen) < 0.5:
                lines.append(f"{u + 1}\t{i + 1}\t{4 + (u + i) % 2}\t0")
    raw.mkdir(parents=True)
    (raw / "u.data").write_text("\n".join(lines) + "\n")


def test_bpr_training_learns_to_rank(tmp_path):
    """LinkPrediction(loss="bpr") + MovieLens100K mini-batches: ndcg@10 of the full ranking rises far above
    the untrained model's on a two-community rating graph (a random ranking of the 1682 items scores about
    0.003: about one held-out item per user)."""
    import lightning.pytorch as pl

    from graphlab.tasks import LinkPrediction

    write_two_community_ratings(tmp_path / "MovieLens100K" / "raw")
    pl.seed_everything(0, verbose=False)
    metric = "ndcg@10"
    dm = MovieLens100K(root=str(tmp_path), metric=metric, batch_size=128)
    model = Sheaf4Rec(NUM_USERS + NUM_ITEMS, latent_dim=8, num_layers=2)
    task = LinkPrediction(model, lr=0.02, loss="bpr", l2_decay=1e-4, info=dm.info)
    trainer = pl.Trainer(max_epochs=15, logger=False, default_root_dir=tmp_path, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    before = trainer.validate(task, datamodule=dm, verbose=False)[0][f"val_{metric}"]
    trainer.fit(task, datamodule=dm)
    after = trainer.validate(task, datamodule=dm, verbose=False)[0][f"val_{metric}"]
    assert after > 0.15 and after > before + 0.1, (before, after)


def test_bpr_options_are_validated():
    from graphlab.models import GCN
    from graphlab.tasks import LinkPrediction

    with pytest.raises(ValueError, match="loss='bpr' only"):
        LinkPrediction(Sheaf4Rec(4), loss="bce", l2_decay=1e-4)
    with pytest.raises(ValueError, match="no `embed"):
        LinkPrediction(GCN(4, 4), loss="bpr", l2_decay=1e-4)
    with pytest.raises(ValueError, match="metric 'auc'"):
        MovieLens100K(metric="auc")
    with pytest.raises(ValueError, match="batch_size"):
        MovieLens100K(batch_size=0)
