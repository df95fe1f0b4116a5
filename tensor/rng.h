/* rng.h - explicit, seeded random numbers: the library has no hidden global RNG.
 *
 * The generator is counter based (SplitMix64 over a 64-bit counter): number i of a fill depends only on
 * the seed and the counter, never on the thread that computes it, so a fill gives the same numbers at 1
 * and at 2 threads. Its whole state is two integers, saved in checkpoints to resume bit-identically.
 *
 *   ox_rng rng = ox_rng_seed(1234);
 *   ox_tensor *w = ox_tensor_randn(ctx, &rng, OX_DIMS(256, 64), 0.0, 0.02);
 *   double u = ox_rng_uniform(&rng);                 // [0, 1)
 */
#ifndef OX_RNG_H
#define OX_RNG_H

#include <stdint.h>

#include "tensor/tensor.h"

typedef struct ox_rng {
    uint64_t seed;
    uint64_t counter;   /* numbers drawn so far */
} ox_rng;

ox_rng ox_rng_seed(uint64_t seed);
/* Next 64 random bits. */
uint64_t ox_rng_next(ox_rng *r);
/* Uniform in [0, 1), 53 bits. */
double ox_rng_uniform(ox_rng *r);
/* Uniform integer in [0, n) (n > 0), without modulo bias. */
uint64_t ox_rng_below(ox_rng *r, uint64_t n);
/* Standard normal (Box-Muller, uses two draws). */
double ox_rng_normal(ox_rng *r);

/* Fill an F32 tensor (any strides): uniform in [lo, hi), or normal(mean, std). Element i in row-major
 * order uses counter values fixed by i, so the result does not depend on the thread count. Advances the
 * RNG by the same amount whatever the tensor's layout. */
ox_status ox_tensor_fill_uniform(ox_ctx *ctx, ox_tensor *t, ox_rng *r, double lo, double hi);
ox_status ox_tensor_fill_normal(ox_ctx *ctx, ox_tensor *t, ox_rng *r, double mean, double std);

/* New arena tensors filled as above. */
ox_tensor *ox_tensor_rand(ox_ctx *ctx, ox_rng *r, int ndim, const int64_t *shape, double lo, double hi);
ox_tensor *ox_tensor_randn(ox_ctx *ctx, ox_rng *r, int ndim, const int64_t *shape, double mean, double std);

#endif
