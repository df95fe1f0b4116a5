/* bench_attention.c - timing of causal attention, forward + backward (medians of 5 runs after a warm-up):
 *   1. the BLIS sgemm rate on a 512 x 512 x 512 product, as the yardstick of this machine and run;
 *   2. B = 8, H = 4, dk = dv = 64, T = 256 and 1024: the fast path against the materialised reference,
 *      and the fast path's achieved GFLOP/s (flops of the tiles it computes, masked entries included:
 *      2 * attn_madds forward, 2 * attn_madds * (3 dk + 2 dv) / (dk + dv) backward);
 *   3. 10% of the 64-token chunks as query rows (spread evenly) against all rows, T = 1024 (B = 8) and
 *      T = 4096 (B = 2);
 *   4. the arena's peak bytes for forward + backward at T = 4096.
 * Threads: all cores (the context default). Run: make build/bench/bench_attention && ./build/bench/bench_attention */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "autograd/tape.h"
#include "nn/attention.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

#define RUNS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void die(ox_ctx *ctx)
{
    fprintf(stderr, "error: %s\n", ox_ctx_message(ctx));
    exit(1);
}

typedef ox_tensor *(*attn_fn)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, const ox_tensor *);

typedef struct timing {
    double fwd, bwd;            /* medians, seconds */
    uint64_t madds;             /* forward work count of one run */
    size_t peak;                /* arena bytes above the inputs during one forward + backward */
} timing;

/* Medians of RUNS forward and backward passes (after one warm-up run). */
static timing time_attn(ox_ctx *ctx, attn_fn fn, int64_t B, int64_t T, int64_t H, int64_t d,
                        const ox_tensor *rows)
{
    ox_rng rng = ox_rng_seed(1);
    ox_arena_mark outer = ox_arena_get_mark(&ctx->arena);
    ox_tensor *q = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *k = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *v = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *dout = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    if (!q || ox_tensor_require_grad(ctx, q) || ox_tensor_require_grad(ctx, k) || ox_tensor_require_grad(ctx, v))
        die(ctx);
    double tf[RUNS], tb[RUNS];
    timing r = { 0, 0, 0, 0 };
    for (int run = -1; run < RUNS; run++) {
        ox_arena_mark m = ox_arena_get_mark(&ctx->arena);
        ctx->arena.high_water = ctx->arena.used;
        ctx->attn_madds = 0;
        double t0 = now();
        ox_tensor *o = fn(ctx, q, k, v, rows);
        double t1 = now();
        if (!o || ox_ag_backward_seeded(ctx, o, dout))
            die(ctx);
        double t2 = now();
        if (run >= 0) {
            tf[run] = t1 - t0;
            tb[run] = t2 - t1;
        }
        r.madds = ctx->attn_madds;
        r.peak = ctx->arena.high_water - m.used;
        ox_arena_rewind(&ctx->arena, m);
    }
    ox_arena_rewind(&ctx->arena, outer);
    r.fwd = median(tf, RUNS);
    r.bwd = median(tb, RUNS);
    return r;
}

/* Flops of the fast path's tiles for one forward + backward. */
static double fast_flops(uint64_t madds, int64_t dk, int64_t dv)
{
    return 2.0 * (double)madds * (1.0 + (double)(3 * dk + 2 * dv) / (double)(dk + dv));
}

