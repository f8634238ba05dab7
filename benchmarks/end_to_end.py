"""End to end: time per full-batch training epoch of GCN, GraphSAGE and Diag-NSD, graphlab's layers against PyG's
own layers (and NSD against the official design), on the graph as given and renumbered by a locality ordering.

    python benchmarks/end_to_end.py --root /tmp/gdata                       # tolokers + the 2M-edge synthetic graph
    python benchmarks/end_to_end.py --graphs synthetic --models gcn --orders none rcm --epochs 3   # smoke run
    python benchmarks/end_to_end.py --root /tmp/gdata --out benchmarks/results/end_to_end.txt  # and save the table

``--root`` is a writable folder holding ``tolokers/raw/tolokers.npz`` (PyG writes ``processed/`` beside it): copy
``../shared/data/tolokers`` there first (default: ``$GRAPHLAB_DATA``).

Graphs:

* ``tolokers`` (Platonov et al. 2023; PyG ``HeterophilousGraphDataset``): 11,758 nodes, 1,038,000 directed edges,
  10 features, 2 classes, the training mask of split 0;
* ``synthetic``: a Chung-Lu power-law graph (expected degree of node ``i`` proportional to
  :math:`(i + 1)^{-1/(\\gamma - 1)}`, :math:`\\gamma = 2.5`), symmetrised, without self-loops or repeated edges, its
  nodes numbered at random (a generator's order would itself be a locality order), ``--edges`` directed edges
  on ``--nodes`` nodes, Gaussian features of width ``--features``, random labels, a random half for training.

Orders: ``none`` (as given) and the orderings of :func:`graphlab.transforms.node_order`, applied once with
:class:`graphlab.transforms.ReorderNodes` (its one-off time is printed); both implementations get the same
reordered graph.

Implementations (same parameters: the PyG network is a copy of graphlab's with each convolution replaced by PyG's
layer of the same class, loaded with the same weights; the script checks that the outputs agree):

* ``graphlab``: :class:`graphlab.models.GCN` / :class:`~graphlab.models.GraphSAGE` (graphlab's fused
  convolutions on a cached CSR) and :class:`graphlab.models.sheaf.DiagNSD`;
* ``pyg``: the same stacks of ``torch_geometric.nn.GCNConv`` / ``SAGEConv`` (default arguments: ``edge_index``
  input, gather-scatter message passing, GCN normalisation recomputed every call, as graphlab's ``cached=False``);
  since issue 18's dropout work graphlab's stacks draw their feature dropout with :func:`graphlab.ops.dropout`
  (native multithreaded Philox), and the ``pyg`` stack uses ``torch.nn.Dropout`` (``F.dropout``), as PyG's own
  examples do. ``--ablate-dropout`` adds ``graphlab/torch-dropout`` (graphlab's convolutions, torch's dropout) and
  ``pyg/graphlab-dropout`` (PyG's convolutions, graphlab's dropout), which separate the two effects; these
  ablation rows are never taken as the baseline;
* ``official:torch_sparse`` (and, with ``--nsd-products``, ``official:torch.sparse``): for Diag-NSD,
  ``benchmarks/sheaf.py``'s re-implementation of the official design (twitter-research/neural-sheaf-diffusion:
  per-edge learner concatenations, a scalar COO Laplacian rebuilt every layer) with its sparse products; the ratio is
  taken against the faster. ``torch.sparse`` is off by default: at 20k nodes and 200k edges its epoch took 85 s and
  15 GB against 10 s for ``torch_sparse``, so at 2M edges it would not fit. Diag-NSD uses the official default
  setting (``benchmarks/sheaf.py``'s ``DEFAULT_SETTING``) and is timed on ``--nsd-orders`` only.

An epoch is forward + cross-entropy on the training mask + backward + Adam step. For each (graph, model) every
(order, implementation) pair takes its epochs round-robin, so a drifting machine load hits them all alike (the
machine this runs on is shared); the median after ``--warmup`` epochs is reported. ``x base`` = the baseline's
median / this row's (baseline: ``pyg`` for GCN and SAGE, the faster official product for NSD); ``x order`` = this
implementation's median on the graph as given / on this order. Peak memory: CUDA's ``max_memory_allocated``; on CPU the peak heap
above what was in use before one untimed epoch (glibc ``mallinfo2`` sampled from a thread, as
``benchmarks/aggregate.py`` does).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphlab.models import GCN, GraphSAGE
from graphlab.models.sheaf import NeuralSheafDiffusion
from graphlab.transforms import ReorderNodes

HERE = Path(__file__).resolve().parent


def _load_sibling(name: str) -> Any:
    """A benchmark script beside this one, as a module (``benchmarks/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SHEAF = _load_sibling("sheaf")  # OfficialStyleNSD and the official default setting
AGGREGATE = _load_sibling("aggregate")  # peak_extra_mib

MODELS = ("gcn", "sage", "diag-nsd")
GRAPHS = ("tolokers", "synthetic")
ORDERS = ("none", "rcm", "degree_bfs", "community")
POWER_LAW_EXPONENT = 2.5


# --------------------------------------------------------------------------------------------- graphs
def tolokers(root: str) -> Data:
    from torch_geometric.datasets import HeterophilousGraphDataset

    data = HeterophilousGraphDataset(root, "Tolokers")[0]  # reads <root>/tolokers/raw/tolokers.npz
    data.train_mask = data.train_mask[:, 0].bool()
    data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    return Data(x=data.x.float(), y=data.y.long(), edge_index=data.edge_index, train_mask=data.train_mask)


def power_law_graph(num_nodes: int, num_edges: int, num_features: int, num_classes: int, seed: int = 0) -> Data:
    """The Chung-Lu graph of the module docstring: ``num_edges // 2`` distinct node pairs, each in both directions."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.arange(1, num_nodes + 1, dtype=torch.float64).pow(-1.0 / (POWER_LAW_EXPONENT - 1.0))
    draws = int(num_edges * 0.7)  # a margin for the self-loops and repeats dropped below
    src = torch.multinomial(weight, draws, replacement=True, generator=gen)
    dst = torch.multinomial(weight, draws, replacement=True, generator=gen)
    keep = src != dst
    low, high = torch.minimum(src[keep], dst[keep]), torch.maximum(src[keep], dst[keep])
    pairs = torch.unique(low * num_nodes + high)
    if pairs.numel() < num_edges // 2:
        raise ValueError(f"only {pairs.numel()} distinct pairs drawn for {num_edges // 2}: lower --edges")
    pairs = pairs[torch.randperm(pairs.numel(), generator=gen)[: num_edges // 2]]
    relabel = torch.randperm(num_nodes, generator=gen)
    edge_index = to_undirected(relabel[torch.stack([pairs // num_nodes, pairs % num_nodes])], num_nodes=num_nodes)
    return Data(x=torch.randn(num_nodes, num_features, generator=gen),
                y=torch.randint(0, num_classes, (num_nodes,), generator=gen), edge_index=edge_index,
                train_mask=torch.rand(num_nodes, generator=gen) < 0.5)


# --------------------------------------------------------------------------------------------- networks
def _with_pyg_convs(model: nn.Module, make: Callable[[nn.Module], nn.Module], torch_dropout: bool = True) -> nn.Module:
    """A copy of ``model`` whose convolutions are PyG's (``make(conv)``), loaded with the same weights, and (if
    ``torch_dropout``) whose feature dropout is ``torch.nn.Dropout``, as in a PyG stack."""
    twin = _with_torch_dropout(model) if torch_dropout else copy.deepcopy(model)
    for i, conv in enumerate(model.convs):
        pyg = make(conv)
        pyg.load_state_dict(conv.state_dict())
        twin.convs[i] = pyg
    return twin


def _with_torch_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose feature dropout (graphlab's Philox op) is ``torch.nn.Dropout`` of the same ``p``."""
    twin = copy.deepcopy(model)
    twin.feature_dropout = nn.Dropout(model.feature_dropout.p)
    return twin


