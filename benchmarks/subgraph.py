r"""Benchmark node-based subgraph GNNs: graphlab's pair engine against the replicated-batch design, same run.

Models (both engines share one set of parameters, so outputs must agree):

* ``sswl+`` -- GNN-SSWL+ (Zhang et al., ICML 2023, ``SSWL_P`` of subgraph23/SWL): :math:`h^{(0)}(u, v) = W x_v +
  \mathrm{DistEmb}(\min(d(u, v), 5))`, ``--layers`` layers :math:`h \leftarrow \mathrm{ReLU}(\mathrm{BN}(\sum_{a
  \in \{uL, vL, vv\}} \mathrm{MLP}_a((1 + \epsilon_a) h + \mathrm{AGG}_a(h))))`, a last pooling layer with the
  atom :math:`uG` and no :math:`(1+\epsilon) h` term, the mean over all pairs of a graph, an MLP(2F) head;
* ``ds`` -- DS-GNN (Bevilacqua et al., ICLR 2022) with node marking by distance: the same with the atom set
  :math:`\{uL\}` (:class:`graphlab.nn.subgraph.DSConv`) and no pooling layer (mean over :math:`v`, then :math:`u`).

Local atoms use the official code's form without edge features, :math:`\sum_w \mathrm{ReLU}(h(u, w))`
(``edge_mode="gine"``).

Engines:

* ``graphlab`` -- :class:`graphlab.nn.subgraph.SSWLPlusConv` / ``DSConv`` on ``R = Σ n_g²`` pair rows; the
  :class:`~graphlab.ops.pairs.PairIndex` is built inside every training step (as a model does); local atoms are
  fused gather-reduces over a pair CSR, global atoms are segment sums, :math:`O(n^2)`.
* ``replicated`` -- written here from subgraph23/SWL ``src/utils.py`` (``subgraph``, ``aggregate``): the graph
  replicated ``n`` times in one batch, one explicit ``(dst, src)`` index list per atom (``uL``: :math:`n |E|`
  entries, ``vL``: :math:`n |E|`, ``vv``: :math:`n^2`, ``uG``: :math:`n^3`), messages ``index_select``-ed into an
  ``[entries, F]`` tensor (``ReLU`` for local atoms, as its ``Bond`` module without edge attributes) and summed with
  ``scatter``. The index lists are built **once** per batch and reused every epoch (the official code rebuilds them,
  and runs a Python Floyd-Warshall, for every sample of every epoch), so the baseline here is the favourable one.

Measurements: one fresh subprocess per (model, engine, n): it builds the batches (``--graphs`` Erdős–Rényi graphs of
``n`` nodes, mean degree ``--degree``, ``--batch-size`` graphs per batch), runs one warm-up epoch, then
``--epochs`` timed training epochs (forward, L1 loss, backward, Adam step); ``s/ep`` is the median. ``peak RSS``
is the subprocess's peak RSS (``VmHWM``; ``ru_maxrss`` would include the parent's peak, which Linux carries
over); ``+MiB`` is that peak minus the RSS just before the first epoch (the memory of
training itself, without the interpreter, torch and the data). The ``|Δ|`` column is the largest absolute
difference of the two engines' graph outputs and parameter gradients on the same parameters, in float64, on two
graphs of the size (``ok`` when ≤ 1e-6).

``--atoms-only``: the same cells, but each step runs only the aggregations (every atom of the model once per layer
on random ``[R, F]`` states, forward and backward; graphlab builds its ``PairIndex`` inside the step): the part of
the epoch in which the engines differ (the MLPs, batch norms and the optimiser are the same dense code in both).

``--molesol``: training epochs of the model of ``--molesol-config`` (default
``configs/subgraph/gnn-sswl-plus/ogbg-molesol.yaml``: :class:`graphlab.models.GNNSSWLPlus`, 6 layers, width 96,
max_dis 5, atom and bond encoders, the default ``edge_mode="add"``) on that config's DataModule (scaffold train split,
batch 128, ``SubgraphPairs`` cached), through its task's forward and loss (``GraphPrediction.call_model``,
``.loss``) and optimiser, in a subprocess; then the same model with ``edge_mode="gine"`` (the official code's
:math:`\sum_w \mathrm{ReLU}(h + e)`). Wall and process CPU seconds per epoch (the machine is shared: CPU seconds
are the steadier figure) and peak RSS, next to the anchor figures measured for the official code in
``shared/reference/anchors-measured.md`` (not re-run here). It needs ``$GRAPHLAB_DATA`` pointing at a writable
copy of ``shared/data`` (the DataModule caches the pairs there).

Examples::

    python benchmarks/subgraph.py                                  # n in 20 40 80, both models, both engines
    python benchmarks/subgraph.py --sizes 40 --models sswl+ --epochs 3
    GRAPHLAB_DATA=/tmp/gdata python benchmarks/subgraph.py --molesol
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from graphlab.nn.subgraph import DSConv, PairEmbedding, SSWLPlusConv, pair_index_from_batch, subgraph_readout
from graphlab.ops import pair_atom
from graphlab.transforms.subgraph import shortest_path_distances

MAX_DIS = 5
MODELS = ("sswl+", "ds")
ENGINES = ("graphlab", "replicated")
LAYER_ATOMS = {"sswl+": ("uL", "vL", "vv"), "ds": ("uL",)}
LOCAL = ("uL", "vL")
TOLERANCE = 1e-6
ANCHOR_MOLESOL = "official SWL SSWL_P, num_workers=0: 6.0-6.8 s/ep, 3369-3607 MiB peak RSS (anchors-measured.md)"


# --------------------------------------------------------------------------------------------- data
@dataclass
class GraphBatch:
    """``B`` graphs of ``n`` nodes: ``edge_index`` [2, E] (batch numbering, both directions), ``ptr`` [B+1],
    ``pair_dis`` [B n²] (capped distances, row order of :func:`graphlab.ops.pairs.pair_index`), ``y`` [B]."""

    edge_index: Tensor
    ptr: Tensor
    pair_dis: Tensor
    y: Tensor
    n: int

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1


def random_batch(num_graphs: int, n: int, degree: float, generator: torch.Generator) -> GraphBatch:
    """Erdős–Rényi graphs G(n, degree / (n - 1)), undirected, numbered consecutively."""
    edges, dis = [], []
    for g in range(num_graphs):
        upper = (torch.rand(n, n, generator=generator) < degree / (n - 1)).triu(1)
        adj = upper | upper.T
        edge_index = adj.nonzero().T
        edges.append(edge_index + g * n)
        dis.append(shortest_path_distances(edge_index, n, MAX_DIS).reshape(-1))
    ptr = torch.arange(num_graphs + 1) * n
    y = torch.randn(num_graphs, generator=generator)
    return GraphBatch(torch.cat(edges, 1), ptr, torch.cat(dis), y, n)


# --------------------------------------------------------------------------------------------- replicated
def replicated_index(batch: GraphBatch, atoms: tuple[str, ...]) -> dict[str, tuple[Tensor, Tensor]]:
    """One ``(dst, src)`` list of pair rows per atom, as subgraph23/SWL's ``subgraph`` transform builds them for
    each graph (``node[u, v] = u n + v``), offset by the graph's first row."""
    n = batch.n
    node = torch.arange(n * n).view(n, n)
    lists: dict[str, list[tuple[Tensor, Tensor]]] = {a: [] for a in atoms}
    for g in range(batch.num_graphs):
        offset = g * n * n
        in_graph = (batch.edge_index[0] >= g * n) & (batch.edge_index[0] < (g + 1) * n)
        edge_index = batch.edge_index[:, in_graph] - g * n  # [2, E_g]
        for atom in atoms:
            if atom == "vv":  # (u, v) <- (v, v)
                pair = torch.stack(torch.broadcast_tensors(node, torch.diag(node)[None, :])).flatten(1)
            elif atom == "uG":  # (u, v) <- (u, w) for every w: n^3 entries
                pair = torch.stack(torch.broadcast_tensors(node[:, :, None], node[:, None, :])).flatten(1)
            elif atom == "uL":  # (u, a) <- (u, b) for every edge (a, b) and root u
                pair = (node[None, None, :, 0] + edge_index[:, :, None]).flatten(1)
            elif atom == "vL":  # (a, v) <- (b, v) for every edge (a, b) and node v
                pair = (node[None, None, 0, :] + edge_index[:, :, None] * n).flatten(1)
            else:
                raise ValueError(f"the replicated baseline has no atom {atom!r}")
            lists[atom].append((pair[0] + offset, pair[1] + offset))
    return {a: (torch.cat([d for d, _ in parts]), torch.cat([s for _, s in parts])) for a, parts in lists.items()}


