/* test_ops_dropout.c - inverted dropout (autograd/dropout.c). The documented mask exactly (the i-th uniform
 * of the rng, row-major over a strided x, and the rng's advance), backward with the forward's mask (exact
 * values and gradcheck), the keep rate and the mean preserved by 1 / (1 - p) within 4 standard errors,
 * the identity cases (p = 0, not training: x itself, rng untouched), determinism and threads, errors.
 *
 * Suite: ops_dropout. */
#include "index_util.h"

/* x [4, 6] seen through a transposed [6, 4] leaf: y must equal the rule of ops.h, bit for bit, with the
 * uniforms drawn from a copy of the rng over x's [4, 6] shape; the rng advances by 24. */
Test(ops_dropout, mask_is_the_documented_rule_on_a_strided_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng data = ox_rng_seed(1);
    ox_tensor *xl = ox_tensor_randn(ctx, &data, OX_DIMS(6, 4), 0.0, 1.0);
    ox_tensor *x = ox_ag_transpose(ctx, xl, 0, 1);
    const double ps[3] = { 0.1, 0.5, 0.9 };
    for (int k = 0; k < 3; k++) {
        ox_rng rng = ox_rng_seed(100 + k), copy = rng;
        ox_tensor *y = ox_ag_dropout(ctx, x, ps[k], &rng, 1);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert(y != x && y->ndim == 2 && y->shape[0] == 4 && y->shape[1] == 6);
        cr_assert_eq(rng.counter, copy.counter + 24, "the rng advances by numel");
        ox_tensor *u = ox_tensor_rand(ctx, &copy, OX_DIMS(4, 6), 0.0, 1.0);
        float scale = (float)(1.0 / (1.0 - ps[k]));
        int kept = 0;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 6; j++) {
                int keep = ox_tensor_f32(u)[i * 6 + j] >= (float)ps[k];
                float want = at2(x, i, j) * (keep ? scale : 0.0f), got = ox_tensor_f32(y)[i * 6 + j];
                cr_assert(bits_equal(&got, &want, 1), "p %g [%d, %d]: %g vs %g", ps[k], i, j, got, want);
                kept += keep;
            }
        cr_assert(kept > 0 && kept < 24, "p %g keeps %d of 24: the case exercises both branches", ps[k], kept);
    }
    ox_ctx_free(ctx);
}

/* Backward: dx = dy * mask, exactly, where mask = y / x (x has no zeros); the view's gradient lands in the
 * leaf transposed. A second backward of a new dropout call adds its own mask's contribution. */
Test(ops_dropout, backward_uses_the_forward_mask)
{
    ox_ctx *ctx = test_ctx();
    ox_rng data = ox_rng_seed(2);
    ox_tensor *xl = ox_tensor_rand(ctx, &data, OX_DIMS(5, 7), 0.5, 1.5);
    assert_ok(ctx, ox_tensor_require_grad(ctx, xl));
    ox_tensor *x = ox_ag_transpose(ctx, xl, 0, 1);             /* [7, 5] */
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *y = ox_ag_dropout(ctx, x, 0.3, &rng, 1);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    ox_tensor *seed = ox_tensor_randn(ctx, &data, OX_DIMS(7, 5), 0.0, 1.0);
    float m1[35];
    for (int i = 0; i < 35; i++)
        m1[i] = ox_tensor_f32(y)[i] == 0.0f ? 0.0f : (float)(1.0 / (1.0 - 0.3));
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 5; j++) {
            float want = ox_tensor_f32(seed)[i * 5 + j] * m1[i * 5 + j];
            cr_assert_eq(ox_tensor_f32(xl->grad)[j * 7 + i], want, "[%d, %d]", i, j);
        }
    /* a second, different mask adds to the leaf's gradient */
    ox_tensor *y2 = ox_ag_dropout(ctx, xl, 0.3, &rng, 1);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y2)));
    int differ = 0;
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 7; i++) {
            float m2 = ox_tensor_f32(y2)[j * 7 + i] == 0.0f ? 0.0f : (float)(1.0 / (1.0 - 0.3));
            float want = ox_tensor_f32(seed)[i * 5 + j] * m1[i * 5 + j] + m2;
            cr_assert_eq(ox_tensor_f32(xl->grad)[j * 7 + i], want, "accumulated [%d, %d]", j, i);
            differ += (m2 != 0) != (m1[i * 5 + j] != 0);
        }
    cr_assert(differ > 0, "the second call draws a new mask");
    ox_ctx_free(ctx);
}

/* f reruns dropout from the same rng state each time, so the mask is fixed across the finite differences. */
static ox_tensor *f_dropout(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    ox_rng rng = *(const ox_rng *)arg;
    return ox_ag_dropout(ctx, ox_ag_narrow(ctx, in[0], 1, 1, 6), 0.4, &rng, 1);   /* [3, 8] -> [3, 6] */
}

/* The fp32 defaults: y is linear in x with slopes 0 and 1/0.6, so the finite difference is exact up to
 * rounding; dropped elements check a gradient of exactly 0. */
