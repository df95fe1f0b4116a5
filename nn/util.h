/* util.h - small helpers shared by the nn/ modules: folding a tensor's leading axes into one row axis,
 * vectorisable dot products, a vectorisable exp and sigmoid, thread-count choice, and building parameter
 * names "prefix.suffix".
 *
 *   int64_t rows, rs, cs;
 *   if (ox_nn_fold_rows(x, &rows, &rs, &cs) && cs == 1) ...   // x[..., n] is `rows` rows of n floats,
 *                                                              // row r at ox_tensor_f32(x) + r * rs
 */
#ifndef OX_NN_UTIL_H
#define OX_NN_UTIL_H

#include <math.h>
#include <string.h>

#include "nn/param.h"
#include "tensor/iter.h"
#include "tensor/rng.h"
#include "tensor/vmath.h"

/* Longest parameter name the modules build ("layers.12.mixer.k_conv.weight" is 29 characters). */
#define OX_NN_NAME_MAX 256

/* 1 when all leading axes of x [..., n] (ndim >= 1) merge into one row axis: rows = product of the leading
 * sizes, row r starts at element r * rs (rs != 0 when rows > 1), and element j of a row is at j * cs
 * (cs != 0 when n > 1). 0 when they do not (a permuted or broadcast leading axis): copy x first. */
int ox_nn_fold_rows(const ox_tensor *x, int64_t *rows, int64_t *rs, int64_t *cs);

/* x itself when its rows fold with unit element stride, otherwise a contiguous arena copy; sets rows and
 * the row stride. NULL on error (recorded). */
ox_tensor *ox_nn_unit_rows(ox_ctx *ctx, ox_tensor *x, int64_t *rows, int64_t *rs);

/* A new parameter called "<prefix>.<suffix>" in ps (zero-filled, zeroed gradient), or NULL (error
 * recorded, including a name longer than OX_NN_NAME_MAX). */
ox_tensor *ox_nn_param_new(ox_ctx *ctx, ox_nn_params *ps, const char *prefix, const char *suffix, int ndim,
                           const int64_t *shape, ox_nn_decay decay);

/* sum_i a[i] b[i] in float with 16 partial sums (the compiler vectorises it), combined in a fixed order:
 * the result depends only on n and the data. */
static inline float ox_nn_dot(const float *a, const float *b, int64_t n)
{
    float acc[16] = { 0 };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += a[i + k] * b[i + k];
    float s = 0.0f;
    for (int k = 0; k < 16; k++)
        s += acc[k];
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* sum_i a[i] b[i] c[i], same scheme as ox_nn_dot. */
static inline float ox_nn_dot3(const float *a, const float *b, const float *c, int64_t n)
{
    float acc[16] = { 0 };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += a[i + k] * b[i + k] * c[i + k];
    float s = 0.0f;
    for (int k = 0; k < 16; k++)
        s += acc[k];
    for (; i < n; i++)
        s += a[i] * b[i] * c[i];
    return s;
}

/* Rows per block of the row-blocked weight-gradient reductions (rmsnorm, gated_rmsnorm): each block sums
 * its rows into its own partial vector, and the partials are added in block order, so the result does not
 * depend on the thread count. */
#define OX_NN_ROW_BLOCK 32

/* sigmoid(z) = 1 / (1 + e^-z); expf vectorises through tensor/vmath.h */
static inline float ox_nn_sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Threads for a loop over `work` elements: ctx->n_threads when the work is large, else 1. */
static inline int ox_nn_threads(const ox_ctx *ctx, int64_t work)
{
    return work >= OX_PARALLEL_MIN && ctx->n_threads > 1 ? ctx->n_threads : 1;
}

#endif
