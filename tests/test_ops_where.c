/* test_ops_where.c - selection by a mask (autograd/where.c): where and masked_fill. Forward against plain
 * loops on broadcast and transposed operands (NaN and nonzero non-one masks included), gradients by
 * gradcheck and exactly (counts of selected elements), the mask getting no gradient, threaded backward
 * of a broadcast input equal to the serial one bit for bit, and the error cases.
 *
 * Suite: ops_where. */
#include "index_util.h"

#include "tensor/iter.h"

/* cond [3, 1] broadcast over columns, a [4, 3] used as its transpose [3, 4], b [4] broadcast over rows. */
Test(ops_where, where_forward_broadcast_strided_and_any_nonzero_selects)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    float cv[3] = { 0.0f, NAN, -2.5f };       /* 0 picks b; NaN and -2.5 are nonzero and pick a */
    ox_tensor *c = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3, 1), cv);
    ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(4, 3), 0, 1);
    ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(4), 0, 1);
    ox_tensor *y = ox_ag_where(ctx, c, ox_ag_transpose(ctx, a, 0, 1), b);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float want = i == 0 ? ox_tensor_f32(b)[j] : ox_tensor_f32(a)[j * 3 + i];
            cr_assert_eq(ox_tensor_f32(y)[i * 4 + j], want, "[%d, %d]", i, j);
        }
    ox_ctx_free(ctx);
}

/* x [4] broadcast against mask [3, 4]: y [3, 4]; the fill value -inf (a score mask) is kept exactly. */
Test(ops_where, masked_fill_forward_broadcast_and_infinite_value)
{
    ox_ctx *ctx = test_ctx();
    float xv[4] = { 1, 2, 3, 4 };
    float mv[12] = { 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 2 };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4), xv);
    ox_tensor *m = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3, 4), mv);
    ox_tensor *y = ox_ag_masked_fill(ctx, x, m, -INFINITY);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(ox_tensor_f32(y)[i], mv[i] != 0 ? -INFINITY : xv[i % 4], "[%d]", i);
    /* the same as where(mask, full(value), x) */
    ox_tensor *w = ox_ag_where(ctx, m, ox_tensor_full(ctx, OX_F32, 0, NULL, 7.5), x);
    ox_tensor *f = ox_ag_masked_fill(ctx, x, m, 7.5);
    cr_assert(bits_equal(ox_tensor_f32(w), ox_tensor_f32(f), 12));
    ox_ctx_free(ctx);
}

/* ---- gradients ---- */

struct where_arg { const ox_tensor *cond; };

/* a [4, 3] transposed to [3, 4], b [1, 4] broadcast over rows; cond [3, 4] (a fixed 0/1 pattern) */
static ox_tensor *f_where(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct where_arg *w = arg;
    return ox_ag_where(ctx, w->cond, ox_ag_transpose(ctx, in[0], 0, 1), in[1]);
}

/* x [4] broadcast against mask [3, 4] */
static ox_tensor *f_fill(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct where_arg *w = arg;
    return ox_ag_masked_fill(ctx, in[0], w->cond, 100.0);
}

/* where and masked_fill are piecewise identities: the fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3)
 * hold with a wide margin (the difference quotient of a selected element is exact up to fp32 rounding,
 * an unselected one is exactly 0). The mask makes every input both selected and not somewhere, so a
 * backward that ignored the mask or sent everything to one side would fail. */
Test(ops_where, gradcheck_where_and_masked_fill)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    float cv[12] = { 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0 };
    struct where_arg w = { ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3, 4), cv) };
    ox_tensor *a = test_leaf(ctx, &rng, OX_DIMS(4, 3), 1);
    ox_tensor *b = test_leaf(ctx, &rng, OX_DIMS(1, 4), 1);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(4), 1);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_where, &w, 2, ((ox_tensor *[]){ a, b }), &o);
    assert_gradcheck(ctx, f_fill, &w, 1, ((ox_tensor *[]){ x }), &o);
    ox_ctx_free(ctx);
}

/* d sum(where(c, a, b)) / da_j = #rows with c != 0 in column j, and the rest to b; exact integers. The
 * first backward creates the gradients (the fresh '=' path for a, same shape as y), the second one
 * accumulates onto them: the counts must double. */
