/* test_tensor_core.c - arena reuse, counted allocation, RNG reproducibility across thread counts,
 * creation helpers and the context's error state. */
#include "test_util.h"

#include <string.h>

Test(arena, reuse_after_reset_allocates_nothing)
{
    ox_arena a;
    ox_arena_init(&a);
    /* a "step" that spills over several blocks */
    for (int i = 0; i < 5; i++)
        cr_assert_not_null(ox_arena_alloc(&a, 700000));
    size_t cap = ox_arena_capacity(&a);
    cr_assert_geq(cap, 5 * 700000);
    ox_arena_reset(&a);                 /* merges into one block of the total size */
    cr_assert_eq(ox_arena_capacity(&a), cap);
    uint64_t before = ox_alloc_count();
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 5; i++) {
            void *p = ox_arena_alloc(&a, 700000);
            cr_assert_not_null(p);
            cr_assert_eq((uintptr_t)p % 64, 0, "64-byte aligned");
        }
        ox_arena_reset(&a);
    }
    cr_assert_eq(ox_alloc_count(), before, "steady-state steps must not allocate");
    cr_assert_geq(a.high_water, 5 * 700000);
    ox_arena_free(&a);
}

Test(arena, mark_and_rewind)
{
    ox_arena a;
    ox_arena_init(&a);
    void *p = ox_arena_alloc(&a, 100);
    ox_arena_mark m = ox_arena_get_mark(&a);
    void *q = ox_arena_alloc(&a, 3 << 20);      /* forces a second block */
    cr_assert_not_null(q);
    ox_arena_rewind(&a, m);
    void *r = ox_arena_alloc(&a, 64);
    cr_assert_eq((char *)r, (char *)p + 128, "rewind returns the space after the mark");
    ox_arena_free(&a);
}

Test(alloc, counts_and_tracks_bytes)
{
    uint64_t n = ox_alloc_count(), live = ox_alloc_bytes_live();
    void *p = ox_malloc(1000);
    cr_assert_eq(ox_alloc_count(), n + 1);
    cr_assert_eq(ox_alloc_bytes_live(), live + 1000);
    cr_assert_eq((uintptr_t)p % 64, 0);
    ox_free(p);
    cr_assert_eq(ox_alloc_bytes_live(), live);
    cr_assert_null(ox_malloc(SIZE_MAX - 10));
}

Test(rng, same_seed_same_numbers_whatever_the_thread_count)
{
    ox_ctx *c1 = test_ctx(), *c2 = test_ctx();
    ox_ctx_set_threads(c1, 1);
    ox_ctx_set_threads(c2, 2);
    ox_rng r1 = ox_rng_seed(42), r2 = ox_rng_seed(42);
    int64_t n = 200000;     /* above the parallel threshold */
    ox_tensor *a = ox_tensor_randn(c1, &r1, OX_DIMS(n), 0, 1);
    ox_tensor *b = ox_tensor_randn(c2, &r2, OX_DIMS(n), 0, 1);
    cr_assert_eq(memcmp(a->data, b->data, sizeof(float) * (size_t)n), 0);
    cr_assert_eq(r1.counter, r2.counter);
    /* the state advanced: the next fill differs from the first */
    ox_tensor *a2 = ox_tensor_randn(c1, &r1, OX_DIMS(n), 0, 1);
    cr_assert_neq(memcmp(a->data, a2->data, sizeof(float) * (size_t)n), 0);
    /* moments of N(0, 1): mean within 5 standard errors, variance within 1% */
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = ox_tensor_f32(a)[i];
        s += v;
        s2 += v * v;
    }
    cr_assert_lt(fabs(s / n), 5 / sqrt((double)n));
    cr_assert_lt(fabs(s2 / n - 1), 0.01);
    ox_ctx_free(c1);
    ox_ctx_free(c2);
}

