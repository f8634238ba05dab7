"""benchmarks/lcm.py runs end to end on a tiny graph (no timing is asserted)."""

from __future__ import annotations


def test_tiny_run_prints_one_row_per_method_and_mode(capsys, repo_script):
    module = repo_script("benchmarks/lcm.py")
    module.main(["--N", "30", "--max-deg", "12", "--deg", "3", "--F", "4", "--repeats", "1", "--warmup", "0"])
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    assert len(rows) == 2 * 2 * 4  # graphs x modes x methods
    assert {r[5] for r in rows} == {"graphlab_lcm", "pyg_lcm", "pyg_gru", "graphlab_gru"}
    assert all(r[7] == "1.00" for r in rows if r[5] == "graphlab_lcm")
