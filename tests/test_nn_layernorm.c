/* test_nn_layernorm.c - LayerNorm: the fused op ox_ag_layernorm (autograd/layernorm.c) and the module
 * nn/layernorm. Forward and all three gradients against a double-precision reference on strided inputs
 * (D = 37: lanes body and tail), with and without bias; the op against its composed twin (mean, var,
 * rsqrt, mul, add); accuracy for rows with a large mean; eps where it matters; gradcheck; accumulation;
 * 1 and 2 threads bit-identical; the module's names, init and no-bias form; errors.
 * Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5; gradchecks at the fp32 defaults).
 *
 * Suite: nn_layernorm. */
#include "nn_modules_util.h"

#include "nn/layernorm.h"

/* y, and for a seed dy the gradients dx, dw, db, in double over a 2-D (possibly strided) x [R, D];
 * b may be NULL; dx/dw/db may be NULL when not wanted. */
static void ref_layernorm(const ox_tensor *x, const ox_tensor *w, const ox_tensor *b, double eps, double *y,
                          const double *dy, double *dx, double *dw, double *db)
{
    int64_t R = x->shape[0], D = x->shape[1];
    if (dw)
        memset(dw, 0, sizeof(double) * (size_t)D);
    if (db)
        memset(db, 0, sizeof(double) * (size_t)D);
    for (int64_t r = 0; r < R; r++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < D; j++)
            m += AT2(x, r, j);
        m /= (double)D;
        for (int64_t j = 0; j < D; j++)
            v += (AT2(x, r, j) - m) * (AT2(x, r, j) - m);
        double rs = 1 / sqrt(v / (double)D + eps);
        double s1 = 0, s2 = 0;
        for (int64_t j = 0; j < D; j++) {
            double xh = (AT2(x, r, j) - m) * rs, wj = ox_tensor_f32(w)[j * w->stride[0]];
            y[r * D + j] = xh * wj + (b ? ox_tensor_f32(b)[j * b->stride[0]] : 0);
            if (dy) {
                s1 += dy[r * D + j] * wj;
                s2 += dy[r * D + j] * wj * xh;
                if (dw)
                    dw[j] += dy[r * D + j] * xh;
                if (db)
                    db[j] += dy[r * D + j];
            }
        }
        if (dy && dx)
            for (int64_t j = 0; j < D; j++) {
                double xh = (AT2(x, r, j) - m) * rs, wj = ox_tensor_f32(w)[j * w->stride[0]];
                dx[r * D + j] = rs * (dy[r * D + j] * wj - s1 / (double)D - xh * s2 / (double)D);
            }
    }
}

/* Leaves x [R, D] (used transposed: stored [D, R]) or narrowed, w, b; forward and backward with a random
 * seed, against the reference. Gradient tolerance: the backward sums D = 37 terms per row and R = 6 rows
 * per column (a few ulp each, ~1e-6 relative); 1e-5 as for the forward. */
Test(nn_layernorm, forward_and_gradients_match_reference_strided_with_and_without_bias)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    int64_t R = 6, D = 37;
    for (int c = 0; c < 4; c++) {
        int transposed = c & 1, bias = c >> 1;
        ox_tensor *xl = transposed ? leaf(ctx, &rng, OX_DIMS(D, R), 0.5, 2) : leaf(ctx, &rng, OX_DIMS(R, D + 4), 0.5, 2);
        ox_tensor *w = leaf(ctx, &rng, OX_DIMS(D), 1, 0.5);
        ox_tensor *b = bias ? leaf(ctx, &rng, OX_DIMS(D), 0, 0.5) : NULL;
        ox_tensor *x = transposed ? ox_ag_transpose(ctx, xl, 0, 1) : ox_ag_narrow(ctx, xl, 1, 2, D);
        ox_tensor *y = ox_ag_layernorm(ctx, x, w, b, 1e-5);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert(y->ndim == 2 && y->shape[0] == R && y->shape[1] == D);
        ox_tensor *seed = randn(ctx, &rng, OX_DIMS(R, D), 0, 1);
        double ry[6 * 37], dy[6 * 37], dx[6 * 37], dw[37], db[37];
        for (int i = 0; i < R * D; i++)
            dy[i] = ox_tensor_f32(seed)[i];
        ref_layernorm(x, w, b, 1e-5, ry, dy, dx, dw, db);
        cr_assert(rel_d(ox_tensor_f32(y), ry, R * D) <= 1e-5, "case %d: y rel %g", c, rel_d(ox_tensor_f32(y), ry, R * D));
        assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
        float gx[6 * 37];
        ox_tensor *g = transposed ? ox_tensor_view_transpose(ctx, xl->grad, 0, 1)
                                  : ox_tensor_view_narrow(ctx, xl->grad, 1, 2, D);
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < D; j++)
                gx[r * D + j] = (float)AT2(g, r, j);
        cr_assert(rel_d(gx, dx, R * D) <= 1e-5, "case %d: dx rel %g", c, rel_d(gx, dx, R * D));
        cr_assert(rel_d(ox_tensor_f32(w->grad), dw, D) <= 1e-5, "case %d: dw rel %g", c, rel_d(ox_tensor_f32(w->grad), dw, D));
        if (bias)
            cr_assert(rel_d(ox_tensor_f32(b->grad), db, D) <= 1e-5, "case %d: db rel %g", c, rel_d(ox_tensor_f32(b->grad), db, D));
        if (!transposed)    /* the narrowed-away columns get exactly nothing */
            for (int64_t r = 0; r < R; r++)
                cr_assert(AT2(xl->grad, r, 0) == 0 && AT2(xl->grad, r, D + 3) == 0);
    }
    ox_ctx_free(ctx);
}