Test(rng, uniform_fill_of_a_strided_view_matches_contiguous_fill)
{
    ox_ctx *ctx = test_ctx();
    ox_rng r1 = ox_rng_seed(9), r2 = ox_rng_seed(9);
    ox_tensor *a = ox_tensor_rand(ctx, &r1, OX_DIMS(3, 5), -1, 1);
    ox_tensor *b = ox_tensor_empty(ctx, OX_F32, OX_DIMS(5, 3));
    ox_tensor *bt = ox_tensor_view_transpose(ctx, b, 0, 1);
    assert_ok(ctx, ox_tensor_fill_uniform(ctx, bt, &r2, -1, 1));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
            float v = ox_tensor_f32(a)[i * 5 + j];
            cr_assert_eq(v, ox_tensor_f32(b)[j * 3 + i]);
            cr_assert(v >= -1 && v < 1);
        }
    for (int i = 0; i < 1000; i++)
        cr_assert_lt(ox_rng_below(&r1, 7), 7);
    ox_ctx_free(ctx);
}

Test(tensor, creation_helpers)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *z = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 2));
    ox_tensor *o = ox_tensor_ones(ctx, OX_F32, OX_DIMS(3));
    ox_tensor *f = ox_tensor_full(ctx, OX_F32, OX_DIMS(2), -2.5);
    ox_tensor *r = ox_tensor_arange(ctx, OX_I32, 4, 3, 2);
    ox_tensor *s = ox_tensor_zeros(ctx, OX_F32, 0, NULL);      /* a scalar */
    cr_assert(z && o && f && r && s, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_tensor_i32(z)[3], 0);
    cr_assert_float_eq(ox_tensor_f32(o)[2], 1.0f, 0);
    cr_assert_float_eq(ox_tensor_f32(f)[1], -2.5f, 0);
    cr_assert_eq(ox_tensor_i32(r)[3], 9);
    cr_assert_eq(ox_tensor_numel(s), 1);
    cr_assert_null(ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, -1)));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    char buf[OX_SHAPE_BUF];
    cr_assert_str_eq(ox_shape_str(z, buf), "[2, 2]");
    ox_ctx_free(ctx);
}

Test(tensor, owned_tensors_survive_reset)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *w = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(1000));
    assert_ok(ctx, ox_tensor_require_grad(ctx, w));
    ox_tensor_f32(w)[999] = 7;
    ox_tensor *tmp = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1 << 20));
    cr_assert_not_null(tmp);
    ox_ctx_reset(ctx);
    cr_assert_float_eq(ox_tensor_f32(w)[999], 7.0f, 0);
    cr_assert_float_eq(ox_tensor_f32(w->grad)[999], 0.0f, 0);
    uint64_t live = ox_alloc_bytes_live();
    ox_tensor_free(w);
    cr_assert_lt(ox_alloc_bytes_live(), live);
    ox_ctx_free(ctx);
}

Test(tensor, add_into_reduces_broadcast_axes_in_order)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *src = ox_tensor_arange(ctx, OX_F32, 12, 1, 1);
    ox_tensor *s = ox_tensor_view_reshape(ctx, src, OX_DIMS(3, 4));
    ox_tensor *col = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 1));
    ox_tensor *row = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4));
    assert_ok(ctx, ox_tensor_sum_into(ctx, col, s));
    assert_ok(ctx, ox_tensor_sum_into(ctx, row, s));
    cr_assert_float_eq(ox_tensor_f32(col)[0], 1 + 2 + 3 + 4, 0);
    cr_assert_float_eq(ox_tensor_f32(col)[2], 9 + 10 + 11 + 12, 0);
    cr_assert_float_eq(ox_tensor_f32(row)[1], 2 + 6 + 10, 0);
    ox_ctx_free(ctx);
}

Test(ctx, threads_knob_and_error_state)
{
    ox_ctx *ctx = ox_ctx_new();
    cr_assert_eq(ox_ctx_threads(ctx), ox_cores_available());
    ox_ctx_set_threads(ctx, 1);
    cr_assert_eq(ox_ctx_threads(ctx), 1);
    ox_ctx_set_threads(ctx, 0);
    cr_assert_eq(ox_ctx_threads(ctx), ox_cores_available());
    cr_assert_str_eq(ox_ctx_message(ctx), "");
    cr_assert_eq(ox_ctx_fail(ctx, OX_ERR_IO, "first %d", 1), OX_ERR_IO);
    ox_ctx_fail(ctx, OX_ERR_ARG, "second");
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_IO, "the first error is kept");
    cr_assert_str_eq(ox_ctx_message(ctx), "first 1");
    cr_assert_str_eq(ox_status_string(OX_ERR_SHAPE), "shape mismatch");
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}