def _gnn_nets(model: nn.Module, make: Callable[[nn.Module], nn.Module], ablate_dropout: bool) -> dict[str, nn.Module]:
    nets = {"graphlab": model, "pyg": _with_pyg_convs(model, make)}
    if ablate_dropout:
        nets["graphlab/torch-dropout"] = _with_torch_dropout(model)
        nets["pyg/graphlab-dropout"] = _with_pyg_convs(model, make, torch_dropout=False)
    return nets


def build(model_name: str, data: Data, hidden: int, device: str,
          nsd_products: tuple[str, ...] = ("torch_sparse",), ablate_dropout: bool = False) -> dict[str, nn.Module]:
    """Every implementation of ``model_name`` on ``data``, same parameters (seed 0)."""
    from torch_geometric.nn import GCNConv as PyGGCNConv
    from torch_geometric.nn import SAGEConv as PyGSAGEConv

    torch.manual_seed(0)
    in_channels, out_channels = data.num_features, int(data.y.max()) + 1
    if model_name == "gcn":
        model = GCN(in_channels, out_channels, hidden_channels=hidden).to(device)
        nets = _gnn_nets(model, lambda c: PyGGCNConv(c.in_channels, c.out_channels), ablate_dropout)
        return {name: net.to(device) for name, net in nets.items()}
    if model_name == "sage":
        model = GraphSAGE(in_channels, out_channels, hidden_channels=hidden).to(device)
        nets = _gnn_nets(model, lambda c: PyGSAGEConv(c.in_channels, c.out_channels), ablate_dropout)
        return {name: net.to(device) for name, net in nets.items()}
    setting = dict(SHEAF.DEFAULT_SETTING)
    model = NeuralSheafDiffusion(in_channels, out_channels, sheaf_type="diag", **setting).to(device)
    graph = model.graph(data.edge_index, data.num_nodes)
    nets: dict[str, nn.Module] = {"graphlab": model}
    for product in nsd_products:
        nets[f"official:{product}"] = SHEAF.OfficialStyleNSD(model, graph, False, False, product,
                                                               sparse_learner=setting["sparse_learner"])
    return nets