Test(ops_dropout, gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_rng data = ox_rng_seed(4), rng = ox_rng_seed(5);
    ox_tensor *x = test_leaf(ctx, &data, OX_DIMS(3, 8), 1.0);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_dropout, &rng, 1, &x, &o);
    ox_ctx_free(ctx);
}

/* x = 1 everywhere, n = 100000: the kept fraction is Binomial(n, 1 - p) / n with standard error
 * sqrt(p (1 - p) / n) and mean(y) = kept / (1 - p); both within 4 standard errors of 1 - p and 1 (the seed
 * is fixed, so the test is deterministic; a wrong scale or an inverted comparison is off by >> 4 SE). */
Test(ops_dropout, keep_rate_and_mean_are_preserved)
{
    ox_ctx *ctx = test_ctx();
    int64_t n = 100000;
    ox_tensor *x = ox_tensor_full(ctx, OX_F32, OX_DIMS(n), 1.0);
    const double ps[4] = { 0.05, 0.1, 0.5, 0.9 };
    for (int k = 0; k < 4; k++) {
        ox_rng rng = ox_rng_seed(6 + k);
        ox_tensor *y = ox_ag_dropout(ctx, x, ps[k], &rng, 1);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        double kept = 0, sum = 0;
        for (int64_t i = 0; i < n; i++) {
            kept += ox_tensor_f32(y)[i] != 0.0f;
            sum += ox_tensor_f32(y)[i];
        }
        double q = 1 - ps[k], se = sqrt(ps[k] * q / (double)n);
        cr_assert(fabs(kept / (double)n - q) <= 4 * se, "p %g: kept %g, want %g +- %g", ps[k], kept / n, q, 4 * se);
        cr_assert(fabs(sum / (double)n - 1.0) <= 4 * se / q, "p %g: mean %g, want 1 +- %g", ps[k], sum / n, 4 * se / q);
    }
    ox_ctx_free(ctx);
}

Test(ops_dropout, identity_when_not_training_or_p_zero)
{
    ox_ctx *ctx = test_ctx();
    ox_rng data = ox_rng_seed(7), rng = ox_rng_seed(8);
    ox_tensor *x = test_leaf(ctx, &data, OX_DIMS(3, 4), 1.0);
    cr_assert_eq(ox_ag_dropout(ctx, x, 0.5, &rng, 0), x, "not training: x itself");
    cr_assert_eq(ox_ag_dropout(ctx, x, 0.0, &rng, 1), x, "p = 0: x itself");
    cr_assert_eq(ox_ag_dropout(ctx, x, 0.5, NULL, 0), x, "no rng needed when not training");
    cr_assert_eq(rng.counter, 0, "the rng is not advanced");
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}

/* The same rng state gives the same output; 201 x 199 elements (above OX_PARALLEL_MIN) give the same bits
 * at 1 and 2 threads, forward and backward. */
Test(ops_dropout, deterministic_and_thread_independent)
{
    ox_ctx *ctx = test_ctx();
    float *ref_y = NULL, *ref_g = NULL;
    int64_t n = 201 * 199;
    for (int threads = 1; threads <= 3; threads++) {
        ox_ctx_set_threads(ctx, threads < 3 ? threads : 1);
        ox_rng data = ox_rng_seed(9), rng = ox_rng_seed(10);
        ox_tensor *x = test_leaf(ctx, &data, OX_DIMS(201, 199), 1.0);
        ox_tensor *y = ox_ag_dropout(ctx, x, 0.25, &rng, 1);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, y))));
        if (!ref_y) {
            ref_y = ox_tensor_f32(y);
            ref_g = ox_tensor_f32(x->grad);
        } else {
            cr_assert(bits_equal(ref_y, ox_tensor_f32(y), n), "forward, run %d", threads);
            cr_assert(bits_equal(ref_g, ox_tensor_f32(x->grad), n), "backward, run %d", threads);
        }
    }
    ox_ctx_free(ctx);
}

Test(ops_dropout, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_dropout(ctx, x, 1.0, &rng, 1));
    assert_error(ctx, OX_ERR_ARG, "dropout: p 1 is outside [0, 1)");
    cr_assert_null(ox_ag_dropout(ctx, x, -0.1, &rng, 0));
    assert_error(ctx, OX_ERR_ARG, "p -0.1");
    cr_assert_null(ox_ag_dropout(ctx, x, NAN, &rng, 1));
    assert_error(ctx, OX_ERR_ARG, "p nan");
    cr_assert_null(ox_ag_dropout(ctx, x, 0.5, NULL, 1));
    assert_error(ctx, OX_ERR_ARG, "needs an rng");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
    cr_assert_null(ox_ag_dropout(ctx, ids, 0.5, &rng, 1));
    assert_error(ctx, OX_ERR_DTYPE, "dropout");
    cr_assert_null(ox_ag_dropout(ctx, NULL, 0.5, &rng, 1));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    cr_assert_eq(rng.counter, 0, "failed calls draw nothing");
    ox_ctx_free(ctx);
}
