"""Multi-process training (Lightning DDP, gloo on CPU): 2 processes give the metrics of 1 process.

The in-suite runs use ``strategy="ddp_fork"``: the workers are forks of the test process (no second interpreter to
start, ~1 s per run), and the trained weights and metrics of rank 0 come back to the test. The real command line
(``graphlab fit ... --trainer.strategy=ddp``, Lightning's subprocess launcher) is the slow test at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import lightning as L
import pytest
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader as PyGDataLoader
from torch_geometric.utils import k_hop_subgraph

from graphlab.cli import build_cli
from graphlab.data import CSBMData, SampledNodeData
from graphlab.data.base import GraphDataModule
from graphlab.distributed import EpochShardSampler, batch_items, gather_objects, row_keys, unique_by_key
from graphlab.eval.metrics import evaluate
from graphlab.info import DatasetInfo
from graphlab.models import GCN, GraphSAGE
from graphlab.tasks import GraphPrediction, NodeClassification

ROOT = Path(__file__).resolve().parents[2]

# Lightning's own advice for evaluation under DDP ("use devices=1 ... DistributedSampler replicates some samples")
# is exactly what graphlab's gathered, de-duplicated metric makes unnecessary.
DDP_EVAL_WARNING = "ignore:Using `DistributedSampler` with the dataloaders:UserWarning"


# ----------------------------------------------------------------------------------------------- helpers
def test_unique_by_key_keeps_the_first_copy_in_key_order():
    keys = torch.tensor([[3, 0], [1, 1], [1, 0], [3, 0], [0, 5]])
    values = torch.tensor([30.0, 11.0, 10.0, -1.0, 5.0])
    unique, kept = unique_by_key(keys, values)
    assert unique.tolist() == [[0, 5], [1, 0], [1, 1], [3, 0]]
    assert kept.tolist() == [5.0, 10.0, 11.0, 30.0]  # the first [3, 0] (rank order), not the later -1
    with pytest.raises(ValueError, match=r"one row per key \(5\)"):
        unique_by_key(keys, values[:4])
    with pytest.raises(ValueError, match=r"keys must be \[n, k\]"):
        unique_by_key(keys[:, 0], values)


def test_row_keys_by_item_or_by_row_within_one_item():
    assert row_keys(torch.tensor([7, 2, 9]), 3).tolist() == [[7, 0], [2, 0], [9, 0]]  # one row per graph
    assert row_keys(torch.tensor([4]), 3).tolist() == [[4, 0], [4, 1], [4, 2]]  # a full graph's nodes
    assert row_keys(torch.tensor([1, 2]), 5) is None  # several items, rows not one per item: not keyable


def test_batch_items_follows_the_loaders_batches():
    loader = torch.utils.data.DataLoader(range(10), batch_size=4, sampler=DistributedSampler(range(10), 2, 1,
                                                                                             shuffle=False))
    order = torch.tensor(list(iter(loader.sampler)))
    assert order.tolist() == [1, 3, 5, 7, 9]
    assert batch_items(loader, order, 1).tolist() == [9]
    assert [b.tolist() for b in loader] == [[1, 3, 5, 7], [9]]


@pytest.mark.parametrize("world", [2, 3])
def test_epoch_shard_sampler_gives_w_ranks_the_batches_of_one_process(world: int):
    """Step k of W ranks with batch b covers the items of step k of one process with batch W*b, every epoch."""
    n, b = 24, 2
    one = EpochShardSampler(range(n), seed=5)  # no process group: one process
    shards = [DistributedSampler(range(n), num_replicas=world, rank=r, seed=5) for r in range(world)]
    for epoch in range(2):
        for s in [one, *shards]:
            s.set_epoch(epoch)
        single = list(iter(one))
        per_rank = [list(iter(s)) for s in shards]
        for k in range(n // (world * b)):
            union = sorted(i for ranked in per_rank for i in ranked[k * b:(k + 1) * b])
            assert union == sorted(single[k * world * b:(k + 1) * world * b])
    assert single != list(range(n))  # it does shuffle


# ----------------------------------------------------------------------------------------------- data and runs
def _graphs(n: int, seed: int) -> list[Data]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(3, 8, (1,), generator=g))
        x = torch.randn(k, 3, generator=g)
        edge_index = torch.randint(0, k, (2, 2 * k), generator=g)
        out.append(Data(x=x, edge_index=edge_index, y=(x[:, 0].sum() + 0.1 * k).view(1, 1)))
    return out


class ToyGraphs(GraphDataModule):
    """Graph regression (RMSE): 40 training graphs, validation sets of 37 and 11 graphs (odd sizes, so a
    2-rank ``DistributedSampler`` pads both), the training order from :class:`EpochShardSampler`."""

    def __init__(self, batch_size: int = 4) -> None:
        super().__init__(root=None)
        self.batch_size = batch_size
        self.train, self.val, self.val_small = _graphs(40, 0), _graphs(37, 1), _graphs(11, 2)
        self.val_names = self.test_names = ["37", "11"]

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="toy", level="graph", task_type="regression", num_features=3, num_outputs=1,
                           metric="rmse")

    def train_dataloader(self) -> Any:
        return PyGDataLoader(self.train, batch_size=self.batch_size, sampler=EpochShardSampler(self.train, seed=3))

    def val_dataloader(self) -> Any:
        return [PyGDataLoader(self.val, batch_size=self.batch_size),
                PyGDataLoader(self.val_small, batch_size=self.batch_size)]

    test_dataloader = val_dataloader


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trainer(devices: int, **kwargs: Any) -> L.Trainer:
    if devices > 1:
        os.environ["MASTER_PORT"] = str(_free_port())  # Lightning reads it; a fresh one for every run
        kwargs["strategy"] = "ddp_fork"
    return L.Trainer(accelerator="cpu", devices=devices, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, **kwargs)


def _graph_task(lr: float = 0.05) -> GraphPrediction:
    torch.manual_seed(0)  # the same initial weights in every run
    return GraphPrediction(GCN(3, 1, hidden_channels=8, num_layers=2, dropout=0.0, pool="mean"), lr=lr,
                           optimizer="sgd")


@pytest.fixture(autouse=True)
def _one_thread_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTER_PORT", "0")  # restored after the test; each run sets a fresh port
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------- evaluation
@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_validate_and_test_under_ddp_give_the_one_process_metrics_exactly():
    data = ToyGraphs()
    task = _graph_task()
    one_val = _trainer(1).validate(task, datamodule=data, verbose=False)
    one_test = _trainer(1).test(task, datamodule=data, verbose=False)
    two_val = _trainer(2).validate(task, datamodule=data, verbose=False)
    two_test = _trainer(2).test(task, datamodule=data, verbose=False)
    for one, two, stage in ((one_val, two_val, "val"), (one_test, two_test, "test")):
        for idx, suffix in enumerate(["", "@11"]):
            key = f"{stage}_rmse{suffix}"
            assert two[idx][key] == one[idx][key], key  # identical parameters, identical rows: exact equality

    # The check can fail: the rows two ranks see, padded duplicate included, give another RMSE.
    with torch.no_grad():
        preds = [task.model(g.x, g.edge_index, batch=torch.zeros(g.num_nodes, dtype=torch.long)) for g in data.val]
    y_true, y_pred = torch.cat([g.y for g in data.val]), torch.cat(preds)
    padded = list(range(len(data.val))) + [0]  # DistributedSampler(shuffle=False) repeats item 0 for rank 1
    assert evaluate(data.info, y_true, y_pred) == pytest.approx(one_val[0]["val_rmse"], rel=1e-6)
    assert evaluate(data.info, y_true[padded], y_pred[padded]) != pytest.approx(one_val[0]["val_rmse"], rel=1e-6)


@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_fit_on_two_ranks_takes_the_steps_of_one_process_with_the_global_batch():
    """2 ranks x batch 4 vs 1 process x batch 8, same seed schedule (EpochShardSampler): DDP averages the two
    ranks' mean-loss gradients, which is the mean over the 8 graphs, so SGD takes the same steps up to float
    rounding (the sums run in another order)."""
    one_task, two_task = _graph_task(), _graph_task()
    _trainer(1, max_epochs=3).fit(one_task, datamodule=ToyGraphs(batch_size=8))
    two = _trainer(2, max_epochs=3)
    two.fit(two_task, datamodule=ToyGraphs(batch_size=4))
    initial = _graph_task()
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(one_task.parameters(), initial.parameters()))
    assert moved > 1e-2  # training did change the weights
    for (name, p), q in zip(one_task.named_parameters(), two_task.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    one_metric = _trainer(1).validate(one_task, datamodule=ToyGraphs(), verbose=False)[0]["val_rmse"]
    assert float(two.callback_metrics["val_rmse"]) == pytest.approx(one_metric, rel=1e-4)


@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_full_batch_node_task_under_ddp_matches_one_process():
    """Every rank runs the same full graph: the gradients are equal, their average too, so training follows the
    one-process run, and the evaluation keeps one copy of each node."""
    def task() -> NodeClassification:
        torch.manual_seed(0)
        return NodeClassification(GCN(8, 3, hidden_channels=8, dropout=0.0), lr=0.05)

    data = CSBMData(num_nodes=120, num_features=8, num_classes=3, avg_degree=4.0, feature_signal=0.5)
    one, two = task(), task()
    _trainer(1, max_epochs=4).fit(one, datamodule=data)
    trainer = _trainer(2, max_epochs=4)
    trainer.fit(two, datamodule=data)
    for p, q in zip(one.parameters(), two.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    expected = _trainer(1).validate(two, datamodule=data, verbose=False)[0]["val_acc"]
    assert _trainer(2).validate(two, datamodule=data, verbose=False)[0]["val_acc"] == expected


class NodeLabelledGraphs(GraphDataModule):
    """Node classification on batches of graphs (as SecondMinimumGraphData): 7 validation graphs of 4-9 nodes, 2 per
    batch, so 2 ranks get a padded duplicate graph and every batch has several graphs of several nodes."""

    def __init__(self) -> None:
        super().__init__(root=None)
        g = torch.Generator().manual_seed(4)
        self.graphs = []
        for _ in range(7):
            k = int(torch.randint(4, 10, (1,), generator=g))
            x = torch.randn(k, 3, generator=g)
            edge_index = torch.randint(0, k, (2, 2 * k), generator=g)
            y, val_mask = torch.randint(0, 3, (k,), generator=g), torch.rand(k, generator=g) < 0.7
            self.graphs.append(Data(x=x, edge_index=edge_index, y=y, val_mask=val_mask))

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="toy-nodes", level="node", task_type="multiclass", num_features=3, num_outputs=3,
                           metric="acc")

    def val_dataloader(self) -> Any:
        return PyGDataLoader(self.graphs, batch_size=2)


@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_node_task_on_batches_of_graphs_keys_rows_by_graph_and_node():
    data = NodeLabelledGraphs()
    for seed in range(3):  # random weights: a few draws, so that an accuracy differs once a duplicate is counted
        torch.manual_seed(seed)
        task = NodeClassification(GCN(3, 3, hidden_channels=8, dropout=0.0))
        one = _trainer(1).validate(task, datamodule=data, verbose=False)[0]["val_acc"]
        assert _trainer(2).validate(task, datamodule=data, verbose=False)[0]["val_acc"] == one


class KHopSeeds(GraphDataModule):
    """Sampled node-level batches without a random sampler: a batch of seed nodes is their full 3-hop subgraph
    (PyG's NeighborLoader layout: ``n_id`` global ids, the split's mask on the seeds only; 3 hops for a 2-layer GCN,
    whose normalisation reads the degrees of the 2-hop nodes), so the seeds' outputs equal the full graph's and runs
    can be compared exactly. Training seeds come from :class:`EpochShardSampler`: every rank its own shard of one
    shuffle per epoch."""

    def __init__(self, batch_size: int) -> None:
        super().__init__(root=None)
        self.batch_size = batch_size
        self.source = CSBMData(num_nodes=150, num_features=8, num_classes=3, avg_degree=3.0, feature_signal=0.5)
        self.graph = self.source.graph

    @property
    def info(self) -> DatasetInfo:
        return self.source.info

    def _subgraph(self, seeds: list[int], split: str) -> Data:
        seeds_t = torch.tensor(seeds, dtype=torch.long)
        subset, edge_index, mapping, _ = k_hop_subgraph(seeds_t, 3, self.graph.edge_index, relabel_nodes=True,
                                                         num_nodes=self.graph.num_nodes)
        mask = torch.zeros(subset.numel(), dtype=torch.bool)
        mask[mapping] = True
        out = Data(x=self.graph.x[subset], edge_index=edge_index, y=self.graph.y[subset], n_id=subset,
                   batch_size=len(seeds))
        out[f"{split}_mask"] = mask
        return out

    def _loader(self, split: str, shuffle: bool) -> Any:
        seeds = getattr(self.graph, f"{split}_mask").nonzero().view(-1).tolist()
        sampler = EpochShardSampler(seeds, seed=7) if shuffle else None
        return torch.utils.data.DataLoader(seeds, batch_size=self.batch_size, sampler=sampler,
                                           collate_fn=lambda s: self._subgraph(s, split))

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False)


@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_sampled_node_training_on_two_ranks_follows_one_process():
    """Each rank trains on its own shard of the seed nodes (EpochShardSampler); with the global batch fixed the
    two runs take the same steps, and validation counts every node once (keys: the seeds' global ids)."""
    def task() -> NodeClassification:
        torch.manual_seed(0)
        return NodeClassification(GCN(8, 3, hidden_channels=8, dropout=0.0), lr=0.05, optimizer="sgd")

    train_size = int(KHopSeeds(4).graph.train_mask.sum())
    # 90 seeds: the last step holds one seed per rank (a partial batch), still the same step as 2 seeds in one process
    assert train_size % 8 == 2 and train_size % 2 == 0
    one, two = task(), task()
    _trainer(1, max_epochs=2).fit(one, datamodule=KHopSeeds(batch_size=8))
    trainer = _trainer(2, max_epochs=2)
    trainer.fit(two, datamodule=KHopSeeds(batch_size=4))
    for p, q in zip(one.parameters(), two.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    expected = _trainer(1).validate(two, datamodule=KHopSeeds(8), verbose=False)[0]["val_acc"]
    assert _trainer(2).validate(two, datamodule=KHopSeeds(8), verbose=False)[0]["val_acc"] == expected


@pytest.mark.filterwarnings(DDP_EVAL_WARNING)
def test_sampled_node_data_under_ddp_shards_the_seeds_and_evaluates_exactly():
    """graphlab's SampledNodeData (random fan-outs in training, every neighbour in evaluation) under 2 ranks: each
    rank trains on its own half of the training seeds per epoch, and the validation metric equals one process's."""
    data = SampledNodeData(CSBMData(num_nodes=200, num_features=8, num_classes=3, avg_degree=4.0, feature_signal=0.5),
                           num_neighbors=[4, 4], batch_size=16, backend="graphlab")

    class SeenSeeds(L.Callback):
        def __init__(self) -> None:
            self.seeds: list[Tensor] = []

        def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
            self.seeds.append(batch.n_id[:batch.batch_size])

        def on_train_epoch_end(self, trainer: L.Trainer, module: Any) -> None:
            seen = torch.cat(self.seeds)
            everyone = torch.cat(gather_objects(seen))  # (Lightning's all_gather warns: a deprecated torch API)
            module.log("seeds_per_rank", float(seen.numel()), sync_dist=True, reduce_fx="max")
            module.log("distinct_seeds", float(everyone.unique().numel()), sync_dist=True, reduce_fx="max")
            self.seeds = []

    torch.manual_seed(0)
    task = NodeClassification(GraphSAGE(8, 3, hidden_channels=8, dropout=0.0), lr=0.05)
    trainer = _trainer(2, max_epochs=1, callbacks=[SeenSeeds()])
    trainer.fit(task, datamodule=data)
    num_train = int(data.seeds["train"].numel())
    assert num_train % 2 == 0  # no padded duplicate: the two shards partition the seeds
    assert trainer.callback_metrics["seeds_per_rank"] == num_train // 2
    assert trainer.callback_metrics["distinct_seeds"] == num_train
    expected = _trainer(1).validate(task, datamodule=data, verbose=False)[0]["val_acc"]
    assert _trainer(2).validate(task, datamodule=data, verbose=False)[0]["val_acc"] == expected


# ----------------------------------------------------------------------------------------------- the command line
def test_predict_refuses_several_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each rank would predict (and write) only its shard of the split: refused before anything runs."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])
    with pytest.raises(ValueError, match=r"would run 2 processes .* --trainer.devices=1"):
        build_cli(["predict", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--trainer.strategy=ddp",
                   "--trainer.devices=2", "--trainer.accelerator=cpu",
                   f"--trainer.logger.init_args.save_dir={tmp_path}"])


@pytest.mark.slow
def test_graphlab_fit_with_the_ddp_strategy_on_two_cpu_processes(tmp_path: Path):
    """``graphlab fit --trainer.strategy=ddp --trainer.devices=2``: Lightning starts the second rank itself."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(_free_port()), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "graphlab.entry", "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
           "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=3",
           f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed_backend=gloo" in done.stderr + done.stdout
    metrics = list(tmp_path.rglob("metrics.csv"))
    assert len(metrics) == 1, metrics  # rank 0 alone writes the logs
    assert "val_acc" in metrics[0].read_text().splitlines()[0]


@pytest.mark.slow
def test_the_benchmark_script_runs_end_to_end(tmp_path: Path):
    """benchmarks/ddp.py on tiny data (1 and 2 processes; no timing is asserted)."""
    out = tmp_path / "ddp.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ddp.py"), "--tiny", "--epochs", "2", "--cases",
                           "sampled", "--out", str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| sampled | ")]
    assert [r.split(" | ")[1] for r in rows[1:]] == ["1 proc x 1 thread", "1 proc x 2 threads", "2 proc x 1 thread"]
