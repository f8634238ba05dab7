"""The expressivity suite: BREC's T^2 statistic against a hand computation, RPC on models whose answer is known
(blind models distinguish nothing, an invariant triangle-count model exactly the pairs whose triangle counts differ,
GIN no SR25/EXP pair), the JSON and table records, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from graphlab import entry
from graphlab.data.expressivity import PairBenchmark, load_pair_benchmarks
from graphlab.eval import expressivity as ex
from graphlab.eval.leaderboard import RecordConflict

REPO = Path(__file__).resolve().parents[2]
GIN_CONFIG = REPO / "configs" / "expressivity" / "gin.yaml"
FAST = dict(num_permutations=12, output_dim=4, epochs=2, batch_size=8)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])


# --------------------------------------------------------------------------- the statistic
def _numpy_t2(x: np.ndarray, y: np.ndarray, eps: float) -> float:
    d = x - y
    d_bar = d.mean(axis=0)
    s = np.cov(d, rowvar=False, ddof=1)
    inverse = np.linalg.pinv(s) if eps == 0 else np.linalg.inv(s + eps * np.eye(s.shape[0]))
    return abs(float(d_bar @ inverse @ d_bar))


@pytest.mark.parametrize("eps", [0.0, 1e-8, 0.5])
def test_t2_matches_a_numpy_hand_computation(eps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16))
    y = rng.normal(loc=0.3, size=(32, 16)) + 0.5 * x  # paired, correlated samples
    ours = float(ex.hotelling_t2(torch.from_numpy(x).float(), torch.from_numpy(y).float(), eps))
    assert ours == pytest.approx(_numpy_t2(x.astype(np.float32).astype(np.float64),
                                           y.astype(np.float32).astype(np.float64), eps), rel=1e-6)


def test_t2_is_zero_for_identical_outputs_and_huge_for_a_constant_shift():
    x = torch.randn(32, 16)
    assert float(ex.hotelling_t2(x, x.clone())) == 0.0
    shifted = float(ex.hotelling_t2(x + 0.1, x))  # d = 0.1 for every sample: S = 0, the ridge decides
    assert shifted == pytest.approx(16 * 0.01 / 1e-8, rel=1e-4)


def test_threshold_is_brecs_72_34():
    assert ex.t2_threshold(16, 32, 0.05) == pytest.approx(72.34, abs=0.005)
    assert ex.RPCSettings().threshold == pytest.approx(72.34, abs=0.005)


# --------------------------------------------------------------------------- tiny benchmark, known answers
def _cycle(n: int, offset: int = 0) -> Tensor:
    nodes = torch.arange(n)
    return torch.stack([nodes + offset, (nodes + 1) % n + offset])


def _graph(edges: Tensor, n: int) -> Data:
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    return Data(x=torch.ones(n, 1), edge_index=edge_index, num_nodes=n)


def tiny_benchmark() -> PairBenchmark:
    """Two 1-WL-equivalent pairs of 2-regular graphs: C6 vs two triangles (triangle counts 0 vs 2) and C8 vs two
    squares (no triangles in either)."""
    c6_vs_2c3 = (_graph(_cycle(6), 6), _graph(torch.cat([_cycle(3), _cycle(3, 3)], 1), 6))
    c8_vs_2c4 = (_graph(_cycle(8), 8), _graph(torch.cat([_cycle(4), _cycle(4, 4)], 1), 8))
    return PairBenchmark("tiny", "all", [c6_vs_2c3, c8_vs_2c4])


class SumOfDegrees(nn.Module):
    """Blind: a graph's output is a linear map of its degree sum (equal within each pair above)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.head = nn.Linear(1, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        degree = scatter(torch.ones(edge_index.shape[1]), edge_index[1], dim=0, dim_size=x.shape[0])
        return self.head(scatter(degree, batch, dim=0, reduce="sum").unsqueeze(-1))


class Constant(nn.Module):
    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(out_channels))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        return self.bias.expand(int(batch.max()) + 1, -1) + 0 * x.sum()


