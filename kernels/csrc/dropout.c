/* Native CPU kernels of graphlab.ops.dropout: a counter-based Philox4x32-10 mask, drawn on several threads.
 *
 * Plain C99 + pthreads, no torch headers, compiled into graphlab's native library by graphlab/ops/_native.py and
 * called through ctypes (bindings in graphlab/ops/_native_dropout.py, which checks every pointer first).
 *
 * The random word of element i (0 <= i < n) of a call with key (seed) and stream (offset) is
 *
 *     r_i = Philox4x32-10(counter = (b mod 2^32, b div 2^32, offset mod 2^32, offset div 2^32),
 *                         key = (seed mod 2^32, seed div 2^32))[i mod 4],        b = i div 4
 *
 * (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011), and element i is kept
 * iff r_i >= threshold, threshold = round(p 2^32) in [0, 2^32]: P(drop) = threshold / 2^32. The mask is a pure
 * function of (seed, offset, i): any thread count, any chunking gives the same mask, and the backward can draw
 * it again instead of storing it.
 *
 *   dr_fwd_T     y_i = keep_i ? x_i * scale : 0    (bits != NULL: also write keep_i as bit i%8 of bits[i/8])
 *   dr_apply_T   y_i = bit_i ? x_i * scale : 0    (the backward through a stored bit mask)
 *   dr_bits      only the bit mask (tests, and callers that want the mask itself)
 */

#include <pthread.h>
#include <stdint.h>

#if !defined(__GNUC__)
#error "dropout.c uses GCC/Clang vector extensions"
#endif

#define DR_MAX_THREADS 64
/* Elements per unit of work that threads claim from an atomic counter: a multiple of 64 (so that the 8-bit mask
   bytes of two units never share a byte and a unit starts on a Philox block), large enough that claiming is rare
   (16k floats = 64 KiB of x), small enough that a thread slowed down by other processes does not hold up the rest. */
#define DR_UNIT 16384
/* Philox blocks generated per inner batch: 16 blocks = 64 words, a loop the compiler vectorises. */
#define DR_BATCH 16

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Philox4x32-10 of DR_BATCH consecutive blocks b0, b0 + 1, ...; words[4 k + j] = output word j of block b0 + k.
   The 32-bit words live in the low halves of 64-bit vector lanes (GCC/Clang vector extensions), so that
   M * x is one widening 32x32 -> 64-bit multiply per lane (vpmuludq) whose halves are hi and lo: written as
   plain loops over blocks, the compiler unrolls them into scalar code instead (measured 4x slower). */
typedef uint64_t u64v __attribute__((vector_size(64)));
#define DR_LANES ((int)(sizeof(u64v) / sizeof(uint64_t)))

/* a * m for a < 2^32 in every lane: the low-32 x low-32 -> 64-bit multiply (GCC otherwise emits the full 64-bit
   vpmullq, ~3x the cost, since it cannot see that the high halves are zero). */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline u64v mul_lo32(u64v a, uint32_t m) {
    return (u64v)_mm512_mul_epu32((__m512i)a, _mm512_set1_epi64((long long)m));
}
#else
static inline u64v mul_lo32(u64v a, uint32_t m) { return a * (uint64_t)m; }
#endif

static void philox_batch(uint64_t b0, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t *words) {
    const uint64_t low = 0xFFFFFFFFu;
    for (int v = 0; v < DR_BATCH / DR_LANES; ++v) {
        u64v x0, x1, x2, x3;
        for (int l = 0; l < DR_LANES; ++l) {
            const uint64_t b = b0 + (uint64_t)(v * DR_LANES + l);
            x0[l] = b & low;
            x1[l] = b >> 32;
            x2[l] = c2;
            x3[l] = c3;
        }
        uint64_t key0 = k0, key1 = k1;
        for (int round = 0; round < 10; ++round) {
            const u64v p0 = mul_lo32(x0, PHILOX_M0), p1 = mul_lo32(x2, PHILOX_M1);
            x0 = (p1 >> 32) ^ x1 ^ key0;
            x1 = p1 & low;
            x2 = (p0 >> 32) ^ x3 ^ key1;
            x3 = p0 & low;
            key0 = (key0 + PHILOX_W0) & low;
            key1 = (key1 + PHILOX_W1) & low;
        }
        for (int l = 0; l < DR_LANES; ++l) {
            uint32_t *w = words + 4 * (v * DR_LANES + l);
            w[0] = (uint32_t)x0[l];
            w[1] = (uint32_t)x1[l];
            w[2] = (uint32_t)x2[l];
            w[3] = (uint32_t)x3[l];
        }
    }
}

typedef struct {
    const void *x;
    void *y;
    uint8_t *bits;
    const uint8_t *bits_in;
    int64_t n;
    uint64_t seed, offset, threshold;
    double scale;
    int64_t nunits;
    int64_t next;
} dr_args_t;

typedef void (*dr_unit_fn)(dr_args_t *a, int64_t begin, int64_t end);
typedef struct { dr_args_t args; dr_unit_fn fn; } dr_job_t;

static void *dr_worker(void *p) {
    dr_job_t *job = (dr_job_t *)p;
    dr_args_t *a = &job->args;
    const dr_unit_fn fn = job->fn;
    for (;;) {
        const int64_t u = __atomic_fetch_add(&a->next, 1, __ATOMIC_RELAXED);
        if (u >= a->nunits) break;
        const int64_t begin = u * DR_UNIT;
        const int64_t end = begin + DR_UNIT < a->n ? begin + DR_UNIT : a->n;
        fn(a, begin, end);
    }
    return 0;
}

