/* Native CPU kernel of graphlab.ops.selective_scan (issue 15): Mamba's selective scan, sequential in time,
 * parallel over (batch, channel) pairs.
 *
 * Per pair (b, d), state h in R^N, h_{-1} = 0 (u, dt already biased / softplus-ed / masked by the caller):
 *
 *   a_t = exp(dt_t A_d),   h_t = a_t * h_{t-1} + dt_t u_t B_t,   y_t = <C_t, h_t> (+ D_d u_t in the forward)
 *
 * ss_fwd   y [Bt, D, L] (with the skip term D_d u_t when skip != NULL: one pass over u instead of two torch ops; its
 *          gradients, D's and g_t D_d for u, are added by the caller), the last state [Bt, D, N], and (when
 *          ckpt != NULL) the state entering every chunk of K
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
 * float32 uses its own exp (Cody-Waite reduction + Cephes's polynomial, relative error < 2e-7, tested against
 * float64): ss_expf in the generic loops, ss_exp16 (AVX-512, 16 lanes) in the N = 16 paths; float64 uses libm's
 * exp. Compiled into graphlab's native library by graphlab/ops/_native.py; the bindings and checks
 * of every pointer's dtype, device, contiguity and size are in graphlab/ops/_native_scan.py. */

/* -std=c99 (graphlab's flags) turns off the contraction of a * b + c into one fused multiply-add; this file's
   arithmetic is multiply-add chains (the recurrence, the exp polynomial, the dots), so allow it here. And without
   AVX-512's masked operations gcc keeps ss_expf's clamp as a branch while float compares may trap, so the generic
   exp loop did not vectorise for AVX2 ("control flow in loop"; 55 ms vs 16 ms for the batch 4, D 256, L 1024
   forward built with -mavx2 -mfma): no-trapping-math lets it use compare + blend. Neither changes a value (no
   FP exception is ever unmasked here; NaN compares stay false). */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

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

/* ---- float32 with N = 16 (Mamba's d_state) on 16-lane vectors, forward and backward (ss_fwd_pair16 and
 * ss_bwd_pair16 in selective_scan_typed.inc): the state is one ss_v16f (one AVX-512 register; GNU C vector
 * extensions plus three AVX-512 intrinsics, gcc >= 4.9 or clang). What made the generic loop slow at this size,
 * measured (1 thread, batch 4, D 256, L 1024, the thread's CPU time): the horizontal sum y_t = <C_t, h_t> at every
 * position (removing it halved the forward), then the exp (3/4 of what remained). Here the 16 products C_t * h_t
 * of 16 positions are summed into y_t..y_{t+15} by a transpose-add tree (15 folds of 2 shuffles + 1 add instead
 * of 16 horizontal reductions; the backward's <lambda_t, B_t> and <A_d, q_t> alike) and the exp is vectorised with
 * vscalefps for 2^k. Only where a v16 is one machine register: lowered to AVX2 the same code ran ~10x slower than
 * the generic loop, which every other target (and float64, and N != 16) keeps. */
#if defined(__GNUC__) && defined(__AVX512F__) && !defined(SS_NO_VEC16)
#define SS_VEC16 1
#include <immintrin.h>
typedef float ss_v16f __attribute__((vector_size(64)));
typedef int32_t ss_v16i __attribute__((vector_size(64)));

#if defined(__clang__) || __GNUC__ >= 12
#define SS_SHUFFLE(x, y, ...) __builtin_shufflevector(x, y, __VA_ARGS__)
#else
#define SS_SHUFFLE(x, y, ...) __builtin_shuffle(x, y, (ss_v16i){__VA_ARGS__})
#endif

#define SS_V16 static inline __attribute__((always_inline))

SS_V16 ss_v16f ss_load16(const float *p) { ss_v16f v; memcpy(&v, p, sizeof v); return v; }
SS_V16 void ss_store16(float *p, ss_v16f v) { memcpy(p, &v, sizeof v); }

/* ss_expf's steps on 16 lanes with AVX-512's own exponent scaling: exp(x) = 2^k exp(r), k = round(x / ln 2),
   r = x - k ln 2 in two parts (Cody-Waite), exp(r) = 1 + r + r^2 P(r) with Cephes's degree-5 P, and 2^k applied by
   vscalefps, which under- and overflows correctly (to 0 below x = -103.9, to +inf above 88.7; no clamp to keep the
   exponent bits valid, unlike ss_expf). The clamp to [-104, 89] only turns -inf / +inf into finite k. */
