r"""Native CPU kernels for gather-reduce, compiled on first use from the C source in this file.

Why: ``torch.sparse.mm(csr, x, reduce)`` is row-parallel but does not hide the latency of the random row gathers
``x[col[e]]``, does not return the arg edge that ``max``/``min`` need for backward, and its backward rebuilds the
transpose every call. The kernels below are plain C99 + pthreads (no torch headers, no OpenMP runtime), so they
build in a few seconds with the system C compiler and never touch the network. The source is written once as a
template (:data:`C_TYPED`, :data:`C_TILE`, :data:`C_KERNELS`) and instantiated for ``T`` = float/double and
``I`` = int32/int64 indices.

Kernels (rows are cut into chunks of similar cost, ``edges + rows``, that threads claim dynamically):

* ``gr_fwd``: :math:`\mathrm{out}_i = \bigoplus_{e \in \mathrm{row}\ i} w_e s_{\mathrm{col}_e} x_{\mathrm{col}_e}`
  for sum / mean / max / min (``s`` an optional per-source scale, used by the mean backward). Each row is done
  feature tile by feature tile (32, then 8, then the rest), the tile's accumulators stay in registers while the
  row's edges stream by, and the source row ``PREFETCH_DIST`` edges ahead is prefetched. For max/min it can write
  the arg edge per (row, feature) as int32 (first edge in CSR order attaining the extremum; ``E`` for empty
  rows). ``col = NULL`` means the identity (segment reduction of ``src`` rows).
* ``gr_sddmm``: :math:`s_e = c_i \langle g_i, x_{\mathrm{col}_e} \rangle` with :math:`c_i = 1` or
  :math:`1/\max(\deg_i, 1)` (mean), the gradient w.r.t. edge weights.
* ``gr_arg_bwd_x``: :math:`\partial x_{\mathrm{col}_a, f} \mathrel{+}= w_a g_{i,f}` for :math:`a = \arg_{i,f}`;
  threads own disjoint feature ranges, so no two threads write the same entry (no atomics).
* ``gr_arg_bwd_w``: :math:`\partial w_a \mathrel{+}= g_{i,f} x_{\mathrm{col}_a, f}`; chunks of rows (an arg edge
  belongs to its row, so again no conflicts).

Build: the shared library is cached under ``$GRAPHLAB_CACHE_DIR`` (default ``~/.cache/graphlab``) in a file named
by a hash of the source, the flags, the compiler and the CPU, written atomically (temp file + rename).
``GRAPHLAB_NATIVE=0`` disables the kernels (the CPU path then uses :mod:`graphlab.ops._cpu`'s torch-only
implementation); so does a missing or failing compiler, with the reason in :func:`unavailable_reason`.
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

C_PRELUDE = r"""
#include <stdint.h>
#include <pthread.h>

#define MAX_THREADS 64
#define PREFETCH_DIST 16  /* edges ahead: best of 4/8/16/32 measured at E = 1e6, F in 16..256 */
#define CACHE_LINE 64
#define ARG_PREFETCH_ROWS 2  /* rows ahead in the max/min backward scatter */

typedef void (*range_fn)(const void *args, int64_t begin, int64_t end);

/* Work is cut into up to CHUNKS_PER_THREAD * nthreads ranges of similar cost that threads claim one at a time
   (an atomic counter), so a thread slowed down by other processes on a shared machine does not hold up the
   others as it would with one static range per thread. */
#define CHUNKS_PER_THREAD 16
#define MAX_CHUNKS (CHUNKS_PER_THREAD * MAX_THREADS)

typedef struct {
    const void *args; range_fn fn; const int64_t *bounds; int64_t nchunks; int64_t next;
} pool_t;

static void *run_worker(void *p) {
    pool_t *pool = (pool_t *)p;
    for (;;) {
        const int64_t c = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
        if (c >= pool->nchunks) break;
        if (pool->bounds[c + 1] > pool->bounds[c]) pool->fn(pool->args, pool->bounds[c], pool->bounds[c + 1]);
    }
    return 0;
}

