/* bench_nn_modules.c - forward and forward+backward time of each nn/ module at the toy model size
 * (B*T = 2048 tokens, D = 256, F = 704, V = 256, H = 4, dv = 64), at 1 and 2 threads.
 *
 * Each op runs on heap leaves (so ox_ctx_reset between repetitions keeps them), backward seeded with a
 * fixed random gradient. Reported: median over REPS runs after WARMUP runs, and for fwd+bwd a rate:
 * GFLOP/s for the GEMM ops (2*m*n*k per GEMM), GB/s for the memory-bound ops, counting the minimum
 * traffic (each tensor read or written once per pass; a += gradient counts read + write). The last
 * column is the fastest fwd+bwd run: the machine's 2 cores are shared with other jobs, and a 2-thread
 * region whose second thread is descheduled waits for it, so 2-thread medians are noisy.
 *
 *   make build/bench/bench_nn_modules && ./build/bench/bench_nn_modules
 */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/ops.h"
#include "nn/cross_entropy.h"
#include "nn/embedding.h"
#include "nn/gated_rmsnorm.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "nn/shortconv.h"
#include "nn/swiglu.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

#define WARMUP 3
#define REPS 21

enum { BT = 2048, BB = 8, TT = 256, D = 256, F = 704, V = 256, H = 4, DV = 64 };

typedef struct bench_in {
    ox_tensor *x, *w, *g, *wg, *wu, *wd, *cw, *E, *z;
    ox_tensor *tok, *tgt;       /* I32, arena-free heap buffers wrapped per run */
    int32_t *tok_data, *tgt_data;
} bench_in;

static ox_tensor *owned_leaf(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = ox_tensor_new_owned(ctx, OX_F32, ndim, shape);
    if (!t || ox_tensor_fill_normal(ctx, t, rng, mean, std) || ox_tensor_require_grad(ctx, t)) {
        fprintf(stderr, "setup: %s\n", ox_ctx_message(ctx));
        exit(1);
    }
    return t;
}

/* One op: returns its output (for a seeded backward) given the inputs. */
typedef ox_tensor *(*op_fn)(ox_ctx *ctx, bench_in *in);

static ox_tensor *op_linear(ox_ctx *ctx, bench_in *in) { return ox_nn_linear(ctx, in->x, in->wg); }
static ox_tensor *op_head(ox_ctx *ctx, bench_in *in) { return ox_nn_linear(ctx, in->x, in->E); }
static ox_tensor *op_embed(ox_ctx *ctx, bench_in *in)
{
    return ox_nn_embedding_lookup(ctx, in->E, ox_tensor_from_buffer(ctx, OX_I32, OX_DIMS(BB, TT), in->tok_data));
}
static ox_tensor *op_rmsnorm(ox_ctx *ctx, bench_in *in) { return ox_nn_rmsnorm(ctx, in->x, in->w); }
static ox_tensor *op_gnorm(ox_ctx *ctx, bench_in *in) { return ox_nn_gated_rmsnorm(ctx, in->x, in->g, in->w, DV); }
static ox_tensor *op_conv(ox_ctx *ctx, bench_in *in) { return ox_nn_shortconv(ctx, in->x, in->cw, OX_NN_ACT_SILU); }
static ox_tensor *op_silu_mul(ox_ctx *ctx, bench_in *in) { return ox_nn_silu_mul(ctx, in->x, in->g); }
static ox_tensor *op_swiglu(ox_ctx *ctx, bench_in *in) { return ox_nn_swiglu(ctx, in->x, in->wg, in->wu, in->wd); }
static ox_tensor *op_ce(ox_ctx *ctx, bench_in *in)
{
    return ox_nn_cross_entropy(ctx, in->z, ox_tensor_from_buffer(ctx, OX_I32, OX_DIMS(BB, TT), in->tgt_data), -1);
}