def max_output_gap(nets: dict[str, nn.Module], data: Data) -> float:
    """Largest |difference| between the implementations' eval-mode outputs (they share parameters)."""
    with torch.no_grad():
        outs = []
        for net in nets.values():
            net.eval()
            outs.append(net(data.x, data.edge_index))
    return max(float((o - outs[0]).abs().max()) for o in outs[1:])


def train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, data: Data) -> None:
    net.train()
    optimizer.zero_grad()
    F.cross_entropy(net(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask]).backward()
    optimizer.step()


# --------------------------------------------------------------------------------------------- measurement
@dataclass
class Row:
    graph: str
    model: str
    order: str
    impl: str
    ms: float
    mib: Optional[float]
    gap: float
    base: str = ""
    ratios: dict[str, float] = field(default_factory=dict)


def peak_mib(run: Callable[[], object], device: str) -> Optional[float]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    return AGGREGATE.peak_extra_mib(run)


def measure(graph: str, model_name: str, datas: dict[str, Data], args: argparse.Namespace) -> list[Row]:
    """Median epoch time and peak memory of every implementation on every order of ``graph``, the (order,
    implementation) pairs taking their epochs round-robin so that machine-load drift hits them all alike."""
    runs = {}  # (order, impl) -> (net, optimizer, data)
    gaps = {}
    for order, data in datas.items():
        nets = build(model_name, data, args.hidden, args.device, tuple(args.nsd_products), args.ablate_dropout)
        gaps[order] = max_output_gap(nets, data)
        for impl, net in nets.items():
            runs[(order, impl)] = (net, torch.optim.Adam(net.parameters(), lr=0.01), data)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    epochs = args.nsd_epochs if model_name == "diag-nsd" else args.epochs
    for i in range(args.warmup + epochs):
        for key, (net, optimizer, data) in runs.items():
            sync()
            start = time.perf_counter()
            train_epoch(net, optimizer, data)
            sync()
            if i >= args.warmup:
                times[key].append(time.perf_counter() - start)
    rows = []
    for (order, impl), (net, optimizer, data) in runs.items():
        mib = peak_mib(lambda: train_epoch(net, optimizer, data), args.device)
        rows.append(Row(graph, model_name, order, impl, 1e3 * statistics.median(times[(order, impl)]), mib,
                        gaps[order]))
    return rows


def add_ratios(rows: list[Row]) -> None:
    """``x base`` (baseline ms / row ms, same graph, model and order) and ``x order`` (same implementation's ms on
    the graph as given / on this order)."""
    by_key = {(r.graph, r.model, r.order, r.impl): r for r in rows}
    for row in rows:
        if row.impl.startswith(("graphlab", "pyg/")):  # "a/b": an ablation row, never a baseline
            baselines = [r for r in rows if (r.graph, r.model, r.order) == (row.graph, row.model, row.order)
                         and not r.impl.startswith("graphlab") and "/" not in r.impl]
            if baselines:
                best = min(baselines, key=lambda r: r.ms)
                row.base = best.impl
                row.ratios["base"] = best.ms / row.ms
        given = by_key.get((row.graph, row.model, "none", row.impl))
        if given is not None:
            row.ratios["order"] = given.ms / row.ms