/* Run fn over the ranges [bounds[c], bounds[c+1]) for c < nchunks on nthreads threads (the caller is one). */
static void run_parallel(const int64_t *bounds, int64_t nchunks, int nthreads, const void *args, range_fn fn) {
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS];
    pool_t pool = {args, fn, bounds, nchunks, 0};
    for (int t = 1; t < nthreads; ++t) started[t] = pthread_create(&threads[t], 0, run_worker, &pool) == 0;
    run_worker(&pool);
    for (int t = 1; t < nthreads; ++t)
        if (started[t]) pthread_join(threads[t], 0);
}

static int clamp_threads(int nthreads) {
    if (nthreads < 1) return 1;
    return nthreads > MAX_THREADS ? MAX_THREADS : nthreads;
}

static void even_bounds(int64_t n, int64_t nparts, int64_t *bounds) {
    for (int64_t t = 0; t <= nparts; ++t) bounds[t] = n * t / nparts;
}

/* Prefetch every cache line of source row `e` (x row col[e], or row e when col is NULL). */
#define PREFETCH_ROW(T, x, col, e, F)                                                                       \
    do {                                                                                                   \
        const char *pf_ = (const char *)((x) + ((col) ? (int64_t)(col)[e] : (int64_t)(e)) * (F));          \
        for (int64_t b_ = 0; b_ < (F) * (int64_t)sizeof(T); b_ += CACHE_LINE) __builtin_prefetch(pf_ + b_); \
    } while (0)
"""

# Per value type T and index type I (@S@ = suffix). Hot loops read locals only: with struct fields GCC reloads
# them every iteration.
C_TYPED = r"""
/* nparts row ranges with about the same cost rowptr[i] + i (edges + rows) each. */
static void row_bounds_@S@(const @I@ *rowptr, int64_t nrows, int64_t nparts, int64_t *bounds) {
    const int64_t total = (int64_t)rowptr[nrows] + nrows;
    bounds[0] = 0;
    for (int64_t t = 1; t < nparts; ++t) {
        const int64_t target = total * t / nparts;
        int64_t lo = bounds[t - 1], hi = nrows;
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if ((int64_t)rowptr[mid] + mid < target) lo = mid + 1; else hi = mid;
        }
        bounds[t] = lo;
    }
    bounds[nparts] = nrows;
}

/* Chunks for nthreads threads over nrows rows. */
static int64_t row_chunks_@S@(const @I@ *rowptr, int64_t nrows, int nthreads, int64_t *bounds) {
    int64_t nchunks = nthreads > 1 ? (int64_t)nthreads * CHUNKS_PER_THREAD : 1;
    if (nchunks > nrows) nchunks = nrows > 0 ? nrows : 1;
    row_bounds_@S@(rowptr, nrows, nchunks, bounds);
    return nchunks;
}
"""

# One feature tile of one row: TL features kept in registers while the row's edges stream by (feature tiles
# outer, edges inner). Tiles of 32 and 8 lanes plus a variable tail (@TL@ = "tail": len < 8).
C_TILE = r"""
static inline void sum_@TL@_@S@(const @I@ *col, const @T@ *wp, const @T@ *ss, const @T@ *x, int64_t F, int64_t f0,
                                int64_t len, int64_t e0, int64_t e1, int64_t e_end, int prefetch, @T@ scale,
                                @T@ *restrict o) {
    @T@ acc[@N@];
    (void)len;
    for (int64_t t = 0; t < @LEN@; ++t) acc[t] = 0;
    for (int64_t e = e0; e < e1; ++e) {
        if (prefetch && e + PREFETCH_DIST < e_end) PREFETCH_ROW(@T@, x, col, e + PREFETCH_DIST, F);
        const int64_t j = col ? (int64_t)col[e] : e;
        const @T@ *restrict xr = x + j * F + f0;
        const @T@ w = (wp ? wp[e] : (@T@)1) * (ss ? ss[j] : (@T@)1);
        for (int64_t t = 0; t < @LEN@; ++t) acc[t] += w * xr[t];
    }
    for (int64_t t = 0; t < @LEN@; ++t) o[t] = acc[t] * scale;
}

