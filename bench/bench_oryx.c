/* bench_oryx.c - one training step (loss forward + backward) of the Oryx-family models at the default size
 * (D = 256, L = 4, H = 4, dk = dv = 64, F = 704, V = 256) with B = 8, T = 256: medians of 5 steps after a
 * warm-up, for the single-mixer presets and for oryx-gdn / oryx-mamba2 under all-ATTN, all-LIN and the
 * mixed-mode sampler's maps (MODELS 8). Reports ms per step, tokens per second and the arena's peak bytes.
 * Configurations are interleaved run by run, so load from other processes hits them alike.
 * Threads: all cores (the context default).
 * Run: make build/bench/bench_oryx && ./build/bench/bench_oryx */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "models/oryx/model.h"
#include "models/oryx/modes.h"

#define RUNS 5

enum { MAP_NONE, MAP_ATTN, MAP_LIN, MAP_MIXED };

struct cfg {
    const char *preset;
    int map;
    const char *label;
};

int main(void)
{
    const struct cfg cfgs[] = {
        { "transformer", MAP_NONE, "transformer" },        { "gdn", MAP_NONE, "gdn" },
        { "mamba2", MAP_NONE, "mamba2" },                  { "hybrid-gdn", MAP_NONE, "hybrid-gdn" },
        { "oryx-gdn", MAP_ATTN, "oryx-gdn all ATTN" },     { "oryx-gdn", MAP_LIN, "oryx-gdn all LIN" },
        { "oryx-gdn", MAP_MIXED, "oryx-gdn mixed" },       { "oryx-mamba2", MAP_ATTN, "oryx-mamba2 all ATTN" },
        { "oryx-mamba2", MAP_LIN, "oryx-mamba2 all LIN" }, { "oryx-mamba2", MAP_MIXED, "oryx-mamba2 mixed" },
    };
    enum { N = sizeof cfgs / sizeof cfgs[0] };
    const int64_t B = 8, T = 256;
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    static ox_oryx_model models[N];
    ox_rng rng = ox_rng_seed(1);
    for (int i = 0; i < N; i++) {
        ox_oryx_config c;
        if (ox_oryx_config_preset(ctx, cfgs[i].preset, 4, &c) || ox_oryx_model_init(ctx, &models[i], &c, &rng)) {
            fprintf(stderr, "%s\n", ox_ctx_message(ctx));
            return 1;
        }
    }
    ox_tensor *rows_owned = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T + 1));
    for (int64_t i = 0; i < B * (T + 1); i++)
        ox_tensor_i32(rows_owned)[i] = (int32_t)ox_rng_below(&rng, 256);
    double t[N][RUNS + 1];
    size_t peak[N] = { 0 };
    for (int run = 0; run <= RUNS; run++)       /* run 0 is the warm-up */
        for (int i = 0; i < N; i++) {
            ox_ctx_reset(ctx);
            ctx->arena.high_water = 0;
            ox_tensor *mode = NULL;
            if (cfgs[i].map == MAP_ATTN || cfgs[i].map == MAP_LIN)
                mode = ox_oryx_modes_fill(ctx, B, T, cfgs[i].map == MAP_ATTN ? OX_NN_ATTN : OX_NN_LIN);
            else if (cfgs[i].map == MAP_MIXED)
                mode = ox_oryx_modes_mixed(ctx, 7, (uint64_t)run, B, T, 64, NULL, 0);
            ox_nn_params_zero_grad(&models[i].params);
            double t0 = now();
            ox_tensor *loss = ox_oryx_loss(ctx, &models[i], rows_owned, mode, NULL);
            if (!loss || ox_ag_backward(ctx, loss)) {
                fprintf(stderr, "%s: %s\n", cfgs[i].label, ox_ctx_message(ctx));
                return 1;
            }
            t[i][run] = now() - t0;
            peak[i] = ctx->arena.high_water;
        }
    printf("one training step (loss forward + backward), B = %lld, T = %lld, D = 256, L = 4, H = 4, dk = dv = 64, "
           "threads = %d; median of %d\n", (long long)B, (long long)T, ox_ctx_threads(ctx), RUNS);
    printf("%-24s %10s %12s %12s %14s\n", "model", "ms/step", "min ms", "tokens/s", "arena peak MB");
    for (int i = 0; i < N; i++) {
        double *v = &t[i][1];
        qsort(v, RUNS, sizeof *v, cmp_double);
        printf("%-24s %10.1f %12.1f %12.0f %14.1f\n", cfgs[i].label, 1e3 * v[RUNS / 2], 1e3 * v[0],
               (double)(B * T) / v[RUNS / 2], (double)peak[i] / (1 << 20));
    }
    for (int i = 0; i < N; i++)
        ox_oryx_model_free(&models[i]);
    ox_tensor_free(rows_owned);
    ox_ctx_free(ctx);
    return 0;
}
