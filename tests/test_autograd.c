/* test_autograd.c - the tape: accumulation, fan-out, no-grad, detach, multi-output fused ops registered
 * through ox_ag_record, error paths, and a gradcheck self-test proving the check has teeth. */
#include "test_util.h"

#include <string.h>

/* ---- a fused op with two outputs, registered the way nn/ registers its mixers ----
 * (y1, y2) = (x * w, x + w) elementwise, same shapes. backward: dx = dy1 * w + dy2, dw = dy1 * x + dy2.
 * `wrong` = 1 drops the dy2 term of dx: a deliberately wrong backward for the self-test. */

static ox_status pair_backward(ox_ctx *ctx, ox_ag_node *n)
{
    int wrong = (int)n->i[0];
    ox_tensor *x = n->in[0], *w = n->in[1];
    ox_tensor *dy1 = n->out[0]->grad, *dy2 = n->out[1]->grad;
    int64_t len = ox_tensor_numel(x);
    ox_tensor *gx = ox_ag_grad(ctx, x), *gw = ox_ag_grad(ctx, w);
    for (int64_t i = 0; i < len; i++) {
        float d1 = dy1 ? ox_tensor_f32(dy1)[i] : 0.0f, d2 = dy2 ? ox_tensor_f32(dy2)[i] : 0.0f;
        if (gx)
            ox_tensor_f32(gx)[i] += d1 * ox_tensor_f32(w)[i] + (wrong ? 0.0f : d2);
        if (gw)
            ox_tensor_f32(gw)[i] += d1 * ox_tensor_f32(x)[i] + d2;
    }
    return OX_OK;
}

static const ox_ag_op pair_op = { "test pair", pair_backward };

/* x and w are contiguous and of equal shape in these tests */
static ox_status pair(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, int wrong, ox_tensor **y1, ox_tensor **y2)
{
    *y1 = ox_tensor_empty_like(ctx, x);
    *y2 = ox_tensor_empty_like(ctx, x);
    if (!*y1 || !*y2)
        return ctx->status;
    for (int64_t i = 0; i < ox_tensor_numel(x); i++) {
        ox_tensor_f32(*y1)[i] = ox_tensor_f32(x)[i] * ox_tensor_f32(w)[i];
        ox_tensor_f32(*y2)[i] = ox_tensor_f32(x)[i] + ox_tensor_f32(w)[i];
    }
    ox_ag_node *n = ox_ag_record(ctx, &pair_op, 2, (ox_tensor *[]){ x, w }, 2, (ox_tensor *[]){ *y1, *y2 });
    if (n)
        n->i[0] = wrong;
    return ctx->status;
}

static ox_tensor *f_pair(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    ox_tensor *y1, *y2;
    if (pair(ctx, in[0], in[1], *(int *)arg, &y1, &y2))
        return NULL;
    /* both outputs reach the result, y2 squared so its gradient is not constant */
    return ox_ag_add(ctx, y1, ox_ag_square(ctx, y2));
}

Test(autograd, fused_multi_output_op_passes_gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(3, 4), 1.0);
    ox_tensor *w = test_leaf(ctx, &rng, OX_DIMS(3, 4), 1.0);
    int wrong = 0;
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_pair, &wrong, 2, ((ox_tensor *[]){ x, w }), &o);
    ox_ctx_free(ctx);
}

