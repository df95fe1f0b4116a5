/* bench_index.c - indexing, concat and triangular-solve ops at model-like shapes, 1 and 2 threads.
 *
 * 1. gather_rows (embedding lookup) forward and backward (deterministic scatter-add) for M = 4096
 *    tokens, D = 256, tables of V = 256 rows (the byte vocabulary: heavy index repetition) and 32768 rows.
 * 2. take_last on logits [4096, 256] (forward and backward).
 * 3. concat of three [4096, 256] tensors along the last axis (one of them a transposed view) and along
 *    axis 0, against memcpy of the same bytes.
 * 4. solve_tril_unit on [64, 64, 64] L and B (64 chunk matrices of a linear mixer): forward and backward
 *    GFLOP/s, and the forward against a plain forward-substitution loop.
 *
 * Medians of REPS runs after WARMUP; the context is reset between runs so the arena does not grow.
 * Run: make build/bench/bench_index && ./build/bench/bench_index */
#include "autograd/ops.h"
#include "tensor/rng.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 15
#define WARMUP 2

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_index: %s: %s\n", what, ox_ctx_message(ctx));
    exit(1);
}

/* A heap tensor (survives ox_ctx_reset) of normal(0, std) values. */
static ox_tensor *owned_randn(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double std)
{
    ox_tensor *t = ox_tensor_new_owned(ctx, OX_F32, ndim, shape);
    if (!t || ox_tensor_fill_normal(ctx, t, rng, 0, std))
        die(ctx, "allocating inputs");
    return t;
}

/* ---- 1. gather_rows ---- */

static void bench_gather(ox_ctx *ctx, int nt, int64_t V, int64_t M, int64_t D)
{
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *table = owned_randn(ctx, &rng, OX_DIMS(V, D), 1.0);
    ox_tensor *idx = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(M));
    ox_tensor *seed = owned_randn(ctx, &rng, OX_DIMS(M, D), 1.0);
    if (!idx || ox_tensor_require_grad(ctx, table))
        die(ctx, "gather inputs");
    for (int64_t m = 0; m < M; m++)
        ox_tensor_i32(idx)[m] = (int32_t)ox_rng_below(&rng, (uint64_t)V);
    ox_ctx_set_threads(ctx, nt);
    double tf[REPS], tb[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        ox_ctx_reset(ctx);
        double t0 = now();
        ox_tensor *y = ox_ag_gather_rows(ctx, table, idx);
        double t1 = now();
        if (!y || ox_ag_backward_seeded(ctx, y, seed))
            die(ctx, "gather");
        double t2 = now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
        }
    }
    double gb = 2.0 * (double)(M * D) * 4 / 1e9;      /* bytes read + written per pass (rows moved) */
    double mf = median(tf, REPS), mb = median(tb, REPS);
    printf("gather_rows V %6lld M %lld D %lld  %d thr: fwd %7.3f ms (%5.1f GB/s)  bwd %7.3f ms (%5.1f GB/s)\n",
           (long long)V, (long long)M, (long long)D, nt, 1e3 * mf, gb / mf, 1e3 * mb, gb / mb);
    ox_tensor_free(table);
    ox_tensor_free(idx);
    ox_tensor_free(seed);
}

/* ---- 2. take_last ---- */

static void bench_take(ox_ctx *ctx, int nt, int64_t R, int64_t V)
{
    ox_rng rng = ox_rng_seed(2);
    ox_tensor *x = owned_randn(ctx, &rng, OX_DIMS(R, V), 1.0);
    ox_tensor *idx = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(R));
    ox_tensor *seed = owned_randn(ctx, &rng, OX_DIMS(R), 1.0);
    if (!idx || ox_tensor_require_grad(ctx, x))
        die(ctx, "take inputs");
    for (int64_t r = 0; r < R; r++)
        ox_tensor_i32(idx)[r] = (int32_t)ox_rng_below(&rng, (uint64_t)V);
    ox_ctx_set_threads(ctx, nt);
    double tf[REPS], tb[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        ox_ctx_reset(ctx);
        double t0 = now();
        ox_tensor *y = ox_ag_take_last(ctx, x, idx);
        double t1 = now();
        if (!y || ox_ag_backward_seeded(ctx, y, seed))
            die(ctx, "take");
        double t2 = now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
        }
    }
    printf("take_last  [%lld, %lld]  %d thr: fwd %7.3f ms  bwd %7.3f ms\n", (long long)R, (long long)V, nt,
           1e3 * median(tf, REPS), 1e3 * median(tb, REPS));
    ox_tensor_free(x);
    ox_tensor_free(idx);
    ox_tensor_free(seed);
}

/* ---- 3. concat ---- */

