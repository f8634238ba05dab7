r"""Native CPU kernels for gather-reduce, compiled on first use from the C source in this file.

Why: ``torch.sparse.mm(csr, x, reduce)`` is row-parallel but does not hide the latency of the random row gathers
``x[col[e]]``, does not return the arg edge that ``max``/``min`` need for backward, and its backward rebuilds the
transpose every call. The kernels below are plain C99 + pthreads (no torch headers, no OpenMP runtime), so they
build in about a second with the system C compiler and never touch the network.

Kernels (``T`` = float/double, ``I`` = int32/int64 indices; rows are split across threads by ``edges + rows``):

* ``gr_fwd``: :math:`\mathrm{out}_i = \bigoplus_{e \in \mathrm{row}\ i} w_e x_{\mathrm{col}_e}` for sum / mean /
  max / min with software prefetch of the row ``PREFETCH_DIST`` edges ahead; optionally writes the arg edge per
  (row, feature) for max/min (first edge in CSR order attaining the extremum; ``E`` for empty rows). ``col = NULL``
  means the identity (segment reduction of ``src`` rows).
* ``gr_sddmm``: :math:`s_e = c_i \langle g_i, x_{\mathrm{col}_e} \rangle` with :math:`c_i = 1` or
  :math:`1/\max(\deg_i, 1)` (mean), the gradient w.r.t. edge weights.
* ``gr_arg_bwd_x``: :math:`\partial x_{\mathrm{col}_a, f} \mathrel{+}= w_a g_{i,f}` for :math:`a = \arg_{i,f}`,
  threads split the features so no two threads write the same entry (no atomics).
* ``gr_arg_bwd_w``: :math:`\partial w_a \mathrel{+}= g_{i,f} x_{\mathrm{col}_a, f}`, threads split rows (an arg edge
  belongs to its row, so again no conflicts).

Build: the shared library is cached under ``$GRAPHLAB_CACHE_DIR`` (default ``~/.cache/graphlab``) in a file named
by a hash of the source, the flags and the CPU, written atomically (temp file + rename). ``GRAPHLAB_NATIVE=0``
disables the kernels (the CPU path then uses :mod:`graphlab.ops._cpu`'s torch-only implementation); so does a
missing compiler, with the reason in :func:`unavailable_reason`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import torch
from torch import Tensor

C_SOURCE = r"""
#include <stdint.h>
#include <pthread.h>

#define MAX_THREADS 64
#define PREFETCH_DIST 16  /* edges ahead: measured best among 4/8/16/32 for F in 16..256 (benchmarks/aggregate.py) */
#define CACHE_LINE 64

typedef void (*range_fn)(const void *args, int64_t begin, int64_t end);
typedef struct { const void *args; range_fn fn; int64_t begin, end; } task_t;

static void *run_task(void *p) {
    task_t *t = (task_t *)p;
    if (t->end > t->begin) t->fn(t->args, t->begin, t->end);
    return NULL;
}

/* Run fn over [bounds[t], bounds[t+1]) for t < nthreads, one pthread per range (the caller runs range 0). */
static void run_parallel(const int64_t *bounds, int nthreads, const void *args, range_fn fn) {
    task_t tasks[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS];
    for (int t = 0; t < nthreads; ++t) {
        tasks[t].args = args; tasks[t].fn = fn; tasks[t].begin = bounds[t]; tasks[t].end = bounds[t + 1];
        started[t] = 0;
    }
    for (int t = 1; t < nthreads; ++t)
        started[t] = pthread_create(&threads[t], 0, run_task, &tasks[t]) == 0;
    run_task(&tasks[0]);
    for (int t = 1; t < nthreads; ++t) {
        if (started[t]) pthread_join(threads[t], 0);
        else run_task(&tasks[t]);
    }
}

static int clamp_threads(int nthreads) {
    if (nthreads < 1) return 1;
    return nthreads > MAX_THREADS ? MAX_THREADS : nthreads;
}

/* Even split of [0, n) into nthreads ranges. */
static void even_bounds(int64_t n, int nthreads, int64_t *bounds) {
    for (int t = 0; t <= nthreads; ++t) bounds[t] = n * t / nthreads;
}

