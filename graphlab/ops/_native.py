r"""Native CPU kernels for gather-reduce: C sources in ``kernels/csrc/``, compiled on first use, called via ctypes.

Why: ``torch.sparse.mm(csr, x, reduce)`` is row-parallel but does not hide the latency of the random row gathers
``x[col[e]]``, does not return the arg edge that ``max``/``min`` need for backward, and its backward rebuilds the
transpose every call. The kernels (``kernels/csrc/gather_reduce.c`` and the ``.inc`` files it includes once per
value type float/double and index type int32/int64) are plain C99 + pthreads:

* ``gr_fwd``: :math:`\mathrm{out}_i = \bigoplus_{e \in \mathrm{row}\ i} w_e s_{\mathrm{col}_e} x_{\mathrm{col}_e}`
  for sum / mean / max / min (``s`` an optional per-source scale, used by the mean backward), with the arg edge
  per (row, feature) as int32 for max/min (first edge in CSR order attaining the extremum; ``E`` for empty rows).
  ``col = NULL`` means the identity (segment reduction).
* ``gr_sddmm``: :math:`s_e = c_i \langle g_i, x_{\mathrm{col}_e} \rangle` (``c_i = 1`` or ``1/\max(\deg_i, 1)``).
* ``gr_arg_bwd_x`` / ``gr_arg_bwd_w``: the max/min backward through the arg edges (no atomics).

**Out of cache** (issue 18; each change measured on its own in ``benchmarks/results/aggregate-experiments.md``):
the forward keeps up to 64 accumulators of a row in registers per feature tile and prefetches the first 128
bytes of source rows 16 edges ahead (the hardware streams the rest of a row); threads claim chunks of similar edge count, and a hub row longer than a chunk's share (at least
256 edges) is split into pieces whose private partial rows are combined in edge order afterwards (so ``max``'s
arg stays the first extremal edge); the SDDMM is split by edges; the ``max``/``min`` backward gives each
thread whole cache lines of features and vectorises a row's features as one conflict-free gather/scatter. The
``sum``/``mean`` backward is the same forward kernel over the cached transpose, so it shares all of this.

**The boundary.** Every function here that hands pointers to C (:func:`spmm`, :func:`sddmm`,
:func:`arg_backward_x`, :func:`arg_backward_w`) checks, always (independently of
:class:`graphlab.ops.set_validation`) and in O(1) per tensor: the device (CPU), the dtype of every tensor (values
in ``x``'s dtype, float32/float64; every index tensor int32/int64 of one width; ``arg`` int32), the number of
dimensions and elements (consistent with ``rowptr`` and ``F``); a non-contiguous (transposed, sliced, expanded)
tensor is copied to a contiguous one. A mismatch raises ``TypeError`` (dtype) or ``ValueError`` (device, shape)
naming the argument: a cast here would hide a bug in the caller. The public ops apply their documented dtype rule
(``edge_weight`` is cast to ``x``'s dtype) before they get here. Index *values* (``0 <= col < N``, sorted
``rowptr``) cost a pass over ``E`` and are checked by the public ops while validation is on.

**Build.** The shared library is built by the system C compiler (``$CC``, else ``gcc``/``cc``) into
``$GRAPHLAB_CACHE_DIR/native`` (default ``~/.cache/graphlab/native``), named by a hash of the sources, flags,
compiler and CPU, under an exclusive ``fcntl.flock`` on a lock file beside it: two threads or processes that
build at once get one build and both load it. An unwritable cache folder falls back to a temp folder
(:class:`NativeBuildWarning`); a failed build warns too and keeps the compiler's full output in a log file whose
path :func:`unavailable_reason` and the warning give; the CPU path then uses torch ops. ``GRAPHLAB_NATIVE=0``
disables the kernels.

**Why ctypes and not a torch C++ extension** (measured on the shared 2-core development machine for issue 11):
``gcc -O3`` builds ``gather_reduce.c`` (all 16 kernels) in 1.9 s, while ``torch.utils.cpp_extension.load_inline``
of a one-line ``TORCH_LIBRARY`` op took 98 s (torch's headers; it also needs ninja and a C++ toolchain matching
torch's ABI), a cost every user pays on first use and after every torch upgrade. Per call, a ctypes call with 11
arguments costs about 6 us and a trivial ``torch.ops`` C++ op about 8 us, so the extension would not be faster
at small sizes either. What the extension would have bought, visibility to ``torch.compile``, comes from the
``torch.library.custom_op`` wrappers in :mod:`graphlab.ops._library`.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Callable

import torch
from torch import Tensor

SOURCE_FILES = (
    "gather_reduce.c", "gather_reduce_typed.inc", "gather_reduce_tile.inc",
    "common_neighbors.c", "common_neighbors_typed.inc",
    "selective_scan.c", "selective_scan_typed.inc",  # bindings in graphlab/ops/_native_scan.py
    "dropout.c",  # bindings in graphlab/ops/_native_dropout.py
)
_UNITS = tuple(name for name in SOURCE_FILES if name.endswith(".c"))  # compiled together into one library
_FLAGS = ("-O3", "-shared", "-fPIC", "-pthread", "-std=c99")
_ARCH_FLAGS = ("-march=native",)
# Below this many multiply-adds (E * F) a single thread is faster than starting pthreads.
_PARALLEL_MIN_WORK = 1 << 16
_VALUE_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_INDEX_SUFFIX = {torch.int32: "i32", torch.int64: "i64"}
_REDUCE_CODE = {"sum": 0, "mean": 1, "max": 2, "min": 3}
MAX_ARG_EDGES = 2**31 - 1
VALUE_DTYPES = tuple(_VALUE_SUFFIX)
INDEX_DTYPES = tuple(_INDEX_SUFFIX)

_state: dict[str, object] = {"lib": None, "error": None, "tried": False, "enabled": None}
_state_lock = threading.Lock()


class NativeBuildWarning(RuntimeWarning):
    """The native kernels could not be built where asked (unwritable cache folder, compiler error)."""


# ----------------------------------------------------------------------------------------------- build


def source_dir() -> Path:
    """The folder holding the C sources (installed with the package as ``graphlab/kernels/csrc``)."""
    return Path(str(resources.files("graphlab.kernels").joinpath("csrc")))


def _cpu_signature() -> str:
    """Machine + CPU flags, so a cache shared across machines never serves a library built for another CPU."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()}|{platform.system()}|{flags}"


