/* test_nn_cross_entropy.c - nn/cross_entropy (MODELS.md 2): mean loss over non-ignored targets, and the
 * options of ox_nn_cross_entropy_ex (label smoothing, reductions sum and none).
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

/* ==== label smoothing and reductions (ox_nn_cross_entropy_ex) ============================================= */

/* The per-row losses l and dz for the incoming gradients dl (per row; ignored rows get 0), in double over
 * 2-D (possibly strided) logits, written as the smoothed target distribution q = (1 - eps) onehot + eps / V
 * against log p: l = -sum_v q_v log p_v, dz = dl (p - q). */
static void ref_ce_rows(const ox_tensor *z, const int32_t *y, int32_t ignore, double eps, const double *dl,
                        double *l, double *dz)
{
    int64_t N = z->shape[0], V = z->shape[1];
    for (int64_t r = 0; r < N; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t v = 0; v < V; v++)
            m = fmax(m, AT2(z, r, v));
        for (int64_t v = 0; v < V; v++)
            s += exp(AT2(z, r, v) - m);
        double lse = m + log(s);
        l[r] = 0;
        for (int64_t v = 0; v < V; v++) {
            double q = (1 - eps) * (v == y[r]) + eps / (double)V, logp = AT2(z, r, v) - lse;
            if (y[r] != ignore)
                l[r] -= q * logp;
            dz[r * V + v] = y[r] == ignore ? 0 : dl[r] * (exp(logp) - q);
        }
    }
}

/* A hand value of PyTorch's definition, (1 - eps) nll + eps mean_v(-log p_v): z = [1, 0, -0.5, 2],
 * y = 2, eps = 0.3 gives 2.623273489156851 (computed in double from the definition). */
Test(nn_cross_entropy_ex, label_smoothing_hand_value)
{
    ox_ctx *ctx = test_ctx();
    float zv[4] = { 1.0f, 0.0f, -0.5f, 2.0f };
    ox_tensor *z = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(1, 4), zv);
    ox_tensor *y = ids(ctx, OX_DIMS(1), ((const int32_t[]){ 2 }));
    ox_nn_ce_opts o = ox_nn_ce_defaults();
    cr_assert(o.ignore_index == -100 && o.label_smoothing == 0 && o.reduction == OX_NN_REDUCE_MEAN);
    o.label_smoothing = 0.3;
    ox_tensor *loss = ox_nn_cross_entropy_ex(ctx, z, y, &o);
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    cr_assert_float_eq(ox_tensor_f32(loss)[0], 2.623273489156851, 1e-6);
    ox_ctx_free(ctx);
}

/* Every reduction x eps in {0, 0.1, 0.35}, on transposed (copy path) and narrowed logits with ignored
 * targets: loss and gradient against the double reference. Incoming gradients: 0.7 for the scalar
 * reductions, a random dy [6] for NONE. Tolerance: 1e-5 relative (a handful of logsumexp terms of order-one
 * logits, as the test above). */
Test(nn_cross_entropy_ex, every_reduction_and_smoothing_match_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(23);
    int64_t N = 6, V = 5;
    ox_tensor *y = ids(ctx, OX_DIMS(N), ce_targets);
    const double epss[3] = { 0, 0.1, 0.35 };
    for (int red = 0; red < 3; red++)
        for (int e = 0; e < 3; e++)
            for (int c = 0; c < 2; c++) {
                ox_tensor *lz = c == 0 ? leaf(ctx, &rng, OX_DIMS(V, N), 0, 2) : leaf(ctx, &rng, OX_DIMS(N, V + 2), 0, 2);
                ox_tensor *z = c == 0 ? ox_ag_transpose(ctx, lz, 0, 1) : ox_ag_narrow(ctx, lz, 1, 1, V);
                ox_nn_ce_opts o = { .ignore_index = -1, .label_smoothing = epss[e], .reduction = (ox_nn_reduction)red };
                ox_tensor *loss = ox_nn_cross_entropy_ex(ctx, z, y, &o);
                cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
                double dl[6], l[6], dz[30], count = 4;
                ox_tensor *seed;
                if (red == OX_NN_REDUCE_NONE) {
                    cr_assert(loss->ndim == 1 && loss->shape[0] == N);
                    seed = randn(ctx, &rng, OX_DIMS(N), 0, 1);
                    for (int r = 0; r < N; r++)
                        dl[r] = ox_tensor_f32(seed)[r];
                } else {
                    cr_assert_eq(loss->ndim, 0);
                    seed = ox_tensor_full(ctx, OX_F32, 0, (const int64_t[1]){ 0 }, 0.7);
                    for (int r = 0; r < N; r++)
                        dl[r] = red == OX_NN_REDUCE_MEAN ? 0.7 / count : 0.7;
                }
                ref_ce_rows(z, ce_targets, -1, epss[e], dl, l, dz);
                float got[6];
                double want[6];
                int64_t n_out = red == OX_NN_REDUCE_NONE ? N : 1;
                if (red == OX_NN_REDUCE_NONE)
                    for (int r = 0; r < N; r++)
                        want[r] = l[r];
                else {
                    want[0] = 0;
                    for (int r = 0; r < N; r++)
                        want[0] += l[r];
                    if (red == OX_NN_REDUCE_MEAN)
                        want[0] /= count;
                }
                memcpy(got, ox_tensor_f32(loss), sizeof(float) * (size_t)n_out);
                cr_assert(rel_d(got, want, n_out) <= 1e-5, "reduction %d eps %g case %d: loss rel %g", red, epss[e], c,
                          rel_d(got, want, n_out));
                if (red == OX_NN_REDUCE_NONE)
                    for (int r = 0; r < N; r++)
                        if (ce_targets[r] == -1)
                            cr_assert_eq(got[r], 0.0f, "an ignored row's loss is 0");
                assert_ok(ctx, ox_ag_backward_seeded(ctx, loss, seed));
                ox_tensor *g = c == 0 ? ox_tensor_view_transpose(ctx, lz->grad, 0, 1) : ox_tensor_view_narrow(ctx, lz->grad, 1, 1, V);
                float gd[30];
                for (int64_t r = 0; r < N; r++)
                    for (int64_t v = 0; v < V; v++)
                        gd[r * V + v] = (float)AT2(g, r, v);
                cr_assert(rel_d(gd, dz, N * V) <= 1e-5, "reduction %d eps %g case %d: grad rel %g", red, epss[e], c,
                          rel_d(gd, dz, N * V));
            }
    ox_ctx_free(ctx);
}

