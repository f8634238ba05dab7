"""NCN's Planetoid random 70/10/20 edge split: the official proportions, disjoint parts, one split per seed,
no held-out edge in the training graph; the mini-batch train loader."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from graphlab.data import PlanetoidLinkData
from graphlab.data.base import link_train_loader
from graphlab.data.splits import ncn_random_split

SHARED = Path(os.environ.get("GRAPHLAB_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def _keys(edges: torch.Tensor, n: int) -> set[int]:
    lo, hi = edges.min(0).values, edges.max(0).values
    return set((lo * n + hi).tolist())


def _grid(n: int = 20) -> torch.Tensor:
    """A graph with a known edge count: the n-node cycle plus chords (i, i + 3), both directions."""
    i = torch.arange(n)
    edges = torch.cat([torch.stack([i, (i + 1) % n]), torch.stack([i, (i + 3) % n])], dim=1)
    return torch.cat([edges, edges.flip(0)], dim=1)


def test_split_proportions_follow_the_official_code():
    n = 20
    split = ncn_random_split(_grid(n), n, seed=0)  # 40 undirected edges
    # floor(0.2 * 40) = 8 validation candidates and 8 test positives; int(8 * 0.1 / 0.2) = 4 stay validation
    assert split.test_pos.size(1) == 8 and split.val_pos.size(1) == 4 and split.train_pos.size(1) == 28
    assert split.val_neg.size(1) == 8 and split.test_neg.size(1) == 8
    parts = [_keys(p, n) for p in (split.train_pos, split.val_pos, split.test_pos)]
    assert sum(map(len, parts)) == 40 and len(set().union(*parts)) == 40  # disjoint and covering
    negatives = _keys(torch.cat([split.val_neg, split.test_neg], 1), n)
    assert len(negatives) == 16 and not negatives & set().union(*parts)  # distinct non-edges
    assert (split.val_neg[0] < split.val_neg[1]).all() and (split.train_pos[0] < split.train_pos[1]).all()


def test_split_is_deterministic_per_seed():
    a, b, c = (ncn_random_split(_grid(30), 30, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(x, y) for x, y in zip(vars(a).values(), vars(b).values()))
    assert not torch.equal(a.test_pos, c.test_pos)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    if not (SHARED / "Cora" / "raw").is_dir():
        pytest.skip(f"Cora not found in {SHARED}")
    root = tmp_path_factory.mktemp("planetoid")
    shutil.copytree(SHARED / "Cora", root / "Cora")
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return root


def test_cora_sizes_match_the_official_run(root):
    data = PlanetoidLinkData("cora", root=str(root), split_seed=0, batch_size=1152)
    s = data.split
    # anchors-measured.md: 3696 train / 527 val / 1055 test positives, 1055 val and 1055 test negatives
    assert [p.size(1) for p in (s.train_pos, s.val_pos, s.test_pos, s.val_neg, s.test_neg)] == [3696, 527, 1055,
                                                                                                1055, 1055]
    train = data.parts["train"]
    graph = _keys(train.edge_index, 2708)
    assert graph == _keys(s.train_pos, 2708) and train.edge_index.size(1) == 2 * 3696  # both directions
    for held_out in (s.val_pos, s.test_pos, s.val_neg, s.test_neg):
        assert not graph & _keys(held_out, 2708)
    assert data.info.metric == "hits@100" and data.info.num_features == 1433
    assert float(train.x.sum(1).max()) > 1.0  # raw bag-of-words rows, not row-normalised


def test_split_follows_the_run_seed(root):
    torch.manual_seed(3)
    by_run_seed = PlanetoidLinkData("cora", root=str(root)).split
    explicit = PlanetoidLinkData("cora", root=str(root), split_seed=3).split
    other = PlanetoidLinkData("cora", root=str(root), split_seed=4).split
    assert torch.equal(by_run_seed.test_pos, explicit.test_pos)
    assert not torch.equal(explicit.test_pos, other.test_pos)


def test_link_train_loader_batches():
    pos = torch.arange(20).view(2, 10)
    train = Data(x=torch.zeros(20, 1), edge_index=pos, pos_edge_index=pos, num_nodes=20)
    batches = list(link_train_loader(train, batch_size=4))
    assert [b.pos_edge_index.size(1) for b in batches] == [4, 4]  # the partial batch is dropped
    seen = torch.cat([b.pos_edge_index for b in batches], 1)
    assert len(set(seen[0].tolist())) == 8 and all(b.edge_index is pos for b in batches)
    assert len(list(link_train_loader(train, batch_size=None))) == 1
    with pytest.raises(ValueError, match="fewer than batch_size=64"):
        link_train_loader(train, batch_size=64)


def test_bad_arguments_are_named(root):
    with pytest.raises(ValueError, match="unknown Planetoid dataset 'photo'"):
        PlanetoidLinkData("photo", root=str(root))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        PlanetoidLinkData("cora", root=str(root), batch_size=0)
    with pytest.raises(FileNotFoundError, match="missing file"):
        _ = PlanetoidLinkData("citeseer", root=str(root), download=False).parts