Test(autograd, gradcheck_catches_a_wrong_backward)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(3, 4), 1.0);
    ox_tensor *w = test_leaf(ctx, &rng, OX_DIMS(3, 4), 1.0);
    int wrong = 1;
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_status s = ox_gradcheck(ctx, f_pair, &wrong, 2, (ox_tensor *[]){ x, w }, &o);
    cr_assert_eq(s, OX_ERR_MISMATCH, "the wrong backward passed gradcheck or got another status: %s",
                 ox_status_string(s));
    cr_assert_str_eq(ox_status_string(s), "values disagree");
    cr_assert(strstr(ox_ctx_message(ctx), "analytic"), "the message gives both values: %s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "input 0"), "the message names the input: %s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

static ox_tensor *f_sqrt(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    return ox_ag_sqrt(ctx, in[0]);
}

/* sqrt'(0) is infinite: a non-finite gradient is OX_ERR_NUMERIC, not a mismatch */
Test(autograd, gradcheck_reports_a_non_finite_gradient_as_numeric)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_full(ctx, OX_F32, OX_DIMS(3), 1.0);
    cr_assert_not_null(x);
    ox_tensor_f32(x)[1] = 0.0f;
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_status s = ox_gradcheck(ctx, f_sqrt, NULL, 1, (ox_tensor *[]){ x }, &o);
    cr_assert_eq(s, OX_ERR_NUMERIC, "%s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "non-finite"), "%s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "element 1"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

static ox_tensor *f_detached(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    return ox_ag_mul(ctx, ox_ag_detach(ctx, in[0]), in[0]);   /* d/dx = x, not 2x: detach is visible */
}

Test(autograd, gradcheck_rejects_gradients_that_are_too_small_to_check)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(5), 1e-4);     /* gradient ~ 1e-4, below min_scale */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_status s = ox_gradcheck(ctx, f_detached, NULL, 1, (ox_tensor *[]){ x }, &o);
    cr_assert_eq(s, OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "below"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(autograd, fan_out_accumulates_and_detach_stops_gradient)
{
    ox_ctx *ctx = test_ctx();
    float xv[3] = { 1, 2, 3 };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3), xv);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    /* L = sum(x*x + x) + sum(detach(x) * x): dL/dx = 2x + 1 + x */
    ox_tensor *y = ox_ag_add(ctx, ox_ag_mul(ctx, x, x), x);
    ox_tensor *z = ox_ag_mul(ctx, ox_ag_detach(ctx, x), x);
    ox_tensor *loss = ox_ag_add(ctx, ox_ag_sum_all(ctx, y), ox_ag_sum_all(ctx, z));
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(ox_tensor_f32(x->grad)[i], 3 * xv[i] + 1, 1e-6);
    ox_ctx_free(ctx);
}

Test(autograd, gradients_accumulate_over_micro_batches_until_zeroed)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *w = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(2));
    assert_ok(ctx, ox_tensor_require_grad(ctx, w));
    ox_tensor_f32(w)[0] = 1.5f;
    ox_tensor_f32(w)[1] = -2.0f;
    for (int step = 0; step < 3; step++) {
        ox_tensor *loss = ox_ag_sum_all(ctx, ox_ag_scale(ctx, w, step + 1.0));
        assert_ok(ctx, ox_ag_backward(ctx, loss));
        ox_ctx_reset(ctx);      /* the arena goes, the owned leaf's gradient stays */
    }
    cr_assert_float_eq(ox_tensor_f32(w->grad)[0], 6.0f, 0);
    cr_assert_float_eq(ox_tensor_f32(w->grad)[1], 6.0f, 0);
    ox_ag_zero_grad(&w, 1);
    cr_assert_float_eq(ox_tensor_f32(w->grad)[0], 0.0f, 0);
    ox_tensor_free(w);
    ox_ctx_free(ctx);
}

Test(autograd, no_grad_scope_records_nothing)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(4), 1.0);
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    cr_assert_eq(prev, 1);
    ox_tensor *y = ox_ag_exp(ctx, x);
    cr_assert_not_null(y);
    cr_assert_eq(y->requires_grad, 0);
    cr_assert_eq(ctx->tape_len, 0);
    ox_ag_set_grad_enabled(ctx, prev);
    ox_tensor *z = ox_ag_exp(ctx, x);
    cr_assert_eq(z->requires_grad, 1);
    cr_assert_eq(ctx->tape_len, 1);
    ox_ctx_free(ctx);
}

Test(autograd, backward_errors_are_returned_not_fatal)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(6);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(4), 1.0);
    ox_tensor *y = ox_ag_exp(ctx, x);
    /* a non-scalar loss */
    cr_assert_eq(ox_ag_backward(ctx, y), OX_ERR_SHAPE);
    ox_ctx_clear_error(ctx);
    /* a loss that depends on nothing trainable */
    ox_tensor *c = ox_tensor_ones(ctx, OX_F32, OX_DIMS(1));
    cr_assert_eq(ox_ag_backward(ctx, c), OX_ERR_STATE);
    ox_ctx_clear_error(ctx);
    /* backward twice on the same tape */
    ox_tensor *loss = ox_ag_sum_all(ctx, y);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    cr_assert_eq(ox_ag_backward(ctx, loss), OX_ERR_STATE);
    cr_assert_neq(strlen(ox_ctx_message(ctx)), 0);
    ox_ctx_free(ctx);
}

