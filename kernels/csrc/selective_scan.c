/* Native CPU kernel of graphlab.ops.selective_scan (issue 15): Mamba's selective scan, sequential in time,
 * parallel over (batch, channel) pairs.
 *
 * Per pair (b, d), state h in R^N, h_{-1} = 0 (u, dt already biased / softplus-ed / masked by the caller):
 *
 *   a_t = exp(dt_t A_d),   h_t = a_t * h_{t-1} + dt_t u_t B_t,   y_t = <C_t, h_t>
 *
 * ss_fwd   y [Bt, D, L], the last state [Bt, D, N], and (when ckpt != NULL) the state entering every chunk of K
 *          positions, ckpt [Bt, D, ceil(L / K), N], for the backward.
 * ss_bwd   the adjoint lambda_t = dL/dh_t runs backwards, lambda_t = a_{t+1} lambda_{t+1} + C_t g_t (+ the last
 *          state's gradient at t = L - 1); per chunk the states are recomputed from its checkpoint into a K x N
 *          buffer. With q_t = lambda_t * a_t * h_{t-1}, s_t = <lambda_t, B_t>:
 *            du_t = dt_t s_t,  ddt_t = u_t s_t + <A_d, q_t>,  dA_d += sum_t dt_t q_t,
 *            dB_t += dt_t u_t lambda_t,  dC_t += g_t h_t.
 *          dA, dB, dC are shared between pairs (B/C by the channels of a group, A by the batch): every thread
 *          accumulates into its own zeroed partial buffers, summed after the join (no atomics, no races).
 *
 * B and C come in one of two layouts, chosen by `groups`:
 *   groups == 0: constant [D, N] (one row per channel, the same at every t);
 *   groups >= 1: input-dependent, position-major [Bt, G, L, N] (the caller transposes mamba-ssm's [Bt, G, N, L]
 *                so that B_t is one contiguous row of N), channel d in group d / (D / G).
 *
 * float32 uses a vectorisable exp (Cody-Waite reduction + degree-6 polynomial, relative error < 2e-7); float64
 * uses libm's exp. Compiled into graphlab's native library by graphlab/ops/_native.py; the bindings and checks
 * of every pointer's dtype, device, contiguity and size are in graphlab/ops/_native_scan.py. */

/* -std=c99 (graphlab's flags) turns off the contraction of a * b + c into one fused multiply-add; this file's
   arithmetic is multiply-add chains (the recurrence, the exp polynomial, the dots), so allow it here. */
#pragma GCC optimize("fp-contract=fast")

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>

#define SS_MAX_THREADS 64

static inline float ss_expf(float x) {
    /* exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in [-ln2/2, ln2/2] */
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to the nearest integer */
    float kf = x * 1.44269504088896341f + shifter;
    kf -= shifter;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double ss_exp(double x) { return exp(x); }

typedef void (*ss_unit_fn)(const void *args, int tid, int64_t unit, void *scratch);

typedef struct {
    const void *args; ss_unit_fn fn; int64_t units; int64_t per_claim; size_t scratch_bytes; int64_t next;
} ss_pool_t;

typedef struct { ss_pool_t *pool; int tid; int failed; } ss_worker_t;

/* Claims blocks of units from the pool's atomic counter, with one scratch buffer for all its units. */
static void *ss_worker(void *p) {
    ss_worker_t *w = (ss_worker_t *)p;
    ss_pool_t *pool = w->pool;
    void *scratch = malloc(pool->scratch_bytes ? pool->scratch_bytes : 1);
    if (!scratch) { w->failed = 1; return 0; }
    for (;;) {
        const int64_t begin = __atomic_fetch_add(&pool->next, pool->per_claim, __ATOMIC_RELAXED);
        if (begin >= pool->units) break;
        const int64_t end = begin + pool->per_claim < pool->units ? begin + pool->per_claim : pool->units;
        for (int64_t unit = begin; unit < end; ++unit) pool->fn(pool->args, w->tid, unit, scratch);
    }
    free(scratch);
    return 0;
}

/* fn(args, tid, unit, scratch) for every unit in [0, units), in blocks claimed by nthreads threads (tid in
   [0, nthreads); the caller is thread 0), each with its own scratch_bytes buffer. A thread that fails to start
   leaves its units to the others. Returns nonzero when a thread could not allocate its scratch buffer and its
   units may be missing (the output buffers then keep the NaN the caller filled them with). */
static int ss_parallel(int64_t units, int nthreads, size_t scratch_bytes, const void *args, ss_unit_fn fn) {
    int64_t per_claim = units / ((int64_t)nthreads * 64);
    ss_pool_t pool = {args, fn, units, per_claim > 0 ? per_claim : 1, scratch_bytes, 0};
    pthread_t threads[SS_MAX_THREADS];
    ss_worker_t workers[SS_MAX_THREADS];
    int started[SS_MAX_THREADS];
    for (int t = 0; t < nthreads; ++t) { workers[t].pool = &pool; workers[t].tid = t; workers[t].failed = 0; }
    for (int t = 1; t < nthreads; ++t) started[t] = pthread_create(&threads[t], 0, ss_worker, &workers[t]) == 0;
    ss_worker(&workers[0]);
    int failed = workers[0].failed;
    for (int t = 1; t < nthreads; ++t)
        if (started[t]) { pthread_join(threads[t], 0); failed |= workers[t].failed; }
    return failed;
}

static int ss_clamp_threads(int nthreads, int64_t units) {
    if (nthreads < 1) nthreads = 1;
    if (nthreads > SS_MAX_THREADS) nthreads = SS_MAX_THREADS;
    if (units < nthreads) nthreads = units > 0 ? (int)units : 1;
    return nthreads;
}

#define SS_CAT_(a, b) a##_##b
#define SS_CAT(a, b) SS_CAT_(a, b)

#define REAL float
#define REAL_SUFFIX f32
#define REAL_EXP ss_expf
#include "selective_scan_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef REAL_EXP

#define REAL double
#define REAL_SUFFIX f64
#define REAL_EXP ss_exp
#include "selective_scan_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef REAL_EXP
