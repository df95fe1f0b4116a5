/* bench_linear_mixers.c - forward + backward time of the SSD and GDN cores: chunked fast path vs the
 * sequential reference, and the fast path's achieved GFLOP/s against the BLIS sgemm rate measured in the
 * same run. B = 8, H = 4, dk = dv = 64, T = 256 and 1024; medians (and minima) of 7 runs. The flop count
 * is that of the fast path's products (fast_flops); its elementwise work is not counted. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/tape.h"
#include "nn/gdn.h"
#include "nn/ssd.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

#define RUNS 7

typedef ox_status (*mixer_fn)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *,
                              ox_tensor *, ox_tensor **, ox_tensor **);

/* Flops of the fast path's products (2 m n k per gemm, n^2 m per triangular solve of n x m), forward plus
 * backward (which recomputes the forward's products), summed over full chunks of n = 64. */
static double fast_flops(int gdn, double B, double T, double H, double dk, double dv)
{
    const double n = 64, chunks = B * H * T / n;
    double fwd = 2 * n * n * dk + 2 * n * n * dv + 2 * 2 * n * dk * dv;          /* QK^T, PU, QS0^T, U^T K */
    double rec = 2 * n * n * dk;                                                   /* QK^T again */
    double bwd = 4 * 2 * n * dk * dv + 2 * 2 * n * n * dv + 2 * 2 * n * n * dk;   /* B9, B8, B7 */
    if (gdn) {
        const double extra = 2 * n * n * dk + n * n * dv + 2 * n * dk * dv;   /* KK^T, solve, Bk S0^T */
        fwd += extra;
        rec += extra;
        bwd += n * n * dv + 2 * n * n * dv + 2 * 2 * n * dk * dv + 2 * 2 * n * n * dk;   /* solve, dA, dBk, dS0, dG K */
    }
    return chunks * (fwd + rec + bwd);
}

static ox_tensor *owned(ox_ctx *ctx, ox_rng *r, int ndim, const int64_t *shape, double lo, double hi)
{
    ox_tensor *t = ox_tensor_new_owned(ctx, OX_F32, ndim, shape);
    if (!t || ox_tensor_fill_uniform(ctx, t, r, lo, hi) || ox_tensor_require_grad(ctx, t)) {
        fprintf(stderr, "setup: %s\n", ox_ctx_message(ctx));
        exit(1);
    }
    return t;
}

/* Seconds of one forward + backward (both outputs seeded). */
static double run_once(ox_ctx *ctx, mixer_fn f, ox_tensor *const *in, const ox_tensor *seed)
{
    ox_ag_zero_grad(in, 6);
    double t0 = now();
    ox_tensor *y = NULL, *s = NULL;
    if (f(ctx, in[0], in[1], in[2], in[3], in[4], in[5], &y, &s) || ox_ag_backward_seeded(ctx, y, seed)) {
        fprintf(stderr, "run: %s\n", ox_ctx_message(ctx));
        exit(1);
    }
    double dt = now() - t0;
    ox_ctx_reset(ctx);
    return dt;
}

/* GFLOP/s of ox_sgemm on m = n = k = size with the given threads (median of RUNS). */
static double sgemm_rate(int threads, int64_t size, int reps)
{
    float *a = calloc((size_t)(size * size), 4), *b = calloc((size_t)(size * size), 4), *c = calloc((size_t)(size * size), 4);
    for (int64_t i = 0; i < size * size; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double t[RUNS];
    for (int run = -1; run < RUNS; run++) {
        double t0 = now();
        for (int rep = 0; rep < reps; rep++)
            ox_sgemm(threads, size, size, size, 1.0f, a, size, 1, b, size, 1, 0.0f, c, size, 1);
        if (run >= 0)
            t[run] = (now() - t0) / reps;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * size * size * size / median(t, RUNS) * 1e-9;
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    const int threads = ox_ctx_threads(ctx);
    const int64_t B = 8, H = 4, dk = 64, dv = 64;
    /* time the sgemms first: ox_gemm_arch() before BLIS's first call aborts inside BLIS 0.9.0 */
    const double big = sgemm_rate(threads, 1024, 3), small1 = sgemm_rate(1, 64, 2000);
    printf("linear mixers: B=%lld H=%lld dk=%lld dv=%lld, %d threads, BLIS kernels '%s', medians of %d runs\n",
           (long long)B, (long long)H, (long long)dk, (long long)dv, threads, ox_gemm_arch(), RUNS);
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la))
            strcpy(load, "?");
        fclose(la);
    }
    printf("load average at start (other processes share the cores): %s", load);
    printf("sgemm rate: 1024^3 on %d threads %.1f GFLOP/s; 64^3 on 1 thread %.1f GFLOP/s (x%d threads = %.1f)\n",
           threads, big, small1, threads, small1 * threads);
    const int64_t Ts[2] = { 256, 1024 };
    for (int gdn = 0; gdn < 2; gdn++)
        for (int ti = 0; ti < 2; ti++) {
            const int64_t T = Ts[ti];
            ox_rng r = ox_rng_seed(1);
            ox_tensor *in[6] = {
                owned(ctx, &r, OX_DIMS(B, T, H, dk), -0.02, 0.02), owned(ctx, &r, OX_DIMS(B, T, H, dk), -0.2, 0.2),
                owned(ctx, &r, OX_DIMS(B, T, H, dv), -1, 1),       owned(ctx, &r, OX_DIMS(B, T, H), 0.05, 0.95),
                owned(ctx, &r, OX_DIMS(B, T, H), -1, -0.001),      owned(ctx, &r, OX_DIMS(B, H, dv, dk), -0.5, 0.5),
            };
            ox_tensor *seed = owned(ctx, &r, OX_DIMS(B, T, H, dv), -1, 1);
            mixer_fn fast = gdn ? ox_nn_gdn : ox_nn_ssd, ref = gdn ? ox_nn_gdn_reference : ox_nn_ssd_reference;
            /* fast and reference runs alternate (after one warm-up each), so a burst of load from other
             * processes on this shared machine hits both alike; medians and minima of RUNS runs */
            double tfs[RUNS], trs[RUNS];
            run_once(ctx, fast, in, seed);
            run_once(ctx, ref, in, seed);
            for (int run = 0; run < RUNS; run++) {
                tfs[run] = run_once(ctx, fast, in, seed);
                trs[run] = run_once(ctx, ref, in, seed);
            }
            const double tf = median(tfs, RUNS), tr = median(trs, RUNS);
            const double gf = fast_flops(gdn, (double)B, (double)T, (double)H, (double)dk, (double)dv) / tf * 1e-9;
            printf("%s T=%-5lld fwd+bwd median (min): fast %7.1f (%7.1f) ms  reference %7.1f (%7.1f) ms  "
                   "speedup %5.2fx (%5.2fx)  fast path %5.1f GFLOP/s = %3.0f%% of sgemm 1024^3, %3.0f%% of "
                   "%d x sgemm 64^3\n", gdn ? "gdn" : "ssd", (long long)T, tf * 1e3, tfs[0] * 1e3, tr * 1e3,
                   trs[0] * 1e3, tr / tf, trs[0] / tfs[0], gf, 100 * gf / big, 100 * gf / (small1 * threads),
                   threads);
            for (int i = 0; i < 6; i++)
                ox_tensor_free(in[i]);
            ox_tensor_free(seed);
        }
    ox_ctx_free(ctx);
    return 0;
}