/* The composed twin: (x - mean) * rsqrt(var + eps) * w + b from the generic ops. Values and gradients of
 * x [2, 3, 37] agree to 1e-5 (both are fp32 with different rounding orders). */
static ox_tensor *composed_layernorm(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b, double eps)
{
    ox_tensor *xm = ox_ag_sub(ctx, x, ox_ag_mean(ctx, x, -1, 1));
    ox_tensor *r = ox_ag_rsqrt(ctx, ox_ag_add_scalar(ctx, ox_ag_var(ctx, x, -1, 0, 1), eps));
    return ox_ag_add(ctx, ox_ag_mul(ctx, ox_ag_mul(ctx, xm, r), w), b);
}

Test(nn_layernorm, fused_equals_composed_twin)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(2, 3, 37), -1, 3);
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(37), 1, 0.5), *b = leaf(ctx, &rng, OX_DIMS(37), 0, 0.5);
    ox_tensor *seed = randn(ctx, &rng, OX_DIMS(2, 3, 37), 0, 1);
    ox_tensor *y[2];
    float *g[2][3];
    for (int k = 0; k < 2; k++) {
        ox_tensor *leaves[3] = { x, w, b };
        ox_ag_zero_grad(leaves, 3);
        y[k] = k ? composed_layernorm(ctx, x, w, b, 1e-5) : ox_ag_layernorm(ctx, x, w, b, 1e-5);
        cr_assert_not_null(y[k], "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward_seeded(ctx, y[k], seed));
        for (int i = 0; i < 3; i++) {
            ox_tensor *c = ox_tensor_empty_like(ctx, leaves[i]->grad);
            assert_ok(ctx, ox_tensor_copy(ctx, c, leaves[i]->grad));
            g[k][i] = ox_tensor_f32(c);
        }
    }
    cr_assert_leq(rel_err(ox_tensor_f32(y[0]), ox_tensor_f32(y[1]), 2 * 3 * 37), 1e-5);
    const int64_t n[3] = { 2 * 3 * 37, 37, 37 };
    for (int i = 0; i < 3; i++)
        cr_assert_leq(rel_err(g[0][i], g[1][i], n[i]), 1e-5, "gradient %d", i);
    ox_ctx_free(ctx);
}

/* Rows with mean 1e4 and spread 1: one-pass E[x^2] - m^2 loses every digit in fp32 (ulp(1e8) = 8); the
 * two passes keep y to ~1e-3 (x - m itself has an absolute error of ulp(1e4) ~ 1e-3 per element). */
Test(nn_layernorm, large_mean_rows_are_accurate)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    int64_t R = 4, D = 100;
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(R, D), 1e4, 1);
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(D), 1, 0.1);
    ox_tensor *y = ox_ag_layernorm(ctx, x, w, NULL, 1e-5);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    double ref[4 * 100];
    ref_layernorm(x, w, NULL, 1e-5, ref, NULL, NULL, NULL, NULL);
    cr_assert(rel_d(ox_tensor_f32(y), ref, R * D) <= 2e-3, "rel %g", rel_d(ox_tensor_f32(y), ref, R * D));
    ox_ctx_free(ctx);
}

/* Variance 1e-6, a tenth of eps = 1e-5: r = 1/sqrt(1.1e-5), not 1/sqrt(1e-6). A constant row with eps > 0
 * gives y = b exactly (x - m = 0); with eps = 0 it gives NaN (0 * inf), as PyTorch. */