class TriangleCounts(nn.Module):
    """Isomorphism-invariant and separating where triangles differ: an MLP of each node's triangle count
    (A^3)_vv / 2, summed per graph."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, out_channels))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        n = x.shape[0]
        adjacency = torch.zeros(n, n)
        adjacency[edge_index[0], edge_index[1]] = 1.0
        triangles = torch.diagonal(adjacency @ adjacency @ adjacency) / 2
        return scatter(self.mlp(triangles.unsqueeze(-1)), batch, dim=0, reduce="sum")


@pytest.mark.parametrize("model", [SumOfDegrees, Constant])
def test_blind_models_distinguish_nothing(model):
    settings = ex.RPCSettings(**FAST)
    result = ex.run_rpc(lambda: model(settings.output_dim), tiny_benchmark(), settings)
    assert (result.distinguished, result.total, result.reliability_failures) == (0, 2, 0)


def test_a_triangle_counting_model_distinguishes_exactly_the_pairs_with_different_triangle_counts():
    settings = ex.RPCSettings(**FAST)
    result = ex.run_rpc(lambda: TriangleCounts(settings.output_dim), tiny_benchmark(), settings)
    assert result.distinguished_pairs == [0]
    assert result.reliability_failures == 0


class SumOfFeatures(nn.Module):
    """An MLP of each node's features, summed per graph: it sees only what the features carry."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, out_channels))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        return scatter(self.mlp(x), batch, dim=0, reduce="sum")


def add_triangle_counts(graph: Data) -> Data:
    adjacency = torch.zeros(graph.num_nodes, graph.num_nodes)
    adjacency[graph.edge_index[0], graph.edge_index[1]] = 1.0
    triangles = torch.diagonal(adjacency @ adjacency @ adjacency) / 2
    return Data(x=triangles.unsqueeze(-1), edge_index=graph.edge_index, num_nodes=graph.num_nodes)


def test_a_transform_reaches_the_model():
    settings = ex.RPCSettings(**FAST)
    blind = ex.run_rpc(lambda: SumOfFeatures(settings.output_dim), tiny_benchmark(), settings)
    told = ex.run_rpc(lambda: SumOfFeatures(settings.output_dim), tiny_benchmark(), settings,
                      transform=add_triangle_counts)
    assert (blind.distinguished_pairs, told.distinguished_pairs) == ([], [0])


def test_relabel_is_an_isomorphism():
    graph = tiny_benchmark().pairs[0][1]
    graph.x = torch.arange(6.0).view(6, 1)
    graph.edge_attr = torch.arange(float(graph.edge_index.shape[1])).view(-1, 1)
    copy = ex.relabel(graph, np.random.default_rng(3))

    def edges(g: Data) -> list[tuple[float, ...]]:  # (feature of source, feature of target, edge feature)
        return sorted((*g.x[g.edge_index[:, e]].view(-1).tolist(), float(g.edge_attr[e])) for e in
                      range(g.edge_index.shape[1]))

    assert edges(graph) == edges(copy)
    assert not torch.equal(graph.edge_index, copy.edge_index)


# --------------------------------------------------------------------------- GIN from a config on real pairs
@pytest.mark.data
@pytest.mark.parametrize("name", ["sr25", "exp"])
def test_gin_from_its_config_distinguishes_no_sr25_or_exp_pair(name, shared_data):
    settings = ex.RPCSettings(**FAST, limit=2)
    pairs = load_pair_benchmarks(name, str(shared_data))[0]
    result = ex.run_rpc(ex.config_factory(GIN_CONFIG, settings.output_dim), pairs, settings)
    assert (result.distinguished, result.pairs_tested, result.reliability_failures) == (0, 2, 0)


# --------------------------------------------------------------------------- CLI, JSON, the table
def _cli(tmp_path: Path, *extra: str) -> list[str]:
    return ["--config", str(GIN_CONFIG), "--benchmark", "csl", "--limit", "1", "--epochs", "1",
            "--num-permutations", "8", "--output-dim", "2", "--out-dir", str(tmp_path / "lb"), "--quiet", *extra]


