/* bench_matmul.c - ox_ag_matmul against calling BLIS directly, and the small-product thread threshold.
 *
 * 1. Toy-model shapes (M = 2048 tokens, K and N from {256, 704, 768}), all four transpose combinations,
 *    at 1 and 2 threads: GFLOP/s of ox_ag_matmul (gradients off, context reset before each call so the
 *    arena does not grow) and of bli_sgemm_ex on the same buffers, same kernel set and thread count.
 *    Medians of REPS runs after warm-up; the two are timed alternately so machine load hits both alike,
 *    and lib/BLIS is the median of the per-repeat time ratios.
 * 2. Small cubes n x n x n at 1 and 2 BLIS threads (direct), to place the threshold below which
 *    ox_sgemm_threads (tensor/gemm.c) keeps a product on one thread.
 * 3. Batches of small products through ox_ag_matmul at 1 and 2 threads (the OpenMP batch loop).
 *
 * A plain program, not library code: it may call BLIS directly. Run: make build/bench/bench_matmul &&
 * ./build/bench/bench_matmul [small]   (small: sections 2 and 3 only) */
#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

#include "bench_util.h"

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 21
#define WARMUP 2

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_matmul: %s: %s\n", what, ox_ctx_message(ctx));
    exit(1);
}

/* A heap tensor (survives ox_ctx_reset) of uniform(-1, 1) values. */
static ox_tensor *owned_rand(ox_ctx *ctx, ox_rng *rng, int64_t rows, int64_t cols)
{
    ox_tensor *t = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(rows, cols));
    if (!t || ox_tensor_fill_uniform(ctx, t, rng, -1, 1))
        die(ctx, "allocating inputs");
    return t;
}

/* ---- 1. library vs BLIS on the model's shapes ---- */

static void bench_shape(ox_ctx *ctx, ox_rng *rng, int nt, int64_t M, int64_t K, int64_t N, int ta, int tb,
                        float *cbuf)
{
    /* stored operands: A [M, K] or [K, M] (used transposed), B [K, N] or [N, K] */
    ox_tensor *a0 = ta ? owned_rand(ctx, rng, K, M) : owned_rand(ctx, rng, M, K);
    ox_tensor *b0 = tb ? owned_rand(ctx, rng, N, K) : owned_rand(ctx, rng, K, N);
    ox_ctx_set_threads(ctx, nt);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(nt, &rntm);
    float one = 1.0f, zero = 0.0f;
    double t_lib[REPS], t_blis[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        ox_ctx_reset(ctx);
        double t0 = now();
        ox_tensor *a = ta ? ox_tensor_view_transpose(ctx, a0, 0, 1) : a0;
        ox_tensor *b = tb ? ox_tensor_view_transpose(ctx, b0, 0, 1) : b0;
        ox_tensor *c = ox_ag_matmul(ctx, a, b);
        double t1 = now();
        if (!c)
            die(ctx, "matmul");
        /* the same product through BLIS: transposes as BLIS flags on the stored matrices */
        double t2 = now();
        bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                     (dim_t)M, (dim_t)N, (dim_t)K, &one, ox_tensor_f32(a0), ta ? M : K, 1,
                     ox_tensor_f32(b0), tb ? K : N, 1, &zero, cbuf, N, 1, NULL, &rntm);
        double t3 = now();
        if (r >= 0) {
            t_lib[r] = t1 - t0;
            t_blis[r] = t3 - t2;
        }
    }
    /* the ratio is the median of the per-repeat ratios of the two back-to-back timings, which
     * cancels slow changes in machine load that the separate medians may catch unevenly */
    double ratio[REPS];
    for (int r = 0; r < REPS; r++)
        ratio[r] = t_blis[r] / t_lib[r];
    double gf = 2.0 * (double)M * (double)N * (double)K * 1e-9;
    double lib = gf / median(t_lib, REPS), blis = gf / median(t_blis, REPS);
    printf("%4d  %5lld %5lld %5lld  %-7s  %8.1f  %8.1f  %6.3f\n", nt, (long long)M, (long long)K,
           (long long)N, ta ? (tb ? "A^T B^T" : "A^T B") : (tb ? "A B^T" : "A B"), lib, blis,
           median(ratio, REPS));
    ox_tensor_free(a0);
    ox_tensor_free(b0);
}

/* ---- 2. small cubes: 1 vs 2 BLIS threads ---- */

/* Median microseconds of an n x n x n product: BLIS direct with `threads`, or ox_sgemm allowed 2
 * threads (threads = 0). cold: sleep 2 ms before each call, so OpenMP's idle threads have gone to
 * sleep and must be woken (libgomp spins ~0.1-1 ms before sleeping): the case of a product that
 * follows other single-threaded work. */
static double time_small(const float *a, const float *b, float *c, int64_t n, int threads, int cold, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    float one = 1.0f, zero = 0.0f;
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(threads > 0 ? threads : 1, &rntm);
    for (int r = -5; r < reps; r++) {
        if (cold)
            nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        double t0 = now();
        if (threads > 0)
            bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)n, (dim_t)n, (dim_t)n, &one,
                         (float *)a, n, 1, (float *)b, n, 1, &zero, c, n, 1, NULL, &rntm);
        else
            ox_sgemm(2, n, n, n, 1.0f, a, n, 1, b, n, 1, 0.0f, c, n, 1);
        double t1 = now();
        if (r >= 0)
            t[r] = t1 - t0;
    }
    double m = median(t, reps) * 1e6;
    free(t);
    return m;
}

