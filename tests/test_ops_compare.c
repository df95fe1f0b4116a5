/* test_ops_compare.c - comparisons (autograd/compare.c): eq, ne, lt, le, gt, ge against plain C
 * comparisons on broadcast and transposed inputs with ties and NaNs, the result being a constant mask
 * (never recorded, no gradient), and the error cases.
 *
 * Suite: ops_compare. */
#include "index_util.h"

#include <string.h>

#include "tensor/iter.h"

typedef ox_tensor *(*cmp_fn)(ox_ctx *, ox_tensor *, ox_tensor *);

static const cmp_fn cmp_ops[6] = { ox_ag_eq, ox_ag_ne, ox_ag_lt, ox_ag_le, ox_ag_gt, ox_ag_ge };
static const char *const cmp_names[6] = { "eq", "ne", "lt", "le", "gt", "ge" };

static int ref_cmp(int op, float a, float b)
{
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    case 5: return a >= b;
    }
    return -1;
}

/* a [4, 3] used as its transpose [3, 4] (strided), against b [4] broadcast over rows; values are drawn
 * from {-1, 0, 1, NaN} so that ties and NaNs both occur, and the result is exactly 0 or 1. */
Test(ops_compare, every_op_matches_c_on_broadcast_strided_inputs_with_ties_and_nans)
{
    ox_ctx *ctx = test_ctx();
    float av[12], bv[4];
    for (int i = 0; i < 12; i++)
        av[i] = i % 4 == 3 ? NAN : (float)(i % 3 - 1);
    bv[0] = -1;
    bv[1] = 0;
    bv[2] = NAN;
    bv[3] = 1;
    ox_tensor *a = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4, 3), av);
    ox_tensor *b = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4), bv);
    ox_tensor *at = ox_ag_transpose(ctx, a, 0, 1);
    for (int op = 0; op < 6; op++) {
        ox_tensor *y = cmp_ops[op](ctx, at, b);
        cr_assert_not_null(y, "%s: %s", cmp_names[op], ox_ctx_message(ctx));
        cr_assert(y->dtype == OX_F32 && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
        int ones = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                float got = ox_tensor_f32(y)[i * 4 + j];
                int want = ref_cmp(op, av[j * 3 + i], bv[j]);
                cr_assert(got == (float)want, "%s [%d, %d]: %g vs %d (a %g, b %g)", cmp_names[op], i, j, got, want,
                          av[j * 3 + i], bv[j]);
                ones += want;
            }
        /* the inputs make every op both true and false somewhere: a constant result would fail above */
        cr_assert(ones > 0 && ones < 12, "%s: %d ones", cmp_names[op], ones);
    }
    ox_ctx_free(ctx);
}

/* Large enough to be split between threads: the threaded result equals the one-thread result. */
Test(ops_compare, threaded_equals_serial_and_scalar_operand_broadcasts)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    int64_t n = 3 * OX_PARALLEL_MIN + 17;
    ox_tensor *x = ox_tensor_randn(ctx, &rng, OX_DIMS(n), 0, 1);
    ox_tensor *zero = ox_tensor_zeros(ctx, OX_F32, 0, NULL);
    ox_tensor *y1 = ox_ag_gt(ctx, x, zero);
    ox_ctx_set_threads(ctx, 2);
    ox_tensor *y2 = ox_ag_gt(ctx, x, zero);
    cr_assert_not_null(y1);
    cr_assert_not_null(y2, "%s", ox_ctx_message(ctx));
    cr_assert(bits_equal(ox_tensor_f32(y1), ox_tensor_f32(y2), n));
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(ox_tensor_f32(y1)[i], ox_tensor_f32(x)[i] > 0 ? 1.0f : 0.0f);
    /* the 0-d operand may come first too */
    ox_tensor *y3 = ox_ag_lt(ctx, zero, x);
    cr_assert(bits_equal(ox_tensor_f32(y1), ox_tensor_f32(y3), n));
    ox_ctx_free(ctx);
}

Test(ops_compare, result_is_a_constant_mask_never_recorded)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_tensor *a = test_leaf(ctx, &rng, OX_DIMS(3, 4), 1);
    ox_tensor *b = test_leaf(ctx, &rng, OX_DIMS(4), 1);
    int64_t len = ctx->tape_len;
    for (int op = 0; op < 6; op++) {
        ox_tensor *y = cmp_ops[op](ctx, a, b);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert_eq(y->requires_grad, 0, "%s result requires a gradient", cmp_names[op]);
    }
    cr_assert_eq(ctx->tape_len, len, "a comparison was recorded on the tape");
    ox_ctx_free(ctx);
}

/* y = x * (x > 0.3): the mask is a constant, so dy/dx = mask; gradcheck with values 0.1+ away from 0.3
 * (the fp32 defaults, eps 1e-3 << 0.1, so no difference quotient straddles the jump). */
static ox_tensor *f_masked(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *c = ox_tensor_full(ctx, OX_F32, 0, NULL, 0.3);
    return ox_ag_mul(ctx, in[0], ox_ag_gt(ctx, in[0], c));
}

Test(ops_compare, mask_times_input_gradcheck)
{
    ox_ctx *ctx = test_ctx();
    float v[6] = { -0.8f, 0.1f, 0.45f, 0.9f, 0.15f, 1.3f };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2, 3), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_masked, NULL, 1, (ox_tensor *[]){ x }, &o);
    /* and the gradient is exactly the mask */
    ox_ag_zero_grad(&x, 1);
    ox_tensor *y = ox_ag_sum_all(ctx, f_masked(ctx, &x, NULL));
    assert_ok(ctx, ox_ag_backward(ctx, y));
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ox_tensor_f32(x->grad)[i], v[i] > 0.3f ? 1.0f : 0.0f);
    ox_ctx_free(ctx);
}

Test(ops_compare, errors_name_shapes_and_dtypes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4));
    cr_assert_null(ox_ag_le(ctx, a, b));
    assert_error(ctx, OX_ERR_SHAPE, "le: shapes [2, 3] and [4] do not broadcast");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
    cr_assert_null(ox_ag_eq(ctx, a, ids));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    /* NULL in, NULL out, no new error; a recorded error makes the next call return NULL */
    cr_assert_null(ox_ag_ge(ctx, NULL, a));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_fail(ctx, OX_ERR_ARG, "earlier");
    cr_assert_null(ox_ag_ge(ctx, a, a));
    ox_ctx_free(ctx);
}
