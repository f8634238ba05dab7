"""LinkPrediction's decode contract: ``decode(z, pairs, *, graph)`` gets the batch the encoder saw, in every stage,
and chunked scoring encodes once per batch; per-positive negatives are checked against the dataset's count."""

from __future__ import annotations

import itertools

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlab.data.base import full_batch_loader
from graphlab.info import DatasetInfo
from graphlab.tasks import LinkPrediction

NUM_NODES = 8
# An undirected toy graph, both directions stored: 0-1, 0-2, 1-2, 1-3, 2-3, 3-4, 4-5, 5-6, 6-7, 4-6.
UNDIRECTED = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (4, 6)]


def _edge_index() -> Tensor:
    pairs = UNDIRECTED + [(v, u) for u, v in UNDIRECTED]
    return torch.tensor(pairs, dtype=torch.long).t()


def _common_neighbours_by_hand(u: int, v: int) -> int:
    """The reference: neighbour sets from the edge list, intersected."""
    nbrs = {n: set() for n in range(NUM_NODES)}
    for a, b in UNDIRECTED:
        nbrs[a].add(b)
        nbrs[b].add(a)
    return len(nbrs[u] & nbrs[v])


class CommonNeighbourDecoder(nn.Module):
    """A toy NCN-like model: the score of ``(u, v)`` is the number of common neighbours of ``u`` and ``v`` in
    ``graph`` (read from ``graph.edge_index``, never from the encoder), plus a learnable bias times ``z``'s
    inner product so that the task has something to train. Counts its encoder calls and records every graph."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, 2)
        self.scale = nn.Parameter(torch.zeros(()))
        self.encoded: list[Tensor] = []
        self.graphs: list[Data] = []

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.encoded.append(x)
        return self.lin(x)

    def decode(self, z: Tensor, pairs: Tensor, *, graph: Data) -> Tensor:
        self.graphs.append(graph)
        adj = torch.zeros(graph.num_nodes, graph.num_nodes)
        adj[graph.edge_index[0], graph.edge_index[1]] = 1.0
        common = (adj[pairs[0]] * adj[pairs[1]]).sum(-1)
        return common + self.scale * (z[pairs[0]] * z[pairs[1]]).sum(-1)


def _part(stage: str, with_negatives: bool = True) -> Data:
    x = torch.eye(NUM_NODES)
    data = Data(x=x, edge_index=_edge_index(), num_nodes=NUM_NODES, stage=stage,
                pos_edge_index=torch.tensor([[0, 3, 4], [3, 5, 7]]))
    if with_negatives:
        data.neg_edge_index = torch.tensor([[0, 0, 3, 3, 4, 4], [5, 7, 0, 7, 1, 2]])  # two per positive
    return data


def _task(model: nn.Module, metric: str = "hits@1", per_positive=None, eval_batch_size: int = 2) -> LinkPrediction:
    info = DatasetInfo("toy", "link", "link", NUM_NODES, 1, metric, negatives_per_positive=per_positive)
    return LinkPrediction(model, info=info, eval_batch_size=eval_batch_size)


def _trainer(root) -> L.Trainer:
    return L.Trainer(max_epochs=1, logger=False, default_root_dir=root, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")


def test_chunked_scoring_encodes_once_and_decodes_with_the_graph():
    model = CommonNeighbourDecoder(NUM_NODES)
    task = _task(model, eval_batch_size=3)
    batch = _part("val")
    pairs = torch.tensor(list(itertools.combinations(range(NUM_NODES), 2))).t()  # 28 pairs -> 10 chunks of <= 3
    with torch.no_grad():
        scores = task.score(batch, pairs)
    assert len(model.encoded) == 1
    assert len(model.graphs) == 10 and all(g is batch for g in model.graphs)
    expected = [_common_neighbours_by_hand(int(u), int(v)) for u, v in pairs.t()]
    assert scores.tolist() == expected  # scale is 0: the score is exactly the common-neighbour count


@pytest.mark.parametrize("metric, per_positive", [("hits@1", None), ("mrr", 2)])
def test_every_stage_decodes_with_its_own_batch_and_encodes_once_per_evaluation(metric, per_positive, tmp_path):
    model = CommonNeighbourDecoder(NUM_NODES)
    task = _task(model, metric, per_positive)
    trainer = _trainer(tmp_path)
    parts = {s: _part(s, with_negatives=s != "train") for s in ("train", "val", "test")}
    trainer.fit(task, full_batch_loader(parts["train"]), full_batch_loader(parts["val"]))
    assert [g.stage for g in model.graphs][0] == "train"
    assert {g.stage for g in model.graphs} == {"train", "val"}
    for graph in model.graphs:  # the graph handed to decode is the batch whose features were encoded
        assert any(graph.x is x for x in model.encoded)
    model.encoded.clear()
    model.graphs.clear()
    trainer.validate(task, full_batch_loader(parts["val"]), verbose=False)
    assert len(model.encoded) == 1  # 9 pairs in chunks of 2: five decode calls, one encoding
    assert len(model.graphs) == 5 and {g.stage for g in model.graphs} == {"val"}
    model.graphs.clear()
    with torch.no_grad():
        model.scale.zero_()  # training moved it; at 0 every score is exactly a common-neighbour count
    result = trainer.test(task, full_batch_loader(parts["test"]), verbose=False)[0]
    assert {g.stage for g in model.graphs} == {"test"}
    # Positives (0,3): 2 common neighbours (1, 2); (3,5): 1 (4); (4,7): 1 (6).
    # Their negatives: (0,5): 0, (0,7): 0 | (3,0): 2, (3,7): 0 | (4,1): 1 (3), (4,2): 1 (3).
    if metric == "mrr":
        # Ranks among own negatives, ties half: (0,3)=2 vs [0, 0] -> 1; (3,5)=1 vs [2, 0] -> 2; (4,7)=1 vs [1, 1]
        # -> 1 + (0 + 2) / 2 = 2. MRR = (1 + 1/2 + 1/2) / 3 = 2/3.
        expected = 2 / 3
    else:
        # One shared pool [0, 0, 2, 0, 1, 1]: its best scores 2 and no positive is strictly above it -> hits@1 = 0.
        expected = 0.0
    assert result[f"test_{metric}"] == pytest.approx(expected)


def test_decode_without_the_graph_keyword_is_rejected():
    class OldDecoder(nn.Module):
        def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
            return x

        def decode(self, z: Tensor, pairs: Tensor) -> Tensor:
            return (z[pairs[0]] * z[pairs[1]]).sum(-1)

    with pytest.raises(TypeError, match="does not accept the keyword `graph`"):
        _task(OldDecoder())


def test_negative_count_that_contradicts_the_dataset_is_a_clear_error(tmp_path):
    task = _task(CommonNeighbourDecoder(NUM_NODES), "mrr", per_positive=3)  # the batch has 2 per positive
    with pytest.raises(ValueError, match="negatives_per_positive=3"):
        _trainer(tmp_path).validate(task, full_batch_loader(_part("val")), verbose=False)


def test_shipped_link_models_accept_the_graph():
    from graphlab.models import LinkGNN, Sheaf4Rec

    z, pairs, graph = torch.randn(5, 4), torch.tensor([[0, 1], [2, 3]]), _part("val")
    assert torch.equal(Sheaf4Rec.decode(z, pairs, graph=graph), (z[[0, 1]] * z[[2, 3]]).sum(-1))
    gnn = LinkGNN(4, hidden_channels=4, decoder="dot")
    assert torch.equal(gnn.decode(z, pairs, graph=graph), (z[[0, 1]] * z[[2, 3]]).sum(-1))
