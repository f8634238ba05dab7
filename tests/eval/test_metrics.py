"""graphlab's metric functions agree with OGB's own Evaluator and with plain definitions."""

import pytest
import torch
from ogb.graphproppred import Evaluator as GraphEvaluator
from ogb.linkproppred import Evaluator as LinkEvaluator
from ogb.nodeproppred import Evaluator as NodeEvaluator

from graphlab.info import DatasetInfo
from graphlab.eval.metrics import evaluate, link_metric, pessimistic_ranks, positive_ranks


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


def _link(metric: str, per_positive=None, ogb_name=None) -> DatasetInfo:
    return DatasetInfo("x", "link", "link", 4, 1, metric, ogb_name=ogb_name, negatives_per_positive=per_positive)


def test_mrr_and_hits_on_a_hand_computed_example_with_ties():
    # Positive 0 scores 0.9 against its own negatives [0.95, 0.9, 0.1]: one negative above it (0.95), two at or
    #   above it (0.95, 0.9), so its rank is 1 + (1 + 2) / 2 = 2.5 and its reciprocal rank 0.4.
    # Positive 1 scores 0.5 against [0.2, 0.3, 0.4]: nothing at or above it, rank 1, reciprocal rank 1.
    # Positive 2 scores 0.1 against [0.8, 0.1, 0.1]: one above, three at or above: rank 1 + (1 + 3) / 2 = 3, 1/3.
    # MRR = (0.4 + 1 + 1/3) / 3 = 0.57777...; hits@1 = 1/3 (only rank 1 <= 1); hits@3 = 3/3 (2.5 and 3 <= 3).
    # Had each positive been ranked against all nine negatives (the old non-OGB path), positive 1 would rank
    # 1 + (5 + 5) / 2 = 6 (0.95, 0.9, 0.8 and the two at... ) and the MRR would differ: the test pins the per-row one.
    pos = torch.tensor([0.9, 0.5, 0.1])
    neg = torch.tensor([[0.95, 0.9, 0.1], [0.2, 0.3, 0.4], [0.8, 0.1, 0.1]])
    assert positive_ranks(pos, neg).tolist() == [2.5, 1.0, 3.0]
    assert link_metric(_link("mrr", 3), pos, neg) == pytest.approx((0.4 + 1.0 + 1 / 3) / 3)
    assert link_metric(_link("mrr", 3), pos, neg.view(-1)) == pytest.approx(0.5777777777)  # positive-major [P*Q]
    assert link_metric(_link("hits@1", 3), pos, neg) == pytest.approx(1 / 3)
    assert link_metric(_link("hits@3", 3), pos, neg) == pytest.approx(1.0)
    assert link_metric(_link("hits@2", 3), pos, neg) == pytest.approx(1 / 3)  # 2.5 > 2 and 3 > 2


def test_hits_on_a_shared_pool_hand_computed_with_ties():
    # One pool of negatives [0.9, 0.5, 0.5, 0.1] shared by the positives [0.95, 0.5, 0.6]. OGB's hits@K: a positive
    # hits when it is strictly above the K-th best negative. K = 1 (0.9): only 0.95 -> 1/3. K = 2 (0.5): 0.95 and
    # 0.6 (0.5 ties, not strictly above) -> 2/3. K = 5 > 4 negatives: OGB returns 1.0.
    pos, pool = torch.tensor([0.95, 0.5, 0.6]), torch.tensor([0.9, 0.5, 0.5, 0.1])
    assert link_metric(_link("hits@1"), pos, pool) == pytest.approx(1 / 3)
    assert link_metric(_link("hits@2"), pos, pool) == pytest.approx(2 / 3)
    assert link_metric(_link("hits@5"), pos, pool) == 1.0
    assert pessimistic_ranks(pos, pool).tolist() == [1, 4, 2]  # 1 + #(neg >= pos)


@pytest.mark.parametrize("k", [1, 10, 20, 50])
def test_shared_pool_hits_agrees_with_ogbl_evaluator_on_random_scores(k):
    g = torch.Generator().manual_seed(k)
    pos, neg = torch.randint(0, 30, (100,), generator=g).float(), torch.randint(0, 30, (400,), generator=g).float()
    ref = LinkEvaluator("ogbl-ddi")
    ref.K = k
    expected = ref.eval({"y_pred_pos": pos, "y_pred_neg": neg})[f"hits@{k}"]
    assert link_metric(_link(f"hits@{k}", ogb_name="ogbl-ddi"), pos, neg) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_positive_mrr_and_hits_agree_with_ogbl_citation2_evaluator_on_random_scores(seed):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, 5, (60,), generator=g).float()
    neg = torch.randint(0, 5, (60, 20), generator=g).float()  # integer scores: many ties
    ref = LinkEvaluator("ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": neg})
    assert link_metric(_link("mrr", 20), pos, neg) == pytest.approx(ref["mrr_list"].mean().item(), abs=1e-6)
    for k in (1, 3, 10):
        assert link_metric(_link(f"hits@{k}", 20), pos, neg) == pytest.approx(ref[f"hits@{k}_list"].mean().item())


def test_mrr_needs_the_negatives_per_positive():
    with pytest.raises(ValueError, match="negatives_per_positive"):
        DatasetInfo("x", "link", "link", 4, 1, "mrr")
    with pytest.raises(ValueError, match="positive int"):
        DatasetInfo("x", "link", "link", 4, 1, "hits@1", negatives_per_positive=0)
    with pytest.raises(ValueError, match="for link data"):
        DatasetInfo("x", "node", "multiclass", 4, 3, "acc", negatives_per_positive=2)


def test_negative_count_that_does_not_match_is_a_clear_error():
    with pytest.raises(ValueError, match="2 negatives each need 6 negative scores"):
        link_metric(_link("mrr", 2), torch.zeros(3), torch.zeros(5))


def test_metric_label_shows_the_negative_count():
    assert _link("mrr", 50).metric_label == "mrr (50 neg/pos)"
    assert _link("hits@20").metric_label == "hits@20"


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
