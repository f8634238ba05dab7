"""graphlab's metric functions agree with OGB's own Evaluator and with plain definitions."""

import pytest
import torch
from ogb.graphproppred import Evaluator as GraphEvaluator
from ogb.linkproppred import Evaluator as LinkEvaluator
from ogb.nodeproppred import Evaluator as NodeEvaluator

from graphlab.data.base import DatasetInfo
from graphlab.eval.metrics import evaluate, hits_at_k, link_metric, mean_reciprocal_rank


def _info(metric: str, task_type: str = "binary", ogb_name=None, level: str = "graph", outputs: int = 3) -> DatasetInfo:
    return DatasetInfo("x", level, task_type, 4, outputs, metric, ogb_name=ogb_name)


def _binary_with_nans(n: int = 200, tasks: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n, tasks), generator=g).float()
    y[torch.rand(n, tasks, generator=g) < 0.2] = float("nan")
    pred = torch.randn(n, tasks, generator=g) + torch.nan_to_num(y, nan=0.0)
    return y, pred


def test_rocauc_with_nan_labels_matches_ogb_evaluator():
    y, pred = _binary_with_nans()
    ours = evaluate(_info("rocauc"), y, pred)
    # ogbg-moltox21 is a multi-task ROC-AUC set: its Evaluator accepts any number of tasks.
    ref = GraphEvaluator("ogbg-moltox21")
    ref.num_tasks = 3
    expected = ref.eval({"y_true": y.numpy(), "y_pred": pred.numpy()})["rocauc"]
    assert ours == pytest.approx(expected, abs=1e-6)


def test_ap_matches_ogb_evaluator():
    y, pred = _binary_with_nans()
    ref = GraphEvaluator("ogbg-molpcba")
    ref.num_tasks = 3
    expected = ref.eval({"y_true": y.numpy(), "y_pred": pred.numpy()})["ap"]
    assert evaluate(_info("ap"), y, pred) == pytest.approx(expected, abs=1e-6)


def test_rmse_matches_ogb_evaluator_and_mae_definition():
    g = torch.Generator().manual_seed(1)
    y, pred = torch.randn(50, 1, generator=g), torch.randn(50, 1, generator=g)
    expected = GraphEvaluator("ogbg-molesol").eval({"y_true": y.numpy(), "y_pred": pred.numpy()})["rmse"]
    assert evaluate(_info("rmse", "regression", outputs=1), y, pred) == pytest.approx(expected, abs=1e-5)
    assert evaluate(_info("mae", "regression", outputs=1), y, pred) == pytest.approx((y - pred).abs().mean().item(), abs=1e-6)


def test_ogb_path_is_used_for_ogb_data():
    y, pred = _binary_with_nans(tasks=1)
    info = _info("rocauc", ogb_name="ogbg-molbace", outputs=1)
    expected = GraphEvaluator("ogbg-molbace").eval({"y_true": y, "y_pred": pred})["rocauc"]
    assert evaluate(info, y, pred) == pytest.approx(expected, abs=1e-9)


def test_multiclass_accuracy_matches_ogbn_evaluator():
    g = torch.Generator().manual_seed(2)
    logits, y = torch.randn(300, 5, generator=g), torch.randint(0, 5, (300,), generator=g)
    expected = NodeEvaluator("ogbn-arxiv").eval({"y_true": y.view(-1, 1), "y_pred": logits.argmax(-1, keepdim=True)})["acc"]
    assert evaluate(_info("acc", "multiclass", level="node", outputs=5), y, logits) == pytest.approx(expected)
    via_ogb = evaluate(_info("acc", "multiclass", ogb_name="ogbn-arxiv", level="node", outputs=5), y, logits)
    assert via_ogb == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 10, 20, 50])
def test_hits_at_k_matches_ogbl_evaluator(k):
    g = torch.Generator().manual_seed(k)
    pos, neg = torch.randn(100, generator=g) + 1.0, torch.randn(400, generator=g)
    ref = LinkEvaluator("ogbl-ddi")
    ref.K = k
    expected = ref.eval({"y_pred_pos": pos, "y_pred_neg": neg})[f"hits@{k}"]
    assert hits_at_k(pos, neg, k) == pytest.approx(expected)
    assert link_metric(_info(f"hits@{k}", "link", ogb_name="ogbl-ddi", level="link", outputs=1), pos, neg) == pytest.approx(expected)


def test_mrr_matches_ogbl_citation2_evaluator_with_ties():
    g = torch.Generator().manual_seed(3)
    pos = torch.randint(0, 5, (60,), generator=g).float()
    neg = torch.randint(0, 5, (60, 20), generator=g).float()  # integer scores: many ties
    expected = LinkEvaluator("ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": neg})["mrr_list"].mean().item()
    assert mean_reciprocal_rank(pos, neg) == pytest.approx(expected, abs=1e-6)
    info = _info("mrr", "link", ogb_name="ogbl-citation2", level="link", outputs=1)
    assert link_metric(info, pos, neg.view(-1)) == pytest.approx(expected, abs=1e-6)


def test_rocauc_undefined_split_raises_clear_error():
    y = torch.ones(10, 1)
    with pytest.raises(ValueError, match="both positive and negative"):
        evaluate(_info("rocauc", outputs=1), y, torch.randn(10, 1))


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(_info("f1"), torch.zeros(3, 1), torch.zeros(3, 1))


@pytest.mark.parametrize("k", [1, 5, 12])
def test_ranking_metrics_match_torchmetrics_retrieval(k):
    """recall@K / ndcg@K per query against torchmetrics' retrieval metrics (the reference), with excluded
    candidates removed from the reference's lists and queries without a relevant candidate skipped."""
    from torchmetrics.functional.retrieval import retrieval_normalized_dcg, retrieval_recall

    from graphlab.eval.metrics import ranking_metric

    gen = torch.Generator().manual_seed(k)
    scores = torch.rand(9, 12, generator=gen) + 0.01  # torchmetrics' recall counts only scores > 0 as retrieved
    relevant = torch.rand(9, 12, generator=gen) < 0.25
    excluded = (torch.rand(9, 12, generator=gen) < 0.2) & ~relevant
    relevant[0] = False  # a query with nothing held out is skipped
    masked = scores.masked_fill(excluded, float("-inf"))
    recall = ranking_metric(masked, relevant, f"recall@{k}")
    ndcg = ranking_metric(masked, relevant, f"ndcg@{k}")
    ref_recall, ref_ndcg = [], []
    for q in range(9):
        if not relevant[q].any():
            continue
        keep = ~excluded[q]
        top = min(k, int(keep.sum()))  # torchmetrics wants top_k <= list length; the top-k of a shorter list is all
        ref_recall.append(retrieval_recall(scores[q, keep], relevant[q, keep], top_k=top))
        ref_ndcg.append(retrieval_normalized_dcg(scores[q, keep], relevant[q, keep], top_k=top))
    torch.testing.assert_close(recall, torch.stack(ref_recall))
    torch.testing.assert_close(ndcg, torch.stack(ref_ndcg))


def test_ranking_metric_rejects_bad_input():
    from graphlab.eval.metrics import ranking_metric

    with pytest.raises(ValueError, match="not a ranking metric"):
        ranking_metric(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), "hits@3")
    with pytest.raises(ValueError, match="same"):
        ranking_metric(torch.zeros(2, 3), torch.zeros(3, 2, dtype=torch.bool), "ndcg@3")