/* ---- views: forward layout and gradients through every view kind ---- */

static ox_tensor *f_views(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *x = in[0];                                            /* [2, 3, 4] */
    ox_tensor *p = ox_ag_permute(ctx, x, (const int[]){ 2, 0, 1 });   /* [4, 2, 3] */
    ox_tensor *n = ox_ag_narrow(ctx, p, 0, 1, 2);                     /* [2, 2, 3] */
    ox_tensor *s = ox_ag_select(ctx, n, 1, 1);                        /* [2, 3] */
    ox_tensor *c = ox_ag_contiguous(ctx, s);
    ox_tensor *r = ox_ag_reshape(ctx, c, OX_DIMS(3, 2));
    ox_tensor *e = ox_ag_expand(ctx, ox_ag_reshape(ctx, in[1], OX_DIMS(1, 2)), OX_DIMS(3, 2));
    return ox_ag_mul(ctx, ox_ag_add(ctx, r, e), r);
}

Test(views, gradcheck_through_permute_narrow_select_contiguous_reshape_expand)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(7);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(2, 3, 4), 1.0);
    ox_tensor *b = test_leaf(ctx, &rng, OX_DIMS(2), 1.0);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    o.min_scale = 0;    /* x elements outside the narrowed slice have exactly zero gradient by design */
    assert_gradcheck(ctx, f_views, NULL, 2, ((ox_tensor *[]){ x, b }), &o);
    /* and the slice itself does have gradients of order one */
    ox_ag_zero_grad(&x, 1);
    ox_tensor *y = f_views(ctx, (ox_tensor *[]){ x, b }, NULL);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
    double mx = 0;
    for (int i = 0; i < 24; i++)
        mx = fmax(mx, fabs(ox_tensor_f32(x->grad)[i]));
    cr_assert_gt(mx, 0.1);
    ox_ctx_free(ctx);
}

Test(views, layouts_share_storage)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_arange(ctx, OX_F32, 24, 0, 1);
    ox_tensor *r = ox_ag_reshape(ctx, x, OX_DIMS(2, 3, 4));
    ox_tensor *p = ox_ag_permute(ctx, r, (const int[]){ 2, 0, 1 });
    cr_assert_eq(p->data, x->data);
    /* p[i, j, k] = r[j, k, i] = 12 j + 4 k + i */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                cr_assert_float_eq(ox_tensor_f32(p)[i * p->stride[0] + j * p->stride[1] + k * p->stride[2]],
                                   12 * j + 4 * k + i, 0);
    ox_tensor *c = ox_ag_contiguous(ctx, p);
    cr_assert(ox_tensor_is_contiguous(c));
    cr_assert_float_eq(ox_tensor_f32(c)[1], 4.0f, 0);    /* p[0, 0, 1] */
    /* reshape of a non-contiguous view is an error, not a silent copy */
    cr_assert_null(ox_ag_reshape(ctx, p, OX_DIMS(24)));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_ag_narrow(ctx, x, 0, 20, 5));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_ag_expand(ctx, r, OX_DIMS(2, 5, 4)));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    ox_ctx_free(ctx);
}

Test(views, six_dimensional_tensors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_arange(ctx, OX_F32, 2 * 3 * 2 * 2 * 3 * 2, 0, 1);
    ox_tensor *r = ox_ag_reshape(ctx, x, OX_DIMS(2, 3, 2, 2, 3, 2));
    cr_assert_not_null(r, "%s", ox_ctx_message(ctx));
    ox_tensor *t = ox_ag_contiguous(ctx, ox_ag_transpose(ctx, r, 0, 5));
    cr_assert_eq(t->shape[0], 2);
    cr_assert_float_eq(ox_tensor_f32(t)[1 * t->stride[0]], 1.0f, 0);        /* r[0,..,0,1] */
    cr_assert_float_eq(ox_tensor_f32(t)[1 * t->stride[5]], 72.0f, 0);       /* r[1,0,..,0] */
    cr_assert_null(ox_tensor_zeros(ctx, OX_F32, 7, (const int64_t[]){ 1, 1, 1, 1, 1, 1, 1 }));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}