def replicated_aggregate(h: Tensor, index: tuple[Tensor, Tensor], local: bool) -> Tensor:
    """SWL's ``aggregate``: gather the source rows into an ``[entries, F]`` message tensor, scatter-sum to dst."""
    dst, src = index
    message = h.index_select(0, src)
    if local:
        message = torch.relu(message)  # Bond(...) without edge attributes
    return scatter(message, dst, dim=0, dim_size=h.size(0), reduce="sum")


def replicated_layer(conv: SSWLPlusConv, h: Tensor, lists: dict[str, tuple[Tensor, Tensor]]) -> Tensor:
    """SWL's ``Agg(scheme)`` forward on the replicated index lists, with ``conv``'s parameters."""
    out = sum(conv.mlps[a](((1 + conv.eps[i]) * h if conv.gin else 0) + replicated_aggregate(h, lists[a], a in LOCAL))
              for i, a in enumerate(conv.atoms))
    return torch.relu(conv.norm(out))


# --------------------------------------------------------------------------------------------- model
class SubgraphNet(nn.Module):
    """The benchmarked network (module docstring); ``forward(batch, engine, lists)`` runs either engine."""

    def __init__(self, model: str, dim: int, layers: int) -> None:
        super().__init__()
        self.model = model
        self.node = nn.Linear(1, dim)
        self.embed = PairEmbedding(dim, max_dis=MAX_DIS)
        conv = (lambda: DSConv(dim, dim, edge_mode="gine")) if model == "ds" else (
            lambda: SSWLPlusConv(dim, dim, LAYER_ATOMS[model], edge_mode="gine"))
        self.convs = nn.ModuleList([conv() for _ in range(layers)])
        self.pool = SSWLPlusConv(dim, dim, ("uG",), gin=False) if model == "sswl+" else None
        self.head = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, 1))

    def atoms(self) -> tuple[str, ...]:
        return LAYER_ATOMS[self.model] + (("uG",) if self.pool is not None else ())

    def forward(self, batch: GraphBatch, engine: str, lists: dict | None = None) -> Tensor:
        x = self.node(torch.ones(int(batch.ptr[-1]), 1, dtype=self.node.weight.dtype))
        if engine == "graphlab":
            index = pair_index_from_batch(batch.edge_index, batch.ptr, validate=False)
            h = self.embed(x, index, batch.pair_dis)
            for conv in self.convs:
                h = conv(h, index)
            if self.pool is not None:
                h = self.pool(h, index)
            return self.head(subgraph_readout(h, index)).view(-1)
        n = batch.n  # replicated: row (g, u, v) holds x_v of graph g
        node_of_row = (torch.arange(batch.num_graphs)[:, None, None] * n + torch.zeros(n, 1, dtype=torch.long)
                       + torch.arange(n)).reshape(-1)
        h = x.index_select(0, node_of_row) + self.embed.dist(batch.pair_dis)
        for conv in self.convs:
            h = replicated_layer(conv, h, lists)
        if self.pool is not None:
            h = replicated_layer(self.pool, h, lists)
        graph_of_row = torch.arange(batch.num_graphs).repeat_interleave(n * n)
        return self.head(scatter(h, graph_of_row, dim=0, dim_size=batch.num_graphs, reduce="mean")).view(-1)


