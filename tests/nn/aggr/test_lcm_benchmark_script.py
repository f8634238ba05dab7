"""benchmarks/lcm.py runs end to end on a tiny graph (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "lcm.py"


def test_tiny_run_prints_one_row_per_method_and_mode(capsys):
    spec = importlib.util.spec_from_file_location("graphlab_benchmark_lcm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.main(["--N", "30", "--max-deg", "12", "--deg", "3", "--F", "4", "--repeats", "1", "--warmup", "0"])
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    assert len(rows) == 2 * 2 * 4  # graphs x modes x methods
    assert {r[5] for r in rows} == {"graphlab_lcm", "pyg_lcm", "pyg_gru", "graphlab_gru"}
    assert all(r[7] == "1.00" for r in rows if r[5] == "graphlab_lcm")
