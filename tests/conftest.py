"""Shared test fixtures: the real datasets in ``../shared/data`` and tiny OGB-layout datasets."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, Optional

import numpy as np
import pytest
import torch

SHARED_DATA_ENV = "GRAPHLAB_SHARED_DATA"


def shared_data_dir() -> Optional[Path]:
    """``$GRAPHLAB_SHARED_DATA``, else ``../shared/data`` beside the repository, if it exists."""
    env = os.environ.get(SHARED_DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None


REPO = Path(__file__).resolve().parents[1]


def load_repo_script(relative: str) -> ModuleType:
    """Import a script of the repository (``benchmarks/aggregate.py``, ``examples/...``) as a module, once per
    session: it is registered in ``sys.modules`` before it runs, because dataclasses look their module up there."""
    path = REPO / relative
    name = "graphlab_script_" + "_".join(Path(relative).with_suffix("").parts)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"no Python script at {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


@pytest.fixture(scope="session")
def repo_script() -> Callable[[str], ModuleType]:
    """``repo_script("benchmarks/scan.py")``: the script as a module (:func:`load_repo_script`)."""
    return load_repo_script


@pytest.fixture
def shared_data() -> Path:
    """The read-only folder of real datasets; skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip(f"real datasets not found: set ${SHARED_DATA_ENV} or place them in ../shared/data")
    return path