/* max (OP >) / min (OP <): the first edge initialises, later edges win only when strictly better, so the arg
   is the first edge in CSR order that attains the extremum. */
static inline void ext_@TL@_@S@(const @I@ *col, const @T@ *wp, const @T@ *x, int64_t F, int64_t f0, int64_t len,
                                int64_t e0, int64_t e1, int64_t e_end, int prefetch, int is_max,
                                @T@ *restrict o, int32_t *restrict ag) {
    @T@ acc[@N@];
    int32_t ai[@N@];
    (void)len;
    const @T@ *restrict x0 = x + (col ? (int64_t)col[e0] : e0) * F + f0;
    const @T@ w0 = wp ? wp[e0] : (@T@)1;
    for (int64_t t = 0; t < @LEN@; ++t) { acc[t] = w0 * x0[t]; ai[t] = (int32_t)e0; }
    for (int64_t e = e0 + 1; e < e1; ++e) {
        if (prefetch && e + PREFETCH_DIST < e_end) PREFETCH_ROW(@T@, x, col, e + PREFETCH_DIST, F);
        const @T@ *restrict xr = x + (col ? (int64_t)col[e] : e) * F + f0;
        const @T@ w = wp ? wp[e] : (@T@)1;
        const int32_t ei = (int32_t)e;
        if (is_max) {
            for (int64_t t = 0; t < @LEN@; ++t) {
                const @T@ v = w * xr[t];
                const int32_t m = -(int32_t)(v > acc[t]);
                acc[t] = v > acc[t] ? v : acc[t];
                ai[t] = (ei & m) | (ai[t] & ~m);
            }
        } else {
            for (int64_t t = 0; t < @LEN@; ++t) {
                const @T@ v = w * xr[t];
                const int32_t m = -(int32_t)(v < acc[t]);
                acc[t] = v < acc[t] ? v : acc[t];
                ai[t] = (ei & m) | (ai[t] & ~m);
            }
        }
    }
    for (int64_t t = 0; t < @LEN@; ++t) o[t] = acc[t];
    if (ag) for (int64_t t = 0; t < @LEN@; ++t) ag[t] = ai[t];
}
"""

C_KERNELS = r"""
typedef struct {
    const @I@ *rowptr; const @I@ *col; const @T@ *w; const @T@ *ss; const @T@ *x; @T@ *out; int32_t *arg;
    int64_t F; int reduce;
} fwd_args_@S@;

static inline void tile_@S@(const fwd_args_@S@ *a, int64_t f0, int64_t len, int64_t e0, int64_t e1,
                            int64_t e_end, @T@ scale, @T@ *o, int32_t *ag) {
    const int prefetch = f0 == 0;
    if (a->reduce <= 1) {
        if (len == 32) sum_32_@S@(a->col, a->w, a->ss, a->x, a->F, f0, len, e0, e1, e_end, prefetch, scale, o);
        else if (len == 8) sum_8_@S@(a->col, a->w, a->ss, a->x, a->F, f0, len, e0, e1, e_end, prefetch, scale, o);
        else sum_tail_@S@(a->col, a->w, a->ss, a->x, a->F, f0, len, e0, e1, e_end, prefetch, scale, o);
    } else {
        const int is_max = a->reduce == 2;
        if (len == 32) ext_32_@S@(a->col, a->w, a->x, a->F, f0, len, e0, e1, e_end, prefetch, is_max, o, ag);
        else if (len == 8) ext_8_@S@(a->col, a->w, a->x, a->F, f0, len, e0, e1, e_end, prefetch, is_max, o, ag);
        else ext_tail_@S@(a->col, a->w, a->x, a->F, f0, len, e0, e1, e_end, prefetch, is_max, o, ag);
    }
}

