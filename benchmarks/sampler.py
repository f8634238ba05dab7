"""Benchmark graphlab's neighbour sampler: seeds/s and sampled edges/s against PyG's ``NeighborLoader`` sampler
(pyg-lib or torch-sparse, where importable) and the per-node Python loop reference, same run, same seeds.

Graphs:

* ``powerlaw``: ``N = 1,000,000 * scale`` nodes and about ``E = 10,000,000 * scale`` edges; in-degrees
  ``d_i ∝ (i + 1)^{-0.8}`` over a random node order (a few hubs with tens of thousands of neighbours, most nodes a
  handful), sources uniform. Stored directly as CSC (``colptr``, ``row``).
* ``tolokers``: PyG's ``HeterophilousGraphDataset('Tolokers')`` (11,758 nodes, 1,038,000 edges) read from
  ``--data-root`` (a writable copy of ``shared/data``; PyG writes ``processed/`` beside ``raw/``). Skipped when absent.

Methods (one sampler call per batch of ``--batch-size`` random seeds, uniform without replacement):

* ``graphlab``: :meth:`graphlab.data.SamplingGraph.sample` (what ``GraphlabNeighborSampler`` calls);
* ``pyg``: ``torch_geometric.sampler.NeighborSampler._sample`` (pyg-lib / torch-sparse); ``n/a`` when neither is
  importable: pyg-lib has no PyPI wheels and torch-sparse is a source build;
* ``loop``: :func:`graphlab.data.sampler_reference.reference_sample_neighbors`, timed on ``--loop-batches`` batches.

Columns: median ms per batch, seeds/s, sampled edges/s, the speed-up of graphlab over each method
(``x graphlab`` = method ms / graphlab ms; above 1 means graphlab is faster) and the peak extra heap of one call (MiB,
sampled by ``benchmarks/aggregate.py``'s ``peak_extra_mib``).

Examples::

    OMP_NUM_THREADS=1 python benchmarks/sampler.py --data-root /tmp/gdata            # both graphs, both fan-outs
    python benchmarks/sampler.py --scale 0.1 --graphs powerlaw --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor

from graphlab.data.sampler import SamplingGraph, pyg_sampler_available
from graphlab.data.sampler_reference import reference_sample_neighbors


sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import median_ms, peak_extra_mib  # noqa: E402 - one measuring method for every benchmark

FANOUTS = ([15, 10, 5], [10, 10])
METHODS = ("graphlab", "pyg", "loop")


# --------------------------------------------------------------------------- graphs
def powerlaw_csc(scale: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``colptr, row`` of the synthetic power-law graph (see the module docstring)."""
    num_nodes = max(int(1_000_000 * scale), 10)
    target_edges = max(int(10_000_000 * scale), 100)
    shape = torch.arange(1, num_nodes + 1, dtype=torch.float64) ** -0.8
    degrees = (shape / shape.sum() * target_edges).round().long()
    degrees = degrees[torch.randperm(num_nodes, generator=gen)]
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees.cumsum(0)])
    row = torch.randint(0, num_nodes, (int(colptr[-1]),), generator=gen)
    return colptr, row


def tolokers_csc(data_root: Optional[Path]) -> Optional[tuple[Tensor, Tensor]]:
    if data_root is None or not (data_root / "tolokers").is_dir():
        return None
    from torch_geometric.datasets import HeterophilousGraphDataset
    from torch_geometric.sampler.utils import to_csc

    data = HeterophilousGraphDataset(str(data_root), "Tolokers")[0]
    colptr, row, _ = to_csc(data, device="cpu")
    return colptr, row


