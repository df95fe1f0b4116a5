/* test_ops_stack.c - stack along a new axis (autograd/concat.c): forward on transposed / narrowed /
 * broadcast inputs at every position of the new axis (negative ones included), gradients by gradcheck,
 * more inputs than a tape node holds, a tensor stacked twice, scalars, and the error cases.
 *
 * Suite: ops_stack. */
#include "index_util.h"

/* Three [2, 3] inputs: contiguous, a transposed [3, 2] storage, a narrowed [2, 5] storage. */
static void make_inputs(ox_ctx *ctx, ox_rng *rng, ox_tensor **x)
{
    x[0] = ox_tensor_randn(ctx, rng, OX_DIMS(2, 3), 0, 1);
    x[1] = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(3, 2), 0, 1), 0, 1);
    x[2] = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(2, 5), 0, 1), 1, 1, 3);
    for (int k = 0; k < 3; k++)
        cr_assert_not_null(x[k], "%s", ox_ctx_message(ctx));
}

Test(ops_stack, forward_every_axis_strided_inputs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *x[3];
    make_inputs(ctx, &rng, x);
    for (int axis = -3; axis <= 2; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        ox_tensor *y = ox_ag_stack(ctx, 3, x, axis);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert(ox_tensor_is_contiguous(y) && y->ndim == 3);
        int64_t want[3] = { 2, 3, 0 }, s[3];
        for (int d = 0, j = 0; d < 3; d++)
            s[d] = d == a ? 3 : want[j++];
        cr_assert(y->shape[0] == s[0] && y->shape[1] == s[1] && y->shape[2] == s[2], "axis %d", axis);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) {
                    int64_t p[3], q[2] = { i, j };
                    for (int d = 0, m = 0; d < 3; d++)
                        p[d] = d == a ? k : q[m++];
                    cr_assert_eq(at3(y, p[0], p[1], p[2]), at2(x[k], i, j), "axis %d input %d [%d, %d]", axis, k, i, j);
                }
    }
    ox_ctx_free(ctx);
}

struct stack_arg { int axis; };

/* in[0] [2, 3]; in[1] [3, 2] transposed; in[2] [2, 5] narrowed to [2, 3]; in[3] [1, 3] broadcast to [2, 3];
 * in[0] stacked twice (its gradient gets both slices) */
static ox_tensor *f_stack(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct stack_arg *s = arg;
    ox_tensor *xs[5] = { in[0], ox_ag_transpose(ctx, in[1], 0, 1), ox_ag_narrow(ctx, in[2], 1, 1, 3),
                         ox_ag_expand(ctx, in[3], OX_DIMS(2, 3)), in[0] };
    return ox_ag_stack(ctx, 5, xs, s->axis);
}

Test(ops_stack, gradcheck_every_axis_strided_broadcast_repeated)
{
    ox_ctx *ctx = test_ctx();
    for (int axis = -1; axis <= 2; axis++) {
        ox_rng rng = ox_rng_seed(10 + axis);
        ox_tensor *in[4] = { test_leaf(ctx, &rng, OX_DIMS(2, 3), 1.0), test_leaf(ctx, &rng, OX_DIMS(3, 2), 1.0),
                             test_leaf(ctx, &rng, OX_DIMS(2, 5), 1.0), test_leaf(ctx, &rng, OX_DIMS(1, 3), 1.0) };
        struct stack_arg a = { axis };
        /* fp32 defaults: stack is linear (copies), so only fp32 rounding of L enters. The narrowed input's
         * columns 0 and 4 get no gradient, by design; min_scale looks at the largest element only. */
        ox_gradcheck_opts o = ox_gradcheck_defaults();
        ox_status st = ox_gradcheck(ctx, f_stack, &a, 4, in, &o);
        cr_assert_eq(st, OX_OK, "axis %d: %s", axis, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

/* d sum(w * stack(x, x)) / dx = w[0] + w[1]: the first slice is written to a fresh gradient, the second
 * one added to it. Exact. */
Test(ops_stack, same_tensor_twice_gets_both_slices)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    ox_tensor *x = ox_tensor_randn(ctx, &rng, OX_DIMS(4), 0, 1);
    x->requires_grad = 1;                  /* no gradient buffer yet: the fresh path */
    ox_tensor *w = ox_tensor_randn(ctx, &rng, OX_DIMS(4, 2), 0, 1);
    ox_tensor *y = ox_ag_stack(ctx, 2, (ox_tensor *[]){ x, x }, -1);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, w))));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ox_tensor_f32(x->grad)[i], ox_tensor_f32(w)[2 * i] + ox_tensor_f32(w)[2 * i + 1]);
    ox_ctx_free(ctx);
}

