/* test_ops_elementwise.c - the elementwise ops of issue 12 (autograd/elementwise.c): abs, pow with a
 * scalar exponent, maximum / minimum of two tensors. Forward against libm in double, gradients by
 * gradcheck away from kinks, and the stated conventions exactly: abs has gradient 0 at 0, pow with p = 0
 * has gradient 0 (also at x = 0), maximum / minimum send a tie's gradient to the first argument and
 * propagate NaN.
 *
 * Suite: ops_elementwise. */
#include "index_util.h"

/* ---- abs ---- */

Test(ops_elementwise, abs_forward_and_gradient_is_sign_with_zero_at_zero)
{
    ox_ctx *ctx = test_ctx();
    float v[6] = { -2.0f, -0.0f, 0.0f, 0.5f, -1e-30f, 3.0f };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2, 3), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    ox_tensor *y = ox_ag_abs(ctx, ox_ag_transpose(ctx, x, 0, 1));     /* [3, 2], strided input */
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            cr_assert_eq(ox_tensor_f32(y)[i * 2 + j], fabsf(v[j * 3 + i]));
    cr_assert(!signbit(ox_tensor_f32(y)[1 * 2 + 0]), "|-0| is +0");
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
    const float want[6] = { -1, 0, 0, 1, -1, 1 };
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ox_tensor_f32(x->grad)[i], want[i], "d|x|/dx at %g", v[i]);
    ox_ctx_free(ctx);
}

/* ---- pow ---- */

/* exponents with a fast form (0, 1, 2, 3, 0.5, -1) and general ones through powf */
static const double pow_ps[] = { 0, 1, 2, 3, 0.5, -1, 1.7, -2.5, 4, -3, 0.25 };
#define N_POW (sizeof pow_ps / sizeof pow_ps[0])

static int is_int(double p) { return p == floor(p); }

Test(ops_elementwise, pow_forward_matches_libm_both_signs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *xp = ox_tensor_rand(ctx, &rng, OX_DIMS(5, 4), 0.2, 3.0);
    ox_tensor *xn = ox_tensor_rand(ctx, &rng, OX_DIMS(5, 4), -3.0, -0.2);
    for (size_t k = 0; k < N_POW; k++)
        for (int neg = 0; neg < 2; neg++) {
            ox_tensor *x = neg ? xn : xp;
            ox_tensor *y = ox_ag_pow(ctx, ox_ag_transpose(ctx, x, 0, 1), pow_ps[k]);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 5; j++) {
                    double xv = ox_tensor_f32(x)[j * 4 + i], got = ox_tensor_f32(y)[i * 5 + j];
                    double ref = pow(xv, pow_ps[k]);
                    if (neg && !is_int(pow_ps[k])) {
                        cr_assert(isnan(got), "pow(%g, %g) = %g, want NaN", xv, pow_ps[k], got);
                        continue;
                    }
                    /* powf is within 1 ulp; x^3 as two products within 2 */
                    cr_assert(fabs(got - ref) <= 3e-7 * fabs(ref), "pow(%g, %g) = %.9g vs %.9g", xv, pow_ps[k], got, ref);
                }
        }
    ox_ctx_free(ctx);
}

struct pow_arg { double p; };

static ox_tensor *f_pow(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct pow_arg *a = arg;
    return ox_ag_pow(ctx, ox_ag_transpose(ctx, in[0], 0, 1), a->p);
}

/* The fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3): x in [0.5, 2] (and [-2, -0.5] for integer p) keeps
 * x^(p-1) of order one and 0.5 >> eps away from the pole / branch point at 0, so the O(eps^2) truncation
 * term is ~1e-6 relative. p = 0 has no gradient to check (see the next test). */
Test(ops_elementwise, pow_gradcheck_every_exponent)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (size_t k = 1; k < N_POW; k++)
        for (int neg = 0; neg < 1 + is_int(pow_ps[k]); neg++) {
            ox_rng rng = ox_rng_seed(20 + k);
            ox_tensor *x = neg ? ox_tensor_rand(ctx, &rng, OX_DIMS(3, 4), -2.0, -0.5)
                               : ox_tensor_rand(ctx, &rng, OX_DIMS(3, 4), 0.5, 2.0);
            assert_ok(ctx, ox_tensor_require_grad(ctx, x));
            struct pow_arg a = { pow_ps[k] };
            ox_status s = ox_gradcheck(ctx, f_pow, &a, 1, &x, &o);
            cr_assert_eq(s, OX_OK, "p = %g, %s x: %s", pow_ps[k], neg ? "negative" : "positive", ox_ctx_message(ctx));
        }
    ox_ctx_free(ctx);
}

Test(ops_elementwise, pow_zero_is_one_with_zero_gradient_even_at_zero)
{
    ox_ctx *ctx = test_ctx();
    float v[4] = { 0.0f, -1.5f, 2.0f, 0.0f };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    ox_tensor *y = ox_ag_pow(ctx, x, 0.0);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ox_tensor_f32(y)[i], 1.0f);
        cr_assert_eq(ox_tensor_f32(x->grad)[i], 0.0f);
    }
    /* p = 2 at 0 has gradient 0, p = 1 gradient 1 (x^0 = 1 at 0 too) */
    ox_ag_zero_grad(&x, 1);
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_add(ctx, ox_ag_pow(ctx, x, 2.0), ox_ag_pow(ctx, x, 1.0)))));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ox_tensor_f32(x->grad)[i], 2.0f * v[i] + 1.0f);
    ox_ctx_free(ctx);
}

