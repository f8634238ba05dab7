"""benchmarks/aggregate.py runs end to end on a tiny point (no timing is asserted anywhere)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "aggregate.py"


def test_tiny_grid_prints_one_row_per_mode(repo_script, capsys):
    bench = repo_script("benchmarks/aggregate.py")
    bench.main(["--E", "300", "--F", "3", "5", "--reduce", "max", "--repeats", "1", "--warmup", "0",
                "--methods", "graphlab", "pyg", "sparse.mm"])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 4  # 2 feature sizes x (fwd, fwd+bwd)
    assert [r[5] for r in rows] == ["fwd", "fwd+bwd"] * 2 and {r[4] for r in rows} == {"max"}
    assert {r[0] for r in rows} == {"uniform/random"}
    # graph label + key, 3 times, 2 ratios, GB/s + stream + %stream, 3 memory columns
    assert all(len(r) == 6 + 3 + 2 + 3 + 3 for r in rows)
    assert all(float(r[11]) >= 0 and float(r[12]) > 0 and r[13].endswith("%") for r in rows[::2])  # fwd: GB/s


def test_grid_axes_label_every_graph(repo_script, capsys):
    bench = repo_script("benchmarks/aggregate.py")
    bench.main(["--E", "400", "--N-ratio", "10", "5", "--F", "2", "--reduce", "sum", "--repeats", "1",
                "--warmup", "0", "--methods", "graphlab", "--degrees", "uniform", "powerlaw",
                "--order", "sorted", "random", "--reorder", "none", "rcm"])
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    assert len(rows) == 2 * 2 * 2 * 2 * 2  # N ratios x degrees x reorder x order x modes
    assert {r[0] for r in rows} == {f"{d}/{o}{r}" for d in ("uniform", "powerlaw") for o in ("sorted", "random")
                                    for r in ("", "+rcm")}
    assert {int(r[2]) for r in rows} == {40, 80}


def test_graph_generators_and_edge_orders(repo_script):
    bench = repo_script("benchmarks/aggregate.py")
    gen = torch.Generator().manual_seed(0)
    num_nodes, num_edges = 2000, 20000
    power = bench.chung_lu_edges(num_edges, num_nodes, 2.1, gen)
    uniform = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    assert power.min() >= 0 and power.max() < num_nodes
    hub = torch.bincount(power[1], minlength=num_nodes).max()
    assert hub > 10 * torch.bincount(uniform[1], minlength=num_nodes).max()  # a heavy tail, not uniform
    ordered = bench.order_edges(uniform, num_nodes, "sorted", gen)
    key = ordered[0] * num_nodes + ordered[1]
    assert torch.all(key[1:] >= key[:-1])
    assert torch.equal(torch.sort(key).values, torch.sort(uniform[0] * num_nodes + uniform[1]).values)
    relabelled = bench.relabel(uniform, num_nodes, "rcm")  # the same graph, nodes renamed
    assert torch.equal(torch.bincount(relabelled.view(-1), minlength=num_nodes).sort().values,
                       torch.bincount(uniform.view(-1), minlength=num_nodes).sort().values)


def test_peak_memory_sees_a_large_temporary(repo_script):
    bench = repo_script("benchmarks/aggregate.py")
    if bench.HEAP is None:
        pytest.skip("peak memory needs glibc's mallinfo2")
    def hold_temporary() -> torch.Tensor:
        temporary = torch.ones(4 * 2**20)  # 16 MiB
        time.sleep(0.05)  # the sampler thread samples every ~50 us; give it the GIL even on a busy CPU
        return temporary.sum()

    extra = bench.peak_extra_mib(hold_temporary)
    assert extra is not None and extra >= 15.0
