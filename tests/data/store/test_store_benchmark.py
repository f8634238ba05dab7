"""benchmarks/store.py runs end to end on a tiny graph (no timing is asserted anywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux task I/O accounting")
def test_store_benchmark_runs_on_a_tiny_graph(tmp_path: Path, capsys, repo_script) -> None:
    module = repo_script("benchmarks/store.py")
    module.main(["--scale", "0.0005", "--batches", "3", "--batch-size", "64", "--features", "8", "--no-train",
                 "--workdir", str(tmp_path), "--out", str(tmp_path / "table.txt"),
                 "--methods", "in-memory", "naive memmap", "store -", "store abcd (all)"])
    table = (tmp_path / "table.txt").read_text()
    for method in ("in-memory", "naive memmap", "store -", "store abcd (all)"):
        assert f"\n{method} " in table
    assert not (tmp_path / "store").exists()  # the synthetic store is removed