Test(ops_where, gradients_are_exact_selection_counts_and_accumulate)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    float cv[12] = { 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0 };
    ox_tensor *c = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3, 4), cv);
    ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(4), 0, 1);
    a->requires_grad = 1;          /* no gradient buffer yet: backward makes it fresh */
    assert_ok(ctx, ox_tensor_require_grad(ctx, b));
    for (int pass = 1; pass <= 2; pass++) {
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_where(ctx, c, a, b))));
        cr_assert_not_null(a->grad);
        for (int j = 0; j < 4; j++) {
            float nb = 0;
            for (int i = 0; i < 3; i++) {
                cr_assert_eq(ox_tensor_f32(a->grad)[i * 4 + j], pass * cv[i * 4 + j], "a [%d, %d]", i, j);
                nb += cv[i * 4 + j] == 0;
            }
            cr_assert_eq(ox_tensor_f32(b->grad)[j], pass * nb, "b [%d] pass %d", j, pass);
        }
    }
    ox_ctx_free(ctx);
}

Test(ops_where, mask_gets_no_gradient_and_alone_is_not_recorded)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    ox_tensor *c = test_leaf(ctx, &rng, OX_DIMS(5), 1);   /* a mask that requires a gradient */
    ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(5), 0, 1);
    ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(5), 0, 1);
    int64_t len = ctx->tape_len;
    ox_tensor *y = ox_ag_where(ctx, c, a, b);
    ox_tensor *f = ox_ag_masked_fill(ctx, a, c, 0.0);
    cr_assert(y && f, "%s", ox_ctx_message(ctx));
    cr_assert(!y->requires_grad && !f->requires_grad && ctx->tape_len == len,
              "only the mask requires a gradient: nothing to record");
    /* with a differentiable input, backward leaves the mask's gradient untouched */
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(5), 1);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_masked_fill(ctx, x, c, 3.0))));
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ox_tensor_f32(c->grad)[i], 0.0f);
        cr_assert_eq(ox_tensor_f32(x->grad)[i], ox_tensor_f32(c)[i] != 0 ? 0.0f : 1.0f);
    }
    ox_ctx_free(ctx);
}

/* A broadcast input's gradient is summed on one thread in a fixed order: bit-identical for 1 and 2
 * threads, on a size that the iterator splits between threads. */
Test(ops_where, threaded_backward_equals_serial)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    int64_t n = 2 * OX_PARALLEL_MIN + 5, rows = 3;
    ox_tensor *c = ox_ag_gt(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(rows, n), 0, 1),
                            ox_tensor_zeros(ctx, OX_F32, 0, NULL));
    ox_tensor *dy = ox_tensor_randn(ctx, &rng, OX_DIMS(rows, n), 0, 1);
    float *ref[2] = { NULL, NULL };
    for (int threads = 1; threads <= 2; threads++) {
        ox_ctx_set_threads(ctx, threads);
        ox_rng r2 = ox_rng_seed(6);
        ox_tensor *a = test_leaf(ctx, &r2, OX_DIMS(rows, n), 1);
        ox_tensor *b = test_leaf(ctx, &r2, OX_DIMS(n), 1);          /* broadcast over rows */
        assert_ok(ctx, ox_ag_backward_seeded(ctx, ox_ag_where(ctx, c, a, b), dy));
        if (threads == 1) {
            ref[0] = ox_tensor_f32(a->grad);
            ref[1] = ox_tensor_f32(b->grad);
        } else {
            cr_assert(bits_equal(ref[0], ox_tensor_f32(a->grad), rows * n));
            cr_assert(bits_equal(ref[1], ox_tensor_f32(b->grad), n));
        }
    }
    ox_ctx_free(ctx);
}

Test(ops_where, errors_name_every_shape)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 1));
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(5));
    cr_assert_null(ox_ag_where(ctx, c, a, b));
    assert_error(ctx, OX_ERR_SHAPE, "where: shapes [2, 1] (cond), [2, 3] (a) and [5] (b) do not broadcast");
    cr_assert_null(ox_ag_masked_fill(ctx, a, b, 0));
    assert_error(ctx, OX_ERR_SHAPE, "masked_fill: shapes [2, 3] (x) and [5] (mask) do not broadcast");
    ox_tensor *ic = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_where(ctx, ic, a, a));
    assert_error(ctx, OX_ERR_DTYPE, "where");
    cr_assert_null(ox_ag_masked_fill(ctx, a, ic, 0));
    assert_error(ctx, OX_ERR_DTYPE, "masked_fill");
    cr_assert_null(ox_ag_where(ctx, NULL, a, a));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}
