/* modes.c - mode-map builders (see modes.h). */
#include "models/oryx/modes.h"

#include <math.h>
#include <string.h>

/* SplitMix64's finaliser: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

ox_rng ox_oryx_modes_stream(uint64_t seed, uint64_t step, int64_t b)
{
    uint64_t h = mix64(seed ^ 0x6f72797873656564ULL);           /* "oryxseed" */
    h = mix64(h ^ (step + 0x9e3779b97f4a7c15ULL));
    h = mix64(h ^ ((uint64_t)b + 0x632be59bd9b4e019ULL));
    return ox_rng_seed(h);
}

static int check_sizes(ox_ctx *ctx, const char *op, int64_t B, int64_t T, int64_t chunk)
{
    if (ctx->status)
        return -1;
    if (B < 1 || T < 1 || chunk < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: B = %lld, T = %lld and chunk = %lld must be >= 1", op, (long long)B,
                    (long long)T, (long long)chunk);
        return -1;
    }
    return 0;
}

ox_tensor *ox_oryx_modes_fill(ox_ctx *ctx, int64_t B, int64_t T, int mode)
{
    if (check_sizes(ctx, "oryx modes fill", B, T, 1))
        return NULL;
    if (mode != OX_NN_ATTN && mode != OX_NN_LIN) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes fill: mode %d is neither 1 (ATTN) nor 0 (LIN)", mode);
        return NULL;
    }
    return ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), mode);
}

/* Sets tokens [c * chunk, min((c + 1) * chunk, T)) of one row to ATTN. */
static void set_chunk(int32_t *row, int64_t T, int64_t chunk, int64_t c)
{
    int64_t end = (c + 1) * chunk < T ? (c + 1) * chunk : T;
    for (int64_t t = c * chunk; t < end; t++)
        row[t] = OX_NN_ATTN;
}

static const double default_ratios[] = { 0.0, 0.25, 0.5, 0.75, 1.0 };

ox_tensor *ox_oryx_modes_mixed(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T, int64_t chunk,
                               const double *ratios, int n_ratios)
{
    if (check_sizes(ctx, "oryx modes mixed", B, T, chunk))
        return NULL;
    if (!ratios || n_ratios <= 0) {
        ratios = default_ratios;
        n_ratios = 5;
    }
    for (int i = 0; i < n_ratios; i++)
        if (!(ratios[i] >= 0.0 && ratios[i] <= 1.0)) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes mixed: ratio %d = %g is not in [0, 1]", i, ratios[i]);
            return NULL;
        }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    int64_t nc = (T + chunk - 1) / chunk;
    for (int64_t b = 0; b < B; b++) {
        ox_rng rng = ox_oryx_modes_stream(seed, step, b);
        double r = ratios[ox_rng_below(&rng, (uint64_t)n_ratios)];
        for (int64_t c = 0; c < nc; c++)
            if (ox_rng_uniform(&rng) < r)
                set_chunk(ox_tensor_i32(m) + b * T, T, chunk, c);
    }
    return m;
}

ox_tensor *ox_oryx_modes_chunk_fraction(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T,
                                        int64_t chunk, double fraction)
{
    if (check_sizes(ctx, "oryx modes chunk fraction", B, T, chunk))
        return NULL;
    if (!(fraction >= 0.0 && fraction <= 1.0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes chunk fraction: fraction %g is not in [0, 1]", fraction);
        return NULL;
    }
    int64_t nc = (T + chunk - 1) / chunk;
    int64_t k = (int64_t)llround(fraction * (double)nc);
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    int64_t *idx = ox_ctx_alloc(ctx, sizeof *idx * (size_t)nc);
    if (!m || !idx)
        return NULL;
    for (int64_t b = 0; b < B; b++) {
        ox_rng rng = ox_oryx_modes_stream(seed, step, b);
        for (int64_t c = 0; c < nc; c++)
            idx[c] = c;
        for (int64_t i = 0; i < k; i++) {     /* partial Fisher-Yates: the first k entries are the draw */
            int64_t j = i + (int64_t)ox_rng_below(&rng, (uint64_t)(nc - i));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
            set_chunk(ox_tensor_i32(m) + b * T, T, chunk, idx[i]);
        }
    }
    return m;
}

ox_tensor *ox_oryx_modes_positions(ox_ctx *ctx, int64_t B, int64_t T, const int64_t *pos, int64_t n)
{
    if (check_sizes(ctx, "oryx modes positions", B, T, 1))
        return NULL;
    if (n < 0 || (n > 0 && !pos)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes positions: %lld positions with pos = %p", (long long)n,
                    (const void *)pos);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (pos[i] < 0 || pos[i] >= T) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes positions: pos[%lld] = %lld is outside [0, %lld)", (long long)i,
                        (long long)pos[i], (long long)T);
            return NULL;
        }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++)
            ox_tensor_i32(m)[b * T + pos[i]] = OX_NN_ATTN;
    return m;
}

ox_tensor *ox_oryx_modes_every(ox_ctx *ctx, int64_t B, int64_t T, int64_t every)
{
    if (check_sizes(ctx, "oryx modes every", B, T, 1))
        return NULL;
    if (every < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes every: period %lld must be >= 1", (long long)every);
        return NULL;
    }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = every - 1; t < T; t += every)
            ox_tensor_i32(m)[b * T + t] = OX_NN_ATTN;
    return m;
}
