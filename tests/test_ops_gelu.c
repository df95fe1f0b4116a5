/* test_ops_gelu.c - GELU in both forms (autograd/gelu.c). Values and derivatives against the formulas in
 * double (erfc and exp from libm) on a dense grid through the vectorised contiguous path and on a strided
 * view, gradients by gradcheck, accumulation into an existing gradient, 1 and 2 threads bit-identical,
 * the limits (0, large |x|, NaN) and errors.
 *
 * Suite: ops_gelu. */
#include "index_util.h"

static const double K0 = 0.7978845608028654, K1 = 0.044715;

/* gelu(x) and gelu'(x) in double from the definitions. The tanh form uses (1 + tanh u) / 2 = 1 / (1 + e^-2u)
 * and 1 - tanh^2 u = 4 s (1 - s): 1 + tanh u itself cancels to 0 in double below x ~ -6. */
static double ref_gelu(double x, int tanh_form)
{
    if (tanh_form)
        return x / (1.0 + exp(-2.0 * K0 * (x + K1 * x * x * x)));
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static double ref_dgelu(double x, int tanh_form)
{
    if (tanh_form) {
        double s = 1.0 / (1.0 + exp(-2.0 * K0 * (x + K1 * x * x * x)));
        return s + 0.5 * x * 4.0 * s * (1.0 - s) * K0 * (1.0 + 3.0 * K1 * x * x);
    }
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

/* The relative condition number |x f'(x) / f(x)| of f at x, by a central difference in double: how much
 * a relative rounding of x (or of an intermediate like x / sqrt 2) is amplified in f(x). */
static double cond(double (*f)(double, int), double x, int form)
{
    double fx = f(x, form), h = 1e-6;
    if (fx == 0.0 || x == 0.0)
        return 1.0;
    return fabs((f(x * (1 + h), form) - f(x * (1 - h), form)) / (2 * h * fx));
}

/* |got - ref| <= rtol |ref| + atol, rtol = u (8 + 2 cond): the kernels are a handful of float operations
 * on libmvec functions (<= 4 ulp), so ~8 ulp (u = 2^-24 per rounding) where f is well conditioned, plus
 * the rounding of the intermediates (x / sqrt 2, the exponent -2u) amplified by f's condition number: in
 * the left tail Phi(x) ~ e^(-x^2/2) has cond ~ x^2, e.g. 25 at x = -5, where y is still 1.5e-6. */
static void expect_close(double (*f)(double, int), double got, double x, int form, double atol, const char *what)
{
    double ref = f(x, form), rtol = 0x1p-24 * (8 + 2 * cond(f, x, form));
    cr_assert(fabs(got - ref) <= rtol * fabs(ref) + atol, "%s(%s) at x = %.9g: %.9g vs %.9g (rtol %.2g)", what,
              form ? "tanh" : "erf", x, got, ref, rtol);
}

/* A contiguous grid of 4001 points over [-12, 12] (step 0.006) and a transposed view, against the double
 * formulas with the tolerance above. atol: 1e-30 for the values (only where y underflows, x < -13 erf /
 * x < -9 tanh, none here beyond the flush of a denormal), 1e-7 for the derivative, which crosses 0 near
 * x = -0.75 where its own condition number is unbounded. A wrong branch (1 + erf, which is 0 below
 * x ~ -5.5), a missing factor or a wrong derivative term is off by far more than either. */
Test(ops_gelu, values_and_derivatives_match_double_reference)
{
    ox_ctx *ctx = test_ctx();
    int64_t n = 4001;
    ox_tensor *x = ox_tensor_empty(ctx, OX_F32, OX_DIMS(n));
    cr_assert_not_null(x);
    for (int64_t i = 0; i < n; i++)
        ox_tensor_f32(x)[i] = (float)(-12.0 + 24.0 * (double)i / (double)(n - 1));
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    for (int form = 0; form < 2; form++) {
        ox_ag_zero_grad(&x, 1);
        ox_tensor *y = ox_ag_gelu(ctx, x, form ? OX_AG_GELU_TANH : OX_AG_GELU_ERF);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
        for (int64_t i = 0; i < n; i++) {
            double xv = ox_tensor_f32(x)[i];
            expect_close(ref_gelu, ox_tensor_f32(y)[i], xv, form, 1e-30, "gelu");
            expect_close(ref_dgelu, ox_tensor_f32(x->grad)[i], xv, form, 1e-7, "gelu'");
        }
    }
    /* a transposed [7, 9] view of a [9, 7] tensor: the strided segments give the same values */
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *base = ox_tensor_randn(ctx, &rng, OX_DIMS(9, 7), 0.0, 3.0);
    for (int form = 0; form < 2; form++) {
        ox_tensor *y = ox_ag_gelu(ctx, ox_ag_transpose(ctx, base, 0, 1), (ox_ag_gelu_approx)form);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert(y->ndim == 2 && y->shape[0] == 7 && y->shape[1] == 9);
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 9; j++)
                expect_close(ref_gelu, at2(y, i, j), at2(base, j, i), form, 1e-30, "gelu strided");
    }
    ox_ctx_free(ctx);
}

/* An element's value does not depend on where it sits: x's 4001 values computed one by one (a 1-element
 * tensor each, the padded last block), through a transposed view and through a shifted slice give the
 * same bits as the contiguous call (libmvec's vector erfcf / expf differ from the scalar ones in the last
 * bit for many inputs, so a kernel with a scalar remainder loop fails this). */
Test(ops_gelu, value_independent_of_position_and_layout)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(7);
    int64_t n = 4001;
    ox_tensor *x = ox_tensor_randn(ctx, &rng, OX_DIMS(n), 0.0, 4.0);
    for (int form = 0; form < 2; form++) {
        ox_ag_gelu_approx a = (ox_ag_gelu_approx)form;
        ox_tensor *y = ox_ag_gelu(ctx, x, a);
        ox_tensor *ys = ox_ag_gelu(ctx, ox_ag_narrow(ctx, x, 0, 3, n - 3), a);
        ox_tensor *xt = ox_ag_transpose(ctx, ox_ag_reshape(ctx, ox_ag_narrow(ctx, x, 0, 0, 4000), OX_DIMS(80, 50)), 0, 1);
        ox_tensor *yt = ox_ag_gelu(ctx, xt, a);
        cr_assert(y && ys && yt, "%s", ox_ctx_message(ctx));
        for (int64_t i = 0; i < n; i++) {
            ox_tensor *one = ox_ag_gelu(ctx, ox_ag_narrow(ctx, x, 0, i, 1), a);
            cr_assert_not_null(one, "%s", ox_ctx_message(ctx));
            float v = ox_tensor_f32(y)[i];
            cr_assert(bits_equal(&v, ox_tensor_f32(one), 1), "form %d, x[%lld] alone", form, (long long)i);
            if (i >= 3)
                cr_assert(bits_equal(&v, ox_tensor_f32(ys) + i - 3, 1), "form %d, x[%lld] shifted", form, (long long)i);
            if (i < 4000)
                cr_assert(bits_equal(&v, ox_tensor_f32(yt) + (i % 50) * 80 + i / 50, 1), "form %d, x[%lld] transposed",
                          form, (long long)i);
        }
        ox_ctx_reset(ctx);
        x = ox_tensor_randn(ctx, &rng, OX_DIMS(n), 0.0, 4.0);
    }
    ox_ctx_free(ctx);
}