@pytest.fixture
def copy_shared(shared_data: Path, tmp_path: Path) -> Callable[..., Path]:
    """``copy_shared("Cora", dest=None)`` copies ``shared/data/Cora`` to ``tmp_path/<dest or Cora>``,
    writable (loaders write ``processed/`` beside ``raw/``), and returns ``tmp_path`` (the root)."""

    def copy(folder: str, dest: Optional[str] = None) -> Path:
        source = shared_data / folder
        if not source.is_dir():
            pytest.skip(f"{source} is absent")
        target = tmp_path / (dest or folder)
        shutil.copytree(source, target)
        for path in [target, *target.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        return tmp_path

    return copy


# --------------------------------------------------------------------------- OGB layout
def _write_csv_gz(path: Path, array: np.ndarray) -> None:
    """One row per line, comma separated, gzip: OGB's raw format (no header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = array.reshape(len(array), -1)
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(repr(v.item()) for v in row) + "\n")


@dataclass
class OGBFixture:
    """What a fixture wrote: the dataset root and the arrays, for comparison."""

    root: Path
    folder: Path
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class OGBFixtureWriter:
    """Writes tiny datasets in OGB's on-disk layout (``RELEASE_v1.txt``, ``raw/``, ``split/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _start(self, dir_name: str, release: bool) -> Path:
        folder = self.root / dir_name
        folder.mkdir(parents=True)
        if release:
            (folder / "RELEASE_v1.txt").write_text("# Release note (test fixture)\n\n### v1\n")
        return folder

    def node_arxiv(self, release: bool = True) -> OGBFixture:
        """A 6-node directed graph in ogbn-arxiv's layout (master.csv: add_inverse_edge False,
        has_node_attr True, additional node file node_year, split "time", 40 classes)."""
        folder = self._start("ogbn_arxiv", release)
        arrays = {
            "edge": np.array([[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 3], [0, 3]], dtype=np.int64),
            "node_feat": np.arange(24, dtype=np.float64).reshape(6, 4) / 8 + 0.125,
            "node_year": np.array([2010, 2011, 2012, 2013, 2014, 2015], dtype=np.int64),
            "node_label": np.array([0, 5, 39, 5, 0, 7], dtype=np.int64),
            "train": np.array([0, 1, 2], dtype=np.int64),
            "valid": np.array([3], dtype=np.int64),
            "test": np.array([4, 5], dtype=np.int64),
        }
        raw = folder / "raw"
        _write_csv_gz(raw / "edge.csv.gz", arrays["edge"])
        _write_csv_gz(raw / "num-node-list.csv.gz", np.array([6]))
        _write_csv_gz(raw / "num-edge-list.csv.gz", np.array([len(arrays["edge"])]))
        _write_csv_gz(raw / "node-feat.csv.gz", arrays["node_feat"])
        _write_csv_gz(raw / "node_year.csv.gz", arrays["node_year"])
        _write_csv_gz(raw / "node-label.csv.gz", arrays["node_label"])
        for part in ("train", "valid", "test"):
            _write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", arrays[part])
        return OGBFixture(self.root, folder, arrays)

    def link_ddi(self, release: bool = True) -> OGBFixture:
        """An 8-node graph in ogbl-ddi's layout (add_inverse_edge True, no node features,
        split "target" with ``edge``/``edge_neg``). ``train.pt`` holds a tensor, ``valid.pt``
        and ``test.pt`` numpy arrays, as the real ddi files do."""
        folder = self._start("ogbl_ddi", release)
        arrays = {
            "train": np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7]], dtype=np.int64),
            "valid": np.array([[0, 2], [1, 3]], dtype=np.int64),
            "valid_neg": np.array([[0, 7], [1, 6], [2, 5]], dtype=np.int64),
            "test": np.array([[4, 6]], dtype=np.int64),
            "test_neg": np.array([[0, 5], [3, 7]], dtype=np.int64),
        }
        raw = folder / "raw"
        _write_csv_gz(raw / "edge.csv.gz", arrays["train"])
        _write_csv_gz(raw / "num-node-list.csv.gz", np.array([8]))
        _write_csv_gz(raw / "num-edge-list.csv.gz", np.array([len(arrays["train"])]))
        split = folder / "split" / "target"
        split.mkdir(parents=True)
        torch.save({"edge": torch.from_numpy(arrays["train"])}, split / "train.pt")
        torch.save({"edge": arrays["valid"], "edge_neg": arrays["valid_neg"]}, split / "valid.pt")
        torch.save({"edge": arrays["test"], "edge_neg": arrays["test_neg"]}, split / "test.pt")
        return OGBFixture(self.root, folder, arrays)


    def link_collab(self, release: bool = True) -> OGBFixture:
        """An 8-node graph in ogbl-collab's layout (add_inverse_edge True, 3 node features, edge files edge_weight
        and edge_year, split "time" whose parts hold ``edge``/``weight``/``year`` and, for valid/test, ``edge_neg``)."""
        folder = self._start("ogbl_collab", release)
        arrays = {
            "train": np.array([[0, 1], [1, 2], [2, 3], [4, 5], [5, 6]], dtype=np.int64),
            "valid": np.array([[0, 2], [3, 7]], dtype=np.int64),
            "valid_neg": np.array([[0, 6], [1, 7]], dtype=np.int64),
            "test": np.array([[1, 3], [6, 7]], dtype=np.int64),
            "test_neg": np.array([[2, 5], [0, 4]], dtype=np.int64),
            "node_feat": np.arange(24, dtype=np.float64).reshape(8, 3) / 4,
        }
        raw = folder / "raw"
        train = arrays["train"]
        _write_csv_gz(raw / "edge.csv.gz", train)
        _write_csv_gz(raw / "num-node-list.csv.gz", np.array([8]))
        _write_csv_gz(raw / "num-edge-list.csv.gz", np.array([len(train)]))
        _write_csv_gz(raw / "node-feat.csv.gz", arrays["node_feat"])
        _write_csv_gz(raw / "edge_weight.csv.gz", np.ones(len(train), dtype=np.int64))
        _write_csv_gz(raw / "edge_year.csv.gz", np.full(len(train), 2010, dtype=np.int64))
        split = folder / "split" / "time"
        split.mkdir(parents=True)
        torch.save({"edge": train, "weight": np.ones(len(train)), "year": np.full(len(train), 2010)}, split / "train.pt")
        for part in ("valid", "test"):
            edges = arrays[part]
            torch.save({"edge": edges, "weight": np.ones(len(edges)), "year": np.full(len(edges), 2018),
                        "edge_neg": arrays[f"{part}_neg"]}, split / f"{part}.pt")
        return OGBFixture(self.root, folder, arrays)

    def link_citation2(self, release: bool = True, num_negatives: int = 1000) -> OGBFixture:
        """A 12-node directed graph in ogbl-citation2's layout (add_inverse_edge False, 2 node features, node_year,
        split "time" with per-source parts: ``source_node``/``target_node`` and, for valid/test,
        ``target_node_neg [P, num_negatives]``, OGB's 1000 unless a test needs another count)."""
        folder = self._start("ogbl_citation2", release)
        rng = np.random.default_rng(0)
        edge = np.array([[1, 0], [2, 0], [2, 1], [3, 1], [4, 2], [5, 3], [6, 4], [7, 5], [8, 6], [9, 8]],
                        dtype=np.int64)
        arrays = {
            "edge": edge,
            "node_feat": np.arange(24, dtype=np.float64).reshape(12, 2) / 8,
            "node_year": np.arange(2000, 2012, dtype=np.int64),
            "valid_src": np.array([10, 11], dtype=np.int64), "valid_dst": np.array([9, 7], dtype=np.int64),
            "test_src": np.array([11, 10, 9], dtype=np.int64), "test_dst": np.array([3, 2, 0], dtype=np.int64),
        }
        for part in ("valid", "test"):
            arrays[f"{part}_neg"] = rng.integers(0, 12, size=(len(arrays[f"{part}_src"]), num_negatives))
        raw = folder / "raw"
        _write_csv_gz(raw / "edge.csv.gz", edge)
        _write_csv_gz(raw / "num-node-list.csv.gz", np.array([12]))
        _write_csv_gz(raw / "num-edge-list.csv.gz", np.array([len(edge)]))
        _write_csv_gz(raw / "node-feat.csv.gz", arrays["node_feat"])
        _write_csv_gz(raw / "node_year.csv.gz", arrays["node_year"])
        split = folder / "split" / "time"
        split.mkdir(parents=True)
        torch.save({"source_node": edge[:, 0], "target_node": edge[:, 1]}, split / "train.pt")
        for part in ("valid", "test"):
            torch.save({"source_node": arrays[f"{part}_src"], "target_node": arrays[f"{part}_dst"],
                        "target_node_neg": arrays[f"{part}_neg"]}, split / f"{part}.pt")
        return OGBFixture(self.root, folder, arrays)

@pytest.fixture
def ogb_fixture(tmp_path: Path) -> OGBFixtureWriter:
    """A writer of tiny OGB-layout datasets under ``tmp_path / "ogb"``."""
    return OGBFixtureWriter(tmp_path / "ogb")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny graphs: one intra-op thread avoids oversubscribing a shared CPU (restored after).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