Test(nn_layernorm, eps_where_it_matters_and_constant_rows)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(3, 64), 2, 1e-3);
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(64), 1, 0.5), *b = randn(ctx, &rng, OX_DIMS(64), 0, 0.5);
    ox_tensor *y = ox_ag_layernorm(ctx, x, w, b, 1e-5);
    cr_assert_not_null(y);
    double ref[3 * 64], noeps[3 * 64];
    ref_layernorm(x, w, b, 1e-5, ref, NULL, NULL, NULL, NULL);
    ref_layernorm(x, w, b, 0, noeps, NULL, NULL, NULL, NULL);
    /* x - m carries the rounding of x near 2 (ulp 2.4e-7) against a spread of 1e-3: ~1e-4 relative */
    cr_assert(rel_d(ox_tensor_f32(y), ref, 3 * 64) <= 3e-4, "rel %g", rel_d(ox_tensor_f32(y), ref, 3 * 64));
    cr_assert(rel_d(ox_tensor_f32(y), noeps, 3 * 64) > 0.5, "eps must change the result here");
    ox_tensor *cst = ox_tensor_full(ctx, OX_F32, OX_DIMS(2, 64), 3.5);
    ox_tensor *yc = ox_ag_layernorm(ctx, cst, w, b, 1e-5), *y0 = ox_ag_layernorm(ctx, cst, w, b, 0);
    cr_assert(yc && y0, "%s", ox_ctx_message(ctx));
    for (int i = 0; i < 128; i++) {
        cr_assert_eq(ox_tensor_f32(yc)[i], ox_tensor_f32(b)[i % 64]);
        cr_assert(isnan(ox_tensor_f32(y0)[i]));
    }
    ox_ctx_free(ctx);
}

struct ln_case { int kind; int bias; };

static ox_tensor *f_layernorm(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct ln_case *c = arg;
    ox_tensor *x = c->kind == 0 ? ox_ag_transpose(ctx, in[0], 0, 1)          /* [19, 4] -> [4, 19] */
                                : ox_ag_narrow(ctx, in[0], 2, 1, 19);       /* [2, 3, 21] -> [2, 3, 19] */
    return ox_ag_layernorm(ctx, x, in[1], c->bias ? in[2] : NULL, 1e-5);
}

/* The fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3): x ~ N(0, 2) so the row variance (~4) is far above
 * eps and the step 1e-3; w ~ 1 + N(0, 0.5) so every term of dx is of order one. */
Test(nn_layernorm, gradcheck_x_w_b_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int kind = 0; kind < 2; kind++)
        for (int bias = 0; bias < 2; bias++) {
            ox_tensor *x = kind == 0 ? leaf(ctx, &rng, OX_DIMS(19, 4), 0, 2) : leaf(ctx, &rng, OX_DIMS(2, 3, 21), 0, 2);
            ox_tensor *w = leaf(ctx, &rng, OX_DIMS(19), 1, 0.5), *b = leaf(ctx, &rng, OX_DIMS(19), 0, 0.5);
            struct ln_case c = { kind, bias };
            assert_gradcheck(ctx, f_layernorm, &c, bias ? 3 : 2, ((ox_tensor *[]){ x, w, b }), &o);
        }
    ox_ctx_free(ctx);
}

/* A second backward through the same leaves adds to their gradients (dx's first write is '=' into a fresh
 * buffer, the second '+='): twice one pass. */
Test(nn_layernorm, gradients_accumulate)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(6);
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(5, 23), 0, 1);
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(23), 1, 0.5), *b = leaf(ctx, &rng, OX_DIMS(23), 0, 0.5);
    ox_tensor *seed = randn(ctx, &rng, OX_DIMS(5, 23), 0, 1);
    float once[3][5 * 23];
    ox_tensor *leaves[3] = { x, w, b };
    for (int pass = 0; pass < 2; pass++) {
        assert_ok(ctx, ox_ag_backward_seeded(ctx, ox_ag_layernorm(ctx, x, w, b, 1e-5), seed));
        if (pass == 0)
            for (int i = 0; i < 3; i++)
                memcpy(once[i], ox_tensor_f32(leaves[i]->grad), sizeof(float) * (size_t)ox_tensor_numel(leaves[i]));
    }
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < ox_tensor_numel(leaves[i]); k++)
            cr_assert_eq(ox_tensor_f32(leaves[i]->grad)[k], 2 * once[i][k], "leaf %d element %lld", i, (long long)k);
    ox_ctx_free(ctx);
}

