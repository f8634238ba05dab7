"""Native kernels: sources on disk, one locked build for concurrent callers, visible failures, a checked boundary."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import _cpu, _native, reference

REPO = Path(__file__).resolve().parents[2]
HAS_CC = shutil.which("gcc") is not None or shutil.which("cc") is not None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="no C compiler")


@pytest.fixture
def fresh_state(monkeypatch, tmp_path):
    """A process state in which the library was never tried, a cache dir of our own and a private fallback dir."""
    monkeypatch.setattr(_native, "_state", {"lib": None, "error": None, "tried": False, "enabled": None})
    monkeypatch.setenv("GRAPHLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_native, "_fallback_dir", lambda: tmp_path / "fallback")
    return tmp_path


def _call_fwd(lib: ctypes.CDLL) -> float:
    """out[0] = x[0] + x[1] through gr_fwd_f32_i64 of ``lib``: proves the loaded library runs."""
    rowptr, col, x = torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([[1.5], [2.0]])
    out = torch.empty(1, 1)
    lib.gr_fwd_f32_i64(rowptr.data_ptr(), col.data_ptr(), None, None, x.data_ptr(), out.data_ptr(), None, 1, 1, 0, 1)
    return float(out)


# --------------------------------------------------------------------------------------------- sources


def test_sources_are_real_c_that_compiles_as_is_without_warnings(tmp_path):
    if not HAS_CC:
        pytest.skip("no C compiler")
    cc = shutil.which("gcc") or shutil.which("cc")
    src = _native.source_dir()
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-pthread", str(src / "gather_reduce.c")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    embedded = [p.name for p in (REPO / "graphlab" / "ops").glob("*.py") if "#include <" in p.read_text()]
    assert embedded == [], f"C source embedded in Python: {embedded}"


def test_sources_are_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["graphlab.kernels"]
    for name in _native.SOURCE_FILES:
        assert (_native.source_dir() / name).is_file()
        assert any(fnmatch(f"csrc/{name}", p) for p in patterns), name


@pytest.mark.slow
def test_wheel_ships_the_sources_and_a_normal_install_builds_them(tmp_path):
    """Build a wheel from a copy of the repo, install it into a folder, and run the native path from there."""
    if not HAS_CC:
        pytest.skip("no C compiler")
    copy = tmp_path / "src"
    copy.mkdir()
    for part in ("pyproject.toml", "README.md", "graphlab", "kernels"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / part, copy / part)
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheel_dir), str(copy)], check=True, timeout=600)
    wheel = next(wheel_dir.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert all(f"graphlab/kernels/csrc/{n}" in names for n in _native.SOURCE_FILES), names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=600)
    script = (
        "import graphlab.ops as ops, graphlab.ops._native as n, torch; assert n.__file__.startswith(%r), n.__file__;"
        "assert n.available(), n.unavailable_reason();"
        "out = ops.gather_reduce(torch.ones(2, 3), torch.tensor([0, 2]), torch.tensor([0, 1]));"
        "assert ops.last_path('gather_reduce.cpu_impl') == 'native' and out.tolist() == [[2.0] * 3]" % str(target)
    )
    env = dict(os.environ, PYTHONPATH=str(target), GRAPHLAB_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "cache" / "native").glob("*.so"))) == 1


# --------------------------------------------------------------------------------------------- build


_WORKER = r"""
import json, sys, threading
from pathlib import Path
from graphlab.ops import _native
import torch

def run(results):
    path, compiled = _native.build(Path(sys.argv[1]))
    lib = _native.load(path)
    rowptr, col, x, out = torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([[1.5], [2.0]]), torch.empty(1, 1)
    lib.gr_fwd_f32_i64(rowptr.data_ptr(), col.data_ptr(), None, None, x.data_ptr(), out.data_ptr(), None, 1, 1, 0, 1)
    results.append([str(path), compiled, float(out)])