SS_V16 ss_v16f ss_exp16(ss_v16f x) {
    /* max/min return their second operand when one is NaN: x second, so a NaN stays a NaN */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    const ss_v16f kf = _mm512_roundscale_ps(x * 1.44269504088896341f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    ss_v16f r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    ss_v16f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + (r + 1.0f);
    return _mm512_scalef_ps(p, kf);
}

/* One level of the transpose-add tree: x and y hold the partial sums of 16 / s rows each, s lanes per row; the
   result holds the sums of all 32 / s rows, s / 2 lanes per row (x's row k, then y's row k, ...). */
SS_V16 ss_v16f ss_fold8(ss_v16f x, ss_v16f y) {
    return SS_SHUFFLE(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
         + SS_SHUFFLE(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
}
SS_V16 ss_v16f ss_fold4(ss_v16f x, ss_v16f y) {
    return SS_SHUFFLE(x, y, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
         + SS_SHUFFLE(x, y, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
}
SS_V16 ss_v16f ss_fold2(ss_v16f x, ss_v16f y) {
    return SS_SHUFFLE(x, y, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
         + SS_SHUFFLE(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
}
SS_V16 ss_v16f ss_fold1(ss_v16f x, ss_v16f y) {
    return SS_SHUFFLE(x, y, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30)
         + SS_SHUFFLE(x, y, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
}

/* (sum(p[0]), ..., sum(p[15])): four fold levels. Each level interleaves its two inputs' rows, so the lanes come
   out in bit-reversed order of the input slots; feeding slot i with p[bitrev(i)] puts sum(p[j]) in lane j. */
SS_V16 ss_v16f ss_row_sums16(const ss_v16f *p) {
    const ss_v16f q0 = ss_fold8(p[0], p[8]), q1 = ss_fold8(p[4], p[12]), q2 = ss_fold8(p[2], p[10]);
    const ss_v16f q3 = ss_fold8(p[6], p[14]), q4 = ss_fold8(p[1], p[9]), q5 = ss_fold8(p[5], p[13]);
    const ss_v16f q6 = ss_fold8(p[3], p[11]), q7 = ss_fold8(p[7], p[15]);
    const ss_v16f r0 = ss_fold4(q0, q1), r1 = ss_fold4(q2, q3), r2 = ss_fold4(q4, q5), r3 = ss_fold4(q6, q7);
    return ss_fold1(ss_fold2(r0, r1), ss_fold2(r2, r3));
}

/* The sum of one vector's lanes (for the < 16 positions at the end of a chunk). */
SS_V16 float ss_sum16(ss_v16f v) {
    float lanes[16];
    ss_store16(lanes, v);
    float acc = 0;
    for (int n = 0; n < 16; ++n) acc += lanes[n];
    return acc;
}

#endif

/* The float32 exps of the kernels on n values, exported for the accuracy test: with vector != 0 ss_exp16 in
   blocks of 16 where it is compiled (the N = 16 paths), the rest (and everything with vector == 0) through
   ss_expf (the generic loops). */
void ss_exp_f32(const float *x, float *out, int64_t n, int vector) {
    int64_t i = 0;
#ifdef SS_VEC16
    if (vector)
        for (; i + 16 <= n; i += 16) ss_store16(out + i, ss_exp16(ss_load16(x + i)));
#else
    (void)vector;
#endif
    for (; i < n; ++i) out[i] = ss_expf(x[i]);
}

/* 1 when the float32 N = 16 forward runs on vectors (ss_fwd_pair16), 0 when it uses the generic loop. */
int ss_vec16_forward(void) {
#ifdef SS_VEC16
    return 1;
#else
    return 0;
#endif
}

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
#ifdef SS_VEC16
#define REAL_VEC16 1
#endif
#include "selective_scan_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef REAL_EXP
#undef REAL_VEC16

#define REAL double
#define REAL_SUFFIX f64
#define REAL_EXP ss_exp
#include "selective_scan_typed.inc"
#undef REAL
#undef REAL_SUFFIX
#undef REAL_EXP
