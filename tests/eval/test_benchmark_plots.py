"""`benchmarks/aggregate.py --plot` and `benchmarks/sheaf.py --plot` draw their tables: every (method, size) cell of
the table is a point of the chart, as measured; both go through graphlab.eval.figures.write_benchmark_figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from graphlab.eval import figures

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def drawn(monkeypatch):
    """Records the points each benchmark hands to the shared chart helper (which still writes the PNG)."""
    seen: list[list[figures.BenchPoint]] = []
    real = figures.write_benchmark_figure

    def spy(path, points, *args):
        seen.append(list(points))
        return real(path, points, *args)

    monkeypatch.setattr(figures, "write_benchmark_figure", spy)
    return seen


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape[0] > 100


def test_aggregate_plot_draws_every_cell_of_the_table(repo_script, tmp_path, capsys, drawn):
    bench = repo_script("benchmarks/aggregate.py")
    out = tmp_path / "aggregate.png"
    bench.main(["--E", "100", "300", "--F", "4", "--reduce", "sum", "--repeats", "1", "--warmup", "0",
                "--methods", "graphlab", "pyg", "--plot", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"wrote {out}"
    _assert_png(out)
    rows = [line.split() for line in lines[2:-1]]  # graph E N F red mode ms(graphlab) ms(pyg) ratio ... MiB MiB
    points = {(p.panel, p.method, p.size): p for p in drawn[0]}
    assert len(points) == len(drawn[0]) == 2 * 2 * 2  # sizes x modes x methods
    for row in rows:
        panel = f"{row[0]}, N=E/10, F=4, sum, {row[5]}"
        for method, ms_text in (("graphlab", row[6]), ("pyg", row[7])):
            assert f"{points[(panel, method, int(float(row[1])))].time:.1f}" == ms_text


def test_sheaf_plot_draws_every_implementation_against_edges(repo_script, copy_shared, capsys, drawn, monkeypatch, tmp_path):
    """The timing children are replaced by fixed numbers (a real run is the slow test below); the dataset is
    real, for its edge count."""
    root = copy_shared("texas")
    bench = repo_script("benchmarks/sheaf.py")
    fake_time = {"official:torch.sparse": 0.2, "official:torch_sparse": 0.1, "graphlab": 0.05}
    fake_memory = {"official:torch.sparse": 40.0, "official:torch_sparse": 30.0, "graphlab": 3.0}

    def run_child(args, kind, dataset, variant, *impl):
        return dict(fake_time) if kind == "time" else fake_memory[impl[0]]

    monkeypatch.setattr(bench, "run_child", run_child)
    out = tmp_path / "sheaf.png"
    bench.main(["--root", str(root), "--datasets", "texas", "--variants", "diag", "bundle", "--device", "cpu",
                "--plot", str(out)])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {out}"
    _assert_png(out)
    edges = bench.load("texas", str(root)).edge_index.size(1)
    got = {(p.panel, p.method): (p.size, p.size_name, p.time, p.memory) for p in drawn[0]}
    assert got == {(variant, impl): (edges, "texas", fake_time[impl], fake_memory[impl])
                   for variant in ("diag", "bundle") for impl in bench.IMPLS}


@pytest.mark.slow
def test_sheaf_plot_on_the_smallest_real_run(copy_shared, tmp_path):
    """The real script on its smallest setting (texas, diag, one epoch): about 30 s on two CPU cores."""
    root = copy_shared("texas")
    out = tmp_path / "sheaf.png"
    subprocess.run([sys.executable, str(BENCHMARKS / "sheaf.py"), "--root", str(root), "--datasets", "texas",
                    "--variants", "diag", "--epochs", "1", "--warmup", "0", "--device", "cpu", "--plot", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    _assert_png(out)
