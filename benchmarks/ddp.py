"""Lightning DDP on CPU (gloo): 1 process vs 2 processes, graph-level and sampled node-level training.

For each case, three runs of the same training (same data, same global batch, same seed schedule: the training seeds
come from :class:`graphlab.distributed.EpochShardSampler`, so step k of 2 ranks covers the graphs / seed nodes of
step k of one process):

* ``1 proc x 1 thread`` and ``1 proc x 2 threads`` (one process, ``torch.set_num_threads``);
* ``2 proc x 1 thread`` (``strategy="ddp"``, Lightning starts the second rank as a subprocess), the fair match for
  ``1 proc x 2 threads`` on a 2-core machine.

Reported: median training time per epoch (epoch start to the start of validation, epochs after the first), items
(graphs or seed nodes) per second, the ratio against both one-process runs, the validation metric after the last
epoch, and each process's peak RSS. Cases:

* ``graph``: GIN (3 layers, 64 hidden, atom/bond encoders, mean pool, every BatchNorm layer replaced by the identity
  unless ``--batchnorm``) on ogbg-molesol (RMSE), 902 training graphs, global batch 64 (``--root`` must hold
  ``ogbg_molesol/``; without it a synthetic graph regression set is used).
* ``sampled``: GraphSAGE (2 layers, 64 hidden) on a 20 000-node contextual SBM through
  :class:`graphlab.data.SampledNodeData` (graphlab's sampler, fan-outs [10, 5], global batch 1024 seeds, exact
  full-neighbour evaluation).

Without BatchNorm, 2 ranks with half batches compute the steps of one process with the whole batch (DDP averages
the gradients), so the validation metrics differ only by float rounding, amplified over the epochs (changing the
thread count alone does as much). With ``--batchnorm`` each rank normalises with its own half-batch statistics: another
computation, whose metric agrees only to noise. The GraphSAGE runs draw other neighbour samples on each rank than one
process draws, so they agree to sampling noise.

    OMP_NUM_THREADS=1 TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 python benchmarks/ddp.py --root <copy of shared/data> \
        [--epochs 6] [--cases graph sampled] [--out benchmarks/results/ddp.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
SETUPS = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process)


# ----------------------------------------------------------------------------------------------- one run (child)
def without_batchnorm(module: Any) -> None:
    """Replace every BatchNorm layer of ``module`` (GIN's per-layer norms and those inside its MLPs) by the
    identity, in place."""
    import torch

    for name, child in module.named_children():
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
            setattr(module, name, torch.nn.Identity())
        else:
            without_batchnorm(child)


def build_graph_case(root: Optional[str], per_rank_batch: int, tiny: bool, batchnorm: bool) -> tuple[Any, Any, int]:
    import torch
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader as PyGDataLoader

    from graphlab.data import OGBGraphData
    from graphlab.data.base import GraphDataModule
    from graphlab.distributed import EpochShardSampler
    from graphlab.info import DatasetInfo
    from graphlab.models import GIN
    from graphlab.tasks import GraphPrediction

    if root and (Path(root) / "ogbg_molesol").is_dir() and not tiny:
        class SeededOGB(OGBGraphData):
            def train_dataloader(self) -> Any:
                if self.dataset.transform is None:
                    self.setup()
                part = self.dataset[self.split_index["train"]]
                return PyGDataLoader(part, batch_size=self.batch_size, sampler=EpochShardSampler(part, seed=0))

        data = SeededOGB("ogbg-molesol", root=root, batch_size=per_rank_batch, download=False)
        model = GIN(data.num_features, data.num_outputs, hidden_channels=64, num_layers=3, dropout=0.0, pool="mean",
                    node_encoder="atom", edge_encoder="bond")
        if not batchnorm:
            without_batchnorm(model)
        return data, GraphPrediction(model, lr=0.001), 902

    class SyntheticGraphs(GraphDataModule):
        """Random graphs; target: the sum of the first feature plus 0.1 x the node count (regression)."""

        def __init__(self, n: int) -> None:
            super().__init__(root=None)
            g = torch.Generator().manual_seed(0)
            self.graphs = []
            for _ in range(n):
                k = int(torch.randint(5, 30, (1,), generator=g))
                x = torch.randn(k, 9, generator=g)
                edge_index = torch.randint(0, k, (2, 3 * k), generator=g)
                self.graphs.append(Data(x=x, edge_index=edge_index, y=(x[:, 0].sum() + 0.1 * k).view(1, 1)))
            self.train, self.val = self.graphs[: n * 4 // 5], self.graphs[n * 4 // 5:]

        @property
        def info(self) -> DatasetInfo:
            return DatasetInfo(name="synthetic", level="graph", task_type="regression", num_features=9,
                               num_outputs=1, metric="rmse")

        def train_dataloader(self) -> Any:
            return PyGDataLoader(self.train, batch_size=per_rank_batch, sampler=EpochShardSampler(self.train))

        def val_dataloader(self) -> Any:
            return PyGDataLoader(self.val, batch_size=per_rank_batch)

    data = SyntheticGraphs(80 if tiny else 1000)
    model = GIN(9, 1, hidden_channels=16 if tiny else 64, num_layers=3, dropout=0.0, pool="mean")
    if not batchnorm:
        without_batchnorm(model)
    return data, GraphPrediction(model, lr=0.001), len(data.train)


def build_sampled_case(per_rank_batch: int, tiny: bool) -> tuple[Any, Any, int]:
    from graphlab.data import CSBMData, SampledNodeData, neighbor_loader
    from graphlab.data.sampled import SeedMask
    from graphlab.distributed import EpochShardSampler
    from graphlab.models import GraphSAGE
    from graphlab.tasks import NodeClassification

    class SeededSampled(SampledNodeData):
        """SampledNodeData whose training seeds follow EpochShardSampler (one shuffle per epoch for any number of
        ranks) instead of a per-process RandomSampler."""

        def train_dataloader(self) -> Any:
            seeds = self.seeds["train"]
            return neighbor_loader(self.graph, self.num_neighbors, backend=self.backend, replace=self.replace,
                                   neighbor_sampler=self._graphlab_sampler(self.num_neighbors), input_nodes=seeds,
                                   batch_size=self.batch_size, sampler=EpochShardSampler(range(seeds.numel())),
                                   transform=SeedMask("train"))

    source = CSBMData(num_nodes=400 if tiny else 20_000, num_features=64, num_classes=5, homophily=0.6,
                      avg_degree=10.0, feature_signal=0.1)
    data = SeededSampled(source, num_neighbors=[10, 5], batch_size=per_rank_batch, eval_batch_size=2048,
                         backend="graphlab")
    model = GraphSAGE(64, 5, hidden_channels=16 if tiny else 64, num_layers=2, dropout=0.0)
    return data, NodeClassification(model, lr=0.01), int(data.seeds["train"].numel())


def child(args: argparse.Namespace) -> None:
    """One training run; every rank writes ``<result>.rank<r>.json``."""
    import resource

    import lightning as L
    import torch

    torch.set_num_threads(args.threads)
    L.seed_everything(0, verbose=False)
    per_rank_batch = args.global_batch // args.procs
    if args.case == "graph":
        data, task, items = build_graph_case(args.root, per_rank_batch, args.tiny, args.batchnorm)
    else:
        data, task, items = build_sampled_case(per_rank_batch, args.tiny)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.start = time.perf_counter()

        def on_validation_epoch_start(self, trainer: Any, module: Any) -> None:
            if not trainer.sanity_checking:
                self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", devices=args.procs, strategy="ddp" if args.procs > 1 else "auto",
                        max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer])
    trainer.fit(task, datamodule=data)
    metric = task.monitor
    out = {"times": timer.times, "items": items, "metric": metric, "value": float(trainer.callback_metrics[metric]),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "threads": torch.get_num_threads(), "world_size": trainer.world_size}
    Path(f"{args.result}.rank{trainer.global_rank}.json").write_text(json.dumps(out))


# ----------------------------------------------------------------------------------------------- the table (parent)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_setup(case: str, procs: int, threads: int, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    result = tmp / f"{case}-{procs}x{threads}"
    cmd = [sys.executable, __file__, "--child", case, "--procs", str(procs), "--threads", str(threads),
           "--epochs", str(args.epochs), "--global-batch", str(args.global_batch[case]), "--result", str(result)]
    if args.root:
        cmd += ["--root", args.root]
    cmd += ["--tiny"] * args.tiny + ["--batchnorm"] * args.batchnorm
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MASTER_PORT": str(_free_port()),
           "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")
    return [json.loads(Path(f"{result}.rank{r}.json").read_text()) for r in range(procs)]


def table(case: str, args: argparse.Namespace, tmp: Path) -> list[str]:
    results = {(p, t): run_setup(case, p, t, args, tmp) for p, t in SETUPS}

    def epoch_time(runs: list[dict[str, Any]]) -> float:
        times = sorted(runs[0]["times"][1:] or runs[0]["times"])
        return times[len(times) // 2]

    base11, base12 = epoch_time(results[(1, 1)]), epoch_time(results[(1, 2)])
    metric = results[(1, 1)][0]["metric"]
    rows = [f"| {case} | setup | s/epoch | items/s | speed-up vs 1x1 | speed-up vs 1x2 threads | {metric} after "
            f"{args.epochs} epochs | peak RSS MiB per process |", "|---|---|---|---|---|---|---|---|"]
    for (p, t), runs in results.items():
        s = epoch_time(runs)
        rss = " + ".join(f"{r['peak_rss_mib']:.0f}" for r in runs)
        rows.append(f"| {case} | {p} proc x {t} thread{'s' if t > 1 else ''} | {s:.3f} | {runs[0]['items'] / s:.0f} | "
                    f"{base11 / s:.2f}x | {base12 / s:.2f}x | {runs[0]['value']:.4f} | {rss} |")
    return rows


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("GRAPHLAB_DATA"),
                        help="data root with ogbg_molesol/ (a writable copy of shared/data)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--cases", nargs="+", choices=["graph", "sampled"], default=["graph", "sampled"])
    parser.add_argument("--out", default=None, help="also write the tables to this file")
    parser.add_argument("--tiny", action="store_true", help="tiny synthetic data (seconds; checks the script runs)")
    parser.add_argument("--batchnorm", action="store_true",
                        help="keep GIN's BatchNorm (per-rank batch statistics: 2 ranks no longer compute what 1 does)")
    parser.add_argument("--child", choices=["graph", "sampled"], help=argparse.SUPPRESS)
    parser.add_argument("--procs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--global-batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.case = args.child
        child(args)
        return
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is warm-up and not timed)")
    args.global_batch = {"graph": 64, "sampled": 1024} if not args.tiny else {"graph": 16, "sampled": 64}
    load = os.getloadavg()[0]
    lines = [f"# {' '.join(['python', 'benchmarks/ddp.py', *(argv if argv is not None else sys.argv[1:])])}",
             f"# {os.cpu_count()} CPU cores, load average {load:.2f} at start; gloo on localhost; global batch "
             f"{args.global_batch} (2 processes: half each); items = training graphs or seed nodes per epoch"]
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            lines += ["", *table(case, args, Path(tmp))]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
