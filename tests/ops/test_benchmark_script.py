"""benchmarks/aggregate.py runs end to end on a tiny point (no timing is asserted anywhere)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "aggregate.py"


def load_script():
    name = "graphlab_benchmark_aggregate"
    if name not in sys.modules:  # dataclasses look their module up in sys.modules
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_tiny_grid_prints_one_row_per_mode(capsys):
    bench = load_script()
    bench.main(["--E", "300", "--F", "3", "5", "--reduce", "max", "--repeats", "1", "--warmup", "0",
                "--methods", "graphlab", "pyg", "sparse.mm"])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 4  # 2 feature sizes x (fwd, fwd+bwd)
    assert [r[4] for r in rows] == ["fwd", "fwd+bwd"] * 2 and {r[3] for r in rows} == {"max"}
    assert all(len(r) == 5 + 3 + 2 + 3 for r in rows)  # key, 3 times, 2 ratios, 3 memory columns


def test_peak_memory_sees_a_large_temporary():
    bench = load_script()
    if bench.HEAP is None:
        pytest.skip("peak memory needs glibc's mallinfo2")
    def hold_temporary() -> torch.Tensor:
        temporary = torch.ones(4 * 2**20)  # 16 MiB
        time.sleep(0.05)  # the sampler thread samples every ~50 us; give it the GIL even on a busy CPU
        return temporary.sum()

    extra = bench.peak_extra_mib(hold_temporary)
    assert extra is not None and extra >= 15.0