/* x [96, 515] (49440 elements, 3 row blocks): forward and every gradient bit-identical at 1 and 2 threads. */
Test(nn_layernorm, threads_bit_identical)
{
    ox_ctx *ctx = test_ctx();
    float *ref[4] = { 0 };
    for (int threads = 1; threads <= 2; threads++) {
        ox_ctx_set_threads(ctx, threads);
        ox_rng rng = ox_rng_seed(7);
        ox_tensor *x = leaf(ctx, &rng, OX_DIMS(96, 515), 0, 1);
        ox_tensor *w = leaf(ctx, &rng, OX_DIMS(515), 1, 0.5), *b = leaf(ctx, &rng, OX_DIMS(515), 0, 0.5);
        ox_tensor *y = ox_ag_layernorm(ctx, x, w, b, 1e-5);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, y))));
        float *now[4] = { ox_tensor_f32(y), ox_tensor_f32(x->grad), ox_tensor_f32(w->grad), ox_tensor_f32(b->grad) };
        const int64_t n[4] = { 96 * 515, 96 * 515, 515, 515 };
        for (int i = 0; i < 4; i++) {
            if (threads == 1)
                ref[i] = now[i];
            else
                cr_assert(memcmp(ref[i], now[i], sizeof(float) * (size_t)n[i]) == 0, "output %d", i);
        }
    }
    ox_ctx_free(ctx);
}

Test(nn_layernorm, module_names_init_and_no_bias)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(8);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_layernorm_t ln, lnb;
    assert_ok(ctx, ox_nn_layernorm_init(ctx, &ps, &ln, "transformer.h.0.ln_1", 48, 1));
    assert_ok(ctx, ox_nn_layernorm_init(ctx, &ps, &lnb, "transformer.ln_f", 48, 0));
    cr_assert_eq(ps.n, 3);
    cr_assert_str_eq(ps.items[0].name, "transformer.h.0.ln_1.weight");
    cr_assert_str_eq(ps.items[1].name, "transformer.h.0.ln_1.bias");
    cr_assert_str_eq(ps.items[2].name, "transformer.ln_f.weight");
    cr_assert_null(lnb.bias);
    cr_assert(ln.eps == 1e-5 && ln.dim == 48);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ps.items[i].decay, OX_NN_NO_DECAY);
    for (int j = 0; j < 48; j++)
        cr_assert(ox_tensor_f32(ln.weight)[j] == 1.0f && ox_tensor_f32(ln.bias)[j] == 0.0f);
    /* the module applies its parameters */
    for (int j = 0; j < 48; j++) {
        ox_tensor_f32(ln.weight)[j] = 0.5f + 0.01f * (float)j;
        ox_tensor_f32(ln.bias)[j] = 0.1f * (float)(j % 7);
    }
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(2, 5, 48), 0, 1);
    ox_tensor *y = ox_nn_layernorm_forward(ctx, &ln, x), *y2 = ox_nn_layernorm_forward(ctx, &lnb, x);
    cr_assert(y && y2, "%s", ox_ctx_message(ctx));
    double ref[10 * 48];
    ox_tensor *x2 = ox_tensor_view_reshape(ctx, x, OX_DIMS(10, 48));
    ref_layernorm(x2, ln.weight, ln.bias, 1e-5, ref, NULL, NULL, NULL, NULL);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 480) <= 1e-5);
    ref_layernorm(x2, lnb.weight, NULL, 1e-5, ref, NULL, NULL, NULL, NULL);
    cr_assert(rel_d(ox_tensor_f32(y2), ref, 480) <= 1e-5);
    /* a duplicate name is an error */
    ox_nn_layernorm_t dup;
    cr_assert_neq(ox_nn_layernorm_init(ctx, &ps, &dup, "transformer.ln_f", 48, 1), OX_OK);
    cr_assert(strstr(ox_ctx_message(ctx), "transformer.ln_f.weight"), "%s", ox_ctx_message(ctx));
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(nn_layernorm, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 5));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(5)), *w4 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4));
    ox_tensor *b4 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4)), *w2 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 5));
    expect_error(ctx, ox_ag_layernorm(ctx, x, w4, NULL, 1e-5), OX_ERR_SHAPE, "[2, 3, 5]", "[4]");
    expect_error(ctx, ox_ag_layernorm(ctx, x, w, b4, 1e-5), OX_ERR_SHAPE, "bias [4]", NULL);
    expect_error(ctx, ox_ag_layernorm(ctx, x, w2, NULL, 1e-5), OX_ERR_SHAPE, "[1, 5]", "none");
    expect_error(ctx, ox_ag_layernorm(ctx, x, w, NULL, -1e-5), OX_ERR_ARG, "eps -1e-05", NULL);
    expect_error(ctx, ox_ag_layernorm(ctx, x, w, NULL, NAN), OX_ERR_ARG, "eps nan", NULL);
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(5));
    expect_error(ctx, ox_ag_layernorm(ctx, x, w, ids, 1e-5), OX_ERR_DTYPE, "layernorm", NULL);
    cr_assert_null(ox_ag_layernorm(ctx, x, NULL, NULL, 1e-5));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    /* no rows: an empty result, no error */
    ox_tensor *e = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 5));
    ox_tensor *ye = ox_ag_layernorm(ctx, e, w, NULL, 1e-5);
    cr_assert(ye && ye->shape[0] == 0 && ye->shape[1] == 5, "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