/* Rows [r0, r1): sum (0) / mean (1) / max (2) / min (3); empty rows give 0 (and the arg sentinel E). */
static void fwd_range_@S@(const void *p, int64_t r0, int64_t r1) {
    const fwd_args_@S@ *a = (const fwd_args_@S@ *)p;
    const int64_t F = a->F, e_end = a->rowptr[r1];
    for (int64_t i = r0; i < r1; ++i) {
        const int64_t e0 = a->rowptr[i], e1 = a->rowptr[i + 1];
        @T@ *o = a->out + i * F;
        int32_t *ag = a->arg ? a->arg + i * F : 0;
        if (e1 == e0 && a->reduce >= 2) {
            for (int64_t f = 0; f < F; ++f) o[f] = 0;
            continue;
        }
        const @T@ scale = (a->reduce == 1 && e1 - e0 > 1) ? (@T@)1 / (@T@)(e1 - e0) : (@T@)1;
        int64_t f0 = 0;
        for (; f0 + 32 <= F; f0 += 32) tile_@S@(a, f0, 32, e0, e1, e_end, scale, o + f0, ag ? ag + f0 : 0);
        for (; f0 + 8 <= F; f0 += 8) tile_@S@(a, f0, 8, e0, e1, e_end, scale, o + f0, ag ? ag + f0 : 0);
        if (f0 < F) tile_@S@(a, f0, F - f0, e0, e1, e_end, scale, o + f0, ag ? ag + f0 : 0);
    }
}

/* Empty rows of arg get the sentinel E. */
static void fill_empty_arg_@S@(const @I@ *rowptr, int32_t *arg, int64_t nrows, int64_t F) {
    const int32_t sentinel = (int32_t)rowptr[nrows];
    for (int64_t i = 0; i < nrows; ++i)
        if (rowptr[i + 1] == rowptr[i]) for (int64_t f = 0; f < F; ++f) arg[i * F + f] = sentinel;
}

/* ss (sum/mean only, may be NULL) scales each source row: w_e * ss[col[e]]. */
void gr_fwd_@S@(const @I@ *rowptr, const @I@ *col, const @T@ *w, const @T@ *ss, const @T@ *x, @T@ *out,
                int32_t *arg, int64_t nrows, int64_t F, int reduce, int nthreads) {
    int64_t bounds[MAX_CHUNKS + 1];
    fwd_args_@S@ a = {rowptr, col, w, ss, x, out, reduce >= 2 ? arg : 0, F, reduce};
    nthreads = clamp_threads(nthreads);
    const int64_t nchunks = row_chunks_@S@(rowptr, nrows, nthreads, bounds);
    run_parallel(bounds, nchunks, nthreads, &a, fwd_range_@S@);
    if (a.arg) fill_empty_arg_@S@(rowptr, a.arg, nrows, F);
}

typedef struct { const @I@ *rowptr; const @I@ *col; const @T@ *g; const @T@ *x; @T@ *out; int64_t F; int mean; }
    sddmm_args_@S@;

