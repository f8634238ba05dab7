"""Benchmark neighbourhood aggregation: graphlab.ops.gather_reduce against the existing paths, same run.

For every point of the grid (E edges, N = E / 10 nodes, F features, reduce) and for ``forward`` and
``forward+backward`` (gradient w.r.t. ``x``), it times

* ``graphlab``: :func:`graphlab.ops.gather_reduce` on a CSR built once per graph (auto backend: the native CPU
  kernels on CPU, Triton on CUDA);
* ``pyg``: PyG's default ``MessagePassing`` path on ``edge_index`` (``SimpleConv``: gather ``x_j`` then scatter);
* ``sparse.mm``: ``torch.sparse.mm(csr, x, reduce)`` with torch's own backward;
* ``torch_scatter``: ``scatter(x[src], dst, reduce=...)`` when torch_scatter is installed;

and prints the median milliseconds, graphlab's speed-up over each baseline (``x pyg`` = pyg ms / graphlab ms) and
the peak extra heap memory of one call (MiB above what was in use before it: output, saved tensors, temporaries).
Peak memory is measured in a separate, untimed call by sampling glibc's ``mallinfo2`` from a thread (Linux only).

Examples::

    python benchmarks/aggregate.py                          # the full grid (slow on 2 cores)
    python benchmarks/aggregate.py --E 1e6 --F 64           # one graph size, sum/mean/max
    python benchmarks/aggregate.py --E 1e5 --F 16 --reduce max --repeats 3
    python benchmarks/aggregate.py --E 1e4 1e5 1e6 --F 64 --reduce sum --plot aggregate.png   # and a chart
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
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


def median_ms(run: Run, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def make_point(num_edges: int, feat: int, reduce: str, seed: int) -> Point:
    gen = torch.Generator().manual_seed(seed)
    num_nodes = max(num_edges // 10, 1)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, feat, generator=gen)
    grad = torch.randn(num_nodes, feat, generator=gen)
    return Point(num_edges, num_nodes, feat, reduce, edge_index, x, grad)


def measure(point: Point, methods: list[str], repeats: int, warmup: int) -> dict[tuple[str, str], tuple]:
    """``{(method, mode): (ms, peak MiB)}`` for modes ``fwd`` and ``fwd+bwd``."""
    results = {}
    for name in methods:
        forward, forward_backward = METHODS[name](point)
        for mode, run in (("fwd", forward), ("fwd+bwd", forward_backward)):
            context = torch.no_grad() if mode == "fwd" else torch.enable_grad()
            with context:
                ms = median_ms(run, repeats, warmup)
                mib = peak_extra_mib(run)
            results[(name, mode)] = (ms, mib)
    return results


def format_rows(point: Point, results: dict, methods: list[str]) -> list[str]:
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        base = results[("graphlab", mode)][0]
        cells = [f"{point.num_edges:>9.0e} {point.num_nodes:>8d} {point.feat:>4d} {point.reduce:>5} {mode:>8}"]
        cells += [f"{results[(m, mode)][0]:>10.1f}" for m in methods]
        cells += [f"{results[(m, mode)][0] / base:>7.2f}x" for m in methods if m != "graphlab"]
        mem = [results[(m, mode)][1] for m in methods]
        cells += [f"{v:>9.1f}" if v is not None else f"{'n/a':>9}" for v in mem]
        rows.append(" ".join(cells))
    return rows


def header(methods: list[str]) -> str:
    cols = [f"{'E':>9} {'N':>8} {'F':>4} {'red':>5} {'mode':>8}"]
    cols += [f"{m[:10]:>10}" for m in methods]
    cols += [f"{'x' + m[:6]:>8}" for m in methods if m != "graphlab"]
    cols += [f"{'MiB ' + m[:5]:>9}" for m in methods]
    return " ".join(cols)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--E", type=float, nargs="+", default=[1e5, 1e6, 4e6], help="edge counts (N = E / 10)")
    parser.add_argument("--F", type=int, nargs="+", default=[16, 64, 256], help="feature sizes")
    parser.add_argument("--reduce", nargs="+", default=["sum", "mean", "max"], choices=["sum", "mean", "max", "min"])
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

    points = [BenchPoint(f"F={point.feat}, {point.reduce}, {mode}", method, point.num_edges, *results[(method, mode)])
              for point, results in measured for method in methods for mode in ("fwd", "fwd+bwd")]
    return write_benchmark_figure(path, points, "edges E (N = E / 10)", "median ms", "peak extra heap (MiB)",
                                  f"gather-reduce, torch {torch.__version__}, {torch.get_num_threads()} threads")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    methods = ["graphlab", *[m for m in args.methods if m != "graphlab"]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; times are medians of {args.repeats} "
          f"calls in ms; 'x m' = m ms / graphlab ms; MiB = peak extra heap of one call")
    print(header(methods))
    measured = []
    for num_edges in args.E:
        for feat in args.F:
            for reduce in args.reduce:
                point = make_point(int(num_edges), feat, reduce, args.seed)
                measured.append((point, measure(point, methods, args.repeats, args.warmup)))
                for row in format_rows(point, measured[-1][1], methods):
                    print(row, flush=True)
    if args.plot:
        print(f"wrote {plot(args.plot, measured, methods)}")


if __name__ == "__main__":
    main()