def _compiler() -> str:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler found (install gcc or set CC)")
    return compiler


def _build_key(compiler: str) -> str:
    """Hash of the sources, flags, compiler (path, size, mtime) and CPU."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (source_dir() / name).read_bytes())
    resolved = shutil.which(compiler) or compiler
    try:
        stat = os.stat(resolved)
        compiler_id = f"{os.path.realpath(resolved)}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        compiler_id = resolved
    digest.update("\n".join([*_FLAGS, *_ARCH_FLAGS, compiler_id, _cpu_signature()]).encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """``$GRAPHLAB_CACHE_DIR/native`` (default ``~/.cache/graphlab/native``)."""
    root = os.environ.get("GRAPHLAB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphlab")
    return Path(root) / "native"


def _fallback_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"graphlab-native-{os.getuid()}"


def _writable_dir(preferred: Path) -> Path:
    """``preferred`` if it can be created and written, else a temp folder (with a :class:`NativeBuildWarning`)."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=preferred, prefix=".probe-")
        probe.close()
        return preferred
    except OSError as exc:
        fallback = _fallback_dir()
        warnings.warn(
            NativeBuildWarning(
                f"the native-kernel cache folder {preferred} is not writable ({exc}); building in {fallback} "
                "instead. Set GRAPHLAB_CACHE_DIR to a writable folder to keep the build across reboots."
            ),
            stacklevel=3,
        )
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _compile(compiler: str, target: Path, log: Path) -> bool:
    """Compile the sources into ``target`` (atomically: temp file + rename); on failure write every attempt's
    command and full compiler output to ``log`` and return ``False``."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    src = source_dir()
    attempts = []
    for extra in (_ARCH_FLAGS, ()):
        cmd = [compiler, *_FLAGS, *extra, f"-I{src}", *(str(src / unit) for unit in _UNITS), "-o", str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            attempts.append(f"$ {' '.join(cmd)}\n{type(exc).__name__}: {exc}\n")
            continue
        if proc.returncode == 0:
            os.replace(tmp, target)
            return True
        attempts.append(f"$ {' '.join(cmd)}\nexit status {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    log.write_text("".join(attempts), encoding="utf-8")
    tmp.unlink(missing_ok=True)
    return False


def build(directory: Path | None = None) -> tuple[Path, bool]:
    """Build the shared library (or find it built) under ``directory`` (default :func:`cache_dir`, a temp folder
    when that is not writable). Returns ``(path, compiled_here)``.

    The check-then-compile runs under an exclusive ``flock`` on ``<name>.lock``, so concurrent callers (threads
    or processes) wait for the one that compiles and then load its library.

    Raises:
        RuntimeError: no compiler, or the compilation failed (the message names the log file).
    """
    compiler = _compiler()
    folder = _writable_dir(directory or cache_dir())
    name = f"graphlab_ops_{_build_key(compiler)}"
    target = folder / f"{name}.so"
    if target.exists():
        return target, False
    with open(folder / f"{name}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if target.exists():
                return target, False
            log = folder / f"{name}.log"
            if not _compile(compiler, target, log):
                raise RuntimeError(f"compiling the native kernels with {compiler} failed; the compiler output is in {log}")
            return target, True
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for t in _VALUE_SUFFIX.values():
        for i in _INDEX_SUFFIX.values():
            suf = f"{t}_{i}"
            getattr(lib, f"gr_fwd_{suf}").argtypes = [ptr] * 7 + [i64, i64, cint, cint]
            getattr(lib, f"gr_sddmm_{suf}").argtypes = [ptr] * 5 + [i64, i64, cint, cint]
            getattr(lib, f"gr_arg_bwd_x_{suf}").argtypes = [ptr] * 6 + [i64, i64, i64, i64, cint]
            getattr(lib, f"gr_arg_bwd_w_{suf}").argtypes = [ptr] * 6 + [i64, i64, i64, cint]
            for name in ("gr_fwd", "gr_sddmm", "gr_arg_bwd_x", "gr_arg_bwd_w"):
                getattr(lib, f"{name}_{suf}").restype = None
    for i in _INDEX_SUFFIX.values():
        getattr(lib, f"cn_count_{i}").argtypes = [ptr] * 4 + [i64] + [ptr] * 3 + [cint]
        getattr(lib, f"cn_fill_{i}").argtypes = [ptr] * 4 + [i64] + [ptr] * 6 + [cint]
        getattr(lib, f"cn_count_{i}").restype = getattr(lib, f"cn_fill_{i}").restype = None
    return lib


def load(path: Path) -> ctypes.CDLL:
    """Load a library built by :func:`build` and declare its function signatures."""
    return _declare(ctypes.CDLL(str(path)))


def library() -> ctypes.CDLL | None:
    """The compiled kernels, building them on the first call; ``None`` if they cannot be built (a
    :class:`NativeBuildWarning` says why, once)."""
    if _state["tried"]:
        return _state["lib"]  # type: ignore[return-value]
    with _state_lock:  # the flag is set last, so no thread sees "tried" before the library (or error) is there
        if not _state["tried"]:
            try:
                _state["lib"] = load(build()[0])
            except (OSError, RuntimeError) as exc:
                _state["error"] = str(exc)
                warnings.warn(
                    NativeBuildWarning(f"graphlab's native CPU kernels are unavailable, using torch ops: {exc}"),
                    stacklevel=2,
                )
            _state["tried"] = True
    return _state["lib"]  # type: ignore[return-value]


def unavailable_reason() -> str | None:
    """Why the native kernels are not used (``None`` when they are); names the build log on a failed build."""
    if not enabled():
        return "disabled (GRAPHLAB_NATIVE=0 or use_native(False))"
    library()
    return _state["error"]  # type: ignore[return-value]


def enabled() -> bool:
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    return os.environ.get("GRAPHLAB_NATIVE", "1") != "0"


@torch.compiler.assume_constant_result
def available() -> bool:
    """Whether the CPU path will use the native kernels. ``torch.compile`` evaluates it once while tracing
    (building the library then if need be) and keeps the answer in the compiled graph."""
    return enabled() and library() is not None


_DECLARED: dict[Callable[[ctypes.CDLL], None], set[int]] = {}


def declared_library(declare: Callable[[ctypes.CDLL], None]) -> ctypes.CDLL:
    """The native library with ``declare(lib)`` (the ctypes ``argtypes`` / ``restype`` of one kernel family, e.g.
    :mod:`graphlab.ops._native_scan`) applied once per loaded library; a ``RuntimeError`` naming the reason when the
    library is unavailable."""
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernels unavailable: {unavailable_reason()}")
    done = _DECLARED.setdefault(declare, set())
    if id(lib) not in done:
        declare(lib)
        done.add(id(lib))
    return lib


class use_native:  # noqa: N801 - call-or-context-manager like set_backend
    """Switch the native kernels on/off for the CPU path (tests use it to cover the torch-only fallback)."""

    def __init__(self, flag: bool) -> None:
        self.previous = _state["enabled"]
        _state["enabled"] = bool(flag)

    def __enter__(self) -> "use_native":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _state["enabled"] = self.previous


def supports(x: Tensor, index: Tensor, num_edges: int, reduce: str) -> bool:
    """What the native kernels handle: CPU, float32/float64 values, int32/int64 indices, and for max/min at most
    ``2**31 - 1`` edges (the arg edges are stored as int32: half the memory traffic of int64)."""
    return (
        x.device.type == "cpu"
        and x.dtype in VALUE_DTYPES
        and index.dtype in INDEX_DTYPES
        and (reduce in ("sum", "mean") or num_edges <= MAX_ARG_EDGES)
    )


# ----------------------------------------------------------------------------------------------- boundary


def _checked(name: str, t: Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> Tensor:
    """``t`` as a contiguous CPU tensor of ``dtype`` and ``shape``, or a TypeError/ValueError naming it."""
    if not isinstance(t, Tensor):
        raise TypeError(f"native kernel argument {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_cpu:
        raise ValueError(f"native kernel argument {name} is on {t.device}; the native kernels need CPU tensors")
    if t.dtype is not dtype:
        raise TypeError(
            f"native kernel argument {name} has dtype {t.dtype} but this call needs {dtype}; "
            f"cast it with {name}.to({dtype})"
        )
    if t.shape != shape:
        raise ValueError(f"native kernel argument {name} has shape {tuple(t.shape)} but this call needs {shape}")
    return t if t.is_contiguous() else t.contiguous()


def _value_dtype(name: str, t: Tensor) -> torch.dtype:
    if not isinstance(t, Tensor) or t.dtype not in VALUE_DTYPES:
        got = t.dtype if isinstance(t, Tensor) else type(t).__name__
        raise TypeError(f"native kernel argument {name} has dtype {got}; the native kernels take float32/float64")
    return t.dtype


def _matrix_dtype(name: str, t: Tensor, shape: str) -> torch.dtype:
    """The value dtype of a 2-D feature/gradient argument (``shape`` names its dimensions in the error)."""
    dtype = _value_dtype(name, t)
    if t.dim() != 2:
        raise ValueError(f"native kernel argument {name} must be 2-D {shape}, got shape {tuple(t.shape)}")
    return dtype


def _index_dtype(name: str, t: Tensor) -> torch.dtype:
    if not isinstance(t, Tensor) or t.dtype not in INDEX_DTYPES:
        got = t.dtype if isinstance(t, Tensor) else type(t).__name__
        raise TypeError(f"native kernel argument {name} has dtype {got}; the native kernels take int32/int64")
    return t.dtype


def _csr(rowptr: Tensor, col: Tensor | None) -> tuple[Tensor, Tensor | None, int]:
    """Checked ``(rowptr, col, E)``: 1-D CPU index tensors of one width, ``col`` with ``E = rowptr[-1]`` entries."""
    index_dtype = _index_dtype("rowptr", rowptr)
    if rowptr.dim() != 1 or rowptr.numel() == 0:
        raise ValueError(f"native kernel argument rowptr must be 1-D with N + 1 >= 1 entries, got {tuple(rowptr.shape)}")
    rowptr = _checked("rowptr", rowptr, index_dtype, (rowptr.numel(),))
    edges = int(rowptr[-1])
    if col is not None:
        col = _checked("col", col, index_dtype, (edges,))
    return rowptr, col, edges


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(work: int) -> int:
    return torch.get_num_threads() if work >= _PARALLEL_MIN_WORK else 1


def _fn(name: str, values: torch.dtype, index: torch.dtype):  # noqa: ANN202 - a ctypes function pointer
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernels unavailable: {_state['error']}")
    return getattr(lib, f"{name}_{_VALUE_SUFFIX[values]}_{_INDEX_SUFFIX[index]}")


def spmm(
    rowptr: Tensor, col: Tensor | None, weight: Tensor | None, x: Tensor, reduce: str, want_arg: bool,
    src_scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``out[i] = reduce_e w_e s_{col[e]} x[col[e]]`` (``col=None``: ``x[e]``; ``s`` = ``src_scale``, sum/mean
    only, default 1); ``arg`` [N, F] int32 (``E`` = empty row) for max/min when ``want_arg``, else ``None``.

    Raises:
        TypeError / ValueError: a tensor of the wrong dtype, device or shape (see the module docstring).
    """
    if reduce not in _REDUCE_CODE:
        raise ValueError(f"reduce must be one of {tuple(_REDUCE_CODE)}, got {reduce!r}")
    dtype = _matrix_dtype("x", x, "[N_src, F]")
    rowptr, col, num_edges = _csr(rowptr, col)
    num_src, feat = x.shape
    if col is None and num_edges != num_src:
        raise ValueError(f"segment reduction: rowptr[-1] is {num_edges} but x has {num_src} rows")
    x = _checked("x", x, dtype, (num_src, feat))
    weight = None if weight is None else _checked("weight", weight, dtype, (num_edges,))
    if src_scale is not None:
        if reduce not in ("sum", "mean"):
            raise ValueError("src_scale is only supported for sum/mean")
        src_scale = _checked("src_scale", src_scale, dtype, (num_src,))
    num_rows = rowptr.numel() - 1
    out = x.new_empty((num_rows, feat))
    arg = None
    if want_arg and reduce in ("max", "min"):
        if num_edges > MAX_ARG_EDGES:
            raise RuntimeError(f"the native max/min kernels store int32 arg edges; {num_edges} edges is too many")
        arg = torch.empty((num_rows, feat), dtype=torch.int32)
    _fn("gr_fwd", dtype, rowptr.dtype)(
        _ptr(rowptr), _ptr(col), _ptr(weight), _ptr(src_scale), _ptr(x), _ptr(out), _ptr(arg),
        num_rows, feat, _REDUCE_CODE[reduce], _threads(num_edges * max(feat, 1)),
    )
    return out, arg


