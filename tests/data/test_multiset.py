"""2nd-minimum data: labels against a plain-Python computation, sizes, per-seed determinism, batching, errors;
the exact-match metric."""

from __future__ import annotations

import pytest
import torch

from graphlab.data import SecondMinimumData, SecondMinimumGraphData
from graphlab.data.multiset import int_to_bits, second_minimum
from graphlab.eval.metrics import evaluate, exact_match_accuracy
from graphlab.info import DatasetInfo

pytestmark = pytest.mark.usefixtures("one_thread")


def _bits(value: int, num_bits: int = 8) -> list[float]:
    return [float(c) for c in format(value, f"0{num_bits}b")]


def _second_min(values: list[int]) -> int:
    return sorted(values)[1]


def test_second_minimum_counts_duplicates():
    values = torch.tensor([3, 7, 3, 5, 1, 9, 9, 2])
    ptr = torch.tensor([0, 3, 5, 8])  # {3, 7, 3}, {5, 1}, {9, 9, 2}
    assert second_minimum(values, ptr).tolist() == [3, 5, 9]
    assert int_to_bits(torch.tensor([5, 255]), 8).tolist() == [_bits(5), _bits(255)]


def test_set_labels_match_plain_python():
    dm = SecondMinimumData(num_train=300, num_val=20, num_test=20, num_bits=6)
    for split in ("train", "val", "test"):
        store = dm.split(split)
        for i in range(len(store)):
            sample = store[i]
            values = sample.value.tolist()
            assert sample.x.tolist() == [[int(b) for b in _bits(v, 6)] for v in values]
            assert sample.y.tolist() == [_bits(_second_min(values), 6)]
            assert max(values) < 2**6


def test_set_sizes():
    dm = SecondMinimumData(test_sizes=[64, 40], num_train=2000, num_val=10, num_test=10)
    sizes = dm.split("train").sizes
    assert int(sizes.min()) == 2 and int(sizes.max()) == 16
    assert len(set(sizes.tolist())) == 15  # every size 2..16 occurs
    assert dm.split("val").sizes.tolist() == [32] * 10
    assert dm.split("test").sizes.tolist() == [64] * 10  # the first test size by default
    assert dm.split("test", 40).sizes.tolist() == [40] * 10
    assert dm.test_names == ["64", "40"]
    loaders = dm.test_dataloader()
    assert [sorted({int(s) for b in loader for s in torch.bincount(b.batch).tolist()}) for loader in loaders] == \
        [[64], [40]]
    assert dm.info.name == "second-min" and dm.info.metric == "exact_acc" and dm.info.task_type == "binary"


