/* test_nn_cross_entropy.c - nn/cross_entropy (MODELS.md 2): mean loss over non-ignored targets.
 * For each: forward against a plain double-precision loop on strided inputs, gradcheck of every input and
 * parameter (non-contiguous views made inside the checked function), shape errors, and the module's
 * parameter names and initialisation. Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5;
 * gradchecks at the fp32 defaults of MODELS.md section 11 item 9). */
#include "nn_modules_util.h"

#include "nn/cross_entropy.h"

/* ==== cross entropy ====================================================================================== */

/* loss and dz (for an incoming gradient of 1) in double, over 2-D (possibly strided) logits */
static double ref_ce(const ox_tensor *z, const int32_t *y, int32_t ignore, double *dz)
{
    int64_t N = z->shape[0], V = z->shape[1], count = 0;
    double total = 0;
    for (int64_t r = 0; r < N; r++)
        count += y[r] != ignore;
    for (int64_t r = 0; r < N; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t v = 0; v < V; v++)
            m = fmax(m, AT2(z, r, v));
        for (int64_t v = 0; v < V; v++)
            s += exp(AT2(z, r, v) - m);
        double lse = m + log(s);
        for (int64_t v = 0; v < V; v++)
            dz[r * V + v] = y[r] == ignore ? 0 : (exp(AT2(z, r, v) - lse) - (v == y[r])) / (double)count;
        if (y[r] != ignore)
            total += lse - AT2(z, r, y[r]);
    }
    return count ? total / (double)count : 0;
}

static const int32_t ce_targets[6] = { 3, -1, 0, 4, 4, -1 };

/* Loss and its gradient against the double reference, for transposed (copy path) and narrowed logits,
 * with ignored targets; then for logits of size 1e3. */
Test(nn_cross_entropy, forward_and_gradient_match_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(20);
    int64_t N = 6, V = 5;
    ox_tensor *y = ids(ctx, OX_DIMS(N), ce_targets);
    for (int c = 0; c < 3; c++) {
        double scale = c == 2 ? 1e3 : 2;
        ox_tensor *leafz = c == 0 ? leaf(ctx, &rng, OX_DIMS(V, N), 0, scale) : leaf(ctx, &rng, OX_DIMS(N, V + 2), 0, scale);
        ox_tensor *z = c == 0 ? ox_ag_transpose(ctx, leafz, 0, 1) : ox_ag_narrow(ctx, leafz, 1, 1, V);
        ox_tensor *loss = ox_nn_cross_entropy(ctx, z, y, -1);
        cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
        cr_assert_eq(loss->ndim, 0);
        double dz[30];
        double ref = ref_ce(z, ce_targets, -1, dz);
        float got = ox_tensor_f32(loss)[0];
        cr_assert(isfinite(got));
        /* loss: a sum of 4 logsumexp terms, each with float error ~6e-8 * |z|: rel 1e-5 */
        cr_assert(fabs(got - ref) <= 1e-5 * fmax(1, fabs(ref)), "case %d: loss %g vs %g", c, got, ref);
        assert_ok(ctx, ox_ag_backward(ctx, loss));
        /* gradient of z (a view): take it from the leaf's gradient through the same view */
        ox_tensor *g = c == 0 ? ox_tensor_view_transpose(ctx, leafz->grad, 0, 1)
                              : ox_tensor_view_narrow(ctx, leafz->grad, 1, 1, V);
        float gd[30];
        for (int64_t r = 0; r < N; r++)
            for (int64_t v = 0; v < V; v++)
                gd[r * V + v] = (float)AT2(g, r, v);
        /* softmax(z) = exp(z - lse): for |z| ~ 1e3 the float difference z - lse carries an absolute error
         * ~ulp(1e3) = 6e-5, so p has relative error ~1e-4 there; 1e-5 (rel) for order-one logits */
        double tol = c == 2 ? 1e-3 : 1e-5;
        cr_assert(rel_d(gd, dz, N * V) <= tol, "case %d: grad rel %g", c, rel_d(gd, dz, N * V));
        for (int64_t r = 0; r < N; r++) {
            double rs = 0;
            for (int64_t v = 0; v < V; v++) {
                cr_assert(isfinite(gd[r * V + v]));
                rs += gd[r * V + v];
                if (ce_targets[r] == -1)
                    cr_assert_eq(gd[r * V + v], 0.0f, "ignored rows get no gradient");
            }
            cr_assert(fabs(rs) <= 1e-6, "each row's gradient sums to 0, got %g", rs);
        }
    }
    ox_ctx_free(ctx);
}

static ox_tensor *f_ce(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    /* logits [2, 3, 5] from a transposed [5, 6] leaf (copy path) */
    ox_tensor *z = ox_ag_reshape(ctx, ox_ag_contiguous(ctx, ox_ag_transpose(ctx, in[0], 0, 1)), OX_DIMS(2, 3, 5));
    ox_tensor *loss = ox_nn_cross_entropy(ctx, z, arg, -1);
    /* the loss is a mean over 4 tokens: scale it so its gradients are of order one */
    return ox_ag_scale(ctx, loss, 4);
}

static ox_tensor *f_ce_narrow(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    ox_tensor *z = ox_ag_narrow(ctx, in[0], 2, 1, 5);        /* [2, 3, 7] -> [2, 3, 5], row stride 7 */
    return ox_ag_scale(ctx, ox_nn_cross_entropy(ctx, z, arg, -1), 4);
}

Test(nn_cross_entropy, gradcheck_with_ignored_targets)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(21);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *y = ids(ctx, OX_DIMS(2, 3), ce_targets);
    ox_tensor *z0 = leaf(ctx, &rng, OX_DIMS(5, 6), 0, 2);
    assert_gradcheck(ctx, f_ce, y, 1, ((ox_tensor *[]){ z0 }), &o);
    ox_tensor *z1 = leaf(ctx, &rng, OX_DIMS(2, 3, 7), 0, 2);
    assert_gradcheck(ctx, f_ce_narrow, y, 1, ((ox_tensor *[]){ z1 }), &o);
    ox_ctx_free(ctx);
}

Test(nn_cross_entropy, all_ignored_and_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(22);
    ox_tensor *z = leaf(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *none = ids(ctx, OX_DIMS(3), ((const int32_t[]){ -100, -100, -100 }));
    ox_tensor *loss = ox_nn_cross_entropy(ctx, z, none, -100);
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_tensor_f32(loss)[0], 0.0f);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    for (int i = 0; i < 12; i++)
        cr_assert_eq(ox_tensor_f32(z->grad)[i], 0.0f);
    ox_tensor *bad = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 0, 4, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, bad, -1), OX_ERR_ARG, "target 4", "position 1");
    ox_tensor *neg = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 0, -2, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, neg, -1), OX_ERR_ARG, "target -2", NULL);
    ox_tensor *short_t = ids(ctx, OX_DIMS(2), ((const int32_t[]){ 0, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, short_t, -1), OX_ERR_SHAPE, "[3, 4]", "[2]");
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, z, -1), OX_ERR_DTYPE, "cross_entropy", NULL);
    ox_ctx_free(ctx);
}