static void dr_run(dr_job_t *job, int nthreads) {
    pthread_t threads[DR_MAX_THREADS];
    int started[DR_MAX_THREADS];
    job->args.nunits = (job->args.n + DR_UNIT - 1) / DR_UNIT;
    job->args.next = 0;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > DR_MAX_THREADS) nthreads = DR_MAX_THREADS;
    if (nthreads > job->args.nunits) nthreads = job->args.nunits > 0 ? (int)job->args.nunits : 1;
    for (int t = 1; t < nthreads; ++t) started[t] = pthread_create(&threads[t], 0, dr_worker, job) == 0;
    dr_worker(job);
    for (int t = 1; t < nthreads; ++t)
        if (started[t]) pthread_join(threads[t], 0);
}

/* The keep flags of elements [begin, end) (begin a multiple of 4 * DR_BATCH) in batches of 4 * DR_BATCH; the body
   sees the batch's first element `base`, its length `len` and keep[0..len). */
#define DR_FOR_EACH_BATCH(a, begin, end, BODY)                                                                \
    do {                                                                                                      \
        uint32_t words_[4 * DR_BATCH];                                                                        \
        uint8_t keep[4 * DR_BATCH];                                                                           \
        const uint32_t c2_ = (uint32_t)(a)->offset, c3_ = (uint32_t)((a)->offset >> 32);                      \
        const uint32_t k0_ = (uint32_t)(a)->seed, k1_ = (uint32_t)((a)->seed >> 32);                          \
        const uint64_t thr_ = (a)->threshold;                                                                 \
        for (int64_t base = (begin); base < (end); base += 4 * DR_BATCH) {                                    \
            const int64_t len = (end) - base < 4 * DR_BATCH ? (end) - base : 4 * DR_BATCH;                    \
            philox_batch((uint64_t)base >> 2, c2_, c3_, k0_, k1_, words_);                                    \
            for (int j = 0; j < 4 * DR_BATCH; ++j) keep[j] = (uint64_t)words_[j] >= thr_;                    \
            BODY                                                                                              \
        }                                                                                                     \
    } while (0)

static void write_bits(uint8_t *bits, int64_t base, int64_t len, const uint8_t *keep) {
    for (int64_t byte = 0; byte * 8 < len; ++byte) {
        uint8_t v = 0;
        for (int b = 0; b < 8 && byte * 8 + b < len; ++b) v |= (uint8_t)(keep[byte * 8 + b] << b);
        bits[(base >> 3) + byte] = v;
    }
}

#define DR_DEFINE(REAL, SUFFIX)                                                                               \
    static void dr_fwd_unit_##SUFFIX(dr_args_t *a, int64_t begin, int64_t end) {                              \
        const REAL *x = (const REAL *)a->x;                                                                   \
        REAL *y = (REAL *)a->y;                                                                               \
        const REAL scale = (REAL)a->scale;                                                                    \
        DR_FOR_EACH_BATCH(a, begin, end, {                                                                    \
            for (int64_t j = 0; j < len; ++j) y[base + j] = keep[j] ? x[base + j] * scale : (REAL)0;         \
            if (a->bits) write_bits(a->bits, base, len, keep);                                                \
        });                                                                                                   \
    }                                                                                                         \
    static void dr_apply_unit_##SUFFIX(dr_args_t *a, int64_t begin, int64_t end) {                            \
        const REAL *x = (const REAL *)a->x;                                                                   \
        REAL *y = (REAL *)a->y;                                                                               \
        const REAL scale = (REAL)a->scale;                                                                    \
        uint8_t keep[4 * DR_BATCH];                                                                           \
        for (int64_t base = begin; base < end; base += 4 * DR_BATCH) {  /* as dr_fwd, flags from the bits */   \
            const int64_t len = end - base < 4 * DR_BATCH ? end - base : 4 * DR_BATCH;                        \
            for (int64_t j = 0; j < len; ++j) keep[j] = (a->bits_in[(base >> 3) + (j >> 3)] >> (j & 7)) & 1;     \
            for (int64_t j = 0; j < len; ++j) y[base + j] = keep[j] ? x[base + j] * scale : (REAL)0;         \
        }                                                                                                     \
    }                                                                                                         \
    void dr_fwd_##SUFFIX(const REAL *x, REAL *y, uint8_t *bits, int64_t n, uint64_t seed, uint64_t offset,     \
                         uint64_t threshold, double scale, int nthreads) {                                    \
        dr_job_t job = {{x, y, bits, 0, n, seed, offset, threshold, scale, 0, 0}, dr_fwd_unit_##SUFFIX};      \
        dr_run(&job, nthreads);                                                                               \
    }                                                                                                         \
    void dr_apply_##SUFFIX(const REAL *x, REAL *y, const uint8_t *bits, int64_t n, double scale,              \
                           int nthreads) {                                                                    \
        dr_job_t job = {{x, y, 0, bits, n, 0, 0, 0, scale, 0, 0}, dr_apply_unit_##SUFFIX};                    \
        dr_run(&job, nthreads);                                                                               \
    }

DR_DEFINE(float, f32)
DR_DEFINE(double, f64)

static void dr_bits_unit(dr_args_t *a, int64_t begin, int64_t end) {
    DR_FOR_EACH_BATCH(a, begin, end, { write_bits(a->bits, base, len, keep); });
}

void dr_bits(uint8_t *bits, int64_t n, uint64_t seed, uint64_t offset, uint64_t threshold, int nthreads) {
    dr_job_t job = {{0, 0, bits, 0, n, seed, offset, threshold, 1.0, 0, 0}, dr_bits_unit};
    dr_run(&job, nthreads);
}