def format_table(rows: list[Row], reorder_s: dict[tuple[str, str], float]) -> list[str]:
    lines = [f"{'graph':<10} {'model':<9} {'order':<11} {'impl':<23} {'epoch ms':>9} {'x base':>7} {'x order':>8} "
             f"{'peak MiB':>9} {'max |out diff|':>14}"]
    for r in rows:
        base = f"{r.ratios['base']:.2f}" if "base" in r.ratios else ""
        order = f"{r.ratios['order']:.2f}" if "order" in r.ratios else ""
        mib = f"{r.mib:.0f}" if r.mib is not None else "n/a"
        lines.append(f"{r.graph:<10} {r.model:<9} {r.order:<11} {r.impl:<23} {r.ms:>9.1f} {base:>7} {order:>8} "
                     f"{mib:>9} {r.gap:>14.1e}")
    lines.append("")
    lines.append("x base: graphlab's (or an a/b ablation row's) speed-up over the baseline on the same graph and order "
                 "(pyg for gcn/sage: PyG's convolutions and torch's dropout; the faster official product for "
                 "diag-nsd); x order: speed-up of this order over the graph as given.")
    lines.append("one-off reordering time (ReorderNodes, CPU): " + ", ".join(
        f"{g}/{o} {s:.2f} s" for (g, o), s in reorder_s.items()))
    return lines


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.environ.get("GRAPHLAB_DATA"),
                        help="writable folder with tolokers/raw/tolokers.npz (default $GRAPHLAB_DATA)")
    parser.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=list(ORDERS))
    parser.add_argument("--nodes", type=int, default=200_000, help="synthetic graph: nodes")
    parser.add_argument("--edges", type=int, default=2_000_000, help="synthetic graph: directed edges")
    parser.add_argument("--features", type=int, default=128, help="synthetic graph: feature width")
    parser.add_argument("--classes", type=int, default=16, help="synthetic graph: classes")
    parser.add_argument("--hidden", type=int, default=64, help="GCN / SAGE hidden width")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per implementation")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--nsd-epochs", type=int, default=2, help="timed epochs of diag-nsd (its epochs are long)")
    parser.add_argument("--nsd-orders", nargs="+", choices=ORDERS, default=["none", "rcm"],
                        help="the orders diag-nsd is timed on (a subset of --orders)")
    parser.add_argument("--nsd-products", nargs="+", choices=("torch.sparse", "torch_sparse"),
                        default=["torch_sparse"],
                        help="sparse products of the official NSD design; torch.sparse (COO sparse.mm with its "
                             "backward) is off by default: at 20k nodes / 200k edges it took 85 s and 15 GB per "
                             "epoch against 10 s for torch_sparse")
    parser.add_argument("--ablate-dropout", action="store_true",
                        help="gcn/sage: also time graphlab's convolutions with torch's dropout and PyG's with graphlab's")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=None, help="also write the table (with the command and commit) here")
    args = parser.parse_args(argv)
    if "tolokers" in args.graphs and not args.root:
        parser.error("tolokers needs --root (or $GRAPHLAB_DATA): a writable copy of ../shared/data/tolokers")
    return args


def load_graph(name: str, args: argparse.Namespace) -> Data:
    if name == "tolokers":
        return tolokers(args.root)
    return power_law_graph(args.nodes, args.edges, args.features, args.classes)


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: Optional[list[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/end_to_end.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [f"# {command}", f"# commit {commit()}, torch {torch.__version__}, device {args.device}, "
                              f"{args.threads} threads, {args.epochs} timed epochs after {args.warmup} warm-up"]
    print("\n".join(header), flush=True)
    rows: list[Row] = []
    reorder_s: dict[tuple[str, str], float] = {}
    for graph in args.graphs:
        given = load_graph(graph, args)
        print(f"# {graph}: {given.num_nodes} nodes, {given.num_edges} edges, {given.num_features} features",
              flush=True)
        header.append(f"# {graph}: {given.num_nodes} nodes, {given.num_edges} directed edges, "
                      f"{given.num_features} features")
        datas = {}
        for order in args.orders:
            data = given
            if order != "none":
                start = time.perf_counter()
                data = ReorderNodes(order)(given)
                reorder_s[(graph, order)] = time.perf_counter() - start
            datas[order] = data.to(args.device)
        for model_name in args.models:
            chosen = {o: d for o, d in datas.items() if model_name != "diag-nsd" or o in args.nsd_orders}
            measured = measure(graph, model_name, chosen, args)
            rows.extend(measured)
            for r in measured:
                print(f"  {graph} {model_name} {r.order} {r.impl}: {r.ms:.1f} ms (gap {r.gap:.1e})", flush=True)
            write_table(args, header, rows, reorder_s, final=False)
    print("\n".join(write_table(args, header, rows, reorder_s, final=True)))


def write_table(args: argparse.Namespace, header: list[str], rows: list[Row], reorder_s: dict[tuple[str, str], float],
                final: bool) -> list[str]:
    """The table so far, written to ``--out`` after every measurement (a cut-short run keeps what it measured)."""
    rows = sorted(rows, key=lambda r: (GRAPHS.index(r.graph), MODELS.index(r.model), ORDERS.index(r.order)))
    add_ratios(rows)
    lines = header + ([] if final else ["# (partial: the run is still going or was cut short)"]) + [""]
    lines += format_table(rows, reorder_s)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
