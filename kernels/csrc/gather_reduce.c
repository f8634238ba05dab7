/* Native CPU kernels of graphlab.ops.gather_reduce (and segment_reduce, its col = NULL case).
 *
 * Plain C99 + pthreads, no torch headers: graphlab/ops/_native.py compiles this file on first use with the
 * system C compiler and calls the exported functions through ctypes. The kernels are written once for generic
 * REAL / INDEX types (gather_reduce_typed.inc, gather_reduce_tile.inc) and included below for
 * float/double x int32_t/int64_t; the exported names are gr_fwd_f32_i32, gr_sddmm_f64_i64, ...
 *
 *   gr_fwd        out_i = (+)_{e in row i} w_e s_{col_e} x_{col_e}   for sum / mean / max / min (+ arg edges)
 *   gr_sddmm      s_e = c_i <g_i, x_{col_e}>                         (gradient w.r.t. the edge weights)
 *   gr_arg_bwd_x  grad_x[col_a, f] += w_a g_{i,f}, a = arg_{i,f}    (max/min backward, threads own features)
 *   gr_arg_bwd_w  grad_w[a] += g_{i,f} x_{col_a, f}                 (max/min backward, chunks of rows)
 *
 * Memory-level design (issue 18; the measurements are in benchmarks/results/aggregate-experiments.md):
 *   - gr_fwd keeps a feature tile of up to 64 accumulators in registers while a row's edges stream by, and the
 *     first tile prefetches the head of source rows PREFETCH_DIST edges ahead (the L2 streamer brings the rest);
 *   - work is claimed in chunks of similar edge + row count; a hub row longer than one chunk's share is cut
 *     into pieces with private partial rows, combined in edge order afterwards (plan_items, combine_pieces);
 *     gr_sddmm is split by edges (its outputs are per edge, nothing to combine);
 *   - gr_arg_bwd_x gives each thread whole cache lines of features and runs a row's features as one
 *     conflict-free gather/scatter loop (IVDEP).
 *
 * The caller (graphlab/ops/_native.py) checks every pointer's dtype, device, contiguity and size first. */

#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>

#define MAX_THREADS 64
#ifndef PREFETCH_DIST
#define PREFETCH_DIST 16  /* edges ahead: best of 4/8/16/32 measured at E = 1e6, F in 16..256 */
#endif
#define CACHE_LINE 64
#ifndef ARG_PREFETCH_ROWS
#define ARG_PREFETCH_ROWS 2  /* rows ahead in the max/min backward scatter */
#endif

typedef void (*range_fn)(const void *args, int64_t begin, int64_t end);

/* Work is cut into up to CHUNKS_PER_THREAD * nthreads ranges of similar cost that threads claim one at a time
   (an atomic counter), so a thread slowed down by other processes on a shared machine does not hold up the
   others as it would with one static range per thread. */
#ifndef CHUNKS_PER_THREAD
#define CHUNKS_PER_THREAD 16
#endif
#define MAX_CHUNKS (CHUNKS_PER_THREAD * MAX_THREADS)

/* A unit of gr_fwd work: rows [r0, r1) written straight to out (piece < 0), or the edges [e0, e1) of the one hub
   row r0 reduced into partial slot `piece` (see plan_items in gather_reduce_typed.inc). */
typedef struct { int64_t r0, r1, e0, e1, piece; } work_item_t;

/* Rows with more edges than this (or than one chunk's share of the work, if larger) are split across threads. */
#ifndef HUB_MIN_EDGES
#define HUB_MIN_EDGES 256
#endif

typedef struct {
    const void *args; range_fn fn; const int64_t *bounds; int64_t nchunks; int64_t next;
} pool_t;

static void *run_worker(void *p) {
    pool_t *pool = (pool_t *)p;
    for (;;) {
        const int64_t c = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
        if (c >= pool->nchunks) break;
        if (!pool->bounds) pool->fn(pool->args, c, c + 1);
        else if (pool->bounds[c + 1] > pool->bounds[c]) pool->fn(pool->args, pool->bounds[c], pool->bounds[c + 1]);
    }
    return 0;
}

/* Run fn over the ranges [bounds[c], bounds[c+1]) for c < nchunks on nthreads threads (the caller is one);
   bounds = NULL means the ranges [c, c+1). */
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

/* Prefetch the first PREFETCH_ROW_BYTES of source row `e` (x row col[e], or row e when col is NULL): the
   hardware's L2 streamer follows a row once its first lines are requested, and asking for every line of a wide
   row at once fills the core's few line-fill buffers with one row (measured: prefetching 128 bytes instead of
   the whole row is 15-33% faster at F = 16..256, benchmarks/results/aggregate-experiments.md #13). */
#ifndef PREFETCH_ROW_BYTES
#define PREFETCH_ROW_BYTES 128
#endif
#define PREFETCH_ROW(T, x, col, e, F)                                                                       \
    do {                                                                                                   \
        const char *pf_ = (const char *)((x) + ((col) ? (int64_t)(col)[e] : (int64_t)(e)) * (F));          \
        const int64_t n_ = (F) * (int64_t)sizeof(T) < PREFETCH_ROW_BYTES ? (F) * (int64_t)sizeof(T)         \
                                                                         : PREFETCH_ROW_BYTES;             \
        for (int64_t b_ = 0; b_ < n_; b_ += CACHE_LINE) __builtin_prefetch(pf_ + b_);                      \
    } while (0)

/* Marks a loop whose iterations touch distinct addresses the compiler cannot prove distinct, so that it may
   vectorise it (gather / scatter); without OpenMP's `omp simd`. */
#if defined(__clang__)
#define IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define IVDEP _Pragma("GCC ivdep")
#else
#define IVDEP
#endif

/* ---------------------------------------------------------------- instantiations */

#define GL_CAT2_(a, b) a##_##b
#define GL_CAT2(a, b) GL_CAT2_(a, b)
#define GL_CAT3_(a, b, c) a##_##b##_##c
#define GL_CAT3(a, b, c) GL_CAT3_(a, b, c)
#define NAME(base) GL_CAT3(base, REAL_SUFFIX, INDEX_SUFFIX)
#define TILE_NAME(kind) NAME(GL_CAT2(kind, TILE_SUFFIX))

#define REAL float
#define REAL_SUFFIX f32
#define INDEX int32_t
#define INDEX_SUFFIX i32
#include "gather_reduce_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef INDEX
#undef INDEX_SUFFIX

#define REAL float
#define REAL_SUFFIX f32
#define INDEX int64_t
#define INDEX_SUFFIX i64
#include "gather_reduce_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef INDEX
#undef INDEX_SUFFIX

#define REAL double
#define REAL_SUFFIX f64
#define INDEX int32_t
#define INDEX_SUFFIX i32
#include "gather_reduce_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef INDEX
#undef INDEX_SUFFIX

#define REAL double
#define REAL_SUFFIX f64
#define INDEX int64_t
#define INDEX_SUFFIX i64
#include "gather_reduce_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef INDEX
#undef INDEX_SUFFIX