results = []
threads = [threading.Thread(target=run, args=(results,)) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""


@needs_cc
def test_two_processes_with_two_threads_each_get_one_build(tmp_path):
    cache = tmp_path / "native"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results += json.loads(out.strip().splitlines()[-1])
    assert len(results) == 4
    assert len({path for path, _, _ in results}) == 1
    assert sum(compiled for _, compiled, _ in results) == 1  # exactly one caller compiled, three waited and loaded
    assert all(value == 3.5 for _, _, value in results)
    assert len(list(cache.glob("*.so"))) == 1 and not list(cache.glob("*.tmp"))


@needs_cc
def test_first_use_from_two_threads_builds_once_and_both_use_it(fresh_state):
    libs = []
    barrier = threading.Barrier(2)

    def first_use() -> None:
        barrier.wait()
        libs.append(_native.library())

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert libs[0] is not None and libs[0] is libs[1]
    assert len(list((fresh_state / "cache" / "native").glob("*.so"))) == 1
    assert _call_fwd(libs[0]) == 3.5


@needs_cc
def test_unwritable_cache_dir_falls_back_to_a_temp_dir_with_a_warning(fresh_state, monkeypatch):
    blocker = fresh_state / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("GRAPHLAB_CACHE_DIR", str(blocker))
    with pytest.warns(_native.NativeBuildWarning, match="not writable.*building in .*fallback"):
        lib = _native.library()
    assert lib is not None and _call_fwd(lib) == 3.5
    assert len(list((fresh_state / "fallback").glob("*.so"))) == 1


@pytest.mark.parametrize("compiler", ["false", "/nonexistent/bin/cc"])
def test_broken_compiler_warns_keeps_the_log_and_falls_back_to_torch(compiler, fresh_state, monkeypatch, make_graph):
    monkeypatch.setenv("CC", compiler)
    with pytest.warns(_native.NativeBuildWarning, match=r"unavailable, using torch ops: .*compiler output is in"):
        assert _native.library() is None
    assert not _native.available()
    reason = _native.unavailable_reason()
    log = Path(reason.rsplit("compiler output is in ", 1)[1])
    assert log.is_file() and log.parent == fresh_state / "cache" / "native"
    text = log.read_text()
    assert compiler in text and ("exit status 1" in text or "FileNotFoundError" in text)
    # the CPU path still gives the right numbers, through the torch ops
    edge_index = make_graph(9, 30, 0)
    rowptr, col, _ = ops.to_csr(edge_index, 9)
    x = torch.randn(9, 4, requires_grad=True)
    for reduce in ("sum", "mean", "max", "min"):
        out = ops.gather_reduce(x, rowptr, col, reduce)
        assert ops.last_path(_cpu.IMPL_LOG) == "torch"
        torch.testing.assert_close(out, reference.gather_reduce(x, rowptr, col, reduce))


def test_compiler_errors_are_kept_in_full(fresh_state, monkeypatch):
    if not HAS_CC:
        pytest.skip("no C compiler")
    broken = fresh_state / "csrc"
    shutil.copytree(_native.source_dir(), broken)
    (broken / "gather_reduce_tile.inc").write_text("this is not C;\n" + (broken / "gather_reduce_tile.inc").read_text())
    monkeypatch.setattr(_native, "source_dir", lambda: broken)
    with pytest.raises(RuntimeError, match="compiler output is in (.*\\.log)") as info:
        _native.build()
    log = Path(str(info.value).rsplit("compiler output is in ", 1)[1])
    assert "gather_reduce_tile.inc" in log.read_text() and "error" in log.read_text()


# --------------------------------------------------------------------------------------------- boundary


def _native_or_skip() -> None:
    if not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")


ROWPTR, COL = torch.tensor([0, 2, 3]), torch.tensor([0, 1, 1])
X = torch.randn(2, 4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(weight=torch.ones(3, dtype=torch.float64)), TypeError, "weight has dtype torch.float64 but this call needs torch.float32"),
        (dict(weight=torch.ones(2)), ValueError, r"weight has shape \(2,\) but this call needs \(3,\)"),
        (dict(col=COL.int()), TypeError, "col has dtype torch.int32 but this call needs torch.int64"),
        (dict(rowptr=ROWPTR.float()), TypeError, "rowptr has dtype torch.float32; the native kernels take int32/int64"),
        (dict(x=X.half()), TypeError, "x has dtype torch.float16; the native kernels take float32/float64"),
        (dict(x=X[0]), ValueError, "x must be 2-D"),
        (dict(col=torch.tensor([0, 1])), ValueError, r"col has shape \(2,\) but this call needs \(3,\)"),
        (dict(x=torch.empty(2, 4, device="meta")), ValueError, "x is on meta; the native kernels need CPU tensors"),
        (dict(src_scale=torch.ones(2, dtype=torch.float64)), TypeError, "src_scale has dtype torch.float64"),
    ],
)
def test_native_spmm_refuses_mismatched_arguments(kwargs, error, match):
    _native_or_skip()
    args = dict(rowptr=ROWPTR, col=COL, weight=None, x=X, reduce="sum", want_arg=False) | kwargs
    with pytest.raises(error, match=match):
        _native.spmm(**args)


def test_native_backward_kernels_refuse_mismatched_arguments():
    _native_or_skip()
    grad = torch.randn(2, 4)
    arg = torch.zeros(2, 4, dtype=torch.int32)
    with pytest.raises(TypeError, match="grad has dtype torch.float64 but this call needs torch.float32"):
        _native.sddmm(ROWPTR, COL, grad.double(), X, False)
    with pytest.raises(TypeError, match="arg has dtype torch.int64 but this call needs torch.int32"):
        _native.arg_backward_x(ROWPTR, COL, None, arg.long(), grad, 2, 3)
    with pytest.raises(ValueError, match="num_edges is 5 but rowptr\\[-1\\] is 3"):
        _native.arg_backward_x(ROWPTR, COL, None, arg, grad, 2, 5)
    with pytest.raises(ValueError, match=r"arg has shape \(1, 4\)"):
        _native.arg_backward_w(ROWPTR, COL, arg[:1], grad, X)
    with pytest.raises(TypeError, match="col has dtype torch.int32"):
        _native.arg_backward_w(ROWPTR, COL.int(), arg, grad, X)


def test_native_boundary_copies_non_contiguous_and_expanded_inputs():
    _native_or_skip()
    wide = torch.randn(2, 8)
    x = wide[:, ::2]  # strided view
    weight = torch.tensor(0.5).expand(3)  # stride 0
    out, _ = _native.spmm(ROWPTR, COL, weight, x, "sum", False)
    want = reference.gather_reduce(x.contiguous(), ROWPTR, COL, "sum", weight.contiguous())
    torch.testing.assert_close(out, want)
    grad = torch.randn(4, 2).t()  # transposed
    torch.testing.assert_close(
        _native.sddmm(ROWPTR, COL, grad, x, False), _native.sddmm(ROWPTR, COL, grad.contiguous(), x.contiguous(), False)
    )
