/* test_nn_swiglu.c - nn/swiglu (MODELS.md 3): the fused silu(a) * b op and the MLP module.
 * For each: forward against a plain double-precision loop on strided inputs, gradcheck of every input and
 * parameter (non-contiguous views made inside the checked function), shape errors, and the module's
 * parameter names and initialisation. Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5;
 * gradchecks at the fp32 defaults of MODELS.md section 11 item 9). */
#include "nn_modules_util.h"

#include "nn/linear.h"
#include "nn/swiglu.h"

/* ==== SwiGLU ============================================================================================= */

Test(nn_swiglu, forward_matches_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(17);
    int64_t R = 6, D = 8, F = 12;
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(2, 3, D), 0, 1);
    ox_tensor *wg = randn(ctx, &rng, OX_DIMS(F, D), 0, 0.4), *wu = randn(ctx, &rng, OX_DIMS(F, D), 0, 0.4);
    ox_tensor *wds = randn(ctx, &rng, OX_DIMS(F, D), 0, 0.4);
    ox_tensor *wd = ox_tensor_view_transpose(ctx, wds, 0, 1);                       /* [D, F] strided */
    ox_tensor *y = ox_nn_swiglu(ctx, x, wg, wu, wd);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 3 && y->shape[2] == D);
    double ref[6 * 8];
    const float *xp = ox_tensor_f32(x);
    for (int64_t r = 0; r < R; r++) {
        double u[12];
        for (int64_t f = 0; f < F; f++) {
            double a = 0, b = 0;
            for (int64_t i = 0; i < D; i++) {
                a += xp[r * D + i] * AT2(wg, f, i);
                b += xp[r * D + i] * AT2(wu, f, i);
            }
            u[f] = silu_d(a) * b;
        }
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t f = 0; f < F; f++)
                s += u[f] * AT2(wd, d, f);
            ref[r * D + d] = s;
        }
    }
    cr_assert(rel_d(ox_tensor_f32(y), ref, R * D) <= 1e-5, "rel %g", rel_d(ox_tensor_f32(y), ref, R * D));
    ox_ctx_free(ctx);
}

static ox_tensor *f_silu_mul(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;      /* a: transposed [4, 3] -> [3, 4]; b: [4] broadcast to [3, 4] */
    return ox_nn_silu_mul(ctx, ox_ag_transpose(ctx, in[0], 0, 1), ox_ag_expand(ctx, in[1], OX_DIMS(3, 4)));
}

static ox_tensor *f_swiglu(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;      /* down_proj given as the transpose of a [F, D] leaf */
    return ox_nn_swiglu(ctx, in[0], in[1], in[2], ox_ag_transpose(ctx, in[3], 0, 1));
}

Test(nn_swiglu, gradcheck_fused_op_and_mlp)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(18);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *a = leaf(ctx, &rng, OX_DIMS(4, 3), 0, 1.5), *b = leaf(ctx, &rng, OX_DIMS(4), 0, 1);
    assert_gradcheck(ctx, f_silu_mul, NULL, 2, ((ox_tensor *[]){ a, b }), &o);
    /* weights 0.5 so that the pre-activations are of order one and the gradients too */
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(2, 3, 4), 0, 1);
    ox_tensor *wg = leaf(ctx, &rng, OX_DIMS(6, 4), 0, 0.5), *wu = leaf(ctx, &rng, OX_DIMS(6, 4), 0, 0.5);
    ox_tensor *wd = leaf(ctx, &rng, OX_DIMS(6, 4), 0, 0.5);
    assert_gradcheck(ctx, f_swiglu, NULL, 4, ((ox_tensor *[]){ x, wg, wu, wd }), &o);
    ox_ctx_free(ctx);
}

Test(nn_swiglu, errors_module_names_and_init)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 8));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(12, 8)), *wd_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(12, 8));
    expect_error(ctx, ox_nn_swiglu(ctx, x, w, w, wd_bad), OX_ERR_SHAPE, "[12, 8]", "down");
    expect_error(ctx, ox_nn_silu_mul(ctx, x, w), OX_ERR_SHAPE, "[2, 8]", "[12, 8]");
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_swiglu_t m;
    ox_rng rng = ox_rng_seed(19);
    int L = 4;
    assert_ok(ctx, ox_nn_swiglu_init(ctx, &ps, &m, "layers.1.mlp", 256, 704, L, &rng));
    cr_assert_eq(ps.n, 3);
    cr_assert_str_eq(ps.items[0].name, "layers.1.mlp.gate_proj.weight");
    cr_assert_str_eq(ps.items[1].name, "layers.1.mlp.up_proj.weight");
    cr_assert_str_eq(ps.items[2].name, "layers.1.mlp.down_proj.weight");
    cr_assert(m.gate.weight->shape[0] == 704 && m.gate.weight->shape[1] == 256);
    cr_assert(m.down.weight->shape[0] == 256 && m.down.weight->shape[1] == 704);
    expect_normal_init(m.gate.weight, 0.02);
    expect_normal_init(m.up.weight, 0.02);
    expect_normal_init(m.down.weight, 0.02 / sqrt(2.0 * L));
    ox_tensor *y = ox_nn_swiglu_forward(ctx, &m, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 256)));
    cr_assert(y && y->shape[0] == 3 && y->shape[1] == 256);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}
