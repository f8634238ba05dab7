r"""Benchmark neighbourhood aggregation: graphlab.ops.gather_reduce against the existing paths, same run.

For every point of the grid (E edges, N = E / ratio nodes, F features, reduce, graph) and for ``forward`` and
``forward+backward`` (gradient w.r.t. ``x``), it times

* ``graphlab``: :func:`graphlab.ops.gather_reduce` on a CSR built once per graph (auto backend: the native CPU
  kernels on CPU, Triton on CUDA);
* ``pyg``: PyG's default ``MessagePassing`` path on ``edge_index`` (``SimpleConv``: gather ``x_j`` then scatter);
* ``sparse.mm``: ``torch.sparse.mm(csr, x, reduce)`` with torch's own backward;
* ``torch_scatter``: ``scatter(x[src], dst, reduce=...)`` when torch_scatter is installed;

interleaved (one call of each method in turn, ``--repeats`` rounds, after ``--warmup`` rounds) so that a change
of load on a shared machine hits every method alike, and prints the median milliseconds, graphlab's speed-up over
each baseline (``x pyg`` = pyg ms / graphlab ms) and the peak extra heap memory of one call (MiB above what was
in use before it: output, saved tensors, temporaries), measured in a separate, untimed call by sampling glibc's
``mallinfo2`` from a thread (Linux only).

Bandwidth. ``GB/s`` is graphlab's effective forward bandwidth, the bytes of the gathered rows and of the index,
:math:`(E F s_x + E s_{col}) / t`, and ``stream`` the bandwidth of a streaming read (``tensor.sum()`` over
400 MB) timed in the same rounds as the forward calls; ``%str`` = GB/s / stream.

Graphs (``graph`` column): ``uniform`` (endpoints uniform at random) or ``powerlaw`` random graphs
(Chung-Lu: both endpoints drawn with probability :math:`\propto w_i = (i + 1)^{-1/(\gamma - 1)}`,
:math:`\gamma` = ``--gamma`` = 2.1, node ids shuffled), or the real ``tolokers`` graph (``--graph tolokers``,
from ``$GRAPHLAB_DATA/tolokers`` - a writable copy of ``../shared/data``; E and N are then the graph's);
``--reorder rcm|degree_bfs|community`` relabels the nodes first with
:func:`graphlab.transforms.reorder.node_order` (every method gets the same relabelled graph); ``--order sorted``
gives the edges in PyG's usual source-sorted order, ``random`` in a random order (graphlab and sparse.mm build a
CSR, so the order only matters to the edge-list baselines). The label reads ``<degrees>/<order>[+<reorder>]``.

Edge-list baselines whose per-edge tensors (``E x F`` values: two at once in forward + backward for sum/mean,
about eight for max/min) would not fit in 60% of the available memory are skipped (``skip``).

Examples::

    python benchmarks/aggregate.py                          # E in 1e5, 1e6, 4e6; F in 16, 64, 256 (slow)
    python benchmarks/aggregate.py --E 1e6 --F 64           # one graph size, sum/mean/max
    python benchmarks/aggregate.py --E 4e6 --N-ratio 10 --F 64 256 --order sorted random
    python benchmarks/aggregate.py --E 1e6 --N-ratio 5 --F 64 --degrees powerlaw --reorder none rcm
    GRAPHLAB_DATA=/tmp/gdata python benchmarks/aggregate.py --graph tolokers --F 16 64 256
    python benchmarks/aggregate.py --E 1e4 1e5 1e6 --F 64 --reduce sum --plot aggregate.png   # and a chart
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib.util
import os
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

import graphlab.ops as ops

Run = Callable[[], object]


# --------------------------------------------------------------------------------------------- memory


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]


def _heap_reader() -> Callable[[], int] | None:
    """Bytes currently allocated through malloc (arenas + mmapped chunks), or ``None`` off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None

    def in_use() -> int:
        info = libc.mallinfo2()
        return int(info.uordblks + info.hblkhd)

    return in_use