def test_cli_writes_the_json_schema_and_the_table(tmp_path):
    out = tmp_path / "r.json"
    entry.main(["expressivity", *_cli(tmp_path, "--json", str(out))])
    [result] = json.loads(out.read_text())
    expected = {"benchmark": str, "category": str, "distinguished": int, "total": int, "reliability_failures": int,
                "pairs_tested": int, "threshold": float, "settings": dict, "distinguished_pairs": list,
                "reliability_failure_pairs": list, "seconds": float}
    assert {k: type(v) for k, v in result.items()} == expected
    assert (result["benchmark"], result["category"], result["total"], result["pairs_tested"]) == ("csl", "all", 45, 1)
    assert result["distinguished"] == 0  # CSL graphs are all 4-regular: GIN is blind to them
    assert result["settings"]["num_permutations"] == 8
    table = (tmp_path / "lb" / "expressivity.md").read_text()
    assert "| expressivity/gin | 0/45 (first 1) |" in table
    assert "graphlab expressivity --config" in table


def test_a_rerun_with_the_same_result_is_kept_and_a_different_one_is_refused(tmp_path):
    ex.main(_cli(tmp_path))
    ex.main(_cli(tmp_path))  # same settings, same numbers: fine
    record_path = tmp_path / "lb" / "expressivity" / "expressivity__gin.json"
    record = json.loads(record_path.read_text())
    record["results"]["csl"]["distinguished"] = 1  # pretend an earlier run found a pair
    record_path.write_text(json.dumps(record))
    with pytest.raises(RecordConflict, match="already holds csl"):
        ex.main(_cli(tmp_path))
    assert json.loads(record_path.read_text())["results"]["csl"]["distinguished"] == 1  # unchanged
    with pytest.raises(RecordConflict, match="--force"):
        ex.main(_cli(tmp_path, "--epochs", "2"))  # other settings: another fingerprint
    ex.main(_cli(tmp_path, "--force"))
    record = json.loads(record_path.read_text())
    assert record["results"]["csl"]["distinguished"] == 0
    assert record["superseded"]["csl"][0]["distinguished"] == 1


# --------------------------------------------------------------------------- bad input
def test_bad_benchmark_and_category_name_the_choices():
    with pytest.raises(ValueError, match="unknown expressivity benchmark 'zinc'.*csl, exp, sr25, brec"):
        ex.main(["--config", str(GIN_CONFIG), "--benchmark", "zinc"])
    with pytest.raises(ValueError, match="unknown BREC category 'cycles'.*strongly_regular"):
        load_pair_benchmarks("brec:cycles")
    with pytest.raises(ValueError, match="only brec takes one"):
        load_pair_benchmarks("sr25:all")


def test_missing_data_names_graphlab_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHLAB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"(?s)GRAPHLAB_DATA.*Download address: https://"):
        load_pair_benchmarks("sr25")


def test_bad_settings_and_models_are_named(tmp_path):
    with pytest.raises(ValueError, match="num_permutations .* must exceed output_dim"):
        ex.RPCSettings(num_permutations=16, output_dim=16)
    with pytest.raises(ValueError, match="epochs=0"):
        ex.RPCSettings(epochs=0)
    with pytest.raises(ValueError, match="n >= 2"):
        ex.hotelling_t2(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(FileNotFoundError, match="--config"):
        ex.model_spec(tmp_path / "absent.yaml")
    no_model = tmp_path / "c.yaml"
    no_model.write_text(yaml.safe_dump({"data": {"class_path": "graphlab.data.CSLData"}}))
    with pytest.raises(ValueError, match="no `model:`"):
        ex.model_spec(no_model)
    node_level = tmp_path / "n.yaml"
    node_level.write_text(yaml.safe_dump({"model": {"class_path": "graphlab.tasks.GraphPrediction", "init_args": {
        "model": {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 4}}}}}))
    graph = tiny_benchmark().pairs[0][0]
    with pytest.raises(ValueError, match="graph-level model"):
        ex.run_rpc(ex.config_factory(node_level, 4), PairBenchmark("t", "all", [(graph, graph)]),
                   ex.RPCSettings(**FAST))


def test_the_cli_reports_user_errors_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["expressivity", "--config", str(GIN_CONFIG), "--benchmark", "brec:nope"])
    assert exit_info.value.code == 2
    assert "unknown BREC category 'nope'" in capsys.readouterr().err