/* median seconds of forward (backward = 0) or forward + backward; *fastest gets the minimum */
static double time_op(ox_ctx *ctx, bench_in *in, op_fn f, int backward, float *seed_buf, double *fastest)
{
    double t[REPS];
    for (int r = -WARMUP; r < REPS; r++) {
        double t0 = now();
        int prev = ox_ag_set_grad_enabled(ctx, backward);
        ox_tensor *y = f(ctx, in);
        ox_ag_set_grad_enabled(ctx, prev);
        if (!y) {
            fprintf(stderr, "forward: %s\n", ox_ctx_message(ctx));
            exit(1);
        }
        if (backward) {
            ox_tensor *seed = ox_tensor_from_buffer(ctx, OX_F32, y->ndim, y->shape, seed_buf);
            if (ox_ag_backward_seeded(ctx, y, seed)) {
                fprintf(stderr, "backward: %s\n", ox_ctx_message(ctx));
                exit(1);
            }
        }
        double dt = now() - t0;
        ox_ctx_reset(ctx);
        if (r >= 0)
            t[r] = dt;
    }
    qsort(t, REPS, sizeof t[0], cmp_double);
    *fastest = t[0];
    return t[REPS / 2];
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_rng rng = ox_rng_seed(1);
    bench_in in;
    memset(&in, 0, sizeof in);
    in.x = owned_leaf(ctx, &rng, OX_DIMS(BB, TT, D), 0, 1);
    in.g = owned_leaf(ctx, &rng, OX_DIMS(BB, TT, D), 0, 1);
    in.w = owned_leaf(ctx, &rng, OX_DIMS(D), 1, 0.1);
    in.wg = owned_leaf(ctx, &rng, OX_DIMS(F, D), 0, 0.02);
    in.wu = owned_leaf(ctx, &rng, OX_DIMS(F, D), 0, 0.02);
    in.wd = owned_leaf(ctx, &rng, OX_DIMS(D, F), 0, 0.02);
    in.cw = owned_leaf(ctx, &rng, OX_DIMS(D, 4), 0, 0.3);
    in.E = owned_leaf(ctx, &rng, OX_DIMS(V, D), 0, 0.02);
    in.z = owned_leaf(ctx, &rng, OX_DIMS(BB, TT, V), 0, 2);
    in.tok_data = malloc(sizeof(int32_t) * BT);
    in.tgt_data = malloc(sizeof(int32_t) * BT);
    float *seed = malloc(sizeof(float) * (size_t)BT * F);
    if (!in.tok_data || !in.tgt_data || !seed)
        return 1;
    for (int i = 0; i < BT; i++) {
        in.tok_data[i] = (int32_t)ox_rng_below(&rng, V);
        in.tgt_data[i] = (int32_t)ox_rng_below(&rng, V);
    }
    for (int64_t i = 0; i < (int64_t)BT * F; i++)
        seed[i] = (float)ox_rng_normal(&rng);

    const double N = (double)BT * D, fl = 2.0 * BT;     /* elements of an activation; 2 * rows */
    struct {
        const char *name;
        op_fn f;
        int gemm;           /* rate in GFLOP/s (1) or GB/s (0) */
        double work;        /* flops or bytes of forward + backward */
    } ops[] = {
        { "linear [2048,256]x[704,256]^T", op_linear, 1, 3 * fl * D * F },
        { "tied head [2048,256]x[256,256]^T", op_head, 1, 3 * fl * D * V },
        { "embedding lookup [8,256]->[..,256]", op_embed, 0, 4.0 * (2 * N + 3 * N) },
        { "rmsnorm [2048,256]", op_rmsnorm, 0, 4.0 * (2 * N + 4 * N) },
        { "gated_rmsnorm [2048,4*64]", op_gnorm, 0, 4.0 * (3 * N + 7 * N) },
        { "shortconv+silu [8,256,256]", op_conv, 0, 4.0 * (2 * N + 4 * N) },
        { "silu_mul [2048,256]", op_silu_mul, 0, 4.0 * (3 * N + 7 * N) },
        { "swiglu mlp D=256 F=704", op_swiglu, 1, 9 * fl * D * F },
        { "cross_entropy [2048,256]", op_ce, 0, 4.0 * (1 * N + 3 * N) },
    };
    /* ox_gemm_arch() aborts inside BLIS if it is the first BLIS call of the process (BLIS's kernel
     * context is not yet initialised), so run one tiny GEMM first */
    float one = 1.0f, out = 0.0f;
    ox_sgemm(1, 1, 1, 1, 1.0f, &one, 1, 1, &one, 1, 1, 0.0f, &out, 1, 1);
    printf("nn modules at B*T = %d, D = %d, F = %d, V = %d, H = %d, dv = %d; median of %d (BLIS %s)\n", BT, D,
           F, V, H, DV, REPS, ox_gemm_arch());
    printf("%-36s %7s %10s %12s %16s %10s\n", "op", "threads", "fwd ms", "fwd+bwd ms", "fwd+bwd rate",
           "min f+b ms");
    for (int threads = 1; threads <= 2; threads++) {
        ox_ctx_set_threads(ctx, threads);
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            double mf, mb;
            double tf = time_op(ctx, &in, ops[k].f, 0, seed, &mf);
            double tb = time_op(ctx, &in, ops[k].f, 1, seed, &mb);
            printf("%-36s %7d %10.3f %12.3f %8.1f %-7s %10.3f\n", ops[k].name, threads, 1e3 * tf, 1e3 * tb,
                   ops[k].work / tb * 1e-9, ops[k].gemm ? "GFLOP/s" : "GB/s", 1e3 * mb);
        }
    }
    ox_tensor *owned[] = { in.x, in.g, in.w, in.wg, in.wu, in.wd, in.cw, in.E, in.z };
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++)
        ox_tensor_free(owned[k]);
    free(in.tok_data);
    free(in.tgt_data);
    free(seed);
    ox_ctx_free(ctx);
    return 0;
}