/* The two forms are different functions: at x = -3 the erf form is -4.05e-3 and the tanh form -3.64e-3
 * (the tanh approximation's largest relative gap is in the left tail); at x = 1 they agree to 2e-4. */
Test(ops_gelu, forms_differ_where_the_approximation_does)
{
    ox_ctx *ctx = test_ctx();
    float v[2] = { -3.0f, 1.0f };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2), v);
    ox_tensor *ye = ox_ag_gelu(ctx, x, OX_AG_GELU_ERF), *yt = ox_ag_gelu(ctx, x, OX_AG_GELU_TANH);
    cr_assert(ye && yt, "%s", ox_ctx_message(ctx));
    cr_assert_float_eq(ox_tensor_f32(ye)[0], -4.0496e-3, 1e-6);
    cr_assert_float_eq(ox_tensor_f32(yt)[0], -3.6374e-3, 1e-6);
    cr_assert(fabs(ox_tensor_f32(ye)[1] - ox_tensor_f32(yt)[1]) < 2e-4);
    cr_assert_float_eq(ox_tensor_f32(ye)[1], 0.8413447, 1e-6);
    ox_ctx_free(ctx);
}

static ox_tensor *f_gelu(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const ox_ag_gelu_approx *a = arg;
    return ox_ag_gelu(ctx, ox_ag_transpose(ctx, in[0], 0, 2), *a);      /* [3, 4, 5] -> [5, 4, 3] */
}

/* The fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3): x ~ N(0, 2) puts points in both tails and around
 * the minimum at x ~ -0.75 (where y' crosses 0); y'' is bounded by 0.8, so the O(eps^2) truncation term
 * is ~1e-7 and a wrong derivative term (error of order one) fails. */
Test(ops_gelu, gradcheck_both_forms_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int form = 0; form < 2; form++) {
        ox_rng rng = ox_rng_seed(2 + form);
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(3, 4, 5), 2.0);
        ox_ag_gelu_approx a = (ox_ag_gelu_approx)form;
        assert_gradcheck(ctx, f_gelu, &a, 1, &x, &o);
    }
    ox_ctx_free(ctx);
}