static void bench_small(ox_ctx *ctx, ox_rng *rng, int64_t n)
{
    ox_tensor *a = owned_rand(ctx, rng, n, n), *b = owned_rand(ctx, rng, n, n), *c = owned_rand(ctx, rng, n, n);
    const float *pa = ox_tensor_f32(a), *pb = ox_tensor_f32(b);
    float *pc = ox_tensor_f32(c);
    int reps = n <= 64 ? 401 : n <= 128 ? 101 : 31;
    double h1 = time_small(pa, pb, pc, n, 1, 0, reps), h2 = time_small(pa, pb, pc, n, 2, 0, reps);
    double c1 = time_small(pa, pb, pc, n, 1, 1, 41), c2 = time_small(pa, pb, pc, n, 2, 1, 41);
    double ox = time_small(pa, pb, pc, n, 0, 0, reps);
    printf("%5lld  %6.2f  %8.1f %8.1f %5.2f   %8.1f %8.1f %5.2f   %d: %7.1f\n", (long long)n,
           2.0 * (double)(n * n * n) * 1e-6, h1, h2, h1 / h2, c1, c2, c1 / c2, ox_sgemm_threads(2, n, n, n), ox);
    ox_tensor_free(a);
    ox_tensor_free(b);
    ox_tensor_free(c);
}

/* ---- 3. batches of small products through ox_ag_matmul ---- */

static void bench_batch(ox_ctx *ctx, ox_rng *rng, int64_t B, int64_t m)
{
    ox_tensor *a = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, m, m));
    ox_tensor *b = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, m, m));
    if (!a || !b || ox_tensor_fill_uniform(ctx, a, rng, -1, 1) || ox_tensor_fill_uniform(ctx, b, rng, -1, 1))
        die(ctx, "allocating batch inputs");
    double med[2];
    double t[51];
    for (int nt = 1; nt <= 2; nt++) {
        ox_ctx_set_threads(ctx, nt);
        for (int r = -3; r < 51; r++) {
            ox_ctx_reset(ctx);
            double t0 = now();
            if (!ox_ag_matmul(ctx, a, b))
                die(ctx, "batched matmul");
            double t1 = now();
            if (r >= 0)
                t[r] = t1 - t0;
        }
        med[nt - 1] = median(t, 51) * 1e6;
    }
    printf("[%lld, %lld, %lld] x [%lld, %lld, %lld]  %7.1f us  %7.1f us  %5.2fx\n", (long long)B,
           (long long)m, (long long)m, (long long)B, (long long)m, (long long)m, med[0], med[1], med[0] / med[1]);
    ox_tensor_free(a);
    ox_tensor_free(b);
}

int main(int argc, char **argv)
{
    int only_small = argc > 1 && strcmp(argv[1], "small") == 0;   /* sections 2 and 3 only */
    ox_ctx *ctx = ox_ctx_new();     /* picks BLIS's kernel set before BLIS starts */
    if (!ctx)
        return 1;
    ox_ag_set_grad_enabled(ctx, 0);
    ox_rng rng = ox_rng_seed(1);
    printf("BLIS kernel set: %s, OpenMP build: %d, cores available: %d\n", ox_gemm_arch(),
           ox_gemm_blis_openmp(), ox_cores_available());

    static const int64_t kn[][2] = { { 256, 704 }, { 704, 256 }, { 256, 768 }, { 768, 256 }, { 256, 256 } };
    const int64_t M = 2048;
    float *cbuf = malloc(sizeof(float) * (size_t)(M * 768));
    if (!cbuf)
        return 1;
    printf("\n1. ox_ag_matmul vs bli_sgemm_ex, GFLOP/s (median of %d after %d warm-up)\n", REPS, WARMUP);
    printf("thr      M     K     N  op            lib      BLIS  lib/BLIS (median of paired ratios)\n");
    for (int nt = 1; nt <= 2 && !only_small; nt++)
        for (size_t s = 0; s < sizeof kn / sizeof kn[0]; s++)
            for (int tr = 0; tr < 4; tr++)
                bench_shape(ctx, &rng, nt, M, kn[s][0], kn[s][1], tr >> 1, tr & 1, cbuf);
    free(cbuf);

    printf("\n2. small n x n x n products, BLIS direct, median microseconds\n");
    printf("                 threads hot (back to back)   threads asleep (2 ms gap)   ox_sgemm(2)\n");
    printf("    n   MFLOP  1 thread 2 threads  gain   1 thread 2 threads  gain   uses: us\n");
    static const int64_t small[] = { 32, 48, 64, 80, 96, 112, 128, 160, 192, 256 };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        bench_small(ctx, &rng, small[i]);

    printf("\n3. batches of small products through ox_ag_matmul (median of 51)\n");
    printf("shape                          1 thread   2 threads  speedup\n");
    bench_batch(ctx, &rng, 64, 16);
    bench_batch(ctx, &rng, 64, 32);
    bench_batch(ctx, &rng, 32, 64);
    bench_batch(ctx, &rng, 8, 128);
    ox_ctx_free(ctx);
    return 0;
}