def _gathered_grad(
    op: str, rowptr: Tensor, col: Tensor | None, grad: Tensor, x: Tensor
) -> tuple[torch.dtype, Tensor, Tensor, int, Tensor, Tensor]:
    """Checked ``(dtype, rowptr, col, E, grad, x)`` of a kernel that pairs ``grad`` [N, F] with the gathered rows
    ``x[col[e]]`` (:func:`sddmm`, :func:`arg_backward_w`); ``col`` is required."""
    dtype = _matrix_dtype("x", x, "[N_src, F]")
    if col is None:
        raise ValueError(f"native kernel argument col is required for {op}")
    rowptr, col, num_edges = _csr(rowptr, col)
    x = _checked("x", x, dtype, tuple(x.shape))
    grad = _checked("grad", grad, dtype, (rowptr.numel() - 1, x.size(1)))
    return dtype, rowptr, col, num_edges, grad, x


def sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    """``s[e] = c_i <grad[i], x[col[e]]>`` with ``c_i = 1/max(deg_i, 1)`` if ``mean`` else 1."""
    dtype, rowptr, col, num_edges, grad, x = _gathered_grad("sddmm", rowptr, col, grad, x)
    num_rows, feat = grad.shape
    out = x.new_empty(num_edges)
    _fn("gr_sddmm", dtype, rowptr.dtype)(
        _ptr(rowptr), _ptr(col), _ptr(grad), _ptr(x), _ptr(out),
        num_rows, feat, int(mean), _threads(num_edges * max(feat, 1)),
    )
    return out


