"""Out-of-core GraphSAGE training from graphlab's disk store: read amplification and epoch throughput of each
DiskGNN idea on and off, against in-memory features and a naive ``np.memmap`` gather, in one run.

Setup (``--scale 1``): a synthetic graph of ``N = 2,000,000`` nodes with ``128`` float32 features (a 1 GiB feature
file) and ``10 N`` edges whose sources follow a power law (``p(u) ∝ (rank_u + 1)^{-0.8}`` over a random order: a few
hubs appear in many neighbourhoods, as in real graphs), targets uniform. The memory cap is ``--cap-mib`` (default:
a quarter of the feature file, 256 MiB): it is enforced on the page cache by dropping the feature file's pages
(``madvise``/``posix_fadvise(DONTNEED)``) before each method and whenever the process has read more than the cap
since the last drop, and the hot cache is given the same budget. Every method trains the same 2-layer GraphSAGE
(PyG ``SAGEConv``, mean, hidden 128, 16 classes, Adam) on the same ``--batches`` batches of ``--batch-size`` seeds
with fan-outs ``--fanout`` (graphlab's :class:`~graphlab.data.SamplingGraph`, same generator seed, so every method
sees identical batches), one epoch each, starting cold.

Columns:

* ``read MiB``: bytes the process read from the block device during the epoch (``/proc/self/io`` ``read_bytes``:
  page faults, readahead, the packing scan and the packed file all count);
* ``needed MiB``: feature bytes the batches consume, ``sum_b |n_id_b| * 512`` (duplicates across batches count,
  within a batch the sampler's ids are unique);
* ``ampl.``: read / needed (target <= 1.3);
* ``seeds/s``: training seeds per second of the whole epoch (sampling, packing, loading, training; with
  ``--no-train`` the model step is skipped and the features are only summed, which isolates the loading pipeline);
* ``x naive``, ``x in-mem``: throughput ratios (targets: >= 3 for our best row, >= 0.5);
* ``cache/packed``: rows served from the hot cache / the packed file, in % of needed rows;
* ``peak RSS``: the process's peak resident set during the epoch (``VmHWM`` after ``clear_refs``; memory-mapped
  file pages count as resident while mapped);
* ``load``: the machine's 1-minute load average at the end of the epoch (on a shared machine, wall times of rows
  run at different loads are not comparable; run the methods in both orders, ``--methods``, to see the spread).

Methods: ``in-memory`` (features in a torch tensor, read whole before the clock starts); ``naive memmap``
(``torch.from_numpy(np.memmap(...)[n_id])`` in batch order, kernel defaults); ``store`` rows use
:class:`~graphlab.data.store.DiskGNNLoader` with the switches shown (a = offline sampling, b = packing, c = hot cache,
d = prefetch thread), the store's maps advised ``MADV_RANDOM`` (a fault reads one page).

Examples::

    OMP_NUM_THREADS=1 python benchmarks/store.py                       # the 1 GiB run (about 20 minutes on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/store.py --no-train            # the loading pipeline alone
    python benchmarks/store.py --scale 0.05 --batches 20               # a quick check
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphlab.data.sampler import SamplingGraph
from graphlab.data.store import DiskFeatureStore, DiskGNNLoader
from graphlab.data.store.folder import drop_file_cache

NUM_CLASSES = 16


def read_bytes() -> int:
    """Bytes this process (all threads) has read from storage (``/proc/self/io``)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no read_bytes: this benchmark needs Linux task I/O accounting")


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not permitted: the peak then covers the whole process lifetime
        pass


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- data
def powerlaw_csc(num_nodes: int, avg_degree: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``colptr, row``: each node's in-neighbours (the nodes it aggregates), sources drawn from a power law."""
    num_edges = num_nodes * avg_degree
    weight = torch.arange(1, num_nodes + 1, dtype=torch.float64) ** -0.8
    cdf = torch.cumsum(weight / weight.sum(), 0)
    rank = torch.searchsorted(cdf, torch.rand(num_edges, generator=gen, dtype=torch.float64)).clamp_(max=num_nodes - 1)
    order = torch.randperm(num_nodes, generator=gen)
    src = order[rank]
    dst = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    dst, perm = torch.sort(dst)
    colptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    colptr[1:] = torch.cumsum(torch.bincount(dst, minlength=num_nodes), 0)
    return colptr, src[perm]


def write_features(folder: Path, num_nodes: int, features: int, gen: torch.Generator) -> DiskFeatureStore:
    store = DiskFeatureStore(folder, mode="w")
    with store.writer(None, "x", shape=(num_nodes, features), dtype=torch.float32) as writer:
        for start in range(0, num_nodes, 262144):
            writer.append(torch.randn(min(262144, num_nodes - start), features, generator=gen))
    return DiskFeatureStore(folder, verify="none")


# --------------------------------------------------------------------------- model
class SAGE(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        from torch_geometric.nn import SAGEConv

        self.conv1 = SAGEConv(in_channels, hidden)
        self.conv2 = SAGEConv(hidden, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)


@dataclass
class Batch:
    seeds: Tensor
    n_id: Tensor
    edge_index: Tensor
    x: Tensor


@dataclass
class Row:
    method: str
    seconds: float
    seeds: int
    read: int
    needed: int
    cache_pct: float
    packed_pct: float
    peak_mib: float
    load: float


class Runner:
    """Runs one method for one epoch under the cap and measures it."""

    def __init__(self, args: argparse.Namespace, store: DiskFeatureStore, graph: SamplingGraph, labels: Tensor,
                 seeds: Tensor) -> None:
        self.args, self.store, self.graph, self.labels, self.seeds = args, store, graph, labels, seeds
        self.file, self.entry = store.file_entry(None, "x")
        self.cap = args.cap_mib << 20
        self.evict: Callable[[], None] = lambda: None

    def sampler(self) -> Callable[[Tensor], Any]:
        gen = torch.Generator().manual_seed(self.args.seed + 1)
        return lambda seeds: self.graph.sample(seeds, self.args.fanout, generator=gen)

    def seed_batches(self) -> list[Tensor]:
        return list(self.seeds.split(self.args.batch_size))

    def drop_all(self) -> None:
        self.evict()
        self.store.drop_page_cache()
        drop_file_cache(self.file)

    def run(self, method: str, batches: Iterator[Batch], stats: Optional[Callable[[], tuple[float, float]]] = None
            ) -> Row:
        torch.manual_seed(self.args.seed)
        model = SAGE(self.args.features, self.args.hidden, NUM_CLASSES)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        reset_peak_rss()
        start_read = last_drop = read_bytes()
        start = time.perf_counter()
        seeds = needed = 0
        for batch in batches:
            if self.args.train:
                optimizer.zero_grad()
                out = model(batch.x, batch.edge_index)[: batch.seeds.numel()]
                F.cross_entropy(out, self.labels[batch.seeds]).backward()
                optimizer.step()
            else:  # loading only: touch the features so every byte is really there
                float(batch.x.sum())
            seeds += batch.seeds.numel()
            needed += batch.n_id.numel() * self.entry.storage.itemsize * self.args.features
            now = read_bytes()
            if now - last_drop > self.cap:  # the page cache may not hold more than the cap of feature pages
                self.drop_all()
                last_drop = now
        seconds = time.perf_counter() - start
        cache_pct, packed_pct = stats() if stats is not None else (0.0, 0.0)
        row = Row(method, seconds, seeds, read_bytes() - start_read, needed, cache_pct, packed_pct, peak_rss_mib(),
                  os.getloadavg()[0])
        self.evict = lambda: None
        self.drop_all()
        return row

    # ---- methods
    def in_memory(self) -> Row:
        x = self.store.get_tensor(None, "x", index=None).clone()
        self.drop_all()
        sample = self.sampler()

        def batches() -> Iterator[Batch]:
            for seeds in self.seed_batches():
                out = sample(seeds)
                yield Batch(seeds, out.node, out.edge_index, x[out.node])

        return self.run("in-memory", batches())

    def naive(self) -> Row:
        state = {"mm": np.memmap(self.file, dtype=np.float32, mode="r", shape=tuple(self.entry.shape))}

        def evict() -> None:  # unmap (so DONTNEED can drop the pages) and map again
            state["mm"] = np.memmap(self.file, dtype=np.float32, mode="r", shape=tuple(self.entry.shape))

        self.evict = evict
        sample = self.sampler()

        def batches() -> Iterator[Batch]:
            for seeds in self.seed_batches():
                out = sample(seeds)
                yield Batch(seeds, out.node, out.edge_index, torch.from_numpy(state["mm"][out.node.numpy()]))

        return self.run("naive memmap", batches())

    def store_loader(self, name: str, offline: bool, pack: bool, cache: bool, prefetch: bool) -> Row:
        self.store.advise("random")
        loader = DiskGNNLoader(self.store, self.seeds, self.args.batch_size, self.sampler(), offline=offline,
                               pack=pack, cache_bytes=self.cap if cache else 0, prefetch=2 if prefetch else 0,
                               degree=self.graph_degree() if cache and not offline else None, shuffle=False,
                               pack_dir=self.args.workdir, evict_packed=True)

        def batches() -> Iterator[Batch]:
            for b in loader:
                yield Batch(b.seeds, b.n_id, b.sample.edge_index, b.x)

        def stats() -> tuple[float, float]:
            s = loader.stats
            return 100 * s.rows_from_cache / max(1, s.rows_needed), 100 * s.rows_from_packed / max(1, s.rows_needed)

        return self.run(name, batches(), stats)

    def graph_degree(self) -> Tensor:
        """How often each node can be sampled as a neighbour: its out-degree in the sampling CSC."""
        return torch.bincount(self.graph.col, minlength=self.graph.num_nodes)


STORE_ROWS = {  # (offline, pack, cache, prefetch)
    "store -": (False, False, False, False),
    "store a": (True, False, False, False),
    "store ab": (True, True, False, False),
    "store abc": (True, True, True, False),
    "store abcd (all)": (True, True, True, True),
    "store acd (all - b)": (True, False, True, True),
    "store abd (all - c)": (True, True, False, True),
    "store cd (all - a, b)": (False, False, True, True),
}


def table(rows: list[Row], args: argparse.Namespace, setup: str) -> str:
    by_name = {r.method: r for r in rows}
    naive = by_name.get("naive memmap")
    memory = by_name.get("in-memory")
    lines = [setup, "",
             f"{'method':<22} {'s/epoch':>8} {'seeds/s':>8} {'read MiB':>9} {'needed MiB':>10} {'ampl.':>6} "
             f"{'x naive':>7} {'x in-mem':>8} {'cache%':>6} {'packed%':>7} {'peak RSS':>9} {'load':>5}"]
    for r in rows:
        tput = r.seeds / r.seconds
        x_naive = tput / (naive.seeds / naive.seconds) if naive else float("nan")
        x_mem = tput / (memory.seeds / memory.seconds) if memory else float("nan")
        lines.append(f"{r.method:<22} {r.seconds:>8.1f} {tput:>8.0f} {r.read / 2**20:>9.0f} {r.needed / 2**20:>10.0f} "
                     f"{r.read / max(1, r.needed):>6.2f} {x_naive:>7.2f} {x_mem:>8.2f} {r.cache_pct:>6.1f} "
                     f"{r.packed_pct:>7.1f} {r.peak_mib:>8.0f}M {r.load:>5.1f}")
    lines += ["", f"CPUs: {os.cpu_count()}; rows run one after another in the order shown, each starting with the feature "
              "file out of the page cache.",
              "flags: a = offline sampling of the epoch, b = per-epoch packed file, c = hot-node cache (budget = cap),"
              " d = prefetch thread (2 batches);", "'-' = the store's sorted, deduplicated memmap gather alone."]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="N = 2,000,000 * scale nodes")
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--avg-degree", type=int, default=10)
    parser.add_argument("--cap-mib", type=int, default=None, help="memory cap (default: feature file / 4)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=150, help="batches per epoch")
    parser.add_argument("--fanout", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-train", dest="train", action="store_false",
                        help="sample and load only (no model): the I/O pipeline's own throughput")
    parser.add_argument("--methods", nargs="+", default=["in-memory", "naive memmap", *STORE_ROWS])
    parser.add_argument("--workdir", type=Path, default=None, help="where the synthetic store goes (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic store")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    num_nodes = max(int(2_000_000 * args.scale), 1000)
    file_mib = num_nodes * args.features * 4 / 2**20
    args.cap_mib = args.cap_mib or max(1, int(file_mib / 4))
    created = args.workdir is None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="graphlab-store-bench-", dir="/tmp"))
    args.workdir = workdir
    free = shutil.disk_usage(workdir).free / 2**20
    packed_mib = args.batches * args.batch_size * (1 + args.fanout[0] * (1 + sum(args.fanout[1:]))) * \
        args.features * 4 / 2**20
    if free < file_mib + packed_mib + 512:
        raise SystemExit(f"{workdir}: {free:.0f} MiB free, need about {file_mib + packed_mib + 512:.0f}")
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    colptr, row = powerlaw_csc(num_nodes, args.avg_degree, gen)
    graph = SamplingGraph(colptr, row)
    store = write_features(workdir / "store", num_nodes, args.features, gen)
    labels = torch.randint(0, NUM_CLASSES, (num_nodes,), generator=gen)
    seeds = torch.randperm(num_nodes, generator=gen)[: args.batches * args.batch_size]
    print(f"built graph + {file_mib:.0f} MiB feature store in {time.perf_counter() - t0:.0f} s", flush=True)
    runner = Runner(args, store, graph, labels, seeds)
    runner.drop_all()
    rows = []
    try:
        for method in args.methods:
            if method == "in-memory":
                rows.append(runner.in_memory())
            elif method == "naive memmap":
                rows.append(runner.naive())
            else:
                rows.append(runner.store_loader(method, *STORE_ROWS[method]))
            r = rows[-1]
            print(f"  {r.method:<22} {r.seconds:6.1f} s  read {r.read / 2**20:8.0f} MiB  needed "
                  f"{r.needed / 2**20:8.0f} MiB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir / "store", ignore_errors=True)
            if created and not any(workdir.iterdir()):
                workdir.rmdir()
    setup = (f"benchmarks/store.py --scale {args.scale} --batches {args.batches}: N={num_nodes:,} nodes x "
             f"{args.features} float32 = {file_mib:.0f} MiB features, cap {args.cap_mib} MiB "
             f"({file_mib / args.cap_mib:.1f}x), {colptr[-1].item():,} edges (power-law sources), fan-out "
             f"{args.fanout}, {args.batches} batches x {args.batch_size} seeds, "
             f"{f'2-layer SAGE hidden {args.hidden}' if args.train else 'no model (sampling + loading only)'}; "
             f"torch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, store on {workdir}")
    text = table(rows, args, setup)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
