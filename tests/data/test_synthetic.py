"""Synthetic benchmarks: CSL structure and encodings, cSBM homophily, random link splits."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import AddRandomWalkPE
from torch_geometric.utils import degree, homophily, is_undirected, to_dense_adj, to_networkx

from graphlab.data import CSBMData, CSLData, RandomLinkData
from graphlab.data.synthetic import CSL_SKIPS


# --------------------------------------------------------------------------- CSL
@pytest.fixture(scope="module")
def csl() -> CSLData:
    return CSLData(fold=2)


def test_csl_graphs_are_41_node_4_regular_with_15_per_class(csl) -> None:
    graphs = csl.graphs
    assert len(graphs) == 150
    for g in graphs:
        assert g.num_nodes == 41 and g.edge_index.size(1) == 164 and is_undirected(g.edge_index)
        assert bool((degree(g.edge_index[0], 41) == 4).all())
        assert not bool((g.edge_index[0] == g.edge_index[1]).any())
    labels = torch.cat([g.y for g in graphs])
    assert torch.bincount(labels).tolist() == [15] * len(CSL_SKIPS)


def test_csl_isomorphism_classes(csl) -> None:
    graphs = csl.graphs
    nx_graph = [to_networkx(g, to_undirected=True) for g in graphs]
    for c in range(10):  # copies are relabellings of one graph...
        assert all(nx.is_isomorphic(nx_graph[15 * c], nx_graph[15 * c + k]) for k in (1, 8, 14))
        assert not torch.equal(graphs[15 * c].edge_index, graphs[15 * c + 1].edge_index)  # ...really relabelled
    for a, b in [(0, 1), (3, 4), (8, 9)]:  # classes differ (VF2 on a sample: it is slow to refute)
        assert not nx.is_isomorphic(nx_graph[15 * a], nx_graph[15 * b + 5])
    spectra = [np.linalg.eigvalsh(to_dense_adj(graphs[15 * c].edge_index, max_num_nodes=41)[0].numpy()) for c in range(10)]
    for a in range(10):  # all pairs: different adjacency spectra prove non-isomorphism
        for b in range(a + 1, 10):
            assert np.abs(spectra[a] - spectra[b]).max() > 1e-3


def test_csl_rwse_matches_pyg_and_separates_classes(csl) -> None:
    g = csl.graphs[37]
    torch.testing.assert_close(g.x, AddRandomWalkPE(20, attr_name="pe")(g).pe)
    torch.testing.assert_close(g.x, g.x[:1].expand_as(g.x))  # vertex-transitive: every node alike
    assert g.x[0, 0] == 0 and g.x[0, 1] == pytest.approx(1 / 4)  # no loops; back in 2 steps w.p. 1/deg
    per_class = torch.stack([csl.graphs[15 * c].x[0] for c in range(10)])
    assert torch.cdist(per_class, per_class).add(torch.eye(10)).min() > 1e-4


def test_csl_laplacian_and_constant_features() -> None:
    g = CSLData(positional_encoding="laplacian", pe_dim=6).graphs[0]
    assert g.x.shape == (41, 6)
    torch.testing.assert_close(g.x.t() @ g.x, torch.eye(6), atol=1e-5, rtol=0)  # orthonormal
    torch.testing.assert_close(g.x.sum(dim=0), torch.zeros(6), atol=1e-5, rtol=0)  # orthogonal to constant
    plain = CSLData(positional_encoding="none")
    assert plain.info.num_features == 1 and bool((plain.graphs[5].x == 1).all())


def test_csl_folds(csl) -> None:
    info = csl.info
    assert (info.level, info.num_outputs, info.num_features, info.num_splits) == ("graph", 10, 20, 5)
    tests = []
    for fold in range(5):
        idx = CSLData(fold=fold, positional_encoding="none").split_index
        parts = [set(t.tolist()) for t in (idx.train, idx.val, idx.test)]
        assert [len(p) for p in parts] == [90, 30, 30]
        assert set().union(*parts) == set(range(150)) and sum(map(len, parts)) == 150
        labels = torch.tensor([i // 15 for i in sorted(parts[2])])
        assert torch.bincount(labels, minlength=10).tolist() == [3] * 10  # stratified
        tests.append(parts[2])
    assert set().union(*tests) == set(range(150))
    batch = next(iter(csl.train_dataloader()))
    assert isinstance(batch, Batch) and batch.num_graphs == 5 and batch.y.dtype == torch.long


def test_csl_fold_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"split=5 is out of range for CSL.*0\.\.4"):
        CSLData(fold=5)


# --------------------------------------------------------------------------- cSBM
@pytest.mark.parametrize("num_classes", [2, 4])
def test_csbm_edge_homophily_tracks_knob(num_classes) -> None:
    measured = []
    for h in (0.1, 0.3, 0.5, 0.7, 0.9):
        g = CSBMData(num_nodes=1000, num_classes=num_classes, avg_degree=10, homophily=h).graph
        measured.append(float(homophily(g.edge_index, g.y, method="edge")))
        assert measured[-1] == pytest.approx(h, abs=0.04)
        assert g.edge_index.size(1) / 1000 == pytest.approx(10, rel=0.1) and is_undirected(g.edge_index)
    assert measured == sorted(measured)


def test_csbm_masks_and_seeds() -> None:
    dm = CSBMData(split=3)
    info = dm.info
    assert (info.level, info.num_features, info.num_outputs, info.num_splits) == ("node", 32, 2, 10)
    data = next(iter(dm.train_dataloader()))
    assert isinstance(data, Data) and not isinstance(data, Batch)
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.sum(dim=1).tolist() == [240, 80, 80] and bool((masks.sum(dim=0) == 1).all())
    again, other = CSBMData(split=3).graph, CSBMData(split=4).graph
    assert torch.equal(again.x, data.x) and torch.equal(again.train_mask, data.train_mask)
    assert torch.equal(other.edge_index, data.edge_index) and not torch.equal(other.train_mask, data.train_mask)


def test_csbm_features_carry_the_signal() -> None:
    def centroid_accuracy(signal: float) -> float:
        g = CSBMData(num_nodes=600, feature_signal=signal).graph
        means = torch.stack([g.x[g.train_mask & (g.y == c)].mean(0) for c in range(2)])
        pred = torch.cdist(g.x[g.test_mask], means).argmin(dim=1)
        return float((pred == g.y[g.test_mask]).float().mean())

    assert centroid_accuracy(2.0) > 0.9
    assert centroid_accuracy(0.0) < 0.65


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"homophily": 1.5}, r"homophily is the expected fraction .* in \[0, 1\]"),
        ({"num_nodes": 20, "avg_degree": 15.0, "homophily": 1.0}, "needs edge probability .* > 1"),
        ({"split": 10}, r"split=10 is out of range for CSBM"),
        ({"train_ratio": 0.9, "val_ratio": 0.2}, "train_ratio \\+ val_ratio < 1"),
    ],
)
def test_csbm_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        _ = CSBMData(**kwargs).graph


# --------------------------------------------------------------------------- random links
def test_random_link_split_contract() -> None:
    dm = RandomLinkData()
    info = dm.info
    assert (info.level, info.task_type, info.metric, info.num_features) == ("link", "link", "hits@20", 16)
    train, val, test = (next(iter(loader)) for loader in (dm.train_dataloader(), dm.val_dataloader(),
                                                           dm.test_dataloader()))
    as_set = lambda e: {tuple(sorted(p)) for p in e.t().tolist()}  # noqa: E731
    pos = {k: as_set(d.pos_edge_index) for k, d in (("train", train), ("val", val), ("test", test))}
    assert not (pos["train"] & pos["val"] or pos["train"] & pos["test"] or pos["val"] & pos["test"])
    assert as_set(train.edge_index) == pos["train"] and is_undirected(train.edge_index)  # message graph
    assert train.edge_index.size(1) == 2 * len(pos["train"]) and "neg_edge_index" not in train
    every_edge = pos["train"] | pos["val"] | pos["test"]
    for d in (val, test):
        negatives = as_set(d.neg_edge_index)
        assert len(negatives) == d.neg_edge_index.size(1) == d.pos_edge_index.size(1)
        assert not negatives & every_edge and all(u != v for u, v in negatives)
        assert d.edge_index is train.edge_index
    total = len(every_edge)
    assert len(pos["val"]) == round(0.1 * total) and len(pos["test"]) == round(0.2 * total)
    predict = next(iter(dm.predict_dataloader()))
    assert predict.edge_label_index.size(1) == test.pos_edge_index.size(1) + test.neg_edge_index.size(1)


def test_random_links_are_predictable_from_features() -> None:
    test = RandomLinkData().parts["test"]
    x = torch.nn.functional.normalize(test.x, dim=1)
    score = lambda e: (x[e[0]] * x[e[1]]).sum(dim=1)  # noqa: E731
    pos, neg = score(test.pos_edge_index), score(test.neg_edge_index)
    auc = float((pos[:, None] > neg[None, :]).float().mean())
    assert auc > 0.75