# --------------------------------------------------------------------------------------------- worker
def _batches(args: argparse.Namespace, n: int) -> list[GraphBatch]:
    generator = torch.Generator().manual_seed(args.seed + n)
    return [random_batch(min(args.batch_size, args.graphs - i), n, args.degree, generator)
            for i in range(0, args.graphs, args.batch_size)]


def _peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``: per address space, so a fresh ``exec`` starts it anew, unlike
    ``ru_maxrss``, which Linux carries over from the parent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the portable figure


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args: argparse.Namespace) -> dict:
    """One (model, engine, n) cell: median seconds per training epoch and peak RSS, in this process."""
    torch.manual_seed(args.seed)
    n = args.sizes[0]
    batches = _batches(args, n)
    model = SubgraphNet(args.models[0], args.dim, args.layers)
    engine = args.engines[0]
    lists = [replicated_index(b, model.atoms()) if engine == "replicated" else None for b in batches]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rss_before = _rss_mib()

    states = [torch.randn(b.num_graphs * n * n, args.dim, requires_grad=True) for b in batches]

    def step(batch: GraphBatch, index: dict | None, h: Tensor) -> None:
        if args.atoms_only:  # the aggregations of one epoch alone: every atom of every layer, forward + backward
            if engine == "graphlab":
                pairs = pair_index_from_batch(batch.edge_index, batch.ptr, validate=False)
                out = [pair_atom(h, pairs, a, None, "gine" if a in LOCAL else "add") for a in model.atoms()]
            else:
                out = [replicated_aggregate(h, index[a], a in LOCAL) for a in model.atoms()]
            (sum(o.sum() for o in out) * args.layers).backward()
            return
        optimizer.zero_grad()
        torch.nn.functional.l1_loss(model(batch, engine, index), batch.y).backward()
        optimizer.step()

    def epoch() -> float:
        start = time.perf_counter()
        for batch, index, h in zip(batches, lists, states):
            step(batch, index, h)
        return time.perf_counter() - start

    epoch()  # warm-up
    times = [epoch() for _ in range(args.epochs)]
    peak = _peak_rss_mib()
    return {"s_per_epoch": statistics.median(times), "peak_mib": peak, "extra_mib": max(0.0, peak - rss_before)}


