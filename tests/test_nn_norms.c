/* test_nn_norms.c - nn/rmsnorm (MODELS.md 3) and nn/gated_rmsnorm (MODELS.md 3.1).
 * For each: forward against a plain double-precision loop on strided inputs, gradcheck of every input and
 * parameter (non-contiguous views made inside the checked function), shape errors, and the module's
 * parameter names and initialisation. Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5;
 * gradchecks at the fp32 defaults of MODELS.md section 11 item 9). */
#include "nn_modules_util.h"

#include "nn/gated_rmsnorm.h"
#include "nn/rmsnorm.h"

/* ==== RMSNorm ============================================================================================ */

/* y = x r w, r = (mean x^2 + eps)^-1/2, over the last axis of a 2-D (possibly strided) x */
static void ref_rmsnorm(const ox_tensor *x, const ox_tensor *w, double eps, double *y)
{
    int64_t R = x->shape[0], n = x->shape[1];
    for (int64_t r = 0; r < R; r++) {
        double ss = 0;
        for (int64_t j = 0; j < n; j++)
            ss += AT2(x, r, j) * AT2(x, r, j);
        double rr = 1 / sqrt(ss / (double)n + eps);
        for (int64_t j = 0; j < n; j++)
            y[r * n + j] = AT2(x, r, j) * rr * ox_tensor_f32(w)[j * w->stride[0]];
    }
}

Test(nn_rmsnorm, forward_strided_and_3d)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(8);
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(37), 1, 0.5);
    /* transposed (copy path) and narrowed (row stride 41) inputs */
    ox_tensor *xs = randn(ctx, &rng, OX_DIMS(37, 6), 0, 2);
    ox_tensor *xn = randn(ctx, &rng, OX_DIMS(6, 41), 0, 2);
    ox_tensor *cases[2] = { ox_tensor_view_transpose(ctx, xs, 0, 1), ox_tensor_view_narrow(ctx, xn, 1, 3, 37) };
    for (int c = 0; c < 2; c++) {
        ox_tensor *y = ox_nn_rmsnorm(ctx, cases[c], w);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        double ref[6 * 37];
        ref_rmsnorm(cases[c], w, 1e-6, ref);
        cr_assert(rel_d(ox_tensor_f32(y), ref, 6 * 37) <= 1e-5, "case %d: rel %g", c,
                  rel_d(ox_tensor_f32(y), ref, 6 * 37));
    }
    /* [B, T, D] gives the rows of the 2-D result */
    ox_tensor *x3 = randn(ctx, &rng, OX_DIMS(2, 3, 37), 0, 1);
    ox_tensor *y3 = ox_nn_rmsnorm(ctx, x3, w);
    ox_tensor *y2 = ox_nn_rmsnorm(ctx, ox_tensor_view_reshape(ctx, x3, OX_DIMS(6, 37)), w);
    cr_assert(y3 && y2 && y3->ndim == 3);
    cr_assert(memcmp(ox_tensor_f32(y3), ox_tensor_f32(y2), sizeof(float) * 6 * 37) == 0);
    ox_ctx_free(ctx);
}

Test(nn_rmsnorm, tiny_inputs_where_eps_matters)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(9);
    /* mean square ~ 1e-7, a tenth of eps: r = 1/sqrt(1.1e-6) instead of 1/sqrt(1e-7) */
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(5, 64), 0, sqrt(1e-7));
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(64), 1, 0.5);
    ox_tensor *y = ox_nn_rmsnorm(ctx, x, w);
    cr_assert_not_null(y);
    double ref[5 * 64], noeps[5 * 64];
    ref_rmsnorm(x, w, 1e-6, ref);
    ref_rmsnorm(x, w, 0, noeps);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 5 * 64) <= 1e-5, "rel %g", rel_d(ox_tensor_f32(y), ref, 5 * 64));
    cr_assert(rel_d(ox_tensor_f32(y), noeps, 5 * 64) > 0.5, "eps must change the result here");
    ox_ctx_free(ctx);
}

struct norm_case { int kind; double scale; };

static ox_tensor *f_rmsnorm(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct norm_case *c = arg;
    ox_tensor *x = c->kind == 0 ? ox_ag_transpose(ctx, in[0], 0, 1)           /* [8, 3] -> [3, 8] */
                                : ox_ag_narrow(ctx, in[0], 2, 1, 8);          /* [2, 3, 10] -> [2, 3, 8] */
    if (c->scale != 1)
        x = ox_ag_scale(ctx, x, c->scale);
    return ox_nn_rmsnorm(ctx, x, in[1]);
}

Test(nn_rmsnorm, gradcheck_x_and_w)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(10);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(8), 1, 0.5);
    ox_tensor *x0 = leaf(ctx, &rng, OX_DIMS(8, 3), 0, 1);
    assert_gradcheck(ctx, f_rmsnorm, &((struct norm_case){ 0, 1 }), 2, ((ox_tensor *[]){ x0, w }), &o);
    ox_tensor *x1 = leaf(ctx, &rng, OX_DIMS(2, 3, 10), 0, 1);
    assert_gradcheck(ctx, f_rmsnorm, &((struct norm_case){ 1, 1 }), 2, ((ox_tensor *[]){ x1, w }), &o);
    /* tiny inputs (x = 3e-4 * N(0, 1): mean square ~ 1e-7): the eps term is active in the backward;
     * the input is scaled inside f so that the checked gradients are of order one */
    assert_gradcheck(ctx, f_rmsnorm, &((struct norm_case){ 1, 3e-4 }), 2, ((ox_tensor *[]){ x1, w }), &o);
    ox_ctx_free(ctx);
}