# --------------------------------------------------------------------------- methods
def pyg_sample_fn(colptr: Tensor, row: Tensor, fanouts: list[int]) -> Optional[Callable[[Tensor], int]]:
    """PyG's own sampler on the same CSC, or ``None`` when pyg-lib / torch-sparse cannot be imported."""
    if not pyg_sampler_available():
        return None
    from torch_geometric.data import Data
    from torch_geometric.sampler import NeighborSampler

    num_nodes = colptr.numel() - 1
    target = torch.repeat_interleave(torch.arange(num_nodes), colptr[1:] - colptr[:-1])
    data = Data(edge_index=torch.stack([row, target]), num_nodes=num_nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = NeighborSampler(data, fanouts, is_sorted=True)
    return lambda seeds: int(sampler._sample(seeds).row.numel())


def measure(colptr: Tensor, row: Tensor, fanouts: list[int], batch_size: int, repeats: int, warmup: int,
            loop_batches: int, seed: int) -> dict[str, Optional[tuple[float, float, Optional[float]]]]:
    """``{method: (ms per batch, sampled edges per batch, peak MiB)}`` (``None``: not available here)."""
    gen = torch.Generator().manual_seed(seed)
    num_nodes = colptr.numel() - 1
    batches = [torch.randint(0, num_nodes, (batch_size,), generator=gen) for _ in range(max(repeats, loop_batches))]
    graph = SamplingGraph(colptr, row)
    edges: dict[str, list[int]] = {m: [] for m in METHODS}

    def run_graphlab(i: list[int] = [0]) -> int:  # noqa: B006 - a counter over the batches
        out = graph.sample(batches[i[0] % len(batches)], fanouts)
        i[0] += 1
        edges["graphlab"].append(out.row.numel())
        return out.row.numel()

    def run_loop(i: list[int] = [0]) -> int:  # noqa: B006
        out = reference_sample_neighbors(colptr, row, batches[i[0] % len(batches)], fanouts)
        i[0] += 1
        edges["loop"].append(out.row.numel())
        return out.row.numel()

    results: dict[str, Optional[tuple[float, float, Optional[float]]]] = {}
    ms = median_ms(run_graphlab, repeats, warmup)
    results["graphlab"] = (ms, _mean(edges["graphlab"]), peak_extra_mib(run_graphlab))
    pyg = pyg_sample_fn(colptr, row, fanouts)
    if pyg is None:
        results["pyg"] = None
    else:
        counter = [0]

        def run_pyg() -> int:
            n = pyg(batches[counter[0] % len(batches)])
            counter[0] += 1
            edges["pyg"].append(n)
            return n

        ms = median_ms(run_pyg, repeats, warmup)
        results["pyg"] = (ms, _mean(edges["pyg"]), peak_extra_mib(run_pyg))
    if loop_batches > 0:
        ms = median_ms(run_loop, loop_batches, 0)
        results["loop"] = (ms, _mean(edges["loop"]), None)
    return results


def _mean(values: list[int]) -> float:
    return sum(values) / max(len(values), 1)


# --------------------------------------------------------------------------- table
def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="power-law graph size: 1M*scale nodes, 10M*scale edges")
    parser.add_argument("--graphs", nargs="+", default=["powerlaw", "tolokers"], choices=["powerlaw", "tolokers"])
    parser.add_argument("--data-root", type=Path, default=None, help="writable copy of shared/data (tolokers)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--loop-batches", type=int, default=1, help="batches timed for the Python loop (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    graphs: dict[str, tuple[Tensor, Tensor]] = {}
    if "powerlaw" in args.graphs:
        graphs["powerlaw"] = powerlaw_csc(args.scale, torch.Generator().manual_seed(args.seed))
    if "tolokers" in args.graphs:
        loaded = tolokers_csc(args.data_root)
        if loaded is None:
            print(f"# tolokers skipped: no tolokers/ folder under --data-root {args.data_root}")
        else:
            graphs["tolokers"] = loaded

    print(f"# OMP_NUM_THREADS={torch.get_num_threads()} python benchmarks/sampler.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}  (commit {_commit()}, {platform.processor() or 'cpu'})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size} random seeds, "
          "uniform without replacement; ms = median per batch; x graphlab = method ms / graphlab ms")
    header = (f"{'graph':<9}{'N':>9}{'E':>10} {'fan-out':<13}{'method':<9}{'ms':>9}{'seeds/s':>10}"
              f"{'edges/s':>11}{'edges/batch':>12}{'x graphlab':>11}{'MiB':>8}")
    print(header)
    for name, (colptr, row) in graphs.items():
        for fanouts in FANOUTS:
            results = measure(colptr, row, fanouts, args.batch_size, args.repeats, args.warmup, args.loop_batches,
                              args.seed)
            ours = results["graphlab"][0]
            for method in METHODS:
                prefix = f"{name:<9}{colptr.numel() - 1:>9}{row.numel():>10} {str(fanouts):<13}{method:<9}"
                result = results.get(method)
                if result is None:
                    reason = "n/a: no pyg-lib / torch-sparse" if method == "pyg" else "skipped"
                    print(f"{prefix}   {reason}")
                    continue
                ms, edges, mib = result
                mib_text = f"{mib:8.1f}" if mib is not None else f"{'-':>8}"
                print(f"{prefix}{ms:9.1f}{args.batch_size / ms * 1e3:10.0f}{edges / ms * 1e3:11.0f}"
                      f"{edges:12.0f}{ms / ours:11.2f}{mib_text}")
    if not pyg_sampler_available():
        print("# pyg: PyG's NeighborLoader cannot sample here: `pip download pyg-lib` finds no distribution (pyg-lib "
              "publishes wheels only on data.pyg.org, not PyPI) and torch-sparse has no binary wheel for this torch "
              "(a source build, not attempted); PyG's loader raises ImportError on its first batch without them.")


if __name__ == "__main__":
    main()