def max_output_difference(model_name: str, n: int, args: argparse.Namespace) -> float:
    """Largest |graphlab - replicated| over the graph outputs and the parameter gradients of their sum, on two
    graphs, float64, same parameters (train mode, so batch-norm uses the batch statistics in both)."""
    torch.manual_seed(args.seed)
    batch = random_batch(2, n, args.degree, torch.Generator().manual_seed(args.seed + n))
    model = SubgraphNet(model_name, args.dim, args.layers).double()
    lists = replicated_index(batch, model.atoms())
    results = []
    for engine in ENGINES:
        model.zero_grad()
        out = model(batch, engine, lists)
        out.sum().backward()
        results.append([out.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None])
    return max(float((a - b).abs().max()) for a, b in zip(*results))


def run_cell(args: argparse.Namespace, model: str, engine: str, n: int) -> dict:
    """``worker`` in a fresh subprocess (its own ``ru_maxrss``)."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--models", model, "--engines", engine,
               "--sizes", str(n), "--graphs", str(args.graphs), "--batch-size", str(args.batch_size),
               "--dim", str(args.dim), "--layers", str(args.layers), "--epochs", str(args.epochs),
               "--degree", str(args.degree), "--seed", str(args.seed), "--threads", str(args.threads),
               *(["--atoms-only"] if args.atoms_only else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {model}/{engine}/n={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- molesol
MOLESOL_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs", "subgraph",
                              "gnn-sswl-plus", "ogbg-molesol.yaml")


def _class(path: str) -> type:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def molesol_epoch(args: argparse.Namespace) -> dict:
    """Training epochs of the model of ``--molesol-config`` on its DataModule, through its task's forward and
    loss (this process; see the module docstring)."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # ogb's own torch.load predates weights_only
    import yaml

    if not os.environ.get("GRAPHLAB_DATA"):
        raise ValueError("--molesol needs GRAPHLAB_DATA pointing at a writable copy of shared/data")
    with open(args.molesol_config) as f:
        config = yaml.safe_load(f)
    start = time.perf_counter()
    data = _class(config["data"]["class_path"])(**config["data"]["init_args"])  # root: $GRAPHLAB_DATA
    data.setup("fit")
    loader = data.train_dataloader()
    prepare = time.perf_counter() - start
    torch.manual_seed(args.seed)
    task_config, model_config = config["model"], config["model"]["init_args"]["model"]
    model_args = dict(model_config.get("init_args", {}))
    if args.edge_mode is not None:
        model_args["edge_mode"] = args.edge_mode
    model = _class(model_config["class_path"])(data.info.num_features, data.info.num_outputs, **model_args)
    task_args = {k: v for k, v in task_config.get("init_args", {}).items() if k != "model"}
    task = _class(task_config["class_path"])(model, info=data.info, **task_args)
    task.train()
    optimizer = task.configure_optimizers()
    rss_before = _rss_mib()
    times, cpu = [], []
    for _ in range(args.epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        for batch in loader:
            optimizer.zero_grad()
            task.loss(task.call_model(batch), batch.y).backward()  # GraphPrediction's training forward and loss
            optimizer.step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = _peak_rss_mib()
    return {"prepare_s": prepare, "epochs_s": times, "cpu_s": cpu, "peak_mib": peak,
            "extra_mib": max(0.0, peak - rss_before), "model": type(model).__name__,
            "edge_mode": model_args.get("edge_mode", "add")}


# --------------------------------------------------------------------------------------------- table
def print_grid(args: argparse.Namespace) -> None:
    what = "aggregation atoms only (fwd+bwd)" if args.atoms_only else "training epoch"
    print(f"subgraph GNN {what}: {args.graphs} ER graphs (mean degree {args.degree}) per epoch, "
          f"{args.batch_size} per batch, width {args.dim}, {args.layers} layers, {torch.get_num_threads()} "
          f"threads, median of {args.epochs} epochs after 1 warm-up")
    header = (f"{'model':<6} {'n':>4} {'|Δ| f64':>12} {'graphlab s/ep':>14} {'repl. s/ep':>11} {'speed-up':>9} "
              f"{'graphlab RSS':>13} {'repl. RSS':>10} {'RSS ratio':>9} {'graphlab +MiB':>14} {'repl. +MiB':>11} "
              f"{'+MiB ratio':>10}")
    print(header)
    for model in args.models:
        for n in args.sizes:
            diff = max_output_difference(model, n, args)
            cells = {engine: run_cell(args, model, engine, n) for engine in ENGINES}
            ours, base = cells["graphlab"], cells["replicated"]
            flag = "ok" if diff <= TOLERANCE else "DIFF"
            print(f"{model:<6} {n:>4} {diff:>9.1e} {flag:>2} {ours['s_per_epoch']:>14.3f} "
                  f"{base['s_per_epoch']:>11.3f} {base['s_per_epoch'] / ours['s_per_epoch']:>8.2f}x "
                  f"{ours['peak_mib']:>9.0f} MiB {base['peak_mib']:>6.0f} MiB "
                  f"{base['peak_mib'] / ours['peak_mib']:>8.2f}x {ours['extra_mib']:>10.0f} MiB "
                  f"{base['extra_mib']:>7.0f} MiB {base['extra_mib'] / max(ours['extra_mib'], 1.0):>9.2f}x",
                  flush=True)


def print_molesol(args: argparse.Namespace) -> None:
    """The config's model (its own ``edge_mode``), then the same model with ``edge_mode="gine"`` (the official
    code's form of the local atoms), each in a fresh subprocess."""
    print(f"ogbg-molesol training epochs ({args.threads} threads; {os.path.relpath(args.molesol_config)}; "
          f"wall s, process CPU s, peak RSS)")
    for edge_mode in (None, "gine"):
        command = [sys.executable, os.path.abspath(__file__), "--molesol-worker", "--epochs", str(args.epochs),
                   "--seed", str(args.seed), "--threads", str(args.threads), "--molesol-config",
                   args.molesol_config, *(["--edge-mode", edge_mode] if edge_mode else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"molesol worker failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        epochs = ", ".join(f"{t:.2f}" for t in result["epochs_s"])
        cpu = ", ".join(f"{t:.2f}" for t in result["cpu_s"])
        label = f"{result['model']} edge_mode={result['edge_mode']}" + (" (config)" if edge_mode is None else "")
        print(f"  {label}: train epochs {epochs} s (CPU {cpu} s); peak RSS {result['peak_mib']:.0f} MiB "
              f"(+{result['extra_mib']:.0f} MiB over the loaded data); load {result['prepare_s']:.1f} s", flush=True)
    print(f"  anchor: {ANCHOR_MOLESOL}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 40, 80], help="nodes per graph")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--graphs", type=int, default=16, help="graphs per epoch")
    parser.add_argument("--batch-size", type=int, default=4, help="graphs per batch")
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--degree", type=float, default=4.0, help="mean degree of the random graphs")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--molesol", action="store_true", help="also time ogbg-molesol training epochs")
    parser.add_argument("--molesol-config", default=os.path.normpath(MOLESOL_CONFIG),
                        help="the graphlab config whose model, DataModule and task --molesol trains")
    parser.add_argument("--edge-mode", choices=("add", "gine"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--atoms-only", action="store_true",
                        help="time only the aggregations (every atom once per layer, forward + backward) instead of "
                             "training the full model: the part the two engines differ in")
    parser.add_argument("--no-grid", action="store_true", help="skip the random-graph grid")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--molesol-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.graphs < 1 or args.batch_size < 1 or args.epochs < 1 or args.layers < 1:
        parser.error("sizes, graphs, batch-size, epochs and layers must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.molesol_worker:
        print(json.dumps(molesol_epoch(args)))
        return
    if not args.no_grid:
        print_grid(args)
    if args.molesol:
        print_molesol(args)


if __name__ == "__main__":
    main()