Test(nn_rmsnorm, shape_errors_and_module)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 8));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(7));
    expect_error(ctx, ox_nn_rmsnorm(ctx, x, w), OX_ERR_SHAPE, "[2, 3, 8]", "[7]");
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_rmsnorm_t norm;
    assert_ok(ctx, ox_nn_rmsnorm_init(ctx, &ps, &norm, "norm_f", 8));
    cr_assert_str_eq(norm.weight->name, "norm_f.weight");
    cr_assert_eq(ps.items[0].decay, OX_NN_NO_DECAY);
    for (int j = 0; j < 8; j++)
        cr_assert_eq(ox_tensor_f32(norm.weight)[j], 1.0f);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* ==== GatedRMSNorm ======================================================================================= */

/* y = o r w silu(g) per head of dv, for 2-D (possibly strided) o, g */
static void ref_gnorm(const ox_tensor *o, const ox_tensor *g, const ox_tensor *w, int64_t dv, double eps,
                      double *y)
{
    int64_t R = o->shape[0], n = o->shape[1];
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < n / dv; h++) {
            double ss = 0;
            for (int64_t j = h * dv; j < (h + 1) * dv; j++)
                ss += AT2(o, r, j) * AT2(o, r, j);
            double rr = 1 / sqrt(ss / (double)dv + eps);
            for (int64_t j = h * dv; j < (h + 1) * dv; j++)
                y[r * n + j] = AT2(o, r, j) * rr * ox_tensor_f32(w)[j] * silu_d(AT2(g, r, j));
        }
}

Test(nn_gated_rmsnorm, forward_strided_and_tiny_heads)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    int64_t H = 3, dv = 16, n = H * dv;
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(n), 1, 0.5);
    ox_tensor *os = randn(ctx, &rng, OX_DIMS(5, n + 4), 0, 1);
    ox_tensor *gs = randn(ctx, &rng, OX_DIMS(n, 5), 0, 2);
    ox_tensor *o = ox_tensor_view_narrow(ctx, os, 1, 2, n);          /* row stride n + 4 */
    ox_tensor *g = ox_tensor_view_transpose(ctx, gs, 0, 1);          /* copy path */
    /* head 1 of row 2 tiny (mean square ~1e-7, where eps matters) */
    for (int64_t j = dv; j < 2 * dv; j++)
        ox_tensor_f32(os)[2 * (n + 4) + 2 + j] *= 3e-4f;
    ox_tensor *y = ox_nn_gated_rmsnorm(ctx, o, g, w, dv);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    double ref[5 * 48], noeps[5 * 48];
    ref_gnorm(o, g, w, dv, 1e-6, ref);
    ref_gnorm(o, g, w, dv, 0, noeps);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 5 * n) <= 1e-5, "rel %g", rel_d(ox_tensor_f32(y), ref, 5 * n));
    /* the tiny head, on its own scale */
    const float *yt = ox_tensor_f32(y) + 2 * n + dv;
    cr_assert(rel_d(yt, ref + 2 * n + dv, dv) <= 1e-5);
    cr_assert(rel_d(yt, noeps + 2 * n + dv, dv) > 0.5, "eps must change the tiny head");
    ox_ctx_free(ctx);
}

static ox_tensor *f_gnorm(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const double *scale = arg;
    ox_tensor *o = ox_ag_narrow(ctx, in[0], 2, 1, 8);                                 /* [2, 3, 10] -> [2, 3, 8] */
    ox_tensor *g = ox_ag_permute(ctx, in[1], (const int[]){ 1, 0, 2 });               /* [3, 2, 8] -> [2, 3, 8] */
    if (*scale != 1)
        o = ox_ag_scale(ctx, o, *scale);
    return ox_nn_gated_rmsnorm(ctx, o, g, in[2], 4);
}

Test(nn_gated_rmsnorm, gradcheck_o_g_w)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(12);
    ox_gradcheck_opts opt = ox_gradcheck_defaults();
    ox_tensor *o = leaf(ctx, &rng, OX_DIMS(2, 3, 10), 0, 1);
    ox_tensor *g = leaf(ctx, &rng, OX_DIMS(3, 2, 8), 0, 1.5);
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(8), 1, 0.5);
    double one = 1, tiny = 3e-4;     /* tiny: o scaled to mean square ~1e-7 inside f (eps active) */
    assert_gradcheck(ctx, f_gnorm, &one, 3, ((ox_tensor *[]){ o, g, w }), &opt);
    assert_gradcheck(ctx, f_gnorm, &tiny, 3, ((ox_tensor *[]){ o, g, w }), &opt);
    ox_ctx_free(ctx);
}

Test(nn_gated_rmsnorm, shape_errors_and_module)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *o = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 12));
    ox_tensor *g = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 11));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(12));
    expect_error(ctx, ox_nn_gated_rmsnorm(ctx, o, g, w, 4), OX_ERR_SHAPE, "[2, 12]", "[2, 11]");
    expect_error(ctx, ox_nn_gated_rmsnorm(ctx, o, o, w, 5), OX_ERR_ARG, "12", "dv = 5");
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_gated_rmsnorm_t m;
    assert_ok(ctx, ox_nn_gated_rmsnorm_init(ctx, &ps, &m, "layers.2.mixer.norm", 3, 4));
    cr_assert_str_eq(m.weight->name, "layers.2.mixer.norm.weight");
    cr_assert(m.weight->ndim == 1 && m.weight->shape[0] == 12 && ox_tensor_f32(m.weight)[11] == 1.0f);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}