HEAP = _heap_reader()


def peak_extra_mib(run: Run) -> float | None:
    """Peak heap in use during ``run()`` minus the heap in use before it, in MiB (sampled every ~50 us)."""
    if HEAP is None:
        return None
    base = HEAP()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], HEAP())
            time.sleep(5e-5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run()
    peak[0] = max(peak[0], HEAP())
    done.set()
    sampler.join()
    del result
    return (peak[0] - base) / 2**20


# --------------------------------------------------------------------------------------------- methods


@dataclass
class Point:
    num_edges: int
    num_nodes: int
    feat: int
    reduce: str
    edge_index: Tensor
    x: Tensor
    grad: Tensor
    label: str = "uniform/random"


def graphlab_method(point: Point) -> tuple[Run, Run]:
    rowptr, col, _ = ops.to_csr(point.edge_index, point.num_nodes)
    ops.cached_transpose(rowptr, col, point.num_nodes)  # once per graph, as a layer's cache would
    x, grad = point.x, point.grad
    x_grad = x.detach().requires_grad_(True)

    def forward() -> object:
        return ops.gather_reduce(x, rowptr, col, point.reduce)

    def forward_backward() -> object:
        out = ops.gather_reduce(x_grad, rowptr, col, point.reduce)
        return torch.autograd.grad(out, x_grad, grad)

    return forward, forward_backward


def pyg_method(point: Point) -> tuple[Run, Run]:
    from torch_geometric.nn import SimpleConv

    conv = SimpleConv(aggr=point.reduce)
    edge_index, x, grad = point.edge_index, point.x, point.grad
    x_grad = x.detach().requires_grad_(True)

    def forward() -> object:
        return conv(x, edge_index)

    def forward_backward() -> object:
        return torch.autograd.grad(conv(x_grad, edge_index), x_grad, grad)

    return forward, forward_backward


def sparse_mm_method(point: Point) -> tuple[Run, Run]:
    rowptr, col, _ = ops.to_csr(point.edge_index, point.num_nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adj = torch.sparse_csr_tensor(rowptr, col, torch.ones(col.numel()), (point.num_nodes, point.num_nodes),
                                      check_invariants=False)
    reduce = {"max": "amax", "min": "amin"}.get(point.reduce, point.reduce)
    x, grad = point.x, point.grad
    x_grad = x.detach().requires_grad_(True)

    def forward() -> object:
        return torch.sparse.mm(adj, x, reduce)

    def forward_backward() -> object:
        return torch.autograd.grad(torch.sparse.mm(adj, x_grad, reduce), x_grad, grad)

    return forward, forward_backward


def torch_scatter_method(point: Point) -> tuple[Run, Run]:
    from torch_scatter import scatter

    src, dst = point.edge_index
    x, grad = point.x, point.grad
    x_grad = x.detach().requires_grad_(True)

    def run(inp: Tensor) -> Tensor:
        return scatter(inp.index_select(0, src), dst, dim=0, dim_size=point.num_nodes, reduce=point.reduce)

    def forward() -> object:
        return run(x)

    def forward_backward() -> object:
        return torch.autograd.grad(run(x_grad), x_grad, grad)

    return forward, forward_backward


METHODS: dict[str, Callable[[Point], tuple[Run, Run]]] = {
    "graphlab": graphlab_method,
    "pyg": pyg_method,
    "sparse.mm": sparse_mm_method,
}
if importlib.util.find_spec("torch_scatter") is not None:
    METHODS["torch_scatter"] = torch_scatter_method


# --------------------------------------------------------------------------------------------- timing


STREAM_BYTES = 400 * 2**20
_STREAM: list[Tensor] = []


def stream_read() -> Run:
    """A streaming read of ``STREAM_BYTES`` (``tensor.sum()``): the bandwidth the gathers are compared with."""
    if not _STREAM:
        _STREAM.append(torch.ones(STREAM_BYTES // 4))
    return _STREAM[0].sum


def median_ms(run: Run, repeats: int, warmup: int) -> float:
    """Median milliseconds of ``repeats`` calls after ``warmup`` calls (one method alone; the shared timing helper
    of benchmarks/lcm.py and benchmarks/common_neighbors.py)."""
    return interleaved_medians({"run": run}, repeats, warmup)["run"] * 1e3


def interleaved_medians(runs: dict[str, Run], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds of each run, called in turn (round-robin) so that load changes hit all alike."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def chung_lu_edges(num_edges: int, num_nodes: int, gamma: float, gen: torch.Generator) -> Tensor:
    r"""Chung-Lu random graph: both endpoints of every edge drawn with probability :math:`\propto w_i =
    (i + 1)^{-1/(\gamma - 1)}` (expected degrees follow a power law with exponent :math:`\gamma`), ids shuffled."""
    weight = torch.arange(1, num_nodes + 1, dtype=torch.float64).pow(-1.0 / (gamma - 1.0))
    ends = torch.multinomial(weight, 2 * num_edges, replacement=True, generator=gen)
    shuffle = torch.randperm(num_nodes, generator=gen)
    return shuffle[ends].view(2, num_edges)


def load_tolokers() -> Tensor:
    """The ``edge_index`` of the real Tolokers graph from ``$GRAPHLAB_DATA`` (default ``./data``)."""
    from torch_geometric.datasets import HeterophilousGraphDataset

    root = os.environ.get("GRAPHLAB_DATA", "data")
    return HeterophilousGraphDataset(root, "Tolokers")[0].edge_index


def relabel(edge_index: Tensor, num_nodes: int, method: str) -> Tensor:
    """``edge_index`` with nodes renumbered by :func:`graphlab.transforms.reorder.node_order` (new = position)."""
    from graphlab.transforms.reorder import node_order

    perm = node_order(edge_index, num_nodes, method)  # perm[new] = old
    new_id = torch.empty_like(perm)
    new_id[perm] = torch.arange(num_nodes)
    return new_id[edge_index]


def order_edges(edge_index: Tensor, num_nodes: int, order: str, gen: torch.Generator) -> Tensor:
    """Edges sorted by (source, target) as PyG usually keeps them, or in a random order."""
    if order == "sorted":
        return edge_index[:, torch.sort(edge_index[0] * num_nodes + edge_index[1]).indices]
    return edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]


@dataclass(frozen=True)
class GraphSpec:
    """What graph a point is built on (see the module docstring)."""

    graph: str = "random"
    degrees: str = "uniform"
    order: str = "random"
    reorder: str = "none"
    gamma: float = 2.1

    @property
    def label(self) -> str:
        base = "tolokers" if self.graph == "tolokers" else self.degrees
        return f"{base}/{self.order}" + ("" if self.reorder == "none" else f"+{self.reorder}")


@functools.lru_cache(maxsize=1)  # one graph serves every (F, reduce) point; a reordering can take seconds
def make_graph(num_edges: int, num_nodes: int, spec: GraphSpec, seed: int) -> tuple[Tensor, int]:
    """``(edge_index, N)`` of the point's graph, relabelled and ordered as ``spec`` says."""
    gen = torch.Generator().manual_seed(seed)
    if spec.graph == "tolokers":
        edge_index = load_tolokers()
        num_nodes = int(edge_index.max()) + 1
    elif spec.degrees == "powerlaw":
        edge_index = chung_lu_edges(num_edges, num_nodes, spec.gamma, gen)
    else:
        edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    if spec.reorder != "none":
        edge_index = relabel(edge_index, num_nodes, spec.reorder)
    return order_edges(edge_index, num_nodes, spec.order, gen).contiguous(), num_nodes


def make_point(num_edges: int, feat: int, reduce: str, seed: int, num_nodes: int | None = None,
               spec: GraphSpec | None = None) -> Point:
    spec = spec or GraphSpec()
    edge_index, num_nodes = make_graph(num_edges, num_nodes or max(num_edges // 10, 1), spec, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(num_nodes, feat, generator=gen)
    grad = torch.randn(num_nodes, feat, generator=gen)
    return Point(edge_index.size(1), num_nodes, feat, reduce, edge_index, x, grad, spec.label)


def available_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo (Linux), else ``None``."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# Peak heap of the edge-list baselines' forward + backward in units of one E x F message tensor (measured at
# E = 4e6, F = 64: PyG sum/mean 1.3 GB, max 6.7 GB for 1 GB of messages; max/min also keep arg tensors).
MESSAGE_COPIES = {"sum": 2, "mean": 2, "max": 8, "min": 8}


def fits(point: Point, method: str) -> bool:
    """Whether an edge-list baseline's per-edge tensors (:data:`MESSAGE_COPIES` E x F tensors at once in forward +
    backward) fit in 60% of the available memory."""
    if method not in ("pyg", "torch_scatter"):
        return True
    free = available_bytes()
    need = MESSAGE_COPIES[point.reduce] * point.num_edges * point.feat * point.x.element_size()
    return free is None or need < 0.6 * free


def measure(point: Point, methods: list[str], repeats: int, warmup: int) -> dict[tuple[str, str], tuple]:
    """``{(method, mode): (ms, peak MiB)}`` for modes ``fwd`` and ``fwd+bwd`` (``(None, None)`` = skipped), and
    ``("stream", "fwd")``: (ms, GB/s) of the streaming read timed in the forward rounds."""
    results: dict[tuple[str, str], tuple] = {}
    built = {name: METHODS[name](point) for name in methods if fits(point, name)}
    for index, mode in enumerate(("fwd", "fwd+bwd")):
        runs = {name: pair[index] for name, pair in built.items()}
        if mode == "fwd":
            runs["stream"] = stream_read()
        context = torch.no_grad() if mode == "fwd" else torch.enable_grad()
        with context:
            seconds = interleaved_medians(runs, repeats, warmup)
            for name in methods:
                results[(name, mode)] = (seconds[name] * 1e3, peak_extra_mib(runs[name])) if name in runs else (None, None)
            if mode == "fwd":
                results[("stream", "fwd")] = (seconds["stream"] * 1e3, STREAM_BYTES / seconds["stream"] / 1e9)
    return results


def forward_bytes(point: Point) -> int:
    """Bytes a forward gathers: the source rows (E x F values) and the column index (E entries, int64)."""
    return point.num_edges * (point.feat * point.x.element_size() + point.edge_index.element_size())


def format_rows(point: Point, results: dict, methods: list[str]) -> list[str]:
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        base = results[("graphlab", mode)][0]
        cells = [f"{point.label:>24} {point.num_edges:>9.0e} {point.num_nodes:>8d} {point.feat:>4d} "
                 f"{point.reduce:>5} {mode:>8}"]
        times = [results[(m, mode)][0] for m in methods]
        cells += [f"{t:>10.1f}" if t is not None else f"{'skip':>10}" for t in times]
        cells += [f"{t / base:>7.2f}x" if t is not None else f"{'-':>8}" for m, t in zip(methods, times)
                  if m != "graphlab"]
        if mode == "fwd":
            gbs, stream = forward_bytes(point) / (base / 1e3) / 1e9, results[("stream", "fwd")][1]
            cells += [f"{gbs:>6.1f} {stream:>6.1f} {100 * gbs / stream:>5.0f}%"]
        else:
            cells += [f"{'-':>6} {'-':>6} {'-':>6}"]
        mem = [results[(m, mode)][1] for m in methods]
        cells += [f"{v:>9.1f}" if v is not None else f"{'n/a':>9}" for v in mem]
        rows.append(" ".join(cells))
    return rows


def header(methods: list[str]) -> str:
    cols = [f"{'graph':>24} {'E':>9} {'N':>8} {'F':>4} {'red':>5} {'mode':>8}"]
    cols += [f"{m[:10]:>10}" for m in methods]
    cols += [f"{'x' + m[:6]:>8}" for m in methods if m != "graphlab"]
    cols += [f"{'GB/s':>6} {'stream':>6} {'%str':>6}"]
    cols += [f"{'MiB ' + m[:5]:>9}" for m in methods]
    return " ".join(cols)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--E", type=float, nargs="+", default=[1e5, 1e6, 4e6], help="edge counts")
    parser.add_argument("--N-ratio", dest="n_ratio", type=float, nargs="+", default=[10.0],
                        help="nodes N = E / ratio (10 and 5 in the grid of issue 18)")
    parser.add_argument("--F", type=int, nargs="+", default=[16, 64, 256], help="feature sizes")
    parser.add_argument("--reduce", nargs="+", default=["sum", "mean", "max"], choices=["sum", "mean", "max", "min"])
    parser.add_argument("--graph", choices=["random", "tolokers"], default="random",
                        help="random graphs, or the real Tolokers graph from $GRAPHLAB_DATA (ignores --E/--N-ratio)")
    parser.add_argument("--degrees", nargs="+", default=["uniform"], choices=["uniform", "powerlaw"])
    parser.add_argument("--gamma", type=float, default=2.1, help="power-law exponent of --degrees powerlaw")
    parser.add_argument("--order", nargs="+", default=["random"], choices=["sorted", "random"],
                        help="edge order given to the methods (sorted = by source, PyG's usual order)")
    parser.add_argument("--reorder", nargs="+", default=["none"],
                        choices=["none", "rcm", "degree_bfs", "community"],
                        help="relabel the nodes with graphlab.transforms.reorder.node_order first")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="also draw the table as a chart: time and peak memory against E, one panel per "
                             "(F, reduce, mode), graphlab vs every baseline")
    return parser.parse_args(argv)


def plot(path: str, measured: list[tuple[Point, dict]], methods: list[str]) -> object:
    """Draw the measured table (:func:`graphlab.eval.figures.write_benchmark_figure`); returns the PNG's path."""
    from graphlab.eval.figures import BenchPoint, write_benchmark_figure

    points = [BenchPoint(f"{point.label}, N=E/{point.num_edges // max(point.num_nodes, 1)}, F={point.feat}, "
                         f"{point.reduce}, {mode}", method, point.num_edges, *results[(method, mode)])
              for point, results in measured for method in methods for mode in ("fwd", "fwd+bwd")
              if results[(method, mode)][0] is not None]
    return write_benchmark_figure(path, points, "edges E", "median ms", "peak extra heap (MiB)",
                                  f"gather-reduce, torch {torch.__version__}, {torch.get_num_threads()} threads")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    methods = ["graphlab", *[m for m in args.methods if m != "graphlab"]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; times are medians of {args.repeats} "
          f"interleaved calls in ms; 'x m' = m ms / graphlab ms; GB/s = graphlab forward's (E F 4 + E 8) bytes / "
          f"time; stream = tensor.sum() over 400 MB in the same rounds; MiB = peak extra heap of one call")
    print(header(methods))
    measured = []
    sizes = [(0, 0)] if args.graph == "tolokers" else [
        (int(e), max(int(e / r), 1)) for e in args.E for r in args.n_ratio]
    specs = [GraphSpec(args.graph, d, o, r, args.gamma) for d in args.degrees for r in args.reorder for o in args.order]
    if args.graph == "tolokers":  # its own degrees: one spec per (order, reorder)
        specs = [s for s in specs if s.degrees == args.degrees[0]]
    for num_edges, num_nodes in sizes:
        for spec in specs:
            for feat in args.F:
                for reduce in args.reduce:
                    point = make_point(num_edges, feat, reduce, args.seed, num_nodes, spec)
                    measured.append((point, measure(point, methods, args.repeats, args.warmup)))
                    for row in format_rows(point, measured[-1][1], methods):
                        print(row, flush=True)
    if args.plot:
        print(f"wrote {plot(args.plot, measured, methods)}")


if __name__ == "__main__":
    main()