def arg_backward_x(
    rowptr: Tensor, col: Tensor | None, weight: Tensor | None, arg: Tensor, grad: Tensor, num_src: int,
    num_edges: int,
) -> Tensor:
    """``grad_x[col[a], f] += w[a] grad[i, f]`` for ``a = arg[i, f]`` (``col=None``: ``grad_x[a, f]``).

    ``arg`` must be the one :func:`spmm` wrote for this graph: the kernel skips empty rows (sentinel ``E``) as a
    whole and reads every entry of a non-empty row as one of that row's edges, without a per-entry test."""
    dtype = _matrix_dtype("grad", grad, "[N, F]")
    rowptr, col, edges = _csr(rowptr, col)
    if edges != num_edges:
        raise ValueError(f"native kernel argument num_edges is {num_edges} but rowptr[-1] is {edges}")
    num_rows, feat = rowptr.numel() - 1, grad.size(1)
    grad = _checked("grad", grad, dtype, (num_rows, feat))
    arg = _checked("arg", arg, torch.int32, (num_rows, feat))
    weight = None if weight is None else _checked("weight", weight, dtype, (num_edges,))
    if col is None and num_src != num_edges:
        raise ValueError(f"segment backward: num_src is {num_src} but there are {num_edges} entries")
    out = grad.new_empty((num_src, feat))  # zeroed by the kernel
    _fn("gr_arg_bwd_x", dtype, rowptr.dtype)(
        _ptr(rowptr), _ptr(col), _ptr(weight), _ptr(arg), _ptr(grad), _ptr(out),
        num_rows, feat, num_edges, num_src, _threads(grad.numel()),
    )
    return out