/* ---- maximum / minimum ---- */

typedef ox_tensor *(*bin_fn)(ox_ctx *, ox_tensor *, ox_tensor *);

/* a [4, 3] (used transposed as [3, 4]) and b [4] broadcast over rows, with ties and NaNs. */
Test(ops_elementwise, maximum_minimum_forward_broadcast_ties_nan)
{
    ox_ctx *ctx = test_ctx();
    float av[12] = { 1, 2, NAN, -1, 0.5f, 3, 2, 2, -4, 0, 1, 1 };
    float bv[4] = { 1, 0.5f, 2, NAN };
    ox_tensor *a = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4, 3), av);
    ox_tensor *b = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4), bv);
    for (int mx = 0; mx < 2; mx++) {
        ox_tensor *y = (mx ? ox_ag_maximum : ox_ag_minimum)(ctx, ox_ag_transpose(ctx, a, 0, 1), b);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                float x = av[j * 3 + i], z = bv[j], got = ox_tensor_f32(y)[i * 4 + j];
                if (isnan(x) || isnan(z))
                    cr_assert(isnan(got), "NaN propagates: %s(%g, %g) = %g", mx ? "max" : "min", x, z, got);
                else
                    cr_assert_eq(got, mx ? fmaxf(x, z) : fminf(x, z));
            }
    }
    ox_ctx_free(ctx);
}

struct mm_arg { bin_fn f; };

static ox_tensor *f_mm(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct mm_arg *m = arg;
    return m->f(ctx, ox_ag_transpose(ctx, in[0], 0, 1), in[1]);
}

/* a on a grid of step 0.3 and b offset from it by 0.15: |a - b| >= 0.15 >> eps (1e-3), so no difference
 * quotient crosses the switch between the operands, and the fp32 defaults apply (piecewise identity:
 * the quotient is exact up to fp32 rounding). Each of a and b wins somewhere, so a backward that sent
 * everything to one side fails. */
Test(ops_elementwise, maximum_minimum_gradcheck_broadcast_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_empty(ctx, OX_F32, OX_DIMS(4, 3));
    ox_tensor *b = ox_tensor_empty(ctx, OX_F32, OX_DIMS(4));
    for (int i = 0; i < 12; i++)
        ox_tensor_f32(a)[i] = (float)(((i * 5) % 12) * 0.3 - 1.8);
    for (int j = 0; j < 4; j++)
        ox_tensor_f32(b)[j] = (float)(j * 0.9 - 1.35);
    assert_ok(ctx, ox_tensor_require_grad(ctx, a));
    assert_ok(ctx, ox_tensor_require_grad(ctx, b));
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    struct mm_arg mx = { ox_ag_maximum }, mn = { ox_ag_minimum };
    assert_gradcheck(ctx, f_mm, &mx, 2, ((ox_tensor *[]){ a, b }), &o);
    assert_gradcheck(ctx, f_mm, &mn, 2, ((ox_tensor *[]){ a, b }), &o);
    ox_ctx_free(ctx);
}

Test(ops_elementwise, maximum_minimum_tie_sends_gradient_to_first_argument)
{
    ox_ctx *ctx = test_ctx();
    float av[3] = { 1, 2, 3 }, bv[3] = { 1, 5, 0 };     /* a tie, b wins, a wins (for maximum) */
    for (int mx = 0; mx < 2; mx++) {
        ox_tensor *a = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3), av);
        ox_tensor *b = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3), bv);
        assert_ok(ctx, ox_tensor_require_grad(ctx, a));
        assert_ok(ctx, ox_tensor_require_grad(ctx, b));
        ox_tensor *y = (mx ? ox_ag_maximum : ox_ag_minimum)(ctx, a, b);
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
        const float *ga = ox_tensor_f32(a->grad), *gb = ox_tensor_f32(b->grad);
        cr_assert(ga[0] == 1 && gb[0] == 0, "tie: all to a");
        cr_assert(ga[1] == !mx && gb[1] == mx);
        cr_assert(ga[2] == mx && gb[2] == !mx);
    }
    ox_ctx_free(ctx);
}

Test(ops_elementwise, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2));
    cr_assert_null(ox_ag_maximum(ctx, a, b));
    assert_error(ctx, OX_ERR_SHAPE, "maximum: shapes [2, 3] and [2] do not broadcast");
    cr_assert_null(ox_ag_minimum(ctx, a, b));
    assert_error(ctx, OX_ERR_SHAPE, "minimum: shapes [2, 3] and [2] do not broadcast");
    cr_assert_null(ox_ag_pow(ctx, a, INFINITY));
    assert_error(ctx, OX_ERR_ARG, "pow: the exponent must be a finite float");
    cr_assert_null(ox_ag_pow(ctx, a, 1e300));
    assert_error(ctx, OX_ERR_ARG, "pow");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2));
    cr_assert_null(ox_ag_abs(ctx, ids));
    assert_error(ctx, OX_ERR_DTYPE, "I32");
    ox_ctx_free(ctx);
}
