/* gemm.c - BLIS typed-API wrapper and kernel-set selection (see gemm.h). */
#include "tensor/gemm.h"
#include "tensor/profile.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup(void)
{
    if (getenv("BLIS_ARCH_TYPE"))
        return;         /* the user's choice wins */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        setenv("BLIS_ARCH_TYPE", "0", 0);       /* BLIS_ARCH_SKX */
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        setenv("BLIS_ARCH_TYPE", "3", 0);       /* BLIS_ARCH_HASWELL */
}

void ox_gemm_setup(void) { pthread_once(&setup_once, setup); }

const char *ox_gemm_arch(void)
{
    ox_gemm_setup();
    /* With BLIS_ARCH_TYPE set, querying the id before BLIS has initialised its kernel table aborts
     * ("Accessed uninitialized context in gks"), so initialise first (idempotent). */
    bli_init();
    return bli_arch_string(bli_arch_query_id());
}

int ox_gemm_blis_openmp(void) { return (int)bli_info_get_enable_openmp(); }

int ox_sgemm_threads(int n_threads, int64_t m, int64_t n, int64_t k)
{
    /* A second thread must be woken and synchronised (~3 us when OpenMP's threads are spinning, ~10 us
     * when they sleep), so it pays only when the product takes ~20 us or more on one thread.
     * bench/bench_matmul section 2 (2 shared cores, 2 threads vs 1, medians, range over 4 runs):
     * 32^3 (0.07 MFLOP) 0.4-1.0x, 64^3 (0.5 MFLOP) 0.8-1.6x, 80^3 (1.0 MFLOP) 0.9-1.7x,
     * 96^3 (1.8 MFLOP, ~20 us) 1.05-1.75x, 112^3 1.2-2.0x, 128^3 (4.2 MFLOP) 1.5-2.2x. Below ~1.5 MFLOP
     * the gain is small and unreliable, so those products stay on one thread (the earlier 4 MFLOP
     * threshold left 1.2-2x unused on 96^3-128^3). */
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (n_threads <= 1 || flops < OX_SGEMM_PARALLEL_FLOPS)
        return 1;
    return n_threads;
}

/* The stride of an axis of size 1 is meaningless but BLIS checks it: give it a valid value. */
static void fix_strides(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    if (rows == 1 && cols == 1) {
        *rs = *cs = 1;
    } else if (rows == 1) {
        *rs = cols * (*cs > 0 ? *cs : 1);
    } else if (cols == 1) {
        *cs = rows * (*rs > 0 ? *rs : 1);
    }
}

/* One BLIS call on the calling thread. */
static void sgemm_one(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                      const float *b, int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc, int64_t csc)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    fix_strides(m, k, &rsa, &csa);
    fix_strides(k, n, &rsb, &csb);
    fix_strides(m, n, &rsc, &csc);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &alpha,
                 (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &beta,
                 c, (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}

/* Length of each of about nb blocks covering dim, a multiple of tile; *nb becomes the actual block count. */
static int64_t block_len(int64_t dim, int64_t *nb, int64_t tile)
{
    int64_t blk = ((dim + *nb - 1) / *nb + tile - 1) / tile * tile;
    *nb = (dim + blk - 1) / blk;
    return blk;
}

int ox_sgemm_blocks(int64_t m, int64_t n, int64_t k)
{
    /* From the shape and the machine, never from the thread count: BLIS picks its kernels (packed or "sup", and
     * their summation order) from the shape of each call, so the same blocks at any thread count keep results
     * bit-identical. One block per core: each block packs the whole operand along the other axis again, and
     * more blocks than cores cost that copy without helping (bench_train, 2 cores: 4 blocks per product ran
     * the step's large products about 15% slower than 2, and no faster with a busy process beside them). */
    if (2.0 * (double)m * (double)n * (double)k < OX_SGEMM_PARALLEL_FLOPS)
        return 1;
    int64_t longest = m >= n ? m : n, nb = omp_get_num_procs();
    if (nb > longest / 64)
        nb = longest / 64;       /* blocks of at least 64 rows (columns) */
    return nb > 1 ? (int)nb : 1;
}

void ox_sgemm(int n_threads, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t rsa, int64_t csa,
              const float *b, int64_t rsb, int64_t csb,
              float beta, float *c, int64_t rsc, int64_t csc)
{
    if (m == 0 || n == 0)
        return;
    int prof = ox_profile_blis_active();        /* one predictable branch when no context profiles */
    double t0 = prof ? ox_profile_now() : 0;
    int64_t nb = ox_sgemm_blocks(m, n, k);
    if (nb == 1) {
        sgemm_one(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    } else {
        /* Blocks of rows of C (of columns when C is wider than tall), each one single-threaded BLIS call,
         * handed out dynamically (see gemm.h). Block edges are multiples of the micro-kernel's tile. */
        const int by_rows = m >= n;
        const int64_t dim = by_rows ? m : n, tile = by_rows ? 24 : 16;
        int nt = ox_sgemm_threads(n_threads, m, n, k);
        int64_t blk = block_len(dim, &nb, tile);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
        for (int64_t i = 0; i < nb; i++) {
            int64_t lo = i * blk, len = dim - lo < blk ? dim - lo : blk;
            if (by_rows)
                sgemm_one(len, n, k, alpha, a + lo * rsa, rsa, csa, b, rsb, csb, beta, c + lo * rsc, rsc, csc);
            else
                sgemm_one(m, len, k, alpha, a, rsa, csa, b + lo * csb, rsb, csb, beta, c + lo * csc, rsc, csc);
        }
    }
    if (prof)
        ox_profile_blis_add(ox_profile_now() - t0, 2.0 * (double)m * (double)n * (double)k);
}

void ox_strsm_unit_lower(int n_threads, int transpose_l, int64_t m, int64_t n,
                         const float *l, int64_t rsl, int64_t csl,
                         float *b, int64_t rsb, int64_t csb)
{
    if (m == 0 || n == 0)
        return;
    fix_strides(m, m, &rsl, &csl);
    int prof = ox_profile_blis_active();
    double t0 = prof ? ox_profile_now() : 0;
    /* the columns of B are independent right-hand sides: blocks of columns, one BLIS call each, as in ox_sgemm */
    int nt = ox_sgemm_threads(n_threads, m, n, m);
    int64_t nb = ox_sgemm_blocks(m, n, m);   /* shape and machine only, as in ox_sgemm */
    int64_t blk = block_len(n, &nb, 16);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && nb > 1)
    for (int64_t i = 0; i < nb; i++) {
        int64_t lo = i * blk, len = n - lo < blk ? n - lo : blk, rs = rsb, cs = csb;
        fix_strides(m, len, &rs, &cs);
        rntm_t rntm;
        bli_rntm_init(&rntm);
        bli_rntm_set_num_threads(1, &rntm);
        float one = 1.0f;
        bli_strsm_ex(BLIS_LEFT, BLIS_LOWER, transpose_l ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, BLIS_UNIT_DIAG,
                     (dim_t)m, (dim_t)len, &one, (float *)l, (inc_t)rsl, (inc_t)csl, b + lo * csb, (inc_t)rs,
                     (inc_t)cs, NULL, &rntm);
    }
    if (prof)   /* a unit triangular solve: m (m - 1) / 2 multiply-adds per column */
        ox_profile_blis_add(ox_profile_now() - t0, (double)m * (double)(m - 1) * (double)n);
}