def arg_backward_w(rowptr: Tensor, col: Tensor, arg: Tensor, grad: Tensor, x: Tensor) -> Tensor:
    """``grad_w[a] += grad[i, f] x[col[a], f]`` for ``a = arg[i, f] < E``."""
    dtype, rowptr, col, num_edges, grad, x = _gathered_grad("arg_backward_w", rowptr, col, grad, x)
    num_rows, feat = grad.shape
    arg = _checked("arg", arg, torch.int32, (num_rows, feat))
    out = x.new_empty(num_edges)  # zeroed by the kernel
    _fn("gr_arg_bwd_w", dtype, rowptr.dtype)(
        _ptr(rowptr), _ptr(col), _ptr(arg), _ptr(grad), _ptr(x), _ptr(out),
        num_rows, feat, num_edges, _threads(grad.numel()),
    )
    return out


# ----------------------------------------------------------------------------------------------- common neighbours

_SET_SLOTS = ("cn", "src_only", "dst_only")  # the order of the count / ptr / out arguments of cn_count / cn_fill


def neighbor_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...], fill: bool = True
) -> dict[str, tuple[Tensor, Tensor | None]]:
    """``{name: (ptr [B+1] int64, index [M])}`` of the requested sets (``"cn"``, ``"src_only"``,
    ``"dst_only"``) of the pairs ``(src[b], dst[b])``: ``cn_count`` writes the ``ptr`` (per-pair sizes and their
    prefix sum), ``cn_fill`` the members. ``fill=False`` stops after the sizes (``index`` is ``None``).

    All four index tensors must share one width (int32 or int64); ``col`` sorted and unique within rows and
    ``src``/``dst`` in range are the caller's to check (:func:`graphlab.ops.neighbor_sets` does).

    Raises:
        TypeError / ValueError: a tensor of the wrong dtype, device or shape, or an unknown set name.
    """
    unknown = [name for name in sets if name not in _SET_SLOTS]
    if unknown or not sets:
        raise ValueError(f"unknown neighbour sets {unknown or sets!r}; choose from {_SET_SLOTS}")
    rowptr, col, _ = _csr(rowptr, col)
    num_pairs = src.numel() if isinstance(src, Tensor) else 0
    src = _checked("src", src, rowptr.dtype, (num_pairs,))
    dst = _checked("dst", dst, rowptr.dtype, (num_pairs,))
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernels unavailable: {_state['error']}")
    ptr_rows = torch.empty((len(sets), num_pairs + 1), dtype=torch.long)  # one allocation for every ptr
    ptrs = dict(zip(sets, ptr_rows.unbind(0)))
    mean_degree = col.numel() / max(rowptr.numel() - 1, 1)
    threads = _threads(int(num_pairs * 2 * mean_degree) * 8)
    suffix = _INDEX_SUFFIX[rowptr.dtype]
    graph = (rowptr.data_ptr(), col.data_ptr(), src.data_ptr(), dst.data_ptr(), num_pairs)
    getattr(lib, f"cn_count_{suffix}")(*graph, *(_ptr(ptrs.get(name)) for name in _SET_SLOTS), threads)
    if not fill:
        return {name: (ptrs[name], None) for name in sets}
    totals = ptr_rows[:, -1].tolist()  # one read of the set sizes
    outs = {name: torch.empty(total, dtype=rowptr.dtype) for name, total in zip(sets, totals)}
    getattr(lib, f"cn_fill_{suffix}")(
        *graph, *(_ptr(ptrs.get(name)) for name in _SET_SLOTS), *(_ptr(outs.get(name)) for name in _SET_SLOTS),
        threads,
    )
    return {name: (ptrs[name], outs[name]) for name in sets}