/* Rows [r0, r1): out[e] = c_i <g_i, x_col[e]>. */
static void sddmm_range_@S@(const void *p, int64_t r0, int64_t r1) {
    const sddmm_args_@S@ *a = (const sddmm_args_@S@ *)p;
    const @I@ *rowptr = a->rowptr, *col = a->col;
    const @T@ *g = a->g, *x = a->x;
    @T@ *out = a->out;
    const int64_t F = a->F, e_end = rowptr[r1];
    for (int64_t i = r0; i < r1; ++i) {
        const int64_t e0 = rowptr[i], e1 = rowptr[i + 1];
        const @T@ scale = (a->mean && e1 - e0 > 1) ? (@T@)1 / (@T@)(e1 - e0) : (@T@)1;
        const @T@ *restrict gi = g + i * F;
        for (int64_t e = e0; e < e1; ++e) {
            if (e + PREFETCH_DIST < e_end) PREFETCH_ROW(@T@, x, col, e + PREFETCH_DIST, F);
            const @T@ *restrict xr = x + (int64_t)col[e] * F;
            @T@ acc = 0;
            for (int64_t f = 0; f < F; ++f) acc += gi[f] * xr[f];
            out[e] = scale * acc;
        }
    }
}

void gr_sddmm_@S@(const @I@ *rowptr, const @I@ *col, const @T@ *g, const @T@ *x, @T@ *out,
                  int64_t nrows, int64_t F, int mean, int nthreads) {
    int64_t bounds[MAX_CHUNKS + 1];
    sddmm_args_@S@ a = {rowptr, col, g, x, out, F, mean};
    nthreads = clamp_threads(nthreads);
    const int64_t nchunks = row_chunks_@S@(rowptr, nrows, nthreads, bounds);
    run_parallel(bounds, nchunks, nthreads, &a, sddmm_range_@S@);
}

typedef struct { const @I@ *rowptr; const @I@ *col; const @T@ *w; const int32_t *arg; const @T@ *g; const @T@ *x;
                 @T@ *out; int64_t nrows, F, E, nsrc; } argb_args_@S@;

/* Prefetch features [f0, f1) of the rows that the edges of row i read (grad_x rows for the arg edges are among
   them): the scatter below is random access, so fetch ARG_PREFETCH_ROWS rows ahead. */
static inline void prefetch_neighbours_@S@(const @I@ *rowptr, const @I@ *col, const @T@ *base, int64_t i,
                                           int64_t nrows, int64_t F, int64_t f0, int64_t f1, int write) {
    if (i >= nrows) return;
    for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
        const char *p = (const char *)(base + (col ? (int64_t)col[e] : e) * F + f0);
        for (int64_t b = 0; b < (f1 - f0) * (int64_t)sizeof(@T@); b += CACHE_LINE) {
            if (write) __builtin_prefetch(p + b, 1);
            else __builtin_prefetch(p + b, 0);
        }
    }
}

/* Features [f0, f1) of every row: grad_x[col[a], f] += w[a] g[i, f] (threads own features: no conflicts). */
static void arg_bwd_x_range_@S@(const void *p, int64_t f0, int64_t f1) {
    const argb_args_@S@ *a = (const argb_args_@S@ *)p;
    const @I@ *rowptr = a->rowptr, *col = a->col;
    const @T@ *w = a->w, *g = a->g;
    const int32_t *arg = a->arg;
    @T@ *out = a->out;
    const int64_t F = a->F, E = a->E, nrows = a->nrows;
    for (int64_t i = 0; i < a->nsrc; ++i)
        for (int64_t f = f0; f < f1; ++f) out[i * F + f] = 0;  /* this thread's features of grad_x */
    for (int64_t i = 0; i < nrows; ++i) {
        prefetch_neighbours_@S@(rowptr, col, out, i + ARG_PREFETCH_ROWS, nrows, F, f0, f1, 1);
        for (int64_t f = f0; f < f1; ++f) {
            const int64_t e = arg[i * F + f];
            if (e >= E) continue;
            const int64_t j = col ? (int64_t)col[e] : e;
            out[j * F + f] += (w ? w[e] : (@T@)1) * g[i * F + f];
        }
    }
}

