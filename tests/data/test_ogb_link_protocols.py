"""OGB link protocols on OGB-layout fixtures: ogbl-collab's validation edges in the test graph, ogbl-citation2's
per-source negatives (positive-major, OGB's MRR) and evaluation cut into batches of positives."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from ogb.linkproppred import Evaluator

from graphlab.data import OGBLinkData
from graphlab.data.base import link_eval_loader
from graphlab.data.ogb import per_source_pairs
from graphlab.eval.metrics import link_metric
from graphlab.models import NCN
from graphlab.tasks import LinkPrediction


def _pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def _both_ways(edges: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in edges} | {(int(v), int(u)) for u, v in edges}


# --------------------------------------------------------------------------- ogbl-collab
@pytest.mark.parametrize("flag", [True, False])
def test_collab_validation_edges_join_only_the_test_graph(ogb_fixture, flag) -> None:
    fx = ogb_fixture.link_collab()
    dm = OGBLinkData("ogbl-collab", root=str(fx.root), download=False, val_edges_in_test_graph=flag)
    dm.setup("fit")
    train, val, test = (next(iter(loader)) for loader in (dm.train_dataloader(), dm.val_dataloader(),
                                                          dm.test_dataloader()))
    train_graph, val_edges = _both_ways(fx.arrays["train"]), _both_ways(fx.arrays["valid"])
    assert _pairs(train.edge_index) == train_graph and not val_edges & train_graph
    assert _pairs(val.edge_index) == train_graph  # validation scores on the training graph
    assert _pairs(test.edge_index) == (train_graph | val_edges if flag else train_graph)
    assert val.pos_edge_index.tolist() == fx.arrays["valid"].T.tolist()
    assert test.pos_edge_index.tolist() == fx.arrays["test"].T.tolist()


# --------------------------------------------------------------------------- ogbl-citation2
def test_citation2_parts_are_positive_major(ogb_fixture) -> None:
    fx = ogb_fixture.link_citation2()
    dm = OGBLinkData("ogbl-citation2", root=str(fx.root), download=False)
    info = dm.info
    assert (info.metric, info.negatives_per_positive, info.num_features) == ("mrr", 1000, 2)
    train = dm.parts["train"]
    assert train.pos_edge_index.tolist() == fx.arrays["edge"].T.tolist()
    assert _pairs(train.edge_index) == _both_ways(fx.arrays["edge"])  # directed citations, messages both ways
    for ours, theirs in (("val", "valid"), ("test", "test")):
        part = dm.parts[ours]
        src, dst, neg = fx.arrays[f"{theirs}_src"], fx.arrays[f"{theirs}_dst"], fx.arrays[f"{theirs}_neg"]
        assert part.pos_edge_index.tolist() == [src.tolist(), dst.tolist()]
        expected = [(int(src[i]), int(neg[i, q])) for i in range(len(src)) for q in range(neg.shape[1])]
        assert list(map(tuple, part.neg_edge_index.t().tolist())) == expected


def test_citation2_mrr_matches_ogb_evaluator(ogb_fixture) -> None:
    """Scores of a fixed function of (src, dst) through our layout and link_metric vs OGB's Evaluator on the raw
    [P, 1000] arrays."""
    fx = ogb_fixture.link_citation2()
    dm = OGBLinkData("ogbl-citation2", root=str(fx.root), download=False)

    def f(src, dst):
        return torch.sin(1.7 * torch.as_tensor(src, dtype=torch.float64) + 0.3 * torch.as_tensor(dst, dtype=torch.float64) ** 2)

    part = dm.parts["test"]
    ours = link_metric(dm.info, f(*part.pos_edge_index), f(*part.neg_edge_index))
    src, dst, neg = fx.arrays["test_src"], fx.arrays["test_dst"], fx.arrays["test_neg"]
    theirs = Evaluator("ogbl-citation2").eval({"y_pred_pos": f(src, dst).float(),
                                               "y_pred_neg": f(src[:, None], neg).float()})["mrr_list"].mean()
    assert ours == pytest.approx(float(theirs), abs=1e-6)


def test_per_source_pairs_errors() -> None:
    part = {"source_node": np.array([0, 1]), "target_node": np.array([2, 3]), "target_node_neg": np.zeros((2, 4))}
    pos, neg = per_source_pairs(part, "toy", 4)
    assert pos.tolist() == [[0, 1], [2, 3]] and neg[0].tolist() == [0] * 4 + [1] * 4
    with pytest.raises(ValueError, match=r"target_node_neg should be \[2, 1000\]"):
        per_source_pairs(part, "toy", 1000)
    with pytest.raises(ValueError, match=r"no \['target_node'\] entries"):
        per_source_pairs({"source_node": np.array([0])}, "toy")


# --------------------------------------------------------------------------- evaluation batches
@pytest.mark.parametrize("dataset", ["ogbl-ddi", "ogbl-citation2"])
def test_eval_batches_concatenate_to_the_split(ogb_fixture, dataset) -> None:
    fx = ogb_fixture.link_ddi() if dataset == "ogbl-ddi" else ogb_fixture.link_citation2()
    dm = OGBLinkData(dataset, root=str(fx.root), download=False, eval_batch_positives=1)
    whole = dm.parts["val"]
    batches = list(dm.val_dataloader())
    assert len(batches) == whole.pos_edge_index.size(1)
    for key in ("pos_edge_index", "neg_edge_index"):
        assert torch.equal(torch.cat([getattr(b, key) for b in batches], dim=1), getattr(whole, key))
    q = dm.info.negatives_per_positive
    if q is not None:  # each batch: its positive and exactly that positive's negatives
        for b in batches:
            assert b.neg_edge_index.size(1) == q and bool((b.neg_edge_index[0] == b.pos_edge_index[0, 0]).all())
    assert all(b.edge_index is whole.edge_index for b in batches)


def test_eval_loader_rejects_bad_counts(ogb_fixture) -> None:
    fx = ogb_fixture.link_citation2(num_negatives=3)
    with pytest.raises(ValueError, match="eval_batch_positives must be >= 1"):
        OGBLinkData("ogbl-citation2", root=str(fx.root), download=False, eval_batch_positives=0)
    dm = OGBLinkData("ogbl-citation2", root=str(fx.root), download=False)
    with pytest.raises(ValueError, match=r"target_node_neg should be \[2, 1000\]"):
        _ = dm.parts
    whole = OGBLinkData("ogbl-ddi", root=str(ogb_fixture.link_ddi().root), download=False).parts["val"]
    with pytest.raises(ValueError, match="need 6 negative pairs, got 3"):
        link_eval_loader(whole, 1, negatives_per_positive=3)


def _validate(dm: OGBLinkData) -> float:
    L.seed_everything(0)
    model = NCN(dm.info.num_features, hidden_channels=8, conv="puregcn", use_xlin=True)
    task = LinkPrediction(model, eval_batch_size=500)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    return trainer.validate(task, datamodule=dm, verbose=False)[0]["val_mrr"]


def test_citation2_validation_mrr_is_the_same_in_batches(ogb_fixture) -> None:
    fx = ogb_fixture.link_citation2()
    whole = _validate(OGBLinkData("ogbl-citation2", root=str(fx.root), download=False))
    batched = _validate(OGBLinkData("ogbl-citation2", root=str(fx.root), download=False, eval_batch_positives=1))
    assert 0.0 < whole <= 1.0 and batched == pytest.approx(whole, abs=1e-6)
