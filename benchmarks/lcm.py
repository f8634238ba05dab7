"""Benchmark LCM aggregation: graphlab's exact tree reduction against PyG's padded ``LCMAggregation`` and
``GRUAggregation``, same run, same weights where they share a shape.

Graphs (edges sorted by target, as PyG's LCM/GRU aggregations require):

* ``powerlaw``: target degrees ``round(max_deg * (i + 1) ** -0.8)`` (at least 1) over ``N`` nodes, so one hub has
  ``max_deg`` neighbours and most nodes a few; sources uniform;
* ``regular``: every node has ``deg`` neighbours.

For ``forward`` and ``forward+backward`` (gradient w.r.t. the messages and the parameters) it prints the median
milliseconds, the speed-up of graphlab's LCM over each baseline (``x pyg_lcm`` = pyg_lcm ms / graphlab ms) and the
peak extra heap memory of one call (MiB above what was in use before it, sampled by
``benchmarks/aggregate.py``'s ``peak_extra_mib``), with the memory ratio to PyG's LCM. ``graphlab_gru`` is
:class:`graphlab.nn.RecurrentAggregation` (packed, no padding), for reference.

Examples::

    python benchmarks/lcm.py --repeats 1 --warmup 0           # N=1000, max_deg=1000 power law; regular deg 10; F=64
    python benchmarks/lcm.py --N 20000 --max-deg 1000 --methods graphlab_lcm pyg_gru   # PyG's LCM would need ~GBs
    python benchmarks/lcm.py --F 16 128 --repeats 3
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from graphlab.nn import LCMAggregation, RecurrentAggregation


sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import median_ms, peak_extra_mib  # noqa: E402 - one measuring method for every benchmark

METHODS = ("graphlab_lcm", "pyg_lcm", "pyg_gru", "graphlab_gru")


def powerlaw_index(num_nodes: int, max_deg: int, gen: torch.Generator) -> Tensor:
    degrees = (max_deg * torch.arange(1, num_nodes + 1, dtype=torch.float64) ** -0.8).round().clamp(min=1).long()
    degrees = degrees[torch.randperm(num_nodes, generator=gen)]  # the hub is not always node 0
    return torch.repeat_interleave(torch.arange(num_nodes), degrees)


def regular_index(num_nodes: int, deg: int) -> Tensor:
    return torch.arange(num_nodes).repeat_interleave(deg)


def build(method: str, feat: int) -> torch.nn.Module:
    from torch_geometric.nn import aggr as pyg_aggr

    torch.manual_seed(0)
    if method == "graphlab_lcm":
        return LCMAggregation(feat, feat)
    if method == "pyg_lcm":
        return pyg_aggr.LCMAggregation(feat, feat)
    if method == "pyg_gru":
        return pyg_aggr.GRUAggregation(feat, feat)
    return RecurrentAggregation(feat, feat).eval()  # eval: the given order, like the PyG baselines


def runs(module: torch.nn.Module, msg: Tensor, index: Tensor, num_nodes: int) -> tuple[Callable, Callable]:
    def forward() -> object:
        with torch.no_grad():
            return module(msg, index, dim_size=num_nodes)

    def forward_backward() -> object:
        inp = msg.detach().requires_grad_(True)
        module(inp, index, dim_size=num_nodes).sum().backward()
        module.zero_grad(set_to_none=True)
        return inp.grad

    return forward, forward_backward


def measure(graph: str, index: Tensor, num_nodes: int, feat: int, methods: list[str], repeats: int,
            warmup: int) -> list[tuple]:
    gen = torch.Generator().manual_seed(1)
    msg = torch.randn(index.numel(), feat, generator=gen)
    results = {}
    for method in methods:
        module = build(method, feat)
        for mode, run in zip(("fwd", "fwd+bwd"), runs(module, msg, index, num_nodes)):
            results[(method, mode)] = (median_ms(run, repeats, warmup), peak_extra_mib(run))
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        ours_ms, ours_mib = results.get(("graphlab_lcm", mode), (None, None))
        for method in methods:
            ms, mib = results[(method, mode)]
            speedup = ms / ours_ms if ours_ms else None
            mem_ratio = ours_mib / mib if (ours_mib is not None and mib) else None
            rows.append((graph, feat, mode, method, ms, speedup, mib, mem_ratio))
    return rows


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--N", type=int, default=1000, help="nodes (default 1000; PyG's LCM needs ~4 GB here)")
    parser.add_argument("--max-deg", type=int, default=1000, help="largest degree of the power-law graph")
    parser.add_argument("--deg", type=int, default=10, help="degree of the regular graph")
    parser.add_argument("--F", type=int, nargs="+", default=[64], help="feature sizes (default 64)")
    parser.add_argument("--graphs", nargs="+", default=["powerlaw", "regular"], choices=["powerlaw", "regular"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; time = median ms, mem = peak extra MiB; "
          "x ours = baseline ms / graphlab_lcm ms; mem/ours = graphlab_lcm MiB / baseline MiB")
    print(f"{'graph':<9} {'E':>8} {'maxdeg':>6} {'F':>4} {'mode':<8} {'method':<13} {'ms':>10} {'x ours':>8} "
          f"{'MiB':>9} {'ours/base':>9}")
    for graph in args.graphs:
        index = powerlaw_index(args.N, args.max_deg, gen) if graph == "powerlaw" else regular_index(args.N, args.deg)
        max_deg = int(torch.bincount(index).max())
        for feat in args.F:
            for row in measure(graph, index, args.N, feat, args.methods, args.repeats, args.warmup):
                g, f, mode, method, ms, speedup, mib, mem_ratio = row
                print(f"{g:<9} {index.numel():>8} {max_deg:>6} {f:>4} {mode:<8} {method:<13} {ms:>10.1f} "
                      f"{fmt(speedup, '8.2f')} {fmt(mib, '9.1f')} {fmt(mem_ratio, '9.3f')}", flush=True)


if __name__ == "__main__":
    main()
