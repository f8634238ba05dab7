"""graphlab.ops.gather_reduce used directly: neighbourhood sum / mean / max checked against a scatter reference,
gradients included, and timed against it.

``to_csr`` sorts the edges by target once; ``gather_reduce(x, rowptr, col, reduce)`` then computes, for every
node ``i``, the reduction over its in-neighbours ``j`` of ``x_j`` without building the ``[E, F]`` tensor of
messages that ``scatter(x[src], dst)`` needs. The reference here is PyG's ``torch_geometric.utils.scatter``.

    python examples/gather_reduce_directly.py                  # 200k edges, 64 features
    python examples/gather_reduce_directly.py --tiny           # 2k edges (what the tests run)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from graphlab.ops import gather_reduce, to_csr


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (the native CPU kernels compile on first use)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def compare(x: Tensor, edge_index: Tensor, reduce: str, repeats: int) -> dict[str, float]:
    """Value and gradient gap to the scatter reference, and both timings (forward + backward)."""
    num_nodes = x.size(0)
    rowptr, col, _ = to_csr(edge_index, num_nodes)  # once per graph
    src, dst = edge_index

    def fused(inp: Tensor) -> Tensor:
        return gather_reduce(inp, rowptr, col, reduce)

    def reference(inp: Tensor) -> Tensor:
        return scatter(inp[src], dst, dim=0, dim_size=num_nodes, reduce=reduce)

    grad_out = torch.randn(num_nodes, x.size(1))
    outputs, grads = [], []
    for fn in (fused, reference):
        inp = x.clone().requires_grad_(True)
        out = fn(inp)
        out.backward(grad_out)
        outputs.append(out.detach())
        grads.append(inp.grad)

    def timed(fn: Callable[[Tensor], Tensor]) -> Callable[[], object]:
        inp = x.clone().requires_grad_(True)
        return lambda: torch.autograd.grad(fn(inp), inp, grad_out)

    return {"value_gap": float((outputs[0] - outputs[1]).abs().max()),
            "grad_gap": float((grads[0] - grads[1]).abs().max()),
            "graphlab_ms": median_ms(timed(fused), repeats), "scatter_ms": median_ms(timed(reference), repeats)}


def main(argv: Optional[list[str]] = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="2k edges, 16 features, 3 repeats (a smoke run)")
    parser.add_argument("--edges", type=int, default=None)
    parser.add_argument("--features", type=int, default=None)
    args = parser.parse_args(argv)
    num_edges = args.edges or (2_000 if args.tiny else 200_000)
    features = args.features or (16 if args.tiny else 64)
    gen = torch.Generator().manual_seed(0)
    num_nodes = max(num_edges // 10, 1)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, features, generator=gen)
    print(f"{num_edges} edges, {num_nodes} nodes, {features} features; forward + backward, median ms")
    results = {}
    for reduce in ("sum", "mean", "max"):
        r = compare(x, edge_index, reduce, repeats=3 if args.tiny else 10)
        results[reduce] = r
        print(f"{reduce:>4}: graphlab {r['graphlab_ms']:8.2f} ms, scatter {r['scatter_ms']:8.2f} ms; "
              f"max |difference| value {r['value_gap']:.1e}, gradient {r['grad_gap']:.1e}")
    return results


if __name__ == "__main__":
    main()