/* out (grad_x, [nsrc, F]) need not be initialised: each thread zeroes its features first. */
void gr_arg_bwd_x_@S@(const @I@ *rowptr, const @I@ *col, const @T@ *w, const int32_t *arg, const @T@ *g,
                      @T@ *out, int64_t nrows, int64_t F, int64_t E, int64_t nsrc, int nthreads) {
    int64_t bounds[MAX_THREADS + 1];
    argb_args_@S@ a = {rowptr, col, w, arg, g, 0, out, nrows, F, E, nsrc};
    nthreads = clamp_threads(nthreads > F ? (int)F : nthreads);
    even_bounds(F, nthreads, bounds);  /* features are owned, not shared: one range per thread */
    run_parallel(bounds, nthreads, nthreads, &a, arg_bwd_x_range_@S@);
}

/* Rows [r0, r1): grad_w[a] += g[i, f] x[col[a], f]; the arg edges of row i belong to row i (no conflicts). */
static void arg_bwd_w_range_@S@(const void *p, int64_t r0, int64_t r1) {
    const argb_args_@S@ *a = (const argb_args_@S@ *)p;
    const @I@ *rowptr = a->rowptr, *col = a->col;
    const int32_t *arg = a->arg;
    const @T@ *g = a->g, *x = a->x;
    @T@ *out = a->out;
    const int64_t F = a->F, E = a->E;
    for (int64_t e = rowptr[r0]; e < rowptr[r1]; ++e) out[e] = 0;  /* the edges of these rows */
    for (int64_t i = r0; i < r1; ++i) {
        prefetch_neighbours_@S@(rowptr, col, x, i + ARG_PREFETCH_ROWS, r1, F, 0, F, 0);
        for (int64_t f = 0; f < F; ++f) {
            const int64_t e = arg[i * F + f];
            if (e >= E) continue;
            out[e] += g[i * F + f] * x[(int64_t)col[e] * F + f];
        }
    }
}

