/* bench_decode.c - Oryx decoding (models/oryx/generate.h): time per token vs context length (1k, 4k, 16k) at
 * the default model size (oryx-gdn, D = 256, L = 4, H = 4, dk = dv = 64, F = 704, V = 256), B = 1, for
 *   ATTN          every layer reads the KV cache (attention over the whole context),
 *   LIN + cache   linear readout, the KV cache kept (and appended to at every token),
 *   LIN, dropped  linear readout, no KV cache at all (OX_ORYX_DECODE_NO_KV): constant memory,
 * and the memory each holds: the decode state (ox_oryx_decoder_bytes) and the context arena's capacity.
 * The context is synthetic: the KV caches are filled with random keys and values and the position set to the
 * context length (a step's cost depends only on that length, not on the values), so no O(T^2) prefill runs.
 * Reported: median over 5 rounds of the mean step time over 16 tokens, after 4 warm-up steps; then the time to
 * prefill a 1,024-token prompt by the parallel forward vs by stepping (all-LIN and all-ATTN maps).
 * Threads: all cores (the context default), or OX_BENCH_THREADS.
 * Run: make build/bench/bench_decode && ./build/bench/bench_decode */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "models/oryx/generate.h"
#include "tensor/alloc.h"

#define ROUNDS 5
#define TOKENS 16

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

/* random context of n positions in every kept cache, small random linear states, pos = n */
static int fake_context(ox_ctx *ctx, ox_oryx_decoder *d, int64_t n, ox_rng *rng)
{
    for (int64_t l = 0; l < d->model->cfg.n_layers; l++) {
        ox_oryx_decoder_layer *L = &d->layers[l];
        if (L->kv.k) {
            if (ox_tensor_fill_normal(ctx, L->kv.k, rng, 0.0, 1.0) ||
                ox_tensor_fill_normal(ctx, L->kv.v, rng, 0.0, 1.0))
                return -1;
            L->kv.len = n;
        }
        if (L->state && ox_tensor_fill_normal(ctx, L->state, rng, 0.0, 0.05))
            return -1;
    }
    d->pos = n;
    return 0;
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    if (getenv("OX_BENCH_THREADS"))
        ox_ctx_set_threads(ctx, atoi(getenv("OX_BENCH_THREADS")));
    ox_oryx_config c;
    ox_oryx_model m;
    ox_rng rng = ox_rng_seed(1);
    if (ox_oryx_config_preset(ctx, "oryx-gdn", 4, &c) || ox_oryx_model_init(ctx, &m, &c, &rng)) {
        fprintf(stderr, "%s\n", ox_ctx_message(ctx));
        return 1;
    }
    printf("oryx-gdn D=%lld L=%lld H=%lld dk=%lld dv=%lld F=%lld V=%lld, B=1, threads=%d\n", (long long)c.d_model,
           (long long)c.n_layers, (long long)c.n_heads, (long long)c.d_k, (long long)c.d_v, (long long)c.mlp_hidden,
           (long long)c.vocab, ox_ctx_threads(ctx));
    printf("%-8s %-14s %12s %12s %14s %12s\n", "context", "mode", "ms/token", "tokens/s", "state bytes", "arena bytes");
    const int64_t ctxs[3] = { 1024, 4096, 16384 };
    const char *names[3] = { "ATTN", "LIN + cache", "LIN, dropped" };
    for (int ci = 0; ci < 3; ci++) {
        for (int mode = 0; mode < 3; mode++) {
            int64_t n = ctxs[ci];
            ox_oryx_decoder d;
            if (ox_oryx_decoder_init(ctx, &d, &m, 1, n + 4 + ROUNDS * TOKENS, mode == 2 ? OX_ORYX_DECODE_NO_KV : 0) ||
                fake_context(ctx, &d, n, &rng)) {
                fprintf(stderr, "%s\n", ox_ctx_message(ctx));
                return 1;
            }
            int32_t md = mode == 0 ? OX_NN_ATTN : OX_NN_LIN, tok = 1;
            double t[ROUNDS];
            for (int w = 0; w < 4; w++)
                ox_oryx_decoder_step(ctx, &d, &tok, &md, 1);
            for (int r = 0; r < ROUNDS; r++) {
                double t0 = now();
                for (int i = 0; i < TOKENS; i++) {
                    tok = (int32_t)ox_rng_below(&rng, (uint64_t)c.vocab);
                    ox_oryx_decoder_step(ctx, &d, &tok, &md, 1);
                }
                t[r] = (now() - t0) / TOKENS;
            }
            if (ox_ctx_status(ctx)) {
                fprintf(stderr, "%s\n", ox_ctx_message(ctx));
                return 1;
            }
            qsort(t, ROUNDS, sizeof t[0], cmp_double);
            printf("%-8lld %-14s %12.3f %12.1f %14llu %12zu\n", (long long)n, names[mode], 1e3 * t[ROUNDS / 2],
                   1.0 / t[ROUNDS / 2], (unsigned long long)ox_oryx_decoder_bytes(&d),
                   ox_arena_capacity(&ctx->arena));
            ox_oryx_decoder_free(&d);
        }
    }
    /* prefill of a 1k-token prompt: the parallel forward (from the empty state) vs stepping it token by token
     * (a prefill that continues a sequence), for an all-LIN and an all-ATTN map */
    const int64_t P = 1024;
    ox_tensor *prompt = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, P));
    for (int64_t i = 0; i < P && prompt; i++)
        ox_tensor_i32(prompt)[i] = (int32_t)ox_rng_below(&rng, (uint64_t)c.vocab);
    printf("\nprefill of %lld tokens (ms, median of 3)\n%-6s %12s %12s\n", (long long)P, "map", "parallel",
           "stepped");
    for (int mode = 0; mode < 2 && prompt; mode++) {
        ox_tensor *map = ox_tensor_full(ctx, OX_I32, OX_DIMS(1, P), mode == 0 ? OX_NN_LIN : OX_NN_ATTN);
        double tp[3], ts[3];
        for (int r = 0; r < 3; r++) {
            ox_oryx_decoder d;
            if (ox_oryx_decoder_init(ctx, &d, &m, 1, P + 1, 0)) {
                fprintf(stderr, "%s\n", ox_ctx_message(ctx));
                return 1;
            }
            double t0 = now();
            ox_oryx_decoder_prefill(ctx, &d, prompt, map, NULL);             /* pos 0: parallel */
            tp[r] = now() - t0;
            ox_oryx_decoder_reset(&d);
            int32_t tok = 1, md = mode == 0 ? OX_NN_LIN : OX_NN_ATTN;
            ox_oryx_decoder_step(ctx, &d, &tok, &md, 1);                      /* pos 1: stepping */
            t0 = now();
            ox_oryx_decoder_prefill(ctx, &d, ox_tensor_view_narrow(ctx, prompt, 1, 1, P - 1),
                                    ox_tensor_view_narrow(ctx, map, 1, 1, P - 1), NULL);
            ts[r] = (now() - t0) * (double)P / (double)(P - 1);
            ox_oryx_decoder_free(&d);
        }
        if (ox_ctx_status(ctx)) {
            fprintf(stderr, "%s\n", ox_ctx_message(ctx));
            return 1;
        }
        qsort(tp, 3, sizeof tp[0], cmp_double);
        qsort(ts, 3, sizeof ts[0], cmp_double);
        printf("%-6s %12.1f %12.1f\n", mode == 0 ? "LIN" : "ATTN", 1e3 * tp[1], 1e3 * ts[1]);
    }
    printf("process peak of library heap bytes: %llu\n", (unsigned long long)ox_alloc_bytes_peak());
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
    return 0;
}
