/* rng.c - counter-based SplitMix64 generator and tensor fills (see rng.h). */
#include "tensor/rng.h"
#include "tensor/iter.h"

#include <math.h>

static inline uint64_t mix(uint64_t seed, uint64_t counter)
{
    /* SplitMix64 (Steele, Lea, Flood 2014): the state after `counter` steps, then its output function */
    uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline double to_unit(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

static inline double normal_at(uint64_t seed, uint64_t c)
{
    double u1 = to_unit(mix(seed, c)), u2 = to_unit(mix(seed, c + 1));
    return sqrt(-2.0 * log1p(-u1)) * cos(6.283185307179586 * u2);   /* 1 - u1 is in (0, 1] */
}

ox_rng ox_rng_seed(uint64_t seed)
{
    ox_rng r = { seed, 0 };
    return r;
}

uint64_t ox_rng_next(ox_rng *r) { return mix(r->seed, r->counter++); }
double ox_rng_uniform(ox_rng *r) { return to_unit(ox_rng_next(r)); }

uint64_t ox_rng_below(ox_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = ox_rng_next(r);
    while (x >= limit);
    return x % n;
}

double ox_rng_normal(ox_rng *r)
{
    double z = normal_at(r->seed, r->counter);
    r->counter += 2;
    return z;
}

static ox_status fill_random(ox_ctx *ctx, ox_tensor *t, ox_rng *r, int normal, double a, double b)
{
    if (ctx->status)
        return ctx->status;
    if (ox_check_f32(ctx, "random fill", t))
        return ctx->status;
    int64_t n = ox_tensor_numel(t);
    uint64_t seed = r->seed, c0 = r->counter;
    uint64_t per = normal ? 2 : 1;
    float *base = ox_tensor_f32(t);
    int nd = t->ndim;
    int nt = n >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* element i (row-major) uses counters c0 + per*i: independent of threads and strides */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rem = i;
        for (int d = nd - 1; d >= 0; d--) {
            off += (rem % t->shape[d]) * t->stride[d];
            rem /= t->shape[d];
        }
        uint64_t c = c0 + per * (uint64_t)i;
        double v = normal ? a + b * normal_at(seed, c) : a + b * to_unit(mix(seed, c));
        base[off] = (float)v;
    }
    r->counter = c0 + per * (uint64_t)n;
    return OX_OK;
}

ox_status ox_tensor_fill_uniform(ox_ctx *ctx, ox_tensor *t, ox_rng *r, double lo, double hi)
{
    return fill_random(ctx, t, r, 0, lo, hi - lo);
}

ox_status ox_tensor_fill_normal(ox_ctx *ctx, ox_tensor *t, ox_rng *r, double mean, double std)
{
    return fill_random(ctx, t, r, 1, mean, std);
}

ox_tensor *ox_tensor_rand(ox_ctx *ctx, ox_rng *r, int ndim, const int64_t *shape, double lo, double hi)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_F32, ndim, shape);
    if (t && ox_tensor_fill_uniform(ctx, t, r, lo, hi))
        return NULL;
    return t;
}

ox_tensor *ox_tensor_randn(ox_ctx *ctx, ox_rng *r, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_F32, ndim, shape);
    if (t && ox_tensor_fill_normal(ctx, t, r, mean, std))
        return NULL;
    return t;
}
