r"""The expressivity suite: ``graphlab expressivity --config CFG --benchmark csl|exp|sr25|brec[:category]``.

For every pair :math:`(G, H)` of non-isomorphic graphs of a benchmark (:mod:`graphlab.data.expressivity`) it runs
BREC's **Reliable Paired Comparison** (RPC; Wang & Zhang, "Towards Better Evaluation of GNN Expressiveness with
BREC Dataset", arXiv 2304.07702, Section 4, and the ``test_BREC.py`` scripts of GraphPKU/BREC):

1. **Permutations.** :math:`n` random node relabellings of each graph (the first is the graph as stored):
   :math:`G_1 \dots G_n`, :math:`H_1 \dots H_n`.
2. **Training** a fresh copy of the model (the model part of a graphlab config, output width :math:`q`) to separate
   the pair with the cosine embedding loss :math:`\frac1n\sum_i \max(0, \cos(f(G_i), f(H_i)) - m)` (Adam,
   ``ReduceLROnPlateau``, early stop once the epoch loss falls below a threshold).
3. **Hotelling's :math:`T^2` test** on the paired differences :math:`d_i = f(G_i) - f(H_i) \in \mathbb{R}^q`:

   .. math::
       \bar d = \frac1n \sum_i d_i,\qquad
       S = \frac{1}{n-1}\sum_i (d_i - \bar d)(d_i - \bar d)^\top,\qquad
       T^2 = \big|\bar d^\top (S + \epsilon I)^{-1} \bar d\big|,

   as BREC's scripts compute it (without the textbook factor :math:`n`, so the test is conservative; the ridge
   :math:`\epsilon` keeps :math:`S` invertible for an invariant model), against the
   threshold :math:`\frac{q(n-1)}{n-q} F_{q,n-q}(1-\alpha)` (72.34 for :math:`q = 16`, :math:`n = 32`,
   :math:`\alpha = 0.05`: BREC's ``THRESHOLD``).
4. **Reliability.** The same statistic on :math:`n` pairs of relabellings of *one* graph of the pair
   (:math:`G_{2i-1}` against :math:`G_{2i}`, of :math:`2n` relabellings): an invariant model keeps it below the
   threshold; a pair where it does not is a *reliability failure*.

A pair counts as distinguished when :math:`T^2 > \text{threshold}` and :math:`T^2` is not within ``eps_cmp`` of the
reliability statistic (BREC's ``isomorphic_flag``); reliability failures are counted separately
(BREC reports "Real_correct" = distinguished − failures).

The model gets node features ``x`` of width 1 (a constant 1, or EXP's binary node label) and must return one row
per graph (a graph-level model with a readout); its ``out_channels`` is set to the output width :math:`q`.
Results go to a JSON file (``--json``: a list with one object per benchmark/category) and to
``leaderboards/expressivity.md`` (a row per model config, a column per benchmark/category), regenerated from the
records in ``leaderboards/expressivity/*.json``, with the published BREC counts of ``leaderboards/references.yaml``
(section ``brec:``, BREC's Table 2) beside ours and its 3-WL counts as the bound; a stored result made with other
settings or giving other numbers is never overwritten silently (:class:`~graphlab.eval.leaderboard.RecordConflict`, ``--force`` keeps the old one
under ``superseded``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from graphlab._io import atomic_write_json, atomic_write_text, file_lock
from graphlab.data.expressivity import BENCHMARKS, BREC_COUNTS, BREC_FILES, PairBenchmark, load_pair_benchmarks
from graphlab.data.subgraph import PAIR_FIELDS, subgraph_transform
from graphlab.eval.leaderboard import RecordConflict, code_version, config_id

TABLE_NAME = "expressivity"
COLUMN_ORDER = ("csl", "exp", "sr25", *(f"brec:{c}" for c in BREC_FILES))


# --------------------------------------------------------------------------- the statistic
def hotelling_t2(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    r"""BREC's paired :math:`T^2 = |\bar d^\top (S + \epsilon I)^{-1} \bar d|` of ``d = x - y`` (rows are the ``n``
    samples, columns the ``q`` output dimensions), in float64. The ridge :math:`\epsilon` (BREC's
    ``EPSILON_MATRIX``) keeps :math:`S` invertible when the model's outputs do not vary across relabellings (an
    invariant model: :math:`S` is 0 up to rounding); ``eps = 0`` uses the pseudo-inverse :math:`S^{+}` instead.
    Identical outputs give 0.

    Shapes: ``x``, ``y``: ``[n, q]`` with ``n >= 2`` → a scalar.
    """
    if x.shape != y.shape or x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"hotelling_t2 needs two [n, q] tensors of one shape with n >= 2 samples; got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if eps < 0:
        raise ValueError(f"eps is a ridge added to the covariance, so it must be >= 0; got {eps}")
    d = (x - y).double()
    d_mean = d.mean(dim=0, keepdim=True)  # [1, q]
    centred = d - d_mean
    s = centred.t() @ centred / (d.shape[0] - 1)  # [q, q]
    if eps > 0:
        solved = torch.linalg.solve(s + eps * torch.eye(s.shape[0], dtype=s.dtype), d_mean.t())  # [q, 1]
    else:
        solved = torch.linalg.pinv(s) @ d_mean.t()
    return (d_mean @ solved).squeeze().abs()


def t2_threshold(q: int, n: int, alpha: float = 0.05) -> float:
    r"""The critical value :math:`\frac{q(n-1)}{n-q} F_{q,n-q}(1-\alpha)` of Hotelling's test (BREC: 72.34 for
    ``q = 16``, ``n = 32``, ``alpha = 0.05``)."""
    if not 1 <= q < n:
        raise ValueError(f"the T^2 test needs more samples than dimensions: num_permutations ({n}) must exceed "
                         f"output_dim ({q}); raise --num-permutations or lower --output-dim")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is a significance level in (0, 1), got {alpha}")
    from scipy.stats import f as f_distribution

    return float(q * (n - 1) / (n - q) * f_distribution.ppf(1 - alpha, q, n - q))


# --------------------------------------------------------------------------- settings and results
@dataclass(frozen=True)
class RPCSettings:
    r"""RPC's hyperparameters. Defaults are those of BREC's test script for the subgraph GNNs (GraphPKU/BREC
    ``SUN/test_BREC_ds.py`` and siblings, DS-/DSS-GNN and SUN): ``NUM_RELABEL`` 32, ``OUTPUT_DIM`` 16, ``EPOCH`` 30,
    ``LEARNING_RATE`` 1e-4, ``WEIGHT_DECAY`` 1e-5, ``BATCH_SIZE`` 16, ``LOSS_THRESHOLD`` 0 (no early stop),
    ``MARGIN`` 0, ``EPSILON_MATRIX`` 1e-8, ``EPSILON_CMP`` 1e-6, ``SEED`` 2022, and the significance level 0.05
    behind ``THRESHOLD`` = 72.34. BREC's other model scripts vary epochs, learning rate and loss threshold: set
    them per run.

    Args:
        num_permutations: relabellings per graph (:math:`n`).
        output_dim: the model's output width (:math:`q`).
        epochs: training epochs per pair (at most).
        lr, weight_decay: Adam's.
        batch_size: graphs per training step (pairs of relabellings stay together).
        loss_threshold: stop training a pair once its epoch loss is below this.
        margin: the cosine embedding loss's margin :math:`m`.
        alpha: significance level of the :math:`T^2` test.
        eps_matrix: the ridge :math:`\epsilon` of :func:`hotelling_t2`.
        eps_cmp: a pair whose :math:`T^2` is within this of its reliability statistic is not counted.
        seed: seeds the relabellings and each pair's model initialisation.
        limit: test only the first ``limit`` pairs of each category (``None``: all); a quick look, shown as such.
    """

    num_permutations: int = 32
    output_dim: int = 16
    epochs: int = 30
    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 16
    loss_threshold: float = 0.0
    margin: float = 0.0
    alpha: float = 0.05
    eps_matrix: float = 1e-8
    eps_cmp: float = 1e-6
    seed: int = 2022
    limit: Optional[int] = None

    def __post_init__(self) -> None:
        positive = {"num_permutations": self.num_permutations, "output_dim": self.output_dim,
                    "epochs": self.epochs, "batch_size": self.batch_size}
        bad = [f"{k}={v}" for k, v in positive.items() if v < 1]
        if self.limit is not None and self.limit < 1:
            bad.append(f"limit={self.limit}")
        if self.lr <= 0 or self.weight_decay < 0 or self.eps_cmp < 0 or self.eps_matrix < 0:
            bad.append(f"lr={self.lr}, weight_decay={self.weight_decay}, eps_cmp={self.eps_cmp}, "
                       f"eps_matrix={self.eps_matrix}")
        if bad:
            raise ValueError(f"RPC settings out of range: {', '.join(bad)} (counts and lr must be positive, "
                             "weight_decay and eps_cmp non-negative)")
        t2_threshold(self.output_dim, self.num_permutations, self.alpha)  # validates q < n and alpha

    @property
    def threshold(self) -> float:
        return t2_threshold(self.output_dim, self.num_permutations, self.alpha)


@dataclass
class PairOutcome:
    distinguished: bool
    reliable: bool
    t2: float
    t2_reliability: float
    epochs_run: int


@dataclass
class CategoryResult:
    """One benchmark/category: the JSON object of the suite."""

    benchmark: str
    category: str
    distinguished: int
    total: int
    reliability_failures: int
    pairs_tested: int
    threshold: float
    settings: dict[str, Any]
    distinguished_pairs: list[int] = field(default_factory=list)
    reliability_failure_pairs: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return self.benchmark if self.category == "all" else f"{self.benchmark}:{self.category}"


# --------------------------------------------------------------------------- models from configs
ModelFactory = Callable[[], nn.Module]


def model_spec(config: Path) -> dict[str, Any]:
    """The ``class_path`` / ``init_args`` of the network in a graphlab fit config (the task's ``model`` argument),
    or of ``model:`` itself when it names a network directly."""
    if not config.is_file():
        raise FileNotFoundError(f"config {config} does not exist; pass --config with a graphlab fit config (YAML)")
    cfg = yaml.safe_load(config.read_text()) or {}
    model = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(model, dict) or "class_path" not in model:
        raise ValueError(f"{config} has no `model:` with a `class_path`; the expressivity suite needs the model "
                         "part of a graphlab fit config (model: class_path: graphlab.tasks.GraphPrediction ...)")
    inner = (model.get("init_args") or {}).get("model")
    spec = inner if isinstance(inner, dict) and "class_path" in inner else model
    return copy.deepcopy(spec)


def build_model(spec: dict[str, Any], in_channels: int, out_channels: int) -> nn.Module:
    """Instantiate ``spec`` (jsonargparse ``class_path`` / ``init_args``, nested classes included) with the given
    ``in_channels`` / ``out_channels``, as the CLI would."""
    import graphlab.models  # noqa: F401  (short class names in configs)
    from jsonargparse import ArgumentParser

    spec = copy.deepcopy(spec)
    spec["init_args"] = {**(spec.get("init_args") or {}), "in_channels": in_channels, "out_channels": out_channels}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=nn.Module)
    try:
        cfg = parser.parse_object({"model": spec})
    except Exception as err:  # jsonargparse's ArgumentError and friends: a config mistake
        raise ValueError(f"cannot build the model {spec.get('class_path')!r} from the config: {err}") from err
    return parser.instantiate_classes(cfg).model


def config_transform(config: Path) -> Optional[Transform]:
    """The per-graph pre-transform a config's data section asks for: ``data.init_args.subgraph`` (the subgraph
    GNNs' pair fields, :class:`graphlab.transforms.SubgraphPairs`), applied to every relabelled graph; else ``None``."""
    cfg = yaml.safe_load(config.read_text()) or {}
    data = cfg.get("data") if isinstance(cfg, dict) else None
    option = ((data or {}).get("init_args") or {}).get("subgraph") if isinstance(data, dict) else None
    return subgraph_transform(option)


def config_factory(config: Path, output_dim: int, in_channels: int = 1) -> ModelFactory:
    spec = model_spec(config)
    return lambda: build_model(spec, in_channels, output_dim)


def graph_outputs(model: nn.Module, batch: Batch) -> Tensor:
    """The model's output per graph, ``[B, q]``, calling ``forward`` as the graphlab tasks do."""
    params = inspect.signature(model.forward).parameters
    kwargs = {k: getattr(batch, k) for k in ("batch", "edge_attr", "ptr") + PAIR_FIELDS if k in params and getattr(batch, k, None) is not None}
    out = model(batch.x, batch.edge_index, **kwargs)
    if out.dim() != 2 or out.shape[0] != batch.num_graphs:
        raise ValueError(f"the model returned shape {tuple(out.shape)} for {batch.num_graphs} graphs: the "
                         "expressivity suite needs a graph-level model (one row per graph; set a `pool`/readout)")
    return out


# --------------------------------------------------------------------------- RPC
def relabel(graph: Data, rng: np.random.Generator) -> Data:
    """``graph`` with nodes renamed by a random permutation ``π`` (node ``v`` becomes ``π(v)``) and edges shuffled
    (``x`` and ``edge_attr``, when present, move with their nodes and edges)."""
    n = graph.num_nodes
    perm = torch.from_numpy(rng.permutation(n))
    edge_order = torch.from_numpy(rng.permutation(graph.edge_index.shape[1]))
    x = torch.empty_like(graph.x)
    x[perm] = graph.x
    out = Data(x=x, edge_index=perm[graph.edge_index][:, edge_order], num_nodes=n)
    if getattr(graph, "edge_attr", None) is not None:
        out.edge_attr = graph.edge_attr[edge_order]
    return out


def _as_stored(graph: Data) -> Data:
    out = Data(x=graph.x, edge_index=graph.edge_index, num_nodes=graph.num_nodes)
    if getattr(graph, "edge_attr", None) is not None:
        out.edge_attr = graph.edge_attr
    return out


def relabellings(graph: Data, count: int, rng: np.random.Generator) -> list[Data]:
    """``count`` relabellings of ``graph``: the graph as stored, then ``count - 1`` random ones."""
    return [_as_stored(graph)] + [relabel(graph, rng) for _ in range(count - 1)]


def _interleave(first: list[Data], second: list[Data]) -> list[Data]:
    return [g for pair in zip(first, second) for g in pair]


def _batches(graphs: list[Data], batch_size: int, device: torch.device) -> list[Batch]:
    size = batch_size + batch_size % 2  # keep each pair in one batch
    return [Batch.from_data_list(graphs[i:i + size]).to(device) for i in range(0, len(graphs), size)]


@torch.no_grad()
def _paired_t2(model: nn.Module, batches: list[Batch], eps: float) -> float:
    out = torch.cat([graph_outputs(model, b) for b in batches])
    return float(hotelling_t2(out[0::2], out[1::2], eps))


def _train_pair(model: nn.Module, batches: list[Batch], settings: RPCSettings) -> int:
    """BREC's training: push each relabelled pair's outputs apart (cosine embedding loss, target −1)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    loss_fn = nn.CosineEmbeddingLoss(margin=settings.margin)
    model.train()
    for epoch in range(settings.epochs):
        total = 0.0
        for batch in batches:
            optimizer.zero_grad()
            out = graph_outputs(model, batch)
            target = -torch.ones(out.shape[0] // 2, device=out.device)
            loss = loss_fn(out[0::2], out[1::2], target)
            loss.backward()
            optimizer.step()
            total += out.shape[0] / 2 * loss.item()
        total /= settings.num_permutations
        if total < settings.loss_threshold:
            return epoch + 1
        scheduler.step(total)
    return settings.epochs


Transform = Callable[[Data], Data]


def rpc_pair(factory: ModelFactory, g: Data, h: Data, settings: RPCSettings, seed: int,
             device: torch.device = torch.device("cpu"), transform: Optional[Transform] = None) -> PairOutcome:
    """Reliable paired comparison of one pair (see the module docstring). ``transform`` (e.g. a subgraph policy's
    pre-transform) is applied to every relabelled graph before batching."""
    rng = np.random.default_rng(seed)
    n = settings.num_permutations
    pair_graphs = _interleave(relabellings(g, n, rng), relabellings(h, n, rng))
    one = g if rng.integers(2) == 0 else h
    reliability_graphs = relabellings(one, 2 * n, rng)
    if transform is not None:
        pair_graphs = [transform(graph) for graph in pair_graphs]
        reliability_graphs = [transform(graph) for graph in reliability_graphs]
    pair_batches = _batches(pair_graphs, settings.batch_size, device)
    reliability_batches = _batches(reliability_graphs, settings.batch_size, device)
    torch.manual_seed(seed)
    model = factory().to(device)
    epochs = _train_pair(model, pair_batches, settings)
    model.eval()
    t2 = _paired_t2(model, pair_batches, settings.eps_matrix)
    t2_rel = _paired_t2(model, reliability_batches, settings.eps_matrix)
    threshold = settings.threshold
    distinguished = t2 > threshold and not abs(t2 - t2_rel) <= settings.eps_cmp
    return PairOutcome(distinguished, t2_rel < threshold, t2, t2_rel, epochs)


def run_rpc(factory: ModelFactory, benchmark: PairBenchmark, settings: RPCSettings,
            device: torch.device = torch.device("cpu"), log: Optional[Callable[[str], None]] = None,
            transform: Optional[Transform] = None) -> CategoryResult:
    """RPC over every pair of ``benchmark`` (the first ``settings.limit`` when set); ``transform`` as in
    :func:`rpc_pair`."""
    start = time.perf_counter()
    pairs = benchmark.pairs[:settings.limit] if settings.limit else benchmark.pairs
    distinguished, failures = [], []
    for i, (g, h) in enumerate(pairs):
        outcome = rpc_pair(factory, g, h, settings, seed=settings.seed + i, device=device, transform=transform)
        if outcome.distinguished:
            distinguished.append(i)
        if not outcome.reliable:
            failures.append(i)
        if log is not None:
            log(f"[expressivity] {benchmark.benchmark}:{benchmark.category} pair {i}: T2={outcome.t2:.4g} "
                f"reliability T2={outcome.t2_reliability:.4g} epochs={outcome.epochs_run} "
                f"distinguished={outcome.distinguished} reliable={outcome.reliable}")
    return CategoryResult(
        benchmark=benchmark.benchmark, category=benchmark.category, distinguished=len(distinguished),
        total=benchmark.total, reliability_failures=len(failures), pairs_tested=len(pairs),
        threshold=settings.threshold, settings=asdict(settings), distinguished_pairs=distinguished,
        reliability_failure_pairs=failures, seconds=round(time.perf_counter() - start, 2))


# --------------------------------------------------------------------------- records and the table
def _fingerprint(config: Path, result: CategoryResult) -> str:
    digest = hashlib.sha256(config.read_bytes())
    digest.update(json.dumps(result.settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _numbers(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in ("distinguished", "total", "reliability_failures", "pairs_tested"))


def record_results(out_dir: Path, config: Path, results: Sequence[CategoryResult], command: str,
                   force: bool = False, commit: Optional[str] = None) -> Path:
    """Merge ``results`` into ``<out_dir>/expressivity/<config-id>.json`` and regenerate the table.

    An entry for the same benchmark/category made with another config file or other settings, or with the same
    ones but other numbers, is never replaced silently: :class:`RecordConflict` (nothing changes) unless ``force``,
    which keeps the old entry under ``superseded``. ``commit``: the code version the results came from (default:
    now).
    """
    commit = commit or code_version(ignore=out_dir)
    cid = config_id(config)
    path = out_dir / TABLE_NAME / f"{cid.replace('/', '__')}.json"
    with file_lock(path):
        record = json.loads(path.read_text()) if path.is_file() else {"config_id": cid, "results": {}}
        entries = {}
        for result in results:
            entry = {**asdict(result), "fingerprint": _fingerprint(config, result), "command": command,
                     "commit": commit}
            old = record["results"].get(result.key)
            if old is not None and (old.get("fingerprint") != entry["fingerprint"] or _numbers(old) != _numbers(entry)):
                if not force:
                    raise RecordConflict(
                        f"{path} already holds {result.key} for {cid}: {old['distinguished']}/{old['total']} "
                        f"(reliability failures {old['reliability_failures']}, fingerprint {old.get('fingerprint')}), "
                        f"and this run gives {result.distinguished}/{result.total} (failures "
                        f"{result.reliability_failures}, fingerprint {entry['fingerprint']}). Nothing was written. "
                        "Pass --force to keep the old entry under `superseded` and store the new one, or --out-dir "
                        "for a separate table.")
                record.setdefault("superseded", {}).setdefault(result.key, []).append(old)
            entries[result.key] = entry
        record["results"].update(entries)
        record["config"] = str(config)
        atomic_write_json(path, record)
        write_table(out_dir)
    return path


def _cell(entry: Optional[dict[str, Any]]) -> str:
    if entry is None:
        return ""
    text = f"{entry['distinguished']}/{entry['total']}"
    if entry.get("pairs_tested", entry["total"]) != entry["total"]:
        text += f" (first {entry['pairs_tested']})"
    if entry.get("reliability_failures"):
        text += f" ({entry['reliability_failures']} unreliable)"
    return text


# --------------------------------------------------------------------------- published BREC counts
PAPER_COLUMNS: dict[str, tuple[str, ...]] = {
    "basic": ("basic",),
    "regular_140": ("regular", "strongly_regular", "4vertex", "distance_regular"),
    "extension": ("extension",),
    "cfi": ("cfi",),
}
"""The columns of BREC's Table 2 (Wang & Zhang, arXiv 2304.07702) and the graphlab categories each one covers: the
paper's "Regular (140)" merges simple regular, strongly regular, 4-vertex condition and distance regular pairs."""
MERGED_COLUMN = "brec:regular_140"
"""Our column for the paper's merged "Regular (140)": the sum of our four regular-family categories."""


@dataclass(frozen=True)
class BrecReferences:
    """Published BREC counts from ``references.yaml``'s ``brec:`` section: ``results[config_id][paper_column]``,
    the 3-WL counts ``three_wl[paper_column]`` (the bound no model may exceed), and the citation of each."""

    results: dict[str, dict[str, int]]
    three_wl: dict[str, int]
    sources: dict[str, str]  # config id (or "3-WL") -> citation


def _paper_row(path: Path, where: str, entry: Any, sources: dict[str, Any]) -> tuple[dict[str, int], str]:
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: {where} must be a mapping {{basic: N, regular_140: N, extension: N, cfi: N, "
                         f"total: N, source: KEY}}, got {entry!r}")
    source = entry.get("source")
    if source not in sources:
        raise ValueError(f"{path}: {where}.source {source!r} is not a key of `sources` ({sorted(sources)}); add the "
                         "citation there")
    counts = {k: v for k, v in entry.items() if k not in ("source", "total")}
    unknown = sorted(set(counts) - set(PAPER_COLUMNS))
    if unknown:
        raise ValueError(f"{path}: {where} has unknown column(s) {unknown}; the paper's columns are "
                         f"{sorted(PAPER_COLUMNS)} (regular_140 is its merged Regular (140)) plus total")
    for column, value in counts.items():
        limit = sum(BREC_COUNTS[c] for c in PAPER_COLUMNS[column])
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ValueError(f"{path}: {where}.{column} must be a whole number of pairs in [0, {limit}], "
                             f"got {value!r}")
    total = entry.get("total")
    if total is not None and (set(counts) != set(PAPER_COLUMNS) or total != sum(counts.values())):
        raise ValueError(f"{path}: {where}.total is {total!r} but the columns {counts} sum to "
                         f"{sum(counts.values())}; a total needs all four columns and must equal their sum "
                         "(a typo in one of them?)")
    return counts, str(sources[source])


def load_brec_references(out_dir: Path) -> Optional[BrecReferences]:
    """The ``brec:`` section of ``<out_dir>/references.yaml``: ``{results: {config-id: {basic, regular_140,
    extension, cfi, total, source}}, three_wl: {... , source}}``, each ``source`` a key of the file's
    ``sources``. No file: ``None`` (a table without published counts); a file without the section, or a malformed
    one: :class:`ValueError` naming the file and the fix."""
    path = out_dir / "references.yaml"
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML ({err}); fix or delete it") from err
    section = raw.get("brec") if isinstance(raw, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("results"), dict):
        raise ValueError(f"{path} has no `brec:` section with `results: {{config-id: {{basic, regular_140, extension, "
                         "cfi, total, source}}}}` and `three_wl: {...}`; add it (the published counts of BREC's "
                         "Table 2) or write the table to an --out-dir without references.yaml")
    sources = raw.get("sources") if isinstance(raw.get("sources"), dict) else {}
    results, cited = {}, {}
    for cid, entry in section["results"].items():
        results[str(cid)], cited[str(cid)] = _paper_row(path, f"brec.results[{cid!r}]", entry, sources)
    if "three_wl" not in section:
        raise ValueError(f"{path}: the `brec:` section needs `three_wl: {{basic, regular_140, extension, cfi, total, "
                         "source}}`, the 3-WL counts of BREC's Table 2 (the bound for every model)")
    three_wl, cited["3-WL"] = _paper_row(path, "brec.three_wl", section["three_wl"], sources)
    return BrecReferences(results, three_wl, cited)


def _ours(record: dict[str, Any], paper_column: str) -> tuple[Optional[int], int, int]:
    """Our count for one paper column: (distinguished summed over the categories it covers, or ``None`` when none
    ran in full; pairs in those categories; how many of the categories ran in full)."""
    entries = [record["results"].get(f"brec:{c}") for c in PAPER_COLUMNS[paper_column]]
    full = [e for e in entries if e is not None and e.get("pairs_tested", e["total"]) == e["total"]]
    if not full:
        return None, 0, 0
    return sum(e["distinguished"] for e in full), sum(e["total"] for e in full), len(full)


def _paper_note(record: dict[str, Any], paper_column: str, refs: BrecReferences) -> str:
    """`` (paper N)`` after our cell, and a flag when our full count exceeds the 3-WL count."""
    note = ""
    published = refs.results.get(record["config_id"], {}).get(paper_column)
    if published is not None:
        note += f" (paper {published})"
    ours, _, done = _ours(record, paper_column)
    bound = refs.three_wl.get(paper_column)
    if ours is not None and done == len(PAPER_COLUMNS[paper_column]) and bound is not None and ours > bound:
        note += f" **above 3-WL ({bound})**"
    return note


def _merged_cell(record: dict[str, Any]) -> str:
    ours, total, done = _ours(record, "regular_140")
    if ours is None:
        return "—"
    text = f"{ours}/{total}"
    parts = len(PAPER_COLUMNS["regular_140"])
    return text if done == parts else text + f" ({done} of {parts} categories)"


def _table_cell(record: dict[str, Any], column: str, refs: Optional[BrecReferences]) -> str:
    if column == MERGED_COLUMN:
        return _merged_cell(record) + (_paper_note(record, "regular_140", refs) if refs else "")
    cell = _cell(record["results"].get(column))
    category = column.removeprefix("brec:")
    if refs is None or not column.startswith("brec:") or (category,) not in PAPER_COLUMNS.values():
        return cell
    return (cell or "—") + _paper_note(record, category, refs)


def _columns(records: list[dict[str, Any]], refs: Optional[BrecReferences]) -> list[str]:
    keys = {k for r in records for k in r["results"]}
    if refs is not None and refs.results:
        published = {c for row in refs.results.values() for c in row}
        keys |= {f"brec:{c}" for c in published if c != "regular_140"}
        keys |= {MERGED_COLUMN} if "regular_140" in published else set()
    if any(f"brec:{c}" in keys for c in PAPER_COLUMNS["regular_140"]):
        keys.add(MERGED_COLUMN)
    order = list(COLUMN_ORDER)
    order.insert(order.index("brec:distance_regular") + 1, MERGED_COLUMN)
    return [c for c in order if c in keys] + sorted(keys - set(order))


def _footer(refs: BrecReferences, shown: set[str]) -> list[str]:
    listed = sorted({refs.sources[cid] for cid in refs.results if cid in shown})
    three_wl_source = "the table cited above" if refs.sources["3-WL"] in listed else refs.sources["3-WL"]
    bound = ", ".join(f"{c} {refs.three_wl[c]}" for c in PAPER_COLUMNS if c in refs.three_wl)
    if set(refs.three_wl) == set(PAPER_COLUMNS):
        bound += f", total {sum(refs.three_wl.values())}"
    merged_pairs = sum(BREC_COUNTS[c] for c in PAPER_COLUMNS["regular_140"])
    lines = [""]
    if listed:
        lines += ["Published counts `(paper N)` beside ours (from `references.yaml`): " + "; ".join(listed) + ".", ""]
    return lines + [
        f"`{MERGED_COLUMN}` is the sum of our regular, strongly_regular, 4vertex and distance_regular columns "
        f"({merged_pairs} pairs), the paper's merged Regular (140).",
        "",
        f"3-WL, the bound for every model here ({three_wl_source}): {bound}. A cell above it is flagged "
        "**above 3-WL**.",
    ]


def render_table(records: list[dict[str, Any]], references: Optional[BrecReferences] = None) -> str:
    """The markdown table: a row per config (and per config with published BREC counts), a column per
    benchmark/category; with ``references``, each BREC cell also shows the published count ``(paper N)``, the
    paper's merged Regular (140) gets a column of its own, and a footer names the sources and the 3-WL counts."""
    rows = {r["config_id"]: r for r in records}
    if references is not None:
        for cid in references.results:
            rows.setdefault(cid, {"config_id": cid, "results": {}})
    columns = _columns(list(rows.values()), references)
    lines = [
        "# Expressivity: pairs of non-isomorphic graphs distinguished",
        "",
        "BREC's reliable paired comparison (RPC; Wang & Zhang, arXiv 2304.07702), written by `graphlab expressivity`"
        " from the records in `expressivity/`. A cell is distinguished/total; `(first k)` marks a run on the first "
        "k pairs only, `(r unreliable)` the pairs whose reliability check failed (a graph against its own "
        "relabelling exceeded the threshold); `—` not run yet. Do not edit: rerun the commands below.",
        "",
        "| config | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for cid in sorted(rows):
        cells = [_table_cell(rows[cid], c, references) for c in columns]
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    if references is not None:
        lines += _footer(references, set(rows))
    lines += ["", "## Commands", ""]
    for record in sorted(records, key=lambda r: r["config_id"]):
        for key in columns:
            entry = record["results"].get(key)
            if entry is not None:
                lines.append(f"- {record['config_id']}, {key} (commit {entry.get('commit', 'unknown')}, "
                             f"{entry.get('seconds', '?')} s): `{entry['command']}`")
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path) -> Path:
    """Regenerate ``<out_dir>/expressivity.md`` from the records in ``<out_dir>/expressivity/*.json``, with the
    published BREC counts of ``<out_dir>/references.yaml`` when that file exists."""
    records = [json.loads(p.read_text()) for p in sorted((out_dir / TABLE_NAME).glob("*.json"))]
    references = load_brec_references(out_dir)
    path = out_dir / f"{TABLE_NAME}.md"
    atomic_write_text(path, render_table(records, references))
    return path


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    d = RPCSettings()
    p = argparse.ArgumentParser(prog="graphlab expressivity",
                                description="Count the pairs of non-isomorphic graphs a model distinguishes "
                                            "(BREC's reliable paired comparison).")
    p.add_argument("--config", required=True, type=Path, help="a graphlab fit config; its model part is tested")
    p.add_argument("--benchmark", required=True,
                   help=f"{'|'.join(BENCHMARKS)}, or brec:<category> with category in {', '.join(BREC_FILES)}")
    p.add_argument("--json", type=Path, default=None, help="write the results (a list of objects) here")
    p.add_argument("--out-dir", type=Path, default=Path("leaderboards"),
                   help="leaderboard folder for expressivity.md and its records (default: leaderboards)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not record the result in --out-dir")
    p.add_argument("--force", action="store_true", help="replace a different stored result (kept as superseded)")
    p.add_argument("--root", default=None, help="data folder (default: $GRAPHLAB_DATA)")
    p.add_argument("--download", action="store_true", help="download missing benchmark files (pinned upstream)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no per-pair log lines")
    for name, value in asdict(d).items():
        flag = "--" + name.replace("_", "-")
        kind = int if name in ("num_permutations", "output_dim", "epochs", "batch_size", "seed", "limit") else float
        p.add_argument(flag, type=kind, default=value, help=f"RPC setting (default: {value})")
    return p


def main(argv: Optional[list[str]] = None) -> list[CategoryResult]:
    """``graphlab expressivity ...``; returns the results."""
    args = build_parser().parse_args(argv)
    commit = code_version(ignore=args.out_dir)  # before the (long) run: the code that produced the numbers
    settings = RPCSettings(**{k: getattr(args, k) for k in asdict(RPCSettings())})
    benchmarks = load_pair_benchmarks(args.benchmark, args.root, args.download)
    factory = config_factory(args.config, settings.output_dim)
    factory()  # fail on a bad model before any training
    transform = config_transform(args.config)
    log = None if args.quiet else (lambda text: print(text, file=sys.stderr))
    results = []
    for benchmark in benchmarks:
        result = run_rpc(factory, benchmark, settings, torch.device(args.device), log, transform=transform)
        print(f"[expressivity] {args.config} {result.key}: distinguished {result.distinguished}/{result.total} "
              f"(tested {result.pairs_tested}), reliability failures {result.reliability_failures}, "
              f"T2 threshold {result.threshold:.2f}, {result.seconds} s")
        results.append(result)
    if args.json is not None:
        atomic_write_json(args.json, [asdict(r) for r in results])
    if not args.no_leaderboard:
        command = "graphlab expressivity " + shlex.join(argv if argv is not None else sys.argv[1:])
        record_results(args.out_dir, args.config, results, command, args.force, commit)
    return results