/* Hot loops read only locals (not struct fields): with struct reads GCC reloads them every iteration. */
#define PREFETCH_ROW(T, x, col, e, F)                                                                       \
    do {                                                                                                   \
        const char *pf_ = (const char *)((x) + ((col) ? (int64_t)(col)[e] : (int64_t)(e)) * (F));          \
        for (int64_t b_ = 0; b_ < (F) * (int64_t)sizeof(T); b_ += CACHE_LINE) __builtin_prefetch(pf_ + b_); \
    } while (0)

#define DEFINE_KERNELS(T, I, SUF)                                                                           \
/* Row ranges with about the same cost rowptr[i] + i (edges + rows) each. */                               \
static void row_bounds_##SUF(const I *rowptr, int64_t nrows, int nthreads, int64_t *bounds) {              \
    const int64_t total = (int64_t)rowptr[nrows] + nrows;                                                  \
    bounds[0] = 0;                                                                                         \
    for (int t = 1; t < nthreads; ++t) {                                                                   \
        const int64_t target = total * t / nthreads;                                                       \
        int64_t lo = bounds[t - 1], hi = nrows;                                                            \
        while (lo < hi) {                                                                                  \
            const int64_t mid = lo + (hi - lo) / 2;                                                        \
            if ((int64_t)rowptr[mid] + mid < target) lo = mid + 1; else hi = mid;                          \
        }                                                                                                  \
        bounds[t] = lo;                                                                                    \
    }                                                                                                      \
    bounds[nthreads] = nrows;                                                                              \
}                                                                                                          \
                                                                                                           \
typedef struct {                                                                                           \
    const I *rowptr; const I *col; const T *w; const T *x; T *out; I *arg; int64_t F; int reduce;          \
} fwd_args_##SUF;                                                                                          \
                                                                                                           \
/* sum (reduce 0) / mean (reduce 1) over rows [r0, r1). */                                                 \
static void fwd_sum_##SUF(const I *rowptr, const I *col, const T *wp, const T *x, T *out,                  \
                          int64_t F, int mean, int64_t r0, int64_t r1) {                                   \
    const int64_t e_end = rowptr[r1];                                                                      \
    for (int64_t i = r0; i < r1; ++i) {                                                                    \
        const int64_t e0 = rowptr[i], e1 = rowptr[i + 1];                                                  \
        T *restrict o = out + i * F;                                                                       \
        for (int64_t f = 0; f < F; ++f) o[f] = 0;                                                          \
        for (int64_t e = e0; e < e1; ++e) {                                                                \
            if (e + PREFETCH_DIST < e_end) PREFETCH_ROW(T, x, col, e + PREFETCH_DIST, F);                  \
            const T *restrict xr = x + (col ? (int64_t)col[e] : e) * F;                                    \
            const T w = wp ? wp[e] : (T)1;                                                                 \
            for (int64_t f = 0; f < F; ++f) o[f] += w * xr[f];                                             \
        }                                                                                                  \
        if (mean && e1 - e0 > 1) {                                                                         \
            const T inv = (T)1 / (T)(e1 - e0);                                                             \
            for (int64_t f = 0; f < F; ++f) o[f] *= inv;                                                   \
        }                                                                                                  \
    }                                                                                                      \
}                                                                                                          \
                                                                                                           \