def test_config_transform_reads_the_subgraph_option(tmp_path):
    """A subgraph config's ``data.init_args.subgraph`` becomes the per-graph pre-transform; a plain config has none."""
    from graphlab.eval.expressivity import config_transform
    from graphlab.transforms import SubgraphPairs

    sub = tmp_path / "sub.yaml"
    sub.write_text("model: {class_path: graphlab.models.GIN}\n"
                   "data: {class_path: graphlab.data.CSLData, init_args: {subgraph: {policy: ego, num_hops: 2}}}\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text("model: {class_path: graphlab.models.GIN}\ndata: {class_path: graphlab.data.CSLData}\n")
    transform = config_transform(sub)
    assert isinstance(transform, SubgraphPairs) and transform.policy == "ego" and transform.num_hops == 2
    assert config_transform(plain) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {class_path: graphlab.models.GIN}\ndata: {init_args: {subgraph: {hops: 2}}}\n")
    with pytest.raises(ValueError, match="unknown subgraph option"):
        config_transform(bad)


# --------------------------------------------------------------------------- published BREC counts beside ours
REPO_LEADERBOARDS = Path(__file__).resolve().parents[2] / "leaderboards"
CITATION = "Example et al., Table 2"


def _references(out_dir: Path, brec: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "references.yaml"
    path.write_text(f"sources:\n  ex: \"{CITATION}\"\nresults: {{}}\n{brec}")
    return path


GOOD_BREC = ("brec:\n"
             "  results:\n"
             "    subgraph/sun/csl: {basic: 58, regular_140: 48, extension: 97, cfi: 15, total: 218, source: ex}\n"
             "  three_wl: {basic: 60, regular_140: 50, extension: 100, cfi: 60, total: 270, source: ex}\n")


def _record(out_dir: Path, cid: str, counts: dict[str, tuple[int, int]]) -> None:
    """A stored record with ``counts[key] = (distinguished, total)`` (every pair tested)."""
    results = {key: {"distinguished": d, "total": t, "reliability_failures": 0, "pairs_tested": t,
                     "command": f"graphlab expressivity --config {cid} --benchmark {key}", "commit": "abc",
                     "seconds": 1.0} for key, (d, t) in counts.items()}
    folder = out_dir / "expressivity"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{cid.replace('/', '__')}.json").write_text(json.dumps({"config_id": cid, "results": results}))


def _row(table: str, cid: str) -> list[str]:
    [line] = [line for line in table.splitlines() if line.startswith(f"| {cid} |")]
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def _header(table: str) -> list[str]:
    [line] = [line for line in table.splitlines() if line.startswith("| config |")]
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_published_counts_appear_beside_ours_with_the_merged_regular_column(tmp_path):
    _references(tmp_path, GOOD_BREC)
    _record(tmp_path, "subgraph/sun/csl", {"brec:basic": (12, 60), "brec:regular": (40, 50),
                                           "brec:strongly_regular": (0, 50), "brec:4vertex": (3, 20),
                                           "brec:distance_regular": (2, 20), "brec:cfi": (61, 100)})
    table = ex.write_table(tmp_path).read_text()
    cells = dict(zip(_header(table), _row(table, "subgraph/sun/csl")))
    assert cells["brec:basic"] == "12/60 (paper 58)"
    assert cells["brec:regular"] == "40/50"  # the paper has no column of its own for it
    assert cells["brec:regular_140"] == "45/140 (paper 48)"  # 40 + 0 + 3 + 2 against the paper's Regular (140)
    assert cells["brec:extension"] == "— (paper 97)"  # not run yet
    assert cells["brec:cfi"] == "61/100 (paper 15) **above 3-WL (60)**"
    assert f"Published counts `(paper N)` beside ours (from `references.yaml`): {CITATION}." in table
    assert "3-WL, the bound for every model here (the table cited above): basic 60, regular_140 50, extension " \
           "100, cfi 60, total 270." in table


def test_a_partial_regular_family_is_marked_and_not_checked_against_3wl(tmp_path):
    _references(tmp_path, GOOD_BREC)
    _record(tmp_path, "subgraph/sun/csl", {"brec:regular": (50, 50), "brec:strongly_regular": (50, 50)})
    cells = dict(zip(*(lambda t: (_header(t), _row(t, "subgraph/sun/csl")))(ex.write_table(tmp_path).read_text())))
    assert cells["brec:regular_140"] == "100/100 (2 of 4 categories) (paper 48)"  # 100 > 50, but incomplete


def test_a_config_with_published_counts_but_no_run_gets_a_row_and_others_keep_theirs(tmp_path):
    _references(tmp_path, GOOD_BREC)
    _record(tmp_path, "expressivity/gin", {"csl": (0, 45)})
    table = ex.write_table(tmp_path).read_text()
    header = _header(table)
    assert header == ["csl", "brec:basic", "brec:regular_140", "brec:extension", "brec:cfi"]
    assert _row(table, "expressivity/gin") == ["0/45", "—", "—", "—", "—"]
    published = ["— (paper 58)", "— (paper 48)", "— (paper 97)", "— (paper 15)"]
    assert _row(table, "subgraph/sun/csl") == ["", *published]


def test_without_a_references_file_the_table_has_no_published_counts(tmp_path):
    _record(tmp_path, "expressivity/gin", {"brec:basic": (0, 60)})
    table = ex.write_table(tmp_path).read_text()
    assert "(paper" not in table and "3-WL" not in table
    assert _row(table, "expressivity/gin") == ["0/60"]


def test_the_repository_references_hold_the_cited_brec_rows():
    """The published rows typed into leaderboards/references.yaml (BREC Table 2: SUN and 3-WL), checked against the
    numbers as read in the cited source, and that the committed table shows them."""
    refs = ex.load_brec_references(REPO_LEADERBOARDS)
    assert refs.results["subgraph/sun/csl"] == {"basic": 60, "regular_140": 50, "extension": 100, "cfi": 13}
    assert refs.three_wl == {"basic": 60, "regular_140": 50, "extension": 100, "cfi": 60}
    assert "2304.07702" in refs.sources["3-WL"] and "Table 2" in refs.sources["subgraph/sun/csl"]
    table = (REPO_LEADERBOARDS / "expressivity.md").read_text()
    assert "| subgraph/sun/csl |" in table and "(paper 13)" in table and "total 270" in table


@pytest.mark.parametrize("brec, match", [
    ("", r"references\.yaml has no `brec:` section"),
    ("brec: {three_wl: {}}\n", r"references\.yaml has no `brec:` section"),
    ("brec:\n  results: {a/b: {basic: 1, source: ex}}\n", r"needs `three_wl:"),
    ("brec:\n  results: {a/b: {basic: 1, source: nope}}\n", r"brec\.results\['a/b'\]\.source 'nope' is not a key"),
    ("brec:\n  results: {a/b: {regular: 1, source: ex}}\n", r"unknown column\(s\) \['regular'\].*regular_140"),
    ("brec:\n  results: {a/b: {basic: 61, source: ex}}\n", r"brec\.results\['a/b'\]\.basic must be .* \[0, 60\]"),
    ("brec:\n  results: {a/b: {regular_140: 141, source: ex}}\n", r"regular_140 must be .* \[0, 140\]"),
    ("brec:\n  results: {a/b: {cfi: '13', source: ex}}\n", r"cfi must be a whole number"),
    ("brec:\n  results: {a/b: {basic: 60, regular_140: 50, extension: 100, cfi: 13, total: 222, source: ex}}\n",
     r"total is 222 but the columns .* sum to 223"),
    ("brec:\n  results: {a/b: [60, 50]}\n", r"brec\.results\['a/b'\] must be a mapping"),
    ("brec: [\n", r"is not valid YAML"),
])
def test_a_missing_or_malformed_brec_section_names_the_file(tmp_path, brec, match):
    path = _references(tmp_path, brec)
    with pytest.raises(ValueError, match=match) as info:
        ex.write_table(tmp_path)
    assert str(path) in str(info.value)
    assert not (tmp_path / "expressivity.md").exists()
