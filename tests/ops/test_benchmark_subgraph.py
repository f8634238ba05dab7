"""benchmarks/subgraph.py: the replicated-batch baseline agrees with graphlab's pair atoms, the output check can
fail, and a tiny grid runs end to end (no timing is asserted anywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graphlab.nn.subgraph import pair_index_from_batch
from graphlab.ops import pair_atom

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "subgraph.py"


def test_random_batch_is_simple_undirected(repo_script):
    bench = repo_script("benchmarks/subgraph.py")
    batch = bench.random_batch(3, 12, 3.0, torch.Generator().manual_seed(0))
    src, dst = batch.edge_index
    assert not bool((src == dst).any())  # no self-loops
    assert bool(((src // 12) == (dst // 12)).all())  # edges stay inside a graph
    key = set((src * 36 + dst).tolist())
    assert key == set((dst * 36 + src).tolist()) and len(key) == src.numel()  # symmetric, no duplicates
    assert 0 < src.numel() < 3 * 12 * 11  # sparse, not complete
    assert batch.pair_dis.numel() == 3 * 144 and int(batch.pair_dis.max()) <= bench.MAX_DIS + 1


@pytest.mark.parametrize("atom", ["uL", "vL", "vv", "uG"])
def test_replicated_index_equals_pair_atoms(repo_script, atom):
    bench = repo_script("benchmarks/subgraph.py")
    batch = bench.random_batch(3, 7, 3.0, torch.Generator().manual_seed(1))
    lists = bench.replicated_index(batch, (atom,))
    h = torch.randn(3 * 49, 5, dtype=torch.float64)
    index = pair_index_from_batch(batch.edge_index, batch.ptr)
    local = atom in bench.LOCAL
    expected = pair_atom(h, index, atom, None, "gine" if local else "add")
    torch.testing.assert_close(bench.replicated_aggregate(h, lists[atom], local), expected)
    if atom == "uG":
        assert lists[atom][0].numel() == 3 * 7**3  # the n^3 triples of the official design


@pytest.mark.parametrize("model", ["sswl+", "ds"])
def test_engines_agree_and_the_check_can_fail(repo_script, model, monkeypatch):
    bench = repo_script("benchmarks/subgraph.py")
    args = bench.parse_args(["--dim", "6", "--layers", "2"])
    assert bench.max_output_difference(model, 8, args) <= bench.TOLERANCE
    original = bench.replicated_aggregate
    monkeypatch.setattr(bench, "replicated_aggregate",
                        lambda h, index, local: original(h, (index[0], index[1].flip(0)), local))
    assert bench.max_output_difference(model, 8, args) > 1e-3


@pytest.mark.parametrize("engine", ["graphlab", "replicated"])
@pytest.mark.parametrize("atoms_only", [False, True])
def test_worker_reports_time_and_memory(repo_script, engine, atoms_only):
    bench = repo_script("benchmarks/subgraph.py")
    args = bench.parse_args(["--worker", "--models", "sswl+", "--engines", engine, "--sizes", "6",
                             "--graphs", "2", "--batch-size", "1", "--dim", "4", "--layers", "1", "--epochs", "1",
                             "--threads", "1", *(["--atoms-only"] if atoms_only else [])])
    result = bench.worker(args)
    assert result["s_per_epoch"] > 0 and result["peak_mib"] > 0 and result["extra_mib"] >= 0


@pytest.mark.slow
def test_tiny_grid_prints_one_row_per_model_and_size(repo_script, capsys):
    bench = repo_script("benchmarks/subgraph.py")
    bench.main(["--sizes", "5", "7", "--graphs", "2", "--batch-size", "1", "--dim", "4", "--layers", "1",
                "--epochs", "1", "--threads", "1"])
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [("sswl+", "5"), ("sswl+", "7"), ("ds", "5"), ("ds", "7")]
    assert all(r[3] == "ok" for r in rows)
