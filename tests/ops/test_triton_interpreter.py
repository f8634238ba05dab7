"""Run every ``triton``-marked ops test in a fresh process with ``TRITON_INTERPRET=1``.

``@triton.jit`` (including triton's own standard library) reads the variable when triton is first imported, and
PyG imports triton, so the interpreter cannot be switched on inside an ordinary test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TRITON_TEST_FILES = [HERE / "test_gather_reduce.py", HERE / "test_segment.py", HERE / "test_tree_reduce.py",
                     HERE / "test_common_neighbors.py", HERE.parent / "nn" / "test_conv.py",
                     HERE / "test_selective_scan.py"]


@pytest.mark.triton
def test_triton_kernels_in_interpreter():
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("TRITON_INTERPRET=1 is set: the triton-marked tests run in this session directly")
    env = dict(os.environ, TRITON_INTERPRET="1")
    files = [str(f) for f in TRITON_TEST_FILES if f.exists()]
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-m", "triton", "-p", "no:cacheprovider"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=HERE.parents[1])
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and "skipped" not in result.stdout, tail