/* x used twice (gelu(x) + gelu(x), then gelu(x) * 3 on the same leaf): the second backward writes into an
 * existing gradient and must add, the first (fresh) one must overwrite garbage-free. */
Test(ops_gelu, gradient_accumulates)
{
    ox_ctx *ctx = test_ctx();
    float v[4] = { -2.0f, -0.5f, 0.25f, 3.0f };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    for (int form = 0; form < 2; form++) {
        ox_ag_zero_grad(&x, 1);
        ox_tensor *y = ox_ag_add(ctx, ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)form),
                                 ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)form));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)form))));
        for (int i = 0; i < 4; i++)
            cr_assert(fabs(ox_tensor_f32(x->grad)[i] - 3.0 * ref_dgelu(v[i], form)) <= 2e-6,
                      "form %d: x %g: gradient %.9g, want 3 gelu' = %.9g", form, v[i], ox_tensor_f32(x->grad)[i],
                      3.0 * ref_dgelu(v[i], form));
    }
    ox_ctx_free(ctx);
}

/* 0 -> 0 with slope 1/2; large x -> x with slope 1; very negative x -> (-)0 with slope 0, finite in both
 * forms (no inf/inf from the cube or the exponential); NaN propagates. */
Test(ops_gelu, limits_and_nan)
{
    ox_ctx *ctx = test_ctx();
    float v[6] = { 0.0f, 50.0f, -50.0f, 3e12f, -3e12f, NAN };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(6), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    for (int form = 0; form < 2; form++) {
        ox_ag_zero_grad(&x, 1);
        ox_tensor *y = ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)form);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
        const float *yv = ox_tensor_f32(y), *g = ox_tensor_f32(x->grad);
        const char *f = form ? "tanh" : "erf";
        cr_assert(yv[0] == 0.0f && g[0] == 0.5f, "%s: y(0) = %g, y'(0) = %g", f, yv[0], g[0]);
        cr_assert(yv[1] == 50.0f && g[1] == 1.0f, "%s: y(50) = %g, y'(50) = %g", f, yv[1], g[1]);
        cr_assert(yv[2] == 0.0f && g[2] == 0.0f, "%s: y(-50) = %g, y'(-50) = %g", f, yv[2], g[2]);
        cr_assert(yv[3] == 3e12f && g[3] == 1.0f, "%s: y(3e12) = %g, y'(3e12) = %g", f, yv[3], g[3]);
        cr_assert(yv[4] == 0.0f && g[4] == 0.0f, "%s: y(-3e12) = %g, y'(-3e12) = %g", f, yv[4], g[4]);
        cr_assert(isnan(yv[5]) && isnan(g[5]), "%s: NaN in, NaN out", f);
    }
    ox_ctx_free(ctx);
}

/* 201 x 199 = 39999 elements (above OX_PARALLEL_MIN, odd: the two threads' halves end mid-block):
 * forward and gradient bit-identical at 1 and 2 threads. */
Test(ops_gelu, threads_bit_identical)
{
    ox_ctx *ctx = test_ctx();
    for (int form = 0; form < 2; form++) {
        float *ref_y = NULL, *ref_g = NULL;
        for (int threads = 1; threads <= 2; threads++) {
            ox_ctx_set_threads(ctx, threads);
            ox_rng rng = ox_rng_seed(5);
            ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(201, 199), 3.0);
            ox_tensor *y = ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)form);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, y))));
            if (threads == 1) {
                ref_y = ox_tensor_f32(y);
                ref_g = ox_tensor_f32(x->grad);
            } else {
                cr_assert(bits_equal(ref_y, ox_tensor_f32(y), 39999), "forward, form %d", form);
                cr_assert(bits_equal(ref_g, ox_tensor_f32(x->grad), 39999), "backward, form %d", form);
            }
        }
    }
    ox_ctx_free(ctx);
}

Test(ops_gelu, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_gelu(ctx, x, (ox_ag_gelu_approx)2));
    assert_error(ctx, OX_ERR_ARG, "gelu: approx 2");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
    cr_assert_null(ox_ag_gelu(ctx, ids, OX_AG_GELU_TANH));
    assert_error(ctx, OX_ERR_DTYPE, "gelu");
    cr_assert_null(ox_ag_gelu(ctx, NULL, OX_AG_GELU_ERF));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    /* an empty tensor is fine */
    ox_tensor *e = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 4));
    ox_tensor *ye = ox_ag_gelu(ctx, e, OX_AG_GELU_ERF);
    cr_assert(ye && ye->shape[0] == 0 && ye->shape[1] == 4, "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