def test_test_sets_of_two_sizes_are_independent_and_fixed():
    a = SecondMinimumData(test_sizes=[32, 64], num_train=10, num_test=20)
    b = SecondMinimumData(test_sizes=[64], num_train=10, num_test=20)
    assert torch.equal(a.split("test", 64).values, b.split("test").values)  # not shifted by the other sizes
    first64 = a.split("test", 64).values[:64 * 20 // 2]
    assert not torch.equal(a.split("test", 32).values, first64)  # its own stream, not a prefix of the 64s


def test_batches_equal_the_samples():
    dm = SecondMinimumData(num_train=50, num_val=7, num_test=7, batch_size=16)
    store = dm.split("train")
    batch = store.collate([4, 0, 31, 4])
    assert batch.num_graphs == 4
    for position, i in enumerate([4, 0, 31, 4]):
        one = store[i]
        assert torch.equal(batch.x[batch.batch == position], one.x)
        assert torch.equal(batch.y[position:position + 1], one.y)
    assert torch.equal(batch.batch, torch.sort(batch.batch).values)  # sorted set ids
    total = sum(b.num_graphs for b in dm.val_dataloader())
    assert total == 7


def test_set_data_is_deterministic_per_seed_and_split():
    a = SecondMinimumData(num_train=100, num_val=10, num_test=10, seed=3)
    b = SecondMinimumData(num_train=400, num_val=10, num_test=10, seed=3)
    c = SecondMinimumData(num_train=100, num_val=10, num_test=10, seed=4)
    assert torch.equal(a.split("val").values, b.split("val").values)  # not shifted by the train count
    assert torch.equal(a.split("train").values, SecondMinimumData(num_train=100, seed=3).split("train").values)
    assert not torch.equal(a.split("val").values, c.split("val").values)
    assert not torch.equal(a.split("val").values, a.split("test").values[:320])


def test_graph_labels_degrees_and_masks():
    dm = SecondMinimumGraphData(test_degrees=[64, 20], num_train_graphs=3, num_val_graphs=1, num_test_graphs=1,
                                num_nodes=70)
    for split, degree, degrees in (("train", None, range(2, 17)), ("val", None, [32]), ("test", None, [64]),
                                   ("test", 20, [20])):
        for graph in dm.split(split, degree):
            src, dst = graph.edge_index.tolist()
            assert all(s != d for s, d in zip(src, dst))
            assert len(set(zip(src, dst))) == len(src)  # distinct in-neighbours
            assert dst == sorted(dst)
            values = graph.value.tolist()
            for v in range(graph.num_nodes):
                neighbours = [values[s] for s, d in zip(src, dst) if d == v]
                assert len(neighbours) in degrees
                assert graph.y[v].tolist() == _bits(_second_min(neighbours))
            assert bool(graph[f"{split}_mask"].all())
            assert all(f"{other}_mask" not in graph for other in ("train", "val", "test") if other != split)
    assert dm.info.level == "node" and dm.info.name == "second-min-graph" and dm.test_names == ["64", "20"]
    assert len(dm.test_dataloader()) == 2


def test_graph_data_is_deterministic():
    kw = dict(num_train_graphs=2, num_nodes=40, test_degrees=[32])
    a = SecondMinimumGraphData(**kw, seed=1).split("train")
    b = SecondMinimumGraphData(**kw, seed=1).split("train")
    c = SecondMinimumGraphData(**kw, seed=2).split("train")
    assert all(torch.equal(x.edge_index, y.edge_index) and torch.equal(x.value, y.value) for x, y in zip(a, b))
    assert not torch.equal(a[0].value, c[0].value)


@pytest.mark.parametrize("kwargs, match", [
    ({"train_sizes": (1, 16)}, "2 <= min <= max"),
    ({"train_sizes": (8, 4)}, "2 <= min <= max"),
    ({"test_sizes": [32, 1]}, "every entry of test_sizes must be an int >= 2"),
    ({"test_sizes": 32}, "test_sizes must be a non-empty list of ints"),
    ({"test_sizes": []}, "test_sizes must be a non-empty list of ints"),
    ({"test_sizes": [32, 32]}, "test_sizes has a repeated entry"),
    ({"num_train": 0}, "num_train must be >= 1"),
    ({"num_bits": 0}, "num_bits must be in 1..30"),
    ({"batch_size": 0}, "batch_size >= 1"),
])
def test_set_data_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SecondMinimumData(**kwargs)


def test_graph_data_errors():
    with pytest.raises(ValueError, match="num_nodes=64 cannot give a node 64 distinct in-neighbours"):
        SecondMinimumGraphData(test_degrees=[32, 64], num_nodes=64)
    with pytest.raises(ValueError, match="val_degree must be >= 2"):
        SecondMinimumGraphData(val_degree=1)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        SecondMinimumGraphData(num_nodes=65).split("valid")
    with pytest.raises(ValueError, match=r"no test set of size 40: test_degrees is \[32, 64\]"):
        SecondMinimumGraphData(num_nodes=65).split("test", 40)
    with pytest.raises(ValueError, match="size is only for the test split"):
        SecondMinimumData().split("val", 32)


def test_exact_match_accuracy():
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, -1.0, 1.0], [1.0, 1.0, 1.0]])  # row 1 has one wrong bit
    assert exact_match_accuracy(y, logits) == pytest.approx(2 / 3)
    info = DatasetInfo("x", "graph", "binary", 8, 3, "exact_acc")
    assert evaluate(info, y, logits) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="NaN"):
        exact_match_accuracy(torch.tensor([[float("nan")]]), torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match="binary multi-label"):
        evaluate(DatasetInfo("x", "graph", "multiclass", 8, 3, "exact_acc"), y, logits)
