/* test_concat.c - joining and splitting (autograd/concat.c): concat and split. Forward against plain
 * loops on transposed / narrowed / broadcast inputs along each axis, gradients by gradcheck, error cases.
 *
 * Suites: concat, split. */
#include "index_util.h"

/* =================================================================================== concat */

/* Three inputs along `axis` of a [2, 3, 4]-like shape: x0 contiguous, x1 a transposed view, x2 a
 * narrowed view of a larger tensor (strided on another axis). Lengths along the axis: 2, 3, 1. */
struct concat_inputs { ox_tensor *x[3]; int64_t len[3]; };

static void shape_for(int axis, int64_t len, int64_t *s)
{
    s[0] = 2;
    s[1] = 3;
    s[2] = 4;
    s[axis] = len;
}

static struct concat_inputs make_concat_inputs(ox_ctx *ctx, ox_rng *rng, int axis)
{
    struct concat_inputs c = { { NULL }, { 2, 3, 1 } };
    int64_t s[3];
    shape_for(axis, c.len[0], s);
    c.x[0] = ox_tensor_randn(ctx, rng, 3, s, 0, 1);
    shape_for(axis, c.len[1], s);
    c.x[1] = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(s[0], s[2], s[1]), 0, 1), 1, 2);
    shape_for(axis, c.len[2], s);
    int other = (axis + 1) % 3;
    s[other] += 3;
    c.x[2] = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, rng, 3, s, 0, 1), other, 1, s[other] - 3);
    for (int k = 0; k < 3; k++)
        cr_assert_not_null(c.x[k], "%s", ox_ctx_message(ctx));
    return c;
}

Test(concat, forward_strided_inputs_along_each_axis)
{
    ox_ctx *ctx = test_ctx();
    for (int axis = 0; axis < 3; axis++) {
        ox_rng rng = ox_rng_seed(11 + axis);
        struct concat_inputs c = make_concat_inputs(ctx, &rng, axis);
        /* the same axis given as a negative number must agree */
        for (int neg = 0; neg < 2; neg++) {
            ox_tensor *y = ox_ag_concat(ctx, 3, c.x, neg ? axis - 3 : axis);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            cr_assert(ox_tensor_is_contiguous(y));
            int64_t s[3];
            shape_for(axis, 6, s);
            cr_assert(y->ndim == 3 && y->shape[0] == s[0] && y->shape[1] == s[1] && y->shape[2] == s[2]);
            for (int64_t i = 0; i < s[0]; i++)
                for (int64_t j = 0; j < s[1]; j++)
                    for (int64_t k = 0; k < s[2]; k++) {
                        int64_t p[3] = { i, j, k }, pos = p[axis];
                        int part = 0;
                        while (pos >= c.len[part])
                            pos -= c.len[part++];
                        p[axis] = pos;
                        cr_assert_eq(ox_tensor_f32(y)[(i * s[1] + j) * s[2] + k], at3(c.x[part], p[0], p[1], p[2]),
                                     "axis %d [%lld, %lld, %lld]", axis, (long long)i, (long long)j, (long long)k);
                    }
        }
    }
    ox_ctx_free(ctx);
}

struct concat_arg { int axis; };

/* in[0] contiguous, in[1] stored with its last two axes swapped, in[2] sliced along another axis,
 * in[3] of size 1 on axis 0 and broadcast (expanded) to 2 there. */
static ox_tensor *f_concat(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct concat_arg *a = arg;
    int other = (a->axis + 1) % 3;
    int64_t s[3];
    shape_for(a->axis, 2, s);
    ox_tensor *xs[4] = {
        in[0],
        ox_ag_transpose(ctx, in[1], 1, 2),
        ox_ag_narrow(ctx, in[2], other, 1, in[2]->shape[other] - 3),
        ox_ag_expand(ctx, in[3], 3, s),
    };
    return ox_ag_concat(ctx, 4, xs, a->axis);
}