/* max (sign 1) / min (sign -1) over rows [r0, r1). The first edge initialises and later edges win only */  \
/* when strictly better, so the arg is the first edge in CSR order attaining the extremum; empty rows */    \
/* give 0 and the arg sentinel E. */                                                                       \
static void fwd_ext_##SUF(const I *rowptr, const I *col, const T *wp, const T *x, T *out, I *arg,          \
                          int64_t F, T sign, int64_t r0, int64_t r1) {                                     \
    const int64_t e_end = rowptr[r1];                                                                      \
    for (int64_t i = r0; i < r1; ++i) {                                                                    \
        const int64_t e0 = rowptr[i], e1 = rowptr[i + 1];                                                  \
        T *restrict o = out + i * F;                                                                       \
        I *restrict ag = arg ? arg + i * F : 0;                                                            \
        if (e1 == e0) {                                                                                    \
            for (int64_t f = 0; f < F; ++f) o[f] = 0;                                                      \
            continue;                                                                                      \
        }                                                                                                  \
        const T w0 = wp ? wp[e0] : (T)1;                                                                   \
        const T *restrict x0 = x + (col ? (int64_t)col[e0] : e0) * F;                                      \
        for (int64_t f = 0; f < F; ++f) o[f] = w0 * x0[f];                                                 \
        if (ag) for (int64_t f = 0; f < F; ++f) ag[f] = (I)e0;                                             \
        for (int64_t e = e0 + 1; e < e1; ++e) {                                                            \
            if (e + PREFETCH_DIST < e_end) PREFETCH_ROW(T, x, col, e + PREFETCH_DIST, F);                  \
            const T *restrict xr = x + (col ? (int64_t)col[e] : e) * F;                                    \
            const T w = wp ? wp[e] : (T)1;                                                                 \
            if (ag) {                                                                                      \
                const I ei = (I)e;                                                                         \
                for (int64_t f = 0; f < F; ++f) {                                                          \
                    const T v = w * xr[f];                                                                 \
                    const int better = sign * v > sign * o[f];                                             \
                    o[f] = better ? v : o[f];                                                              \
                    ag[f] = better ? ei : ag[f];                                                           \
                }                                                                                          \
            } else {                                                                                       \
                for (int64_t f = 0; f < F; ++f) {                                                          \
                    const T v = w * xr[f];                                                                 \
                    o[f] = sign * v > sign * o[f] ? v : o[f];                                              \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }                                                                                                      \
}                                                                                                          \
                                                                                                           \
static void fwd_range_##SUF(const void *p, int64_t r0, int64_t r1) {                                       \
    const fwd_args_##SUF *a = (const fwd_args_##SUF *)p;                                                   \
    if (a->reduce <= 1) fwd_sum_##SUF(a->rowptr, a->col, a->w, a->x, a->out, a->F, a->reduce, r0, r1);      \
    else fwd_ext_##SUF(a->rowptr, a->col, a->w, a->x, a->out, a->arg, a->F,                                \
                       a->reduce == 2 ? (T)1 : (T)-1, r0, r1);                                             \
}                                                                                                          \
                                                                                                           \
/* Empty rows of arg get the sentinel E. */                                                                \
static void fill_empty_arg_##SUF(const I *rowptr, I *arg, int64_t nrows, int64_t F) {                      \
    const I sentinel = rowptr[nrows];                                                                      \
    for (int64_t i = 0; i < nrows; ++i)                                                                    \
        if (rowptr[i + 1] == rowptr[i]) for (int64_t f = 0; f < F; ++f) arg[i * F + f] = sentinel;         \
}                                                                                                          \
                                                                                                           \
void gr_fwd_##SUF(const I *rowptr, const I *col, const T *w, const T *x, T *out, I *arg,                   \
                  int64_t nrows, int64_t F, int reduce, int nthreads) {                                    \
    int64_t bounds[MAX_THREADS + 1];                                                                       \
    fwd_args_##SUF a = {rowptr, col, w, x, out, reduce >= 2 ? arg : 0, F, reduce};                         \
    nthreads = clamp_threads(nthreads);                                                                    \
    row_bounds_##SUF(rowptr, nrows, nthreads, bounds);                                                     \
    run_parallel(bounds, nthreads, &a, fwd_range_##SUF);                                                   \
    if (a.arg) fill_empty_arg_##SUF(rowptr, a.arg, nrows, F);                                              \
}                                                                                                          \
                                                                                                           \
typedef struct { const I *rowptr; const I *col; const T *g; const T *x; T *out; int64_t F; int mean; }     \
    sddmm_args_##SUF;                                                                                      \
                                                                                                           \
static void sddmm_rows_##SUF(const I *rowptr, const I *col, const T *g, const T *x, T *out, int64_t F,     \
                             int mean, int64_t r0, int64_t r1) {                                           \
    const int64_t e_end = rowptr[r1];                                                                      \
    for (int64_t i = r0; i < r1; ++i) {                                                                    \
        const int64_t e0 = rowptr[i], e1 = rowptr[i + 1];                                                  \
        const T scale = (mean && e1 - e0 > 1) ? (T)1 / (T)(e1 - e0) : (T)1;                                \
        const T *restrict gi = g + i * F;                                                                  \
        for (int64_t e = e0; e < e1; ++e) {                                                                \
            if (e + PREFETCH_DIST < e_end) PREFETCH_ROW(T, x, col, e + PREFETCH_DIST, F);                  \
            const T *restrict xr = x + (int64_t)col[e] * F;                                                \
            T acc = 0;                                                                                     \
            for (int64_t f = 0; f < F; ++f) acc += gi[f] * xr[f];                                          \
            out[e] = scale * acc;                                                                          \
        }                                                                                                  \
    }                                                                                                      \
}                                                                                                          \
                                                                                                           \