/* Rows map selecting n_sel of the T/64 chunks, spread evenly; returns the fraction selected. */
static ox_tensor *chunk_rows(ox_ctx *ctx, int64_t B, int64_t T, double frac, double *got)
{
    int64_t n_chunks = T / 64, n_sel = (int64_t)(frac * (double)n_chunks + 0.5);
    if (n_sel < 1)
        n_sel = 1;
    ox_tensor *r = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!r)
        die(ctx);
    for (int64_t i = 0; i < n_sel; i++) {
        int64_t c = (int64_t)(((double)i + 0.5) * (double)n_chunks / (double)n_sel);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = c * 64; t < c * 64 + 64; t++)
                ox_tensor_i32(r)[b * T + t] = 1;
    }
    *got = (double)n_sel / (double)n_chunks;
    return r;
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    printf("threads %d\n", ctx->n_threads);

    /* 1. sgemm yardstick */
    {
        const int64_t n = 512;
        ox_rng rng = ox_rng_seed(2);
        ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(n, n), 0, 1);
        ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(n, n), 0, 1);
        ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(n, n));
        if (!a || !b || !c)
            die(ctx);
        double t[RUNS];
        for (int run = -1; run < RUNS; run++) {
            double t0 = now();
            ox_sgemm(ctx->n_threads, n, n, n, 1.0f, ox_tensor_f32(a), n, 1, ox_tensor_f32(b), n, 1, 0.0f,
                     ox_tensor_f32(c), n, 1);
            if (run >= 0)
                t[run] = now() - t0;
        }
        double s = median(t, RUNS);
        printf("sgemm 512x512x512: %.3f ms, %.1f GFLOP/s\n", 1e3 * s, 2.0 * n * n * n / s * 1e-9);
        ox_ctx_reset(ctx);
    }
    double gemm_rate;
    {
        const int64_t n = 512;
        ox_rng rng = ox_rng_seed(2);
        ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(n, n), 0, 1);
        ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(n, n));
        double t[RUNS];
        for (int run = 0; run < RUNS; run++) {
            double t0 = now();
            ox_sgemm(ctx->n_threads, n, n, n, 1.0f, ox_tensor_f32(a), n, 1, ox_tensor_f32(a), 1, n, 0.0f,
                     ox_tensor_f32(c), n, 1);
            t[run] = now() - t0;
        }
        gemm_rate = 2.0 * n * n * n / median(t, RUNS) * 1e-9;
        ox_ctx_reset(ctx);
    }

    /* 2. fast vs reference */
    const int64_t H = 4, d = 64;
    const int64_t Ts[2] = { 256, 1024 };
    for (int i = 0; i < 2; i++) {
        int64_t B = 8, T = Ts[i];
        timing f = time_attn(ctx, ox_nn_attention, B, T, H, d, NULL);
        timing r = time_attn(ctx, ox_nn_attention_reference, B, T, H, d, NULL);
        double tf = f.fwd + f.bwd, tr = r.fwd + r.bwd;
        double gf = fast_flops(f.madds, d, d) / tf * 1e-9;
        printf("B=%lld T=%lld H=%lld d=%lld  fast fwd %.2f ms bwd %.2f ms total %.2f ms | reference fwd %.2f ms "
               "bwd %.2f ms total %.2f ms | speedup %.2fx | fast %.1f GFLOP/s = %.0f%% of sgemm (%.1f)\n",
               (long long)B, (long long)T, (long long)H, (long long)d, 1e3 * f.fwd, 1e3 * f.bwd, 1e3 * tf,
               1e3 * r.fwd, 1e3 * r.bwd, 1e3 * tr, tr / tf, gf, 100.0 * gf / gemm_rate, gemm_rate);
        ox_ctx_reset(ctx);
    }

    /* 3. 10% of the chunks as query rows vs all rows; 4. peak arena bytes at T = 4096 */
    const int64_t Tsub[2] = { 1024, 4096 }, Bsub[2] = { 8, 2 };
    for (int i = 0; i < 2; i++) {
        int64_t B = Bsub[i], T = Tsub[i];
        double frac;
        ox_tensor *rows = chunk_rows(ctx, B, T, 0.10, &frac);
        timing all = time_attn(ctx, ox_nn_attention, B, T, H, d, NULL);
        timing sub = time_attn(ctx, ox_nn_attention, B, T, H, d, rows);
        printf("B=%lld T=%lld H=%lld d=%lld  all rows %.2f ms (%.1f GFLOP/s) | %.1f%% of chunks %.2f ms | "
               "ratio %.3f (work ratio %.3f)\n", (long long)B, (long long)T, (long long)H, (long long)d,
               1e3 * (all.fwd + all.bwd), fast_flops(all.madds, d, d) / (all.fwd + all.bwd) * 1e-9, 100 * frac,
               1e3 * (sub.fwd + sub.bwd), (sub.fwd + sub.bwd) / (all.fwd + all.bwd),
               (double)sub.madds / (double)all.madds);
        if (T == 4096)
            printf("peak arena bytes, forward + backward, B=%lld T=4096 H=%lld d=%lld: %.2f MiB (inputs and "
                   "their gradients excluded; one T x T float matrix per (b, h) would be %.0f MiB)\n",
                   (long long)B, (long long)H, (long long)d, all.peak / 1048576.0,
                   (double)(B * H) * T * T * 4 / 1048576.0);
        ox_ctx_reset(ctx);
    }
    ox_ctx_free(ctx);
    return 0;
}
