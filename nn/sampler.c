/* sampler.c - one token id from a row of logits (sampler.h). */
#include "nn/sampler.h"

#include <math.h>

int32_t ox_nn_sample(ox_ctx *ctx, const float *logits, int64_t V, const ox_nn_sampler *s, ox_rng *rng)
{
    if (ctx->status)
        return -1;
    if (!logits || !s || V < 1 || s->top_k < 0 || !(s->top_p >= 0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "sample: need logits, a sampler, V >= 1, top_k >= 0 and top_p >= 0 (V=%lld "
                    "top_k=%lld top_p=%g)", (long long)V, s ? (long long)s->top_k : 0LL, s ? s->top_p : 0.0);
        return -1;
    }
    int64_t best = 0;
    for (int64_t i = 0; i < V; i++) {
        if (!isfinite(logits[i])) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "sample: logit %lld is not finite (%g)", (long long)i,
                        (double)logits[i]);
            return -1;
        }
        if (logits[i] > logits[best])
            best = i;
    }
    if (s->temperature <= 0.0 || s->top_k == 1)
        return (int32_t)best;
    if (!rng) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "sample: temperature %g needs an rng", s->temperature);
        return -1;
    }
    int64_t k = s->top_k == 0 || s->top_k > V ? V : s->top_k;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int64_t *idx = ox_ctx_alloc(ctx, (size_t)k * sizeof(int64_t));
    double *w = ox_ctx_alloc(ctx, (size_t)k * sizeof(double));
    if (!idx || !w)
        return -1;
    /* the k largest, in decreasing order (ties: lower id first), by insertion */
    int64_t n = 0;
    for (int64_t i = 0; i < V; i++) {
        if (n == k && !(logits[i] > logits[idx[k - 1]]))
            continue;
        int64_t j = n < k ? n++ : k - 1;
        while (j > 0 && logits[i] > logits[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    double mx = logits[idx[0]], total = 0.0;
    for (int64_t j = 0; j < k; j++) {
        w[j] = exp(((double)logits[idx[j]] - mx) / s->temperature);
        total += w[j];
    }
    if (s->top_p > 0 && s->top_p < 1) {     /* the nucleus: the shortest prefix reaching top_p of the mass */
        double mass = 0.0;
        int64_t keep = 0;
        while (keep < k && (keep == 0 || mass < s->top_p * total))
            mass += w[keep++];
        k = keep;
        total = mass;
    }
    double u = ox_rng_uniform(rng) * total, acc = 0.0;
    int32_t pick = (int32_t)idx[k - 1];
    for (int64_t j = 0; j < k; j++) {
        acc += w[j];
        if (u < acc) {
            pick = (int32_t)idx[j];
            break;
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    return pick;
}