/* out (grad_w, [E]) need not be initialised: each chunk zeroes its rows' edges first. */
void gr_arg_bwd_w_@S@(const @I@ *rowptr, const @I@ *col, const int32_t *arg, const @T@ *g, const @T@ *x,
                      @T@ *out, int64_t nrows, int64_t F, int64_t E, int nthreads) {
    int64_t bounds[MAX_CHUNKS + 1];
    argb_args_@S@ a = {rowptr, col, 0, arg, g, x, out, nrows, F, E, 0};
    nthreads = clamp_threads(nthreads);
    const int64_t nchunks = row_chunks_@S@(rowptr, nrows, nthreads, bounds);
    run_parallel(bounds, nchunks, nthreads, &a, arg_bwd_w_range_@S@);
}
"""

_TYPES = {"f32": "float", "f64": "double"}
_INDICES = {"i32": "int32_t", "i64": "int64_t"}
_TILES = (("32", "32", "32"), ("8", "8", "8"), ("tail", "8", "len"))  # (name, array size, loop bound)


def _instantiate(template: str, **subs: str) -> str:
    for key, value in subs.items():
        template = template.replace(f"@{key}@", value)
    return template


def c_source() -> str:
    """The complete C translation unit: the prelude, then every (value, index) instantiation."""
    parts = [C_PRELUDE]
    for t_suf, t_name in _TYPES.items():
        for i_suf, i_name in _INDICES.items():
            subs = dict(T=t_name, I=i_name, S=f"{t_suf}_{i_suf}")
            parts.append(_instantiate(C_TYPED, **subs))
            for tile, size, bound in _TILES:
                parts.append(_instantiate(C_TILE, TL=tile, N=size, LEN=bound, **subs))
            parts.append(_instantiate(C_KERNELS, **subs))
    return "".join(parts)


C_SOURCE = c_source()

_FLAGS = ("-O3", "-shared", "-fPIC", "-pthread", "-std=c99")
_ARCH_FLAGS = ("-march=native",)
# Below this many multiply-adds (E * F) a single thread is faster than starting pthreads.
_PARALLEL_MIN_WORK = 1 << 16
_SUFFIX = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32", torch.int64: "i64"}
_REDUCE_CODE = {"sum": 0, "mean": 1, "max": 2, "min": 3}
MAX_ARG_EDGES = 2**31 - 1

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
            getattr(lib, f"gr_fwd_{suf}").argtypes = [ptr] * 7 + [i64, i64, cint, cint]
            getattr(lib, f"gr_sddmm_{suf}").argtypes = [ptr] * 5 + [i64, i64, cint, cint]
            getattr(lib, f"gr_arg_bwd_x_{suf}").argtypes = [ptr] * 6 + [i64, i64, i64, i64, cint]
            getattr(lib, f"gr_arg_bwd_w_{suf}").argtypes = [ptr] * 6 + [i64, i64, i64, cint]
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


def supports(x: Tensor, index: Tensor, num_edges: int, reduce: str) -> bool:
    """What the native kernels handle: CPU, float32/float64 values, int32/int64 indices, and for max/min at most
    ``2**31 - 1`` edges (the arg edges are stored as int32: half the memory traffic of int64, and an arg blend as
    wide as the float one)."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and index.dtype in (torch.int32, torch.int64)
        and (reduce in ("sum", "mean") or num_edges <= MAX_ARG_EDGES)
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
    rowptr: Tensor, col: Tensor | None, weight: Tensor | None, x: Tensor, reduce: str, want_arg: bool,
    src_scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``out[i] = reduce_e w_e s_{col[e]} x[col[e]]`` (``col=None``: ``x[e]``; ``s`` = ``src_scale``, sum/mean
    only, default 1); ``arg`` [N, F] int32 (``E`` = empty row) for max/min when ``want_arg``, else ``None``.

    All tensors must be contiguous CPU tensors; ``rowptr`` must have ``col``'s dtype (``rowptr``'s when
    ``col`` is ``None``) and ``weight`` ``x``'s dtype.
    """
    index = rowptr if col is None else col
    num_rows, feat = rowptr.numel() - 1, x.size(1)
    out = x.new_empty((num_rows, feat))
    num_edges = int(rowptr[-1])
    arg = None
    if want_arg and reduce in ("max", "min"):
        if num_edges > MAX_ARG_EDGES:
            raise RuntimeError(f"the native max/min kernels store int32 arg edges; {num_edges} edges is too many")
        arg = torch.empty((num_rows, feat), dtype=torch.int32)
    _fn("gr_fwd", x, index)(
        _ptr(rowptr), _ptr(col), _ptr(weight), _ptr(src_scale), _ptr(x), _ptr(out), _ptr(arg),
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
    rowptr: Tensor, col: Tensor | None, weight: Tensor | None, arg: Tensor, grad: Tensor, num_src: int,
    num_edges: int,
) -> Tensor:
    """``grad_x[col[a], f] += w[a] grad[i, f]`` for ``a = arg[i, f] < E`` (``col=None``: ``grad_x[a, f]``)."""
    out = grad.new_empty((num_src, grad.size(1)))  # zeroed by the kernel
    _fn("gr_arg_bwd_x", grad, rowptr)(
        _ptr(rowptr), _ptr(col), _ptr(weight), _ptr(arg), _ptr(grad), _ptr(out),
        arg.size(0), grad.size(1), num_edges, num_src, _threads(grad.numel()),
    )
    return out


def arg_backward_w(rowptr: Tensor, col: Tensor, arg: Tensor, grad: Tensor, x: Tensor) -> Tensor:
    """``grad_w[a] += grad[i, f] x[col[a], f]`` for ``a = arg[i, f] < E``."""
    out = x.new_empty(col.numel())  # zeroed by the kernel
    _fn("gr_arg_bwd_w", x, col)(
        _ptr(rowptr), _ptr(col), _ptr(arg), _ptr(grad), _ptr(x), _ptr(out),
        arg.size(0), grad.size(1), col.numel(), _threads(grad.numel()),
    )
    return out
