/* Native CPU kernel of graphlab.ops.neighbor_sets / common_neighbors: neighbour sets of target pairs by
 * sorted-list intersection on a CSR graph whose rows are sorted and duplicate-free.
 *
 * For pair b with a = N(src_b) and c = N(dst_b) (two sorted lists):
 *   cn_b = a ∩ c,   src_only_b = a \ c,   dst_only_b = c \ a,
 * found by one merge of a and c. When a set difference is not asked for, the merge gallops (exponential then
 * binary search) over the list whose leftovers nobody needs, so a short list against a long one costs
 * O(short * log(long / short)) instead of O(short + long).
 *
 *   cn_count  pass 1: per-pair sizes of the requested sets (a NULL count array = set not requested)
 *   cn_fill   pass 2: the members, at the offsets ptr[b] the caller computed from the counts (cumsum)
 *
 * Pairs are independent: threads claim chunks of pairs from an atomic counter. Compiled into the same library as
 * gather_reduce.c by graphlab/ops/_native.py, which checks every pointer's dtype, device and size first. */

#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#define CN_MAX_THREADS 64
#define CN_CHUNKS_PER_THREAD 16

typedef void (*cn_range_fn)(const void *args, int64_t begin, int64_t end);

typedef struct {
    const void *args; cn_range_fn fn; int64_t total; int64_t chunk; int64_t next;
} cn_pool_t;

static void *cn_worker(void *p) {
    cn_pool_t *pool = (cn_pool_t *)p;
    for (;;) {
        const int64_t begin = __atomic_fetch_add(&pool->next, pool->chunk, __ATOMIC_RELAXED);
        if (begin >= pool->total) break;
        const int64_t end = begin + pool->chunk < pool->total ? begin + pool->chunk : pool->total;
        pool->fn(pool->args, begin, end);
    }
    return 0;
}

/* fn over [0, total) in chunks claimed by nthreads threads (the caller is one of them). */
static void cn_parallel(int64_t total, int nthreads, const void *args, cn_range_fn fn) {
    if (nthreads < 1) nthreads = 1;
    if (nthreads > CN_MAX_THREADS) nthreads = CN_MAX_THREADS;
    int64_t chunk = total / ((int64_t)nthreads * CN_CHUNKS_PER_THREAD);
    cn_pool_t pool = {args, fn, total, chunk > 0 ? chunk : 1, 0};
    pthread_t threads[CN_MAX_THREADS];
    int started[CN_MAX_THREADS];
    for (int t = 1; t < nthreads; ++t) started[t] = pthread_create(&threads[t], 0, cn_worker, &pool) == 0;
    cn_worker(&pool);
    for (int t = 1; t < nthreads; ++t)
        if (started[t]) pthread_join(threads[t], 0);
}

#define CN_CAT_(a, b) a##_##b
#define CN_CAT(a, b) CN_CAT_(a, b)

#define INDEX int32_t
#define INDEX_SUFFIX i32
#include "common_neighbors_typed.inc"
#undef INDEX
#undef INDEX_SUFFIX

#define INDEX int64_t
#define INDEX_SUFFIX i64
#include "common_neighbors_typed.inc"
#undef INDEX
#undef INDEX_SUFFIX
