"""Benchmark the common-neighbour op against a faithful re-implementation of the official NCN design, same run.

Two operations per graph, each timed (median ms) with its peak memory: the peak of the bytes held through
torch's CPU allocator during one call (``torch.profiler`` with ``profile_memory=True`` records every allocation
and free; their running sum from the call's start, result included, is maxed), in MiB. It counts every tensor the
call allocates, intermediates and outputs, on both paths alike (the native kernel allocates only through torch);
Python objects and the allocator's own slack are not counted.

* ``sets``: the three neighbour sets of a batch of target pairs (NCNC needs all three);
* ``cn-sum``: ``sum_{w in N(i) & N(j)} x_w`` with ``x`` of width 256 (NCN's common-neighbour term).

Methods:

* ``graphlab``: :func:`graphlab.ops.neighbor_sets` / :func:`graphlab.ops.common_neighbors` (auto backend: the
  native C kernel on CPU), on a CSR from :func:`graphlab.ops.sorted_csr` built once;
* ``graphlab-torch``: the same ops with the native kernels off (the vectorised torch fallback);
* ``official``: GraphPKU/NeuralCommonNeighbor ``utils.adjoverlap`` re-implemented in plain torch (no
  torch_sparse): row-gather the adjacency at the sources and at the targets (two ``B x N`` sparse matrices),
  encode every entry as the int64 key ``row << 32 | col``, ``torch.searchsorted`` one key list in the other,
  decode the matches into a sparse CSR matrix, and reduce with a sparse-dense product (``torch.sparse.mm``, the
  official ``spmm_add``).

Graphs: ``cora`` = the real Cora citation graph (Planetoid raw files from ``$GRAPHLAB_DATA/Cora`` or
``../shared/data/Cora``, copied to a temporary folder and loaded with ``torch_geometric.datasets.Planetoid``;
N = 2708, 10556 directed edges), target pairs as in NCN training: B = 1152 positive pairs drawn from the edges plus
1152 uniformly random pairs (a random graph of Cora's size when the files are missing, said in the output);
``ddi`` = the real ogbl-ddi edge list from ``$GRAPHLAB_DATA`` or ``../shared/data`` (``ogbl_ddi/raw/edge.csv.gz``,
read directly; N = 4267, 2.1M directed edges, B = 24576 pairs: half existing edges, half random pairs), or a random
graph of the same size when the file is missing (said in the output).

Examples::

    python benchmarks/common_neighbors.py                    # cora and ddi
    python benchmarks/common_neighbors.py --graphs cora --repeats 20
    python benchmarks/common_neighbors.py --epoch            # plus full NCN / NCNC training epochs on Cora
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

import graphlab.ops as ops
from graphlab.ops import _native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import median_ms  # noqa: E402 - the shared timing helper

FEATURES = 256
ALL_SETS = ("cn", "src_only", "dst_only")
GRAPH_SIZES = {  # name: (num_nodes, undirected edges, target pairs)
    "cora": (2708, 5278, 2304),  # 1152 positive + 1152 random pairs
    "ddi": (4267, 1067911, 24576),
    "tiny": (50, 200, 16),  # for the script's own test
}


# --------------------------------------------------------------------------------------------- graphs


def _data_roots() -> list[Path]:
    roots = [os.environ.get("GRAPHLAB_DATA"), str(Path(__file__).resolve().parents[2] / "shared" / "data")]
    return [Path(root) for root in roots if root]


def _cora_edges() -> Tensor | None:
    """Cora's ``edge_index`` (both directions) through PyG's Planetoid loader on a temporary copy of the raw files
    (the data folder stays untouched), or ``None`` when the files are missing."""
    for root in _data_roots():
        raw = root / "Cora" / "raw"
        if raw.is_dir():
            import shutil
            import tempfile

            from torch_geometric.datasets import Planetoid

            with tempfile.TemporaryDirectory() as tmp:
                shutil.copytree(raw, Path(tmp) / "Cora" / "raw")
                return Planetoid(tmp, "Cora")[0].edge_index
    return None


def _ddi_edges() -> Tensor | None:
    for root in _data_roots():
        path = root / "ogbl_ddi" / "raw" / "edge.csv.gz"
        if path.is_file():
            import pandas as pd

            return torch.from_numpy(pd.read_csv(path, header=None).to_numpy().T.copy()).long()
    return None


def make_graph(name: str, seed: int = 0) -> tuple[Tensor, int, Tensor, Tensor, str]:
    """``(edge_index [2, E] both directions, N, src [B], dst [B], description)``; the first ``B // 2`` pairs are
    edges drawn uniformly (positives), the rest uniformly random node pairs (NCN's training batches)."""
    num_nodes, num_undirected, num_pairs = GRAPH_SIZES[name]
    gen = torch.Generator().manual_seed(seed)
    if name == "cora" and (edge_index := _cora_edges()) is not None:
        what = "real Cora (Planetoid), 1152 positive edges + 1152 random pairs"
    elif name == "ddi" and (edges := _ddi_edges()) is not None:
        edge_index, what = torch.cat([edges, edges.flip(0)], 1), "real ogbl-ddi edges"
    else:
        edges = torch.randint(0, num_nodes, (2, num_undirected), generator=gen)
        edge_index = torch.cat([edges, edges.flip(0)], 1)
        what = "RANDOM graph of that size (real data files not found)" if name != "tiny" else "random tiny graph"
    half = num_pairs // 2
    positives = edge_index[:, torch.randint(0, edge_index.size(1), (half,), generator=gen)]
    random_pairs = torch.randint(0, num_nodes, (2, num_pairs - half), generator=gen)
    src, dst = torch.cat([positives, random_pairs], 1)
    return edge_index, num_nodes, src.contiguous(), dst.contiguous(), what


def peak_mib(run: Callable[[], object]) -> float:
    """Peak bytes held through torch's CPU allocator during one ``run()`` (result included), in MiB: the running
    sum of the allocation (+) and free (-) events that ``torch.profiler(profile_memory=True)`` records."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
        del result
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
         and e.device_type() == torch.autograd.DeviceType.CPU),
        key=lambda e: e.start_ns(),
    )
    held = peak = 0
    for event in events:
        held += event.nbytes()
        peak = max(peak, held)
    return peak / 2**20


# --------------------------------------------------------------------------------------------- official design


def official_row_gather(rowptr: Tensor, col: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """``adj[nodes]`` of a row-sorted sparse matrix: the ``(row, col)`` entries of a ``B x N`` matrix."""
    start, count = rowptr[nodes], rowptr[nodes + 1] - rowptr[nodes]
    total = int(count.sum())
    row = torch.repeat_interleave(torch.arange(nodes.numel()), count, output_size=total)
    offset = torch.cumsum(count, 0) - count
    return row, col[torch.arange(total) - offset[row] + start[row]]


def spm2elem(row: Tensor, col: Tensor) -> Tensor:
    return (row << 32) | col


def elem2spm(elem: Tensor, num_rows: int, num_cols: int) -> Tensor:
    """Sorted ``row << 32 | col`` keys back into a ``B x N`` sparse CSR matrix of ones."""
    row, col = elem >> 32, elem & 0xFFFFFFFF
    crow = torch.zeros(num_rows + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=num_rows), 0, out=crow[1:])
    with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" notice
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, col, torch.ones(col.numel()), (num_rows, num_cols), check_invariants=False
        )


def official_overlap(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, num_nodes: int, calresadj: bool
) -> tuple[Tensor, ...]:
    """``adjoverlap``: the common-neighbour matrix (and with ``calresadj`` the two one-sided ones)."""
    elem1 = spm2elem(*official_row_gather(rowptr, col, src))
    elem2 = spm2elem(*official_row_gather(rowptr, col, dst))
    num_pairs = src.numel()
    if not calresadj:
        short, long = (elem2, elem1) if elem2.numel() <= elem1.numel() else (elem1, elem2)
        if long.numel() == 0:
            return (elem2spm(long, num_pairs, num_nodes),)
        idx = torch.searchsorted(long[:-1], short)
        return (elem2spm(short[long[idx] == short], num_pairs, num_nodes),)
    if elem1.numel() == 0:
        return tuple(elem2spm(e, num_pairs, num_nodes) for e in (elem1, elem1, elem2))
    idx = torch.searchsorted(elem1[:-1], elem2)
    matched = elem1[idx] == elem2
    keep1 = torch.ones_like(elem1, dtype=torch.bool)
    keep1[idx[matched]] = False
    return tuple(elem2spm(e, num_pairs, num_nodes) for e in (elem2[matched], elem1[keep1], elem2[~matched]))


# --------------------------------------------------------------------------------------------- methods


def methods(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, x: Tensor, num_nodes: int) -> dict:
    """``{(method, op): run}``."""
    rowptr64, col64 = rowptr.long(), col.long()

    def no_native(run: Callable[[], object]) -> Callable[[], object]:
        def wrapped() -> object:
            with _native.use_native(False):
                return run()
        return wrapped

    graphlab_sets = lambda: ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS)  # noqa: E731
    graphlab_sum = lambda: ops.common_neighbors(rowptr, col, src, dst, x)  # noqa: E731
    return {
        ("graphlab", "sets"): graphlab_sets,
        ("graphlab", "cn-sum"): graphlab_sum,
        ("graphlab-torch", "sets"): no_native(graphlab_sets),
        ("graphlab-torch", "cn-sum"): no_native(graphlab_sum),
        ("official", "sets"): lambda: official_overlap(rowptr64, col64, src, dst, num_nodes, True),
        ("official", "cn-sum"): lambda: torch.sparse.mm(
            official_overlap(rowptr64, col64, src, dst, num_nodes, False)[0], x
        ),
    }


def check_agreement(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, x: Tensor, num_nodes: int) -> None:
    """The official re-implementation and graphlab give the same sets and sums (else the table is meaningless)."""
    ours = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS)
    theirs = official_overlap(rowptr.long(), col.long(), src, dst, num_nodes, True)
    for name, matrix in zip(ALL_SETS, theirs):
        if not (torch.equal(ours[name].ptr, matrix.crow_indices()) and torch.equal(ours[name].index.long(),
                                                                                    matrix.col_indices())):
            raise RuntimeError(f"graphlab and the official design disagree on the {name} sets")
    z_ours = ops.common_neighbors(rowptr, col, src, dst, x)
    z_theirs = torch.sparse.mm(official_overlap(rowptr.long(), col.long(), src, dst, num_nodes, False)[0], x)
    torch.testing.assert_close(z_ours, z_theirs, atol=1e-3, rtol=1e-4)


# --------------------------------------------------------------------------------------------- table


def epoch_comparison(args: argparse.Namespace) -> list[str]:
    """Full NCN / NCNC training epochs on Cora (README hyperparameters, validation off), each in a fresh process,
    against the official code's own figures measured on this machine (``benchmarks/ncn_epoch.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ncn_epoch import epoch_table

    return ["", f"full training epoch on Cora ({args.epoch_count} epochs, median after the first):",
            *epoch_table(args.epoch_count)]


def run_graph(name: str, repeats: int, warmup: int) -> list[str]:
    edge_index, num_nodes, src, dst, what = make_graph(name)
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    x = torch.randn(num_nodes, FEATURES)
    check_agreement(rowptr, col, src, dst, x, num_nodes)
    runs = methods(rowptr, col, src, dst, x, num_nodes)
    measured = {key: (median_ms(run, repeats, warmup), peak_mib(run)) for key, run in runs.items()}
    rows = []
    for op in ("sets", "cn-sum"):
        ms, mib = measured[("graphlab", op)]
        torch_ms, torch_mib = measured[("graphlab-torch", op)]
        off_ms, off_mib = measured[("official", op)]
        rows.append(
            f"{name:5s} {num_nodes:6d} {col.numel():9d} {src.numel():6d} {op:7s} {ms:9.2f} {torch_ms:9.2f} "
            f"{off_ms:9.2f} {off_ms / ms:7.1f}x {_mib(mib)} {_mib(torch_mib)} {_mib(off_mib)} {_ratio(off_mib, mib)}"
        )
    rows.append(f"      ({name}: {what})")
    return rows


def _mib(value: float | None) -> str:
    return f"{value:9.2f}" if value is not None else f"{'n/a':>9s}"


def _ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den <= 0:
        return f"{'n/a':>8s}"
    return f"{num / den:7.1f}x"


def header() -> str:
    return (
        f"{'graph':5s} {'N':>6s} {'E':>9s} {'B':>6s} {'op':7s} {'ours ms':>9s} {'torch ms':>9s} {'offic ms':>9s} "
        f"{'speedup':>8s} {'ours MiB':>9s} {'torchMiB':>9s} {'offc MiB':>9s} {'mem x':>8s}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", nargs="+", default=["cora", "ddi"], choices=sorted(GRAPH_SIZES))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--epoch", action="store_true", help="also compare a full NCN/NCNC training epoch")
    parser.add_argument("--epoch-count", type=int, default=5, help="epochs per model for --epoch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native kernels: "
          f"{_native.unavailable_reason() or 'on'}; speedup = official ms / ours ms (median); MiB = peak bytes held "
          "through torch's CPU allocator during one call, result included (torch.profiler profile_memory); "
          "mem x = official MiB / ours MiB")
    print(header())
    for name in args.graphs:
        for row in run_graph(name, args.repeats, args.warmup):
            print(row)
    if args.epoch:
        for row in epoch_comparison(args):
            print(row)


if __name__ == "__main__":
    main()
