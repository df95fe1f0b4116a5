/* index_util.h - helpers shared by tests/test_index.c, test_concat.c and test_solve.c: strided element
 * access, bitwise equality of float arrays, I32 index tensors (borrowed or random) and an error check that
 * names the expected status and message fragment. */
#ifndef OX_TEST_INDEX_UTIL_H
#define OX_TEST_INDEX_UTIL_H

#include "test_util.h"

#include <string.h>

/* ---- helpers ---- */

/* Element [i, j] / [i, j, k] of a strided F32 tensor. */
static inline float at2(const ox_tensor *t, int64_t i, int64_t j)
{
    return ox_tensor_f32(t)[i * t->stride[0] + j * t->stride[1]];
}

static inline float at3(const ox_tensor *t, int64_t i, int64_t j, int64_t k)
{
    return ox_tensor_f32(t)[i * t->stride[0] + j * t->stride[1] + k * t->stride[2]];
}

static inline int bits_equal(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* An I32 tensor over a caller array (borrowed). */
static inline ox_tensor *i32_tensor(ox_ctx *ctx, int ndim, const int64_t *shape, int32_t *data)
{
    ox_tensor *t = ox_tensor_from_buffer(ctx, OX_I32, ndim, shape, data);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    return t;
}

/* An I32 tensor [n] of uniform ids in [0, limit). */
static inline ox_tensor *random_ids(ox_ctx *ctx, ox_rng *rng, int64_t n, int64_t limit)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, OX_DIMS(n));
    cr_assert_not_null(t);
    for (int64_t i = 0; i < n; i++)
        ox_tensor_i32(t)[i] = (int32_t)ox_rng_below(rng, (uint64_t)limit);
    return t;
}

static inline void assert_error(ox_ctx *ctx, ox_status want, const char *must_contain)
{
    cr_assert_eq(ox_ctx_status(ctx), want, "status %d (want %d): %s", ox_ctx_status(ctx), want,
                 ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), must_contain), "message \"%s\" should contain \"%s\"",
              ox_ctx_message(ctx), must_contain);
    ox_ctx_clear_error(ctx);
}

#endif