/* More inputs than a tape node holds (OX_AG_MAX_IO = 12): recorded as stacks of groups, concatenated. */
static ox_tensor *f_stack_many(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    return ox_ag_stack(ctx, *(const int *)arg, in, 1);
}

Test(ops_stack, many_inputs_forward_gradcheck_and_unrecorded_pass)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    enum { NIN = 27 };
    ox_tensor *in[NIN];
    for (int k = 0; k < NIN; k++)
        in[k] = test_leaf(ctx, &rng, OX_DIMS(2, 3), 1.0);
    int n = NIN;
    ox_tensor *y = ox_ag_stack(ctx, n, in, 1);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == NIN && y->shape[2] == 3);
    for (int k = 0; k < NIN; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                cr_assert_eq(at3(y, i, k, j), at2(in[k], i, j));
    /* fp32 defaults; linear op */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_stack_many, &n, NIN, in, &o);
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *y2 = ox_ag_stack(ctx, n, in, 1);
    ox_ag_set_grad_enabled(ctx, prev);
    cr_assert_not_null(y2, "%s", ox_ctx_message(ctx));
    cr_assert(bits_equal(ox_tensor_f32(y), ox_tensor_f32(y2), 2 * NIN * 3));
    ox_ctx_free(ctx);
}

Test(ops_stack, scalars_stack_to_a_vector)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *s[3] = { ox_tensor_full(ctx, OX_F32, 0, NULL, 1.5), ox_tensor_full(ctx, OX_F32, 0, NULL, -2),
                        ox_tensor_full(ctx, OX_F32, 0, NULL, 7) };
    ox_tensor *y = ox_ag_stack(ctx, 3, s, -1);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 1 && y->shape[0] == 3);
    cr_assert(ox_tensor_f32(y)[0] == 1.5f && ox_tensor_f32(y)[1] == -2.0f && ox_tensor_f32(y)[2] == 7.0f);
    ox_ctx_free(ctx);
}

Test(ops_stack, errors_name_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 2));
    cr_assert_null(ox_ag_stack(ctx, 2, (ox_tensor *[]){ a, b }, 0));
    assert_error(ctx, OX_ERR_SHAPE, "stack: input 1 [3, 2] does not have the shape of input 0 [2, 3]");
    cr_assert_null(ox_ag_stack(ctx, 2, (ox_tensor *[]){ a, a }, 3));
    assert_error(ctx, OX_ERR_ARG, "axis 3 out of range for stacking tensors of shape [2, 3] (valid: -3 to 2)");
    cr_assert_null(ox_ag_stack(ctx, 2, (ox_tensor *[]){ a, a }, -4));
    assert_error(ctx, OX_ERR_ARG, "axis -4");
    cr_assert_null(ox_ag_stack(ctx, 2, (ox_tensor *[]){ a, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3)) }, 0));
    assert_error(ctx, OX_ERR_DTYPE, "input 1");
    cr_assert_null(ox_ag_stack(ctx, 0, (ox_tensor *[]){ a }, 0));
    assert_error(ctx, OX_ERR_ARG, "n = 0");
    ox_tensor *big = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 1, 1, 1, 1, 2));
    cr_assert_null(ox_ag_stack(ctx, 1, &big, 0));
    assert_error(ctx, OX_ERR_SHAPE, "rank 7");
    cr_assert_null(ox_ag_stack(ctx, 2, (ox_tensor *[]){ a, NULL }, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}