/* eps = 0 with MEAN is the existing function, bit for bit (loss and gradient), and the ignore_index of
 * the options is the one used. */
Test(nn_cross_entropy_ex, defaults_reproduce_the_plain_function)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(24);
    ox_tensor *y = ids(ctx, OX_DIMS(2, 3), ce_targets);
    ox_tensor *z = leaf(ctx, &rng, OX_DIMS(2, 3, 37), 0, 3);
    float loss[2], grad[2][2 * 3 * 37];
    for (int k = 0; k < 2; k++) {
        ox_ag_zero_grad(&z, 1);
        ox_nn_ce_opts o = ox_nn_ce_defaults();
        o.ignore_index = -1;
        ox_tensor *l = k ? ox_nn_cross_entropy_ex(ctx, z, y, &o) : ox_nn_cross_entropy(ctx, z, y, -1);
        cr_assert_not_null(l, "%s", ox_ctx_message(ctx));
        loss[k] = ox_tensor_f32(l)[0];
        assert_ok(ctx, ox_ag_backward(ctx, l));
        memcpy(grad[k], ox_tensor_f32(z->grad), sizeof grad[k]);
    }
    cr_assert(memcmp(&loss[0], &loss[1], sizeof(float)) == 0 && memcmp(grad[0], grad[1], sizeof grad[0]) == 0);
    ox_ctx_free(ctx);
}

struct ce_ex_arg { const ox_tensor *y; ox_nn_ce_opts o; double scale; };

static ox_tensor *f_ce_ex(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct ce_ex_arg *a = arg;
    ox_tensor *z = ox_ag_narrow(ctx, in[0], 2, 1, 5);        /* [2, 3, 7] -> [2, 3, 5], row stride 7 */
    return ox_ag_scale(ctx, ox_nn_cross_entropy_ex(ctx, z, a->y, &a->o), a->scale);
}

/* The fp32 defaults; the mean is scaled by the 4 counted tokens so its gradients are of order one. NONE
 * returns [2, 3] and gradcheck weights each token's loss differently (its random R). */
Test(nn_cross_entropy_ex, gradcheck_smoothing_every_reduction)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(25);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *y = ids(ctx, OX_DIMS(2, 3), ce_targets);
    for (int red = 0; red < 3; red++) {
        ox_tensor *z = leaf(ctx, &rng, OX_DIMS(2, 3, 7), 0, 2);
        struct ce_ex_arg a = { y, { .ignore_index = -1, .label_smoothing = 0.2, .reduction = (ox_nn_reduction)red },
                               red == OX_NN_REDUCE_MEAN ? 4 : 1 };
        assert_gradcheck(ctx, f_ce_ex, &a, 1, ((ox_tensor *[]){ z }), &o);
    }
    ox_ctx_free(ctx);
}

Test(nn_cross_entropy_ex, all_ignored_none_and_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(26);
    ox_tensor *z = leaf(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *none = ids(ctx, OX_DIMS(3), ((const int32_t[]){ -100, -100, -100 }));
    ox_nn_ce_opts o = ox_nn_ce_defaults();
    o.reduction = OX_NN_REDUCE_NONE;
    o.label_smoothing = 0.1;
    ox_tensor *l = ox_nn_cross_entropy_ex(ctx, z, none, &o);
    cr_assert_not_null(l, "%s", ox_ctx_message(ctx));
    for (int r = 0; r < 3; r++)
        cr_assert_eq(ox_tensor_f32(l)[r], 0.0f);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, l)));
    for (int i = 0; i < 12; i++)
        cr_assert_eq(ox_tensor_f32(z->grad)[i], 0.0f);
    ox_tensor *y = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 0, 1, 2 }));
    o.label_smoothing = 1.0;
    expect_error(ctx, ox_nn_cross_entropy_ex(ctx, z, y, &o), OX_ERR_ARG, "label_smoothing 1", "[0, 1)");
    o.label_smoothing = -0.1;
    expect_error(ctx, ox_nn_cross_entropy_ex(ctx, z, y, &o), OX_ERR_ARG, "label_smoothing -0.1", NULL);
    o.label_smoothing = NAN;
    expect_error(ctx, ox_nn_cross_entropy_ex(ctx, z, y, &o), OX_ERR_ARG, "label_smoothing nan", NULL);
    o.label_smoothing = 0;
    o.reduction = (ox_nn_reduction)3;
    expect_error(ctx, ox_nn_cross_entropy_ex(ctx, z, y, &o), OX_ERR_ARG, "reduction 3", NULL);
    /* NULL options: the defaults (mean, ignore -100) */
    ox_tensor *ld = ox_nn_cross_entropy_ex(ctx, z, y, NULL), *lp = ox_nn_cross_entropy(ctx, z, y, -100);
    cr_assert(ld && lp, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_tensor_f32(ld)[0], ox_tensor_f32(lp)[0]);
    ox_ctx_free(ctx);
}
