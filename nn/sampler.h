/* sampler.h - drawing one token id from a row of logits: greedy, temperature, top-k and top-p (nucleus),
 * seeded. What a language model's generation loop calls once per token (models/oryx/generate.h uses it).
 *
 *   ox_nn_sampler s = { .temperature = 0.8, .top_k = 40, .top_p = 0.95 };
 *   ox_rng rng = ox_rng_seed(1234);
 *   int32_t tok = ox_nn_sample(ctx, logits, V, &s, &rng);      // -1 + message on error
 *
 * Law: with temperature t > 0, candidates are the k largest logits (k = top_k, 0 = all V; ties: lower id
 * first), in decreasing order; their weights w_j = exp((z_j - z_max) / t); with 0 < top_p < 1 only the
 * shortest prefix of candidates whose weight reaches top_p of the candidates' total is kept (at least one).
 * One ox_rng_uniform draw u picks the first j with u * sum(w) < w_0 + ... + w_j. Greedy (t <= 0 or
 * top_k = 1) is the argmax, lowest id on ties, and draws nothing. */
#ifndef OX_NN_SAMPLER_H
#define OX_NN_SAMPLER_H

#include <stdint.h>

#include "tensor/ctx.h"
#include "tensor/rng.h"

typedef struct ox_nn_sampler {
    double temperature;     /* <= 0: greedy; otherwise softmax(z / temperature) */
    int64_t top_k;          /* > 0: only the k largest logits; 0 = all */
    double top_p;           /* in (0, 1): nucleus of that probability mass; 0 or >= 1: off */
} ox_nn_sampler;

/* One token id from logits[0..V-1] (see above); rng may be NULL for greedy. Errors (-1 + message): V < 1, a
 * negative top_k or top_p, a missing rng when sampling, non-finite logits. Scratch from the arena, released. */
int32_t ox_nn_sample(ox_ctx *ctx, const float *logits, int64_t V, const ox_nn_sampler *s, ox_rng *rng);

#endif