static void bench_concat(ox_ctx *ctx, int nt, int64_t M, int64_t D, int axis)
{
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *a = owned_randn(ctx, &rng, OX_DIMS(M, D), 1.0);
    ox_tensor *b = owned_randn(ctx, &rng, OX_DIMS(M, D), 1.0);
    ox_tensor *ct = owned_randn(ctx, &rng, OX_DIMS(D, M), 1.0);     /* used transposed */
    char *dst = malloc((size_t)(3 * M * D) * 4);
    if (!dst)
        die(ctx, "malloc");
    ox_ctx_set_threads(ctx, nt);
    double tc[REPS], tt[REPS], tm[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        ox_ctx_reset(ctx);
        double t0 = now();
        ox_tensor *y = ox_ag_concat(ctx, 3, (ox_tensor *[]){ a, b, a }, axis);
        double t1 = now();
        ox_tensor *c = ox_tensor_view_transpose(ctx, ct, 0, 1);
        ox_tensor *y2 = ox_ag_concat(ctx, 3, (ox_tensor *[]){ a, b, c }, axis);
        double t2 = now();
        memcpy(dst, ox_tensor_f32(a), (size_t)(M * D) * 4);
        memcpy(dst + M * D * 4, ox_tensor_f32(b), (size_t)(M * D) * 4);
        memcpy(dst + 2 * M * D * 4, ox_tensor_f32(a), (size_t)(M * D) * 4);
        double t3 = now();
        if (!y || !y2)
            die(ctx, "concat");
        if (r >= 0) {
            tc[r] = t1 - t0;
            tt[r] = t2 - t1;
            tm[r] = t3 - t2;
        }
    }
    double gb = 2.0 * 3 * (double)(M * D) * 4 / 1e9;
    double mc = median(tc, REPS), mt = median(tt, REPS), mm = median(tm, REPS);
    printf("concat 3 x [%lld, %lld] axis %d  %d thr: contiguous %6.3f ms (%5.1f GB/s), one transposed %6.3f ms "
           "(%5.1f GB/s); memcpy %6.3f ms (%5.1f GB/s)\n", (long long)M, (long long)D, axis, nt, 1e3 * mc, gb / mc,
           1e3 * mt, gb / mt, 1e3 * mm, gb / mm);
    free(dst);
    ox_tensor_free(a);
    ox_tensor_free(b);
    ox_tensor_free(ct);
}

/* ---- 4. solve_tril_unit ---- */

static void ref_forward_subst(const float *l, float *x, int64_t nb, int64_t n, int64_t m)
{
    for (int64_t q = 0; q < nb; q++) {
        const float *lq = l + q * n * n;
        float *xq = x + q * n * m;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < i; j++) {
                float lij = lq[i * n + j];
                for (int64_t c = 0; c < m; c++)
                    xq[i * m + c] -= lij * xq[j * m + c];
            }
    }
}

static void bench_solve(ox_ctx *ctx, int nt, int64_t nb, int64_t n, int64_t m)
{
    ox_rng rng = ox_rng_seed(4);
    ox_tensor *l = owned_randn(ctx, &rng, OX_DIMS(nb, n, n), 0.3 / 8);
    ox_tensor *b = owned_randn(ctx, &rng, OX_DIMS(nb, n, m), 1.0);
    ox_tensor *seed = owned_randn(ctx, &rng, OX_DIMS(nb, n, m), 1.0);
    float *xr = malloc(sizeof(float) * (size_t)(nb * n * m));
    if (!xr || ox_tensor_require_grad(ctx, l) || ox_tensor_require_grad(ctx, b))
        die(ctx, "solve inputs");
    ox_ctx_set_threads(ctx, nt);
    double tf[REPS], tb[REPS], tr[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        ox_ctx_reset(ctx);
        double t0 = now();
        ox_tensor *x = ox_ag_solve_tril_unit(ctx, l, b);
        double t1 = now();
        if (!x || ox_ag_backward_seeded(ctx, x, seed))
            die(ctx, "solve");
        double t2 = now();
        memcpy(xr, ox_tensor_f32(b), sizeof(float) * (size_t)(nb * n * m));
        ref_forward_subst(ox_tensor_f32(l), xr, nb, n, m);
        double t3 = now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
            tr[r] = t3 - t2;
        }
    }
    /* forward: n(n-1)/2 * m multiply-adds per batch; backward: the same trsm plus an n x n x m gemm */
    double ff = (double)nb * n * (n - 1) * m / 1e9, fb = ff + 2.0 * nb * n * n * m / 1e9;
    double mf = median(tf, REPS), mb = median(tb, REPS), mr = median(tr, REPS);
    printf("solve_tril_unit [%lld, %lld, %lld] m %lld  %d thr: fwd %6.3f ms (%5.1f GFLOP/s, plain loop %6.3f ms, "
           "x%.1f)  bwd %6.3f ms (%5.1f GFLOP/s)\n", (long long)nb, (long long)n, (long long)n, (long long)m, nt,
           1e3 * mf, ff / mf, 1e3 * mr, mr / mf, 1e3 * mb, fb / mb);
    free(xr);
    ox_tensor_free(l);
    ox_tensor_free(b);
    ox_tensor_free(seed);
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    int maxt = ox_cores_available() >= 2 ? 2 : 1;
    for (int nt = 1; nt <= maxt; nt++) {
        bench_gather(ctx, nt, 256, 4096, 256);
        bench_gather(ctx, nt, 32768, 4096, 256);
        bench_take(ctx, nt, 4096, 256);
        bench_concat(ctx, nt, 4096, 256, 1);
        bench_concat(ctx, nt, 4096, 256, 0);
        bench_solve(ctx, nt, 64, 64, 64);
        bench_solve(ctx, nt, 1, 1024, 256);
    }
    ox_ctx_free(ctx);
    return 0;
}
