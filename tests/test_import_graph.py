"""graphlab's layers go one way: the import graph of its modules, function-level imports included, has no cycle
between modules of different parts, and ``ops`` / ``nn`` import only what the architecture allows.

The graph is built from the source with ``ast`` (nothing is imported), so a lazy ``import`` inside a function counts
as much as one at the top of a file: it hides a circle, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"graphlab": ROOT / "graphlab", "graphlab.kernels": ROOT / "kernels"}


def _module_files() -> dict[str, Path]:
    """``{"graphlab.nn.conv": path, "graphlab.nn": path/__init__.py, ...}``."""
    modules = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([name, *parts])] = path
    return modules


MODULES = _module_files()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module named by a (possibly relative) ``from X import ...``."""
    if not node.level:
        return node.module or ""
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str) -> set[str]:
    """Every ``graphlab`` module that ``module`` imports anywhere in its file (``from pkg import sub`` names the
    submodule when ``sub`` is one), plus the packages Python initialises on the way (``graphlab.a`` for
    ``graphlab.a.b``), except the importer's own packages."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    targets = set()
    for name in found:
        while name and name not in MODULES and "." in name:
            name = name.rpartition(".")[0]  # ``import graphlab.ops.csr.x`` or an attribute: the module holding it
        parts = name.split(".")
        for i in range(2, len(parts) + 1):  # the packages initialised on the way, then the module itself
            target = ".".join(parts[:i])
            if target in MODULES and not module.startswith(target + ".") and target != module:
                targets.add(target)
    return targets


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module in MODULES:
        graph.add_edges_from((module, target) for target in imports_of(module))
    return graph


def part(module: str) -> str:
    """The part of graphlab a module belongs to: its subpackage (``graphlab.nn``) or top-level module."""
    if module.startswith("graphlab.kernels"):
        return "graphlab.kernels"
    return ".".join(module.split(".")[:2])


def part_graph() -> nx.DiGraph:
    """The import graph with each part's modules merged into one node (self-imports dropped)."""
    graph = nx.DiGraph()
    for src, dst in import_graph().edges:
        if part(src) != part(dst):
            graph.add_edge(part(src), part(dst))
    return graph


def _cycles(graph: nx.DiGraph, only: set[str] | None = None) -> list[list[str]]:
    cycles = list(nx.simple_cycles(graph))
    if only is not None:
        cycles = [c for c in cycles if set(c) <= only]
    return sorted(cycles)


def external_imports(module: str) -> set[str]:
    """The non-graphlab modules ``module`` imports (full dotted names as written)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return {name for name in found if not name.startswith("graphlab")}


# ----------------------------------------------------------------------------------------------- the harness
def test_the_harness_sees_function_level_imports_and_package_inits():
    edges = set(import_graph().edges)
    assert ("graphlab.runner", "graphlab.cli") in edges
    assert ("graphlab.cli", "graphlab.data") in edges  # ``import graphlab.data``
    assert ("graphlab.tasks.link", "graphlab.eval.metrics") in edges
    assert ("graphlab.tasks.link", "graphlab.eval") in edges  # importing graphlab.eval.metrics runs eval/__init__
    lazy = ast.parse("def f():\n    from graphlab.cli import build_cli\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "graphlab.cli" for n in ast.walk(lazy))


def test_a_planted_circle_is_found():
    graph = import_graph()
    graph.add_edge("graphlab.cli", "graphlab.runner")  # what ``cli`` dispatching to the runner would add
    assert ["graphlab.cli", "graphlab.runner"] in [sorted(c) for c in _cycles(graph)]


# ----------------------------------------------------------------------------------------------- the rules
MY_PARTS = {"graphlab.cli", "graphlab.runner", "graphlab.entry", "graphlab.eval", "graphlab.data", "graphlab.tasks",
            "graphlab.info", "graphlab._io", "graphlab.models"}


def test_no_circle_between_cli_runner_eval_data_and_tasks():
    """The two circles of issue 11: cli <-> eval.leaderboard and data.movielens <-> eval.metrics."""
    assert _cycles(part_graph(), MY_PARTS) == []
    module_cycles = [c for c in _cycles(import_graph()) if len({part(m) for m in c}) > 1]
    assert [c for c in module_cycles if {part(m) for m in c} <= MY_PARTS] == []


def test_the_cli_never_imports_the_runner_and_eval_never_imports_the_training_stack():
    graph = import_graph()
    assert not nx.has_path(graph, "graphlab.cli", "graphlab.runner")
    for module in ("graphlab.eval.leaderboard", "graphlab.eval.metrics", "graphlab.info"):
        reached = {part(m) for m in nx.descendants(graph, module)}
        assert reached <= {"graphlab.eval", "graphlab.info", "graphlab._io", "graphlab"}, (module, reached)


def test_info_is_dependency_free():
    assert imports_of("graphlab.info") == set()
    assert external_imports("graphlab.info") <= {"__future__", "dataclasses", "typing"}


def test_no_circle_between_any_two_parts():
    assert _cycles(part_graph()) == []
    assert [c for c in _cycles(import_graph()) if len({part(m) for m in c}) > 1] == []


def test_ops_imports_no_higher_layer_and_no_pyg_data():
    forbidden = ("graphlab.nn", "graphlab.models", "graphlab.tasks", "graphlab.data", "graphlab.eval",
                 "graphlab.cli", "graphlab.runner")
    for module in (m for m in MODULES if m.startswith("graphlab.ops")):
        assert not [t for t in imports_of(module) if t.startswith(forbidden)], module
        assert not [e for e in external_imports(module) if e.startswith("torch_geometric.data")], module


def ops_modules_named(module: str, source: str | None = None) -> set[str]:
    """The ``graphlab.ops`` modules that ``module``'s import statements name (``from graphlab.ops import f`` names
    the package even when ``f`` shares its name with a submodule, as ``gather_reduce`` does)."""
    named = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            named.add(_resolve(module, node))
    return {name for name in named if name == "graphlab.ops" or name.startswith("graphlab.ops.")}


def test_nn_uses_only_the_public_ops_api():
    for module in (m for m in MODULES if m.startswith("graphlab.nn")):
        assert ops_modules_named(module) <= {"graphlab.ops"}, module


def test_the_public_ops_check_can_fail():
    """A module that reaches into an ops submodule is caught, lazily or not; the public package is allowed."""
    source = "from graphlab.ops import gather_reduce\ndef f():\n    from graphlab.ops.csr import to_csr\n"
    assert ops_modules_named("graphlab.nn.conv", source) == {"graphlab.ops", "graphlab.ops.csr"}
    assert ops_modules_named("graphlab.nn.conv", "import graphlab.ops._native\n") == {"graphlab.ops._native"}