static void sddmm_range_##SUF(const void *p, int64_t r0, int64_t r1) {                                     \
    const sddmm_args_##SUF *a = (const sddmm_args_##SUF *)p;                                               \
    sddmm_rows_##SUF(a->rowptr, a->col, a->g, a->x, a->out, a->F, a->mean, r0, r1);                        \
}                                                                                                          \
                                                                                                           \
void gr_sddmm_##SUF(const I *rowptr, const I *col, const T *g, const T *x, T *out,                         \
                    int64_t nrows, int64_t F, int mean, int nthreads) {                                    \
    int64_t bounds[MAX_THREADS + 1];                                                                       \
    sddmm_args_##SUF a = {rowptr, col, g, x, out, F, mean};                                                \
    nthreads = clamp_threads(nthreads);                                                                    \
    row_bounds_##SUF(rowptr, nrows, nthreads, bounds);                                                     \
    run_parallel(bounds, nthreads, &a, sddmm_range_##SUF);                                                 \
}                                                                                                          \
                                                                                                           \
typedef struct { const I *col; const T *w; const I *arg; const T *g; const T *x; T *out;                   \
                 int64_t nrows, F, E; } argb_args_##SUF;                                                   \
                                                                                                           \
/* Features [f0, f1) of every row: grad_x[col[a], f] += w[a] * g[i, f]. */                                 \
static void arg_bwd_x_range_##SUF(const void *p, int64_t f0, int64_t f1) {                                 \
    const argb_args_##SUF *a = (const argb_args_##SUF *)p;                                                 \
    const I *col = a->col; const T *w = a->w; const I *arg = a->arg; const T *g = a->g; T *out = a->out;   \
    const int64_t F = a->F, E = a->E, nrows = a->nrows;                                                    \
    for (int64_t i = 0; i < nrows; ++i) {                                                                  \
        for (int64_t f = f0; f < f1; ++f) {                                                                \
            const int64_t e = (int64_t)arg[i * F + f];                                                     \
            if (e >= E) continue;                                                                          \
            const int64_t j = col ? (int64_t)col[e] : e;                                                   \
            out[j * F + f] += (w ? w[e] : (T)1) * g[i * F + f];                                            \
        }                                                                                                  \
    }                                                                                                      \
}                                                                                                          \
                                                                                                           \
void gr_arg_bwd_x_##SUF(const I *col, const T *w, const I *arg, const T *g, T *out,                        \
                        int64_t nrows, int64_t F, int64_t E, int nthreads) {                               \
    int64_t bounds[MAX_THREADS + 1];                                                                       \
    argb_args_##SUF a = {col, w, arg, g, 0, out, nrows, F, E};                                             \
    nthreads = clamp_threads(nthreads > F ? (int)F : nthreads);                                            \
    even_bounds(F, nthreads, bounds);                                                                      \
    run_parallel(bounds, nthreads, &a, arg_bwd_x_range_##SUF);                                             \
}                                                                                                          \
                                                                                                           \
/* Rows [r0, r1): grad_w[a] += g[i, f] * x[col[a], f]; arg edges of row i belong to row i. */              \
static void arg_bwd_w_range_##SUF(const void *p, int64_t r0, int64_t r1) {                                 \
    const argb_args_##SUF *a = (const argb_args_##SUF *)p;                                                 \
    const I *col = a->col; const I *arg = a->arg; const T *g = a->g; const T *x = a->x; T *out = a->out;   \
    const int64_t F = a->F, E = a->E;                                                                      \
    for (int64_t i = r0; i < r1; ++i) {                                                                    \
        for (int64_t f = 0; f < F; ++f) {                                                                  \
            const int64_t e = (int64_t)arg[i * F + f];                                                     \
            if (e >= E) continue;                                                                          \
            out[e] += g[i * F + f] * x[(int64_t)col[e] * F + f];                                           \
        }                                                                                                  \
    }                                                                                                      \
}                                                                                                          \
                                                                                                           \
