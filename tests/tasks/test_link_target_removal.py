"""Target-link removal (NCN's ``--maskinput``): a training batch's positive edges leave the graph the model sees,
in both directions, and nothing else does; bad pairs and empty batches fail with a message naming them."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlab.info import DatasetInfo
from graphlab.tasks import LinkPrediction, remove_target_links

INFO = DatasetInfo(name="toy", level="link", task_type="link", num_features=3, num_outputs=1, metric="hits@5")


def _random_graph(n: int = 30, m: int = 120, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (2, m), generator=g)
    return torch.cat([edges, edges.flip(0), edges[:, :10]], dim=1)  # both directions, some duplicated columns


def _by_hand(edge_index: Tensor, targets: Tensor) -> Tensor:
    """The reference: keep a column unless {u, v} is the node set of a target pair."""
    gone = {frozenset((int(u), int(v))) for u, v in targets.t()} | {(int(u), int(v)) for u, v in targets.t()}
    keep = [i for i, (u, v) in enumerate(edge_index.t().tolist())
            if frozenset((u, v)) not in gone]
    return edge_index[:, keep]


def test_removes_exactly_the_targets_in_both_directions():
    edge_index = _random_graph()
    targets = edge_index[:, torch.tensor([0, 5, 17, 40])]  # stored pairs, given in one direction
    targets = torch.cat([targets, torch.tensor([[28], [29]])], dim=1)  # and a pair that is no edge at all
    out = remove_target_links(edge_index, targets, 30)
    assert torch.equal(out, _by_hand(edge_index, targets))
    kept = set(map(tuple, out.t().tolist()))
    for u, v in targets.t().tolist():
        assert (u, v) not in kept and (v, u) not in kept
    removed = edge_index.size(1) - out.size(1)
    assert removed == sum(1 for u, v in edge_index.t().tolist()
                          if (u, v) in {(a, b) for a, b in targets.t().tolist()}
                          or (v, u) in {(a, b) for a, b in targets.t().tolist()})


class Spy(nn.Module):
    """Records the graph its encoder and decoder see."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, 4)
        self.seen: list[Tensor] = []
        self.decoded: list[Tensor] = []

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.seen.append(edge_index)
        return self.lin(x)

    def decode(self, z: Tensor, pairs: Tensor, *, graph: Data) -> Tensor:
        self.decoded.append(graph.edge_index)
        return (z[pairs[0]] * z[pairs[1]]).sum(-1)


def _task(model: nn.Module, **kwargs) -> LinkPrediction:
    task = LinkPrediction(model, info=INFO, **kwargs)
    task.log = lambda *args, **kw: None  # no Trainer attached: logging is not what these tests check
    return task


def _batch() -> Data:
    edge_index = _random_graph()
    return Data(x=torch.randn(30, 3), edge_index=edge_index, num_nodes=30, pos_edge_index=edge_index[:, :6])


@pytest.mark.parametrize("remove", [True, False])
def test_training_step_shows_the_model_the_graph_without_its_targets(remove):
    model = Spy(3)
    task = _task(model, remove_target_links=remove)
    batch = _batch()
    original = batch.edge_index.clone()
    task.training_step(batch, 0)
    expected = _by_hand(original, batch.pos_edge_index) if remove else original
    assert torch.equal(model.seen[0], expected)
    assert all(torch.equal(e, expected) for e in model.decoded)
    assert torch.equal(batch.edge_index, original)  # the DataModule's graph is untouched


def test_pair_index_past_num_nodes_is_named():
    task = _task(Spy(3))
    batch = _batch()
    with pytest.raises(ValueError, match="node index 30 but the graph has 30 nodes"):
        task.score(batch, torch.tensor([[0, 30], [1, 2]]))
    with pytest.raises(ValueError, match="target links has node index -1"):
        remove_target_links(batch.edge_index, torch.tensor([[-1], [2]]), 30)
    with pytest.raises(ValueError, match=r"\[2, P\] integer tensor"):
        remove_target_links(batch.edge_index, torch.tensor([[0.0], [2.0]]), 30)


def test_empty_target_batch_is_named():
    task = _task(Spy(3), remove_target_links=True)
    batch = _batch()
    batch.pos_edge_index = batch.pos_edge_index[:, :0]
    with pytest.raises(ValueError, match="training batch has no positive pairs"):
        task.training_step(batch, 0)
    batch.neg_edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="val batch has no positive pairs"):
        task.validation_step(batch, 0)
