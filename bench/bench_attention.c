/* bench_attention.c - timing of causal attention, forward + backward (medians of 5 runs after a warm-up):
 *   1. the BLIS sgemm rate on a 512 x 512 x 512 product, on one thread and on all, as the yardstick;
 *   2. B = 8, H = 4, dk = dv = 64, T = 256 and 1024: the fast path against the materialised reference,
 *      and the fast path's achieved GFLOP/s (flops of the tiles it computes, masked entries included:
 *      2 * attn_madds forward, 2 * attn_madds * (3 dk + 2 dv) / (dk + dv) backward);
 *   3. 10% of the 64-token chunks as query rows (spread evenly) against all rows, T = 1024 (B = 8) and
 *      T = 4096 (B = 2);
 *   4. the arena's peak bytes for forward + backward at T = 4096.
 * Runs of the configurations compared are interleaved, so load from other processes hits them alike.
 * Threads: all cores (the context default).
 * Run: make build/bench/bench_attention && ./build/bench/bench_attention */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "autograd/tape.h"
#include "nn/attention.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

#define RUNS 7

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

/* One configuration of a comparison: the op and its rows map. */
typedef struct config {
    attn_fn fn;
    const ox_tensor *rows;
} config;

/* Times n configurations on the same inputs, their runs interleaved (run i of every configuration, then
 * run i + 1, ...) so that a change in the machine's load hits them alike; medians of RUNS forward and
 * backward passes each, after one warm-up round. */
static void time_configs(ox_ctx *ctx, int n, const config *cf, timing *out, int64_t B, int64_t T, int64_t H,
                         int64_t d)
{
    ox_rng rng = ox_rng_seed(1);
    ox_arena_mark outer = ox_arena_get_mark(&ctx->arena);
    ox_tensor *q = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *k = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *v = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    ox_tensor *dout = ox_tensor_randn(ctx, &rng, OX_DIMS(B, T, H, d), 0, 1);
    if (!q || !k || !v || !dout || ox_tensor_require_grad(ctx, q) || ox_tensor_require_grad(ctx, k) ||
        ox_tensor_require_grad(ctx, v))
        die(ctx);
    double tf[4][RUNS], tb[4][RUNS];
    for (int run = -1; run < RUNS; run++)
        for (int c = 0; c < n; c++) {
            ox_arena_mark m = ox_arena_get_mark(&ctx->arena);
            ctx->arena.high_water = ctx->arena.used;
            ctx->attn_madds = 0;
            double t0 = now();
            ox_tensor *o = cf[c].fn(ctx, q, k, v, cf[c].rows);
            double t1 = now();
            if (!o || ox_ag_backward_seeded(ctx, o, dout))
                die(ctx);
            double t2 = now();
            if (run >= 0) {
                tf[c][run] = t1 - t0;
                tb[c][run] = t2 - t1;
            }
            out[c].madds = ctx->attn_madds;
            out[c].peak = ctx->arena.high_water - m.used;
            ox_arena_rewind(&ctx->arena, m);
        }
    ox_arena_rewind(&ctx->arena, outer);
    for (int c = 0; c < n; c++) {
        out[c].fwd = median(tf[c], RUNS);
        out[c].bwd = median(tb[c], RUNS);
    }
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
    double load[1] = { 0 };
    getloadavg(load, 1);
    printf("threads %d, load average %.2f (other processes share the cores: timings vary)\n", ctx->n_threads,
           load[0]);

    /* 1. sgemm yardstick, one thread and all threads */
    double gemm_rate[2];
    {
        const int64_t n = 512;
        ox_rng rng = ox_rng_seed(2);
        ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(n, n), 0, 1);
        ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(n, n), 0, 1);
        ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(n, n));
        if (!a || !b || !c)
            die(ctx);
        for (int th = 0; th < 2; th++) {
            int nt = th == 0 ? 1 : ctx->n_threads;
            double t[RUNS];
            for (int run = -1; run < RUNS; run++) {
                double t0 = now();
                ox_sgemm(nt, n, n, n, 1.0f, ox_tensor_f32(a), n, 1, ox_tensor_f32(b), n, 1, 0.0f,
                         ox_tensor_f32(c), n, 1);
                if (run >= 0)
                    t[run] = now() - t0;
            }
            gemm_rate[th] = 2.0 * n * n * n / median(t, RUNS) * 1e-9;
            printf("sgemm 512x512x512, %d thread(s): %.1f GFLOP/s\n", nt, gemm_rate[th]);
        }
        ox_ctx_reset(ctx);
    }

    /* 2. fast vs reference */
    const int64_t H = 4, d = 64;
    const int64_t Ts[2] = { 256, 1024 };
    const config vs_ref[2] = { { ox_nn_attention, NULL }, { ox_nn_attention_reference, NULL } };
    for (int i = 0; i < 2; i++) {
        int64_t B = 8, T = Ts[i];
        timing t[2];
        time_configs(ctx, 2, vs_ref, t, B, T, H, d);
        double tf = t[0].fwd + t[0].bwd, tr = t[1].fwd + t[1].bwd;
        double gf = fast_flops(t[0].madds, d, d) / tf * 1e-9;
        printf("B=%lld T=%lld H=%lld dk=dv=%lld: fast fwd %.1f + bwd %.1f = %.1f ms | reference fwd %.1f + "
               "bwd %.1f = %.1f ms | speedup %.2fx\n", (long long)B, (long long)T, (long long)H, (long long)d,
               1e3 * t[0].fwd, 1e3 * t[0].bwd, 1e3 * tf, 1e3 * t[1].fwd, 1e3 * t[1].bwd, 1e3 * tr, tr / tf);
        printf("    fast path %.1f GFLOP/s = %.0f%% of %d x the 1-thread sgemm rate\n", gf,
               100.0 * gf / (gemm_rate[0] * ctx->n_threads), ctx->n_threads);
        ox_ctx_reset(ctx);
    }

    /* 3. 10% of the chunks as query rows vs all rows; 4. peak arena bytes at T = 4096 */
    const int64_t Tsub[2] = { 1024, 4096 }, Bsub[2] = { 8, 2 };
    for (int i = 0; i < 2; i++) {
        int64_t B = Bsub[i], T = Tsub[i];
        double frac;
        ox_tensor *rows = chunk_rows(ctx, B, T, 0.10, &frac);
        timing t[2];
        time_configs(ctx, 2, (const config[]){ { ox_nn_attention, NULL }, { ox_nn_attention, rows } }, t,
                     B, T, H, d);
        double ta = t[0].fwd + t[0].bwd, ts = t[1].fwd + t[1].bwd;
        printf("B=%lld T=%lld H=%lld dk=dv=%lld: all rows %.1f ms (%.1f GFLOP/s) | %.1f%% of the chunks "
               "%.1f ms | time ratio %.3f (work ratio %.3f)\n", (long long)B, (long long)T, (long long)H,
               (long long)d, 1e3 * ta, fast_flops(t[0].madds, d, d) / ta * 1e-9, 100 * frac, 1e3 * ts,
               ts / ta, (double)t[1].madds / (double)t[0].madds);
        if (T == 4096)
            printf("    peak arena bytes, forward + backward (all rows): %.2f MiB above the inputs and their "
                   "gradients; o and its gradient are %.0f MiB each; one T x T float matrix per (b, h) would "
                   "be %.0f MiB\n", t[0].peak / 1048576.0, (double)(B * T * H * d) * 4 / 1048576.0,
                   (double)(B * H) * T * T * 4 / 1048576.0);
        ox_ctx_reset(ctx);
    }
    ox_ctx_free(ctx);
    return 0;
}