void gr_arg_bwd_w_##SUF(const I *col, const I *arg, const T *g, const T *x, T *out,                        \
                        int64_t nrows, int64_t F, int64_t E, int nthreads) {                               \
    int64_t bounds[MAX_THREADS + 1];                                                                       \
    argb_args_##SUF a = {col, 0, arg, g, x, out, nrows, F, E};                                             \
    nthreads = clamp_threads(nthreads);                                                                    \
    even_bounds(nrows, nthreads, bounds);                                                                  \
    run_parallel(bounds, nthreads, &a, arg_bwd_w_range_##SUF);                                             \
}

DEFINE_KERNELS(float, int32_t, f32_i32)
DEFINE_KERNELS(float, int64_t, f32_i64)
DEFINE_KERNELS(double, int32_t, f64_i32)
DEFINE_KERNELS(double, int64_t, f64_i64)
"""

_FLAGS = ("-O3", "-shared", "-fPIC", "-pthread", "-std=c99")
_ARCH_FLAGS = ("-march=native",)
# Below this many multiply-adds (E * F) a single thread is faster than starting pthreads.
_PARALLEL_MIN_WORK = 1 << 16
_SUFFIX = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32", torch.int64: "i64"}
_REDUCE_CODE = {"sum": 0, "mean": 1, "max": 2, "min": 3}

_state: dict[str, object] = {"lib": None, "error": None, "tried": False, "enabled": None}


def _cpu_signature() -> str:
    """Machine + CPU flags, so a cache shared across machines never serves a library built for another CPU."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()}|{platform.system()}|{flags}"


def _cache_dir() -> Path:
    root = os.environ.get("GRAPHLAB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphlab")
    return Path(root) / "native"


def _compile(compiler: str, source: Path, target: Path) -> str | None:
    """Compile ``source`` into ``target`` atomically; returns an error message or ``None``."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    errors = []
    for extra in (_ARCH_FLAGS, ()):
        cmd = [compiler, *_FLAGS, *extra, str(source), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode == 0:
            os.replace(tmp, target)
            return None
        errors.append(proc.stderr.strip()[-2000:])
    return "; ".join(errors)


def _build() -> ctypes.CDLL:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler found (install gcc or set CC)")
    key = hashlib.sha256("\n".join([C_SOURCE, *_FLAGS, *_ARCH_FLAGS, compiler, _cpu_signature()]).encode())
    target = _cache_dir() / f"graphlab_ops_{key.hexdigest()[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            source = Path(tmp) / "graphlab_ops.c"
            source.write_text(C_SOURCE, encoding="utf-8")
            error = _compile(compiler, source, target)
        if error is not None:
            raise RuntimeError(f"compiling the native kernels failed: {error}")
    return _declare(ctypes.CDLL(str(target)))


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for t in ("f32", "f64"):
        for i in ("i32", "i64"):
            suf = f"{t}_{i}"
            getattr(lib, f"gr_fwd_{suf}").argtypes = [ptr] * 6 + [i64, i64, cint, cint]
            getattr(lib, f"gr_sddmm_{suf}").argtypes = [ptr] * 5 + [i64, i64, cint, cint]
            getattr(lib, f"gr_arg_bwd_x_{suf}").argtypes = [ptr] * 5 + [i64, i64, i64, cint]
            getattr(lib, f"gr_arg_bwd_w_{suf}").argtypes = [ptr] * 5 + [i64, i64, i64, cint]
            for name in ("gr_fwd", "gr_sddmm", "gr_arg_bwd_x", "gr_arg_bwd_w"):
                getattr(lib, f"{name}_{suf}").restype = None
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, building them on first call; ``None`` if they cannot be built."""
    if not _state["tried"]:
        _state["tried"] = True
        try:
            _state["lib"] = _build()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            _state["error"] = str(exc)
    return _state["lib"]  # type: ignore[return-value]


def unavailable_reason() -> str | None:
    """Why the native kernels are not used (``None`` when they are)."""
    if not enabled():
        return "disabled (GRAPHLAB_NATIVE=0 or use_native(False))"
    library()
    return _state["error"]  # type: ignore[return-value]


def enabled() -> bool:
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    return os.environ.get("GRAPHLAB_NATIVE", "1") != "0"


def available() -> bool:
    """Whether the CPU path will use the native kernels."""
    return enabled() and library() is not None


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


def supports(x: Tensor, index: Tensor) -> bool:
    """Dtypes/devices the native kernels handle: CPU, float32/float64 values, int32/int64 indices."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and index.dtype in (
        torch.int32, torch.int64
    )


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(work: int) -> int:
    return torch.get_num_threads() if work >= _PARALLEL_MIN_WORK else 1


def _fn(name: str, values: Tensor, index: Tensor):  # noqa: ANN202 - a ctypes function pointer
    lib = library()
    if lib is None:
        raise RuntimeError(f"native kernels unavailable: {_state['error']}")
    return getattr(lib, f"{name}_{_SUFFIX[values.dtype]}_{_SUFFIX[index.dtype]}")


def spmm(
    rowptr: Tensor, col: Tensor | None, weight: Tensor | None, x: Tensor, reduce: str, want_arg: bool
) -> tuple[Tensor, Tensor | None]:
    """``out[i] = reduce_e w_e x[col[e]]`` (``col=None``: ``x[e]``); ``arg`` [N, F] in ``col``'s dtype or ``None``.

    All tensors must be contiguous CPU tensors; ``rowptr`` must have ``col``'s dtype (``rowptr``'s when
    ``col`` is ``None``) and ``weight`` ``x``'s dtype.
    """
    index = rowptr if col is None else col
    num_rows, feat = rowptr.numel() - 1, x.size(1)
    out = x.new_empty((num_rows, feat))
    arg = None
    if want_arg and reduce in ("max", "min"):
        arg = torch.empty((num_rows, feat), dtype=index.dtype)
    num_edges = int(rowptr[-1])
    _fn("gr_fwd", x, index)(
        _ptr(rowptr), _ptr(col), _ptr(weight), _ptr(x), _ptr(out), _ptr(arg),
        num_rows, feat, _REDUCE_CODE[reduce], _threads(num_edges * max(feat, 1)),
    )
    return out, arg


def sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    """``s[e] = c_i <grad[i], x[col[e]]>`` with ``c_i = 1/max(deg_i, 1)`` if ``mean`` else 1."""
    out = x.new_empty(col.numel())
    _fn("gr_sddmm", x, col)(
        _ptr(rowptr), _ptr(col), _ptr(grad), _ptr(x), _ptr(out),
        rowptr.numel() - 1, x.size(1), int(mean), _threads(col.numel() * max(x.size(1), 1)),
    )
    return out


def arg_backward_x(
    col: Tensor | None, weight: Tensor | None, arg: Tensor, grad: Tensor, num_src: int, num_edges: int
) -> Tensor:
    """``grad_x[col[a], f] += w[a] grad[i, f]`` for ``a = arg[i, f] < E`` (``col=None``: ``grad_x[a, f]``)."""
    out = grad.new_zeros((num_src, grad.size(1)))
    _fn("gr_arg_bwd_x", grad, arg)(
        _ptr(col), _ptr(weight), _ptr(arg), _ptr(grad), _ptr(out),
        arg.size(0), grad.size(1), num_edges, _threads(grad.numel()),
    )
    return out


def arg_backward_w(col: Tensor, arg: Tensor, grad: Tensor, x: Tensor) -> Tensor:
    """``grad_w[a] += grad[i, f] x[col[a], f]`` for ``a = arg[i, f] < E``."""
    out = x.new_zeros(col.numel())
    _fn("gr_arg_bwd_w", x, col)(
        _ptr(col), _ptr(arg), _ptr(grad), _ptr(x), _ptr(out),
        arg.size(0), grad.size(1), col.numel(), _threads(grad.numel()),
    )
    return out