Test(concat, gradcheck_strided_and_broadcast_inputs_each_axis)
{
    ox_ctx *ctx = test_ctx();
    for (int axis = 0; axis < 3; axis++) {
        ox_rng rng = ox_rng_seed(20 + axis);
        int64_t s0[3], s1[3], s2[3], s3[3];
        shape_for(axis, 2, s0);
        shape_for(axis, 3, s1);
        int64_t t = s1[1];
        s1[1] = s1[2];
        s1[2] = t;
        shape_for(axis, 1, s2);
        s2[(axis + 1) % 3] += 3;
        shape_for(axis, 2, s3);
        s3[0] = 1;
        ox_tensor *in[4] = { test_leaf(ctx, &rng, 3, s0, 1.0), test_leaf(ctx, &rng, 3, s1, 1.0),
                             test_leaf(ctx, &rng, 3, s2, 1.0), test_leaf(ctx, &rng, 3, s3, 1.0) };
        struct concat_arg a = { axis };
        /* fp32 defaults; concat is linear (copies), so only fp32 rounding of L enters */
        ox_gradcheck_opts o = ox_gradcheck_defaults();
        ox_status st = ox_gradcheck(ctx, f_concat, &a, 4, in, &o);
        cr_assert_eq(st, OX_OK, "axis %d: %s", axis, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

/* More inputs than a tape node holds (OX_AG_MAX_IO = 12): recorded as concat of concats. */
static ox_tensor *f_concat_many(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    return ox_ag_concat(ctx, *(const int *)arg, in, 1);
}

Test(concat, many_inputs_forward_and_gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(30);
    enum { NIN = 27 };
    ox_tensor *in[NIN];
    int64_t off[NIN + 1] = { 0 };
    for (int k = 0; k < NIN; k++) {
        in[k] = test_leaf(ctx, &rng, OX_DIMS(2, k % 3 + 1), 1.0);
        off[k + 1] = off[k] + k % 3 + 1;
    }
    int n = NIN;
    ox_tensor *y = ox_ag_concat(ctx, n, in, 1);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->shape[0] == 2 && y->shape[1] == off[NIN]);
    for (int k = 0; k < NIN; k++)
        for (int i = 0; i < 2; i++)
            for (int64_t j = 0; j < k % 3 + 1; j++)
                cr_assert_eq(ox_tensor_f32(y)[i * off[NIN] + off[k] + j], at2(in[k], i, j));
    /* fp32 defaults; linear op */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_concat_many, &n, NIN, in, &o);
    /* the same without gradients: a single pass, nothing recorded */
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *y2 = ox_ag_concat(ctx, n, in, 1);
    ox_ag_set_grad_enabled(ctx, prev);
    cr_assert_not_null(y2, "%s", ox_ctx_message(ctx));
    cr_assert(bits_equal(ox_tensor_f32(y), ox_tensor_f32(y2), 2 * off[NIN]));
    ox_ctx_free(ctx);
}

Test(concat, errors_name_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 3));
    ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5));
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 1));
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3]") && strstr(ox_ctx_message(ctx), "[4, 3]"), "%s",
              ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_SHAPE, "input 1");
    cr_assert_not_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 0));
    cr_assert_not_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, c }, -1));
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 1)) }, 0));
    assert_error(ctx, OX_ERR_SHAPE, "[2, 3, 1]");
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3)) }, 0));
    assert_error(ctx, OX_ERR_DTYPE, "input 1");
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 2));
    assert_error(ctx, OX_ERR_ARG, "axis 2");
    cr_assert_null(ox_ag_concat(ctx, 0, (ox_tensor *[]){ a }, 0));
    assert_error(ctx, OX_ERR_ARG, "n = 0");
    ox_ctx_free(ctx);
}

/* =================================================================================== split */

Test(split, pieces_are_views_of_the_right_slices)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(40);
    ox_tensor *x = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(10, 4), 0, 1), 0, 1);
    ox_tensor *outs[3];
    assert_ok(ctx, ox_ag_split(ctx, x, -1, 3, (const int64_t[]){ 3, 0, 7 }, outs));
    const int64_t start[3] = { 0, 3, 3 }, len[3] = { 3, 0, 7 };
    for (int k = 0; k < 3; k++) {
        cr_assert(outs[k]->ndim == 2 && outs[k]->shape[0] == 4 && outs[k]->shape[1] == len[k]);
        cr_assert_eq(outs[k]->data, x->data, "piece %d is a view, not a copy", k);
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; j < len[k]; j++)
                cr_assert_eq(at2(outs[k], i, j), at2(x, i, start[k] + j));
    }
    ox_tensor *rows[2];
    assert_ok(ctx, ox_ag_split(ctx, x, 0, 2, (const int64_t[]){ 1, 3 }, rows));
    cr_assert(rows[0]->shape[0] == 1 && rows[1]->shape[0] == 3);
    cr_assert_eq(at2(rows[1], 2, 9), at2(x, 3, 9));
    ox_ctx_free(ctx);
}

/* Pieces of the transposed leaf, recombined in another order with different functions of each. */
static ox_tensor *f_split(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *p[3];
    if (ox_ag_split(ctx, ox_ag_transpose(ctx, in[0], 0, 1), 1, 3, (const int64_t[]){ 2, 1, 3 }, p))
        return NULL;
    return ox_ag_concat(ctx, 3, (ox_tensor *[]){ ox_ag_square(ctx, p[2]), p[0], ox_ag_scale(ctx, p[1], 3.0) }, 1);
}

Test(split, gradcheck_transposed_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(41);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(6, 3), 1.0);
    /* fp32 defaults; the square term's truncation error eps^2 = 1e-6 is far below atol */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_split, NULL, 1, (ox_tensor *[]){ x }, &o);
    ox_ctx_free(ctx);
}

Test(split, errors_name_sizes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 10));
    ox_tensor *outs[3] = { x, x, x };
    cr_assert_eq(ox_ag_split(ctx, x, 1, 3, (const int64_t[]){ 3, 3, 3 }, outs), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "9") && strstr(ox_ctx_message(ctx), "10") &&
              strstr(ox_ctx_message(ctx), "[4, 10]"), "%s", ox_ctx_message(ctx));
    for (int k = 0; k < 3; k++)
        cr_assert_null(outs[k]);
    assert_error(ctx, OX_ERR_ARG, "split");
    cr_assert_eq(ox_ag_split(ctx, x, 1, 2, (const int64_t[]){ 12, -2 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "negative");
    cr_assert_eq(ox_ag_split(ctx, x, 2, 1, (const int64_t[]){ 10 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "axis 2");
    cr_assert_eq(ox_ag_split(ctx, x, 0, 0, (const int64_t[]){ 4 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "n = 0");
    ox_ctx_free(ctx);
}
