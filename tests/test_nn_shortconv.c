/* test_nn_shortconv.c - nn/shortconv (MODELS.md 3.2): parallel, step and prefill paths.
 * For each: forward against a plain double-precision loop on strided inputs, gradcheck of every input and
 * parameter (non-contiguous views made inside the checked function), shape errors, and the module's
 * parameter names and initialisation. Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5;
 * gradchecks at the fp32 defaults of MODELS.md section 11 item 9). */
#include "nn_modules_util.h"

#include "nn/shortconv.h"

/* ==== ShortConv ========================================================================================== */

/* out[b, t, c] = act(sum_j w[c, j] x[b, t - 3 + j, c]) with x = 0 before the start */
static void ref_conv(const ox_tensor *x, const ox_tensor *w, ox_nn_act act, double *y)
{
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                double p = 0;
                for (int64_t j = 0; j < 4; j++)
                    if (t - 3 + j >= 0)
                        p += AT2(w, c, j) * AT3(x, b, t - 3 + j, c);
                y[(b * T + t) * C + c] = act == OX_NN_ACT_SILU ? silu_d(p) : p;
            }
}

Test(nn_shortconv, forward_strided_both_activations)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(13);
    int64_t B = 2, T = 7, C = 5;
    ox_tensor *ws = randn(ctx, &rng, OX_DIMS(4, C), 0, 0.5);
    ox_tensor *w = ox_tensor_view_transpose(ctx, ws, 0, 1);                          /* [C, 4], strided */
    ox_tensor *xa = randn(ctx, &rng, OX_DIMS(T, B, C), 0, 1);
    ox_tensor *xb = randn(ctx, &rng, OX_DIMS(C, B, T), 0, 1);
    ox_tensor *xs[2] = { ox_tensor_view_permute(ctx, xa, (const int[]){ 1, 0, 2 }),   /* unit channel stride */
                         ox_tensor_view_permute(ctx, xb, (const int[]){ 1, 2, 0 }) };  /* copy path */
    for (int c = 0; c < 2; c++)
        for (int act = 0; act < 2; act++) {
            ox_tensor *y = ox_nn_shortconv(ctx, xs[c], w, (ox_nn_act)act);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            double ref[2 * 7 * 5];
            ref_conv(xs[c], w, (ox_nn_act)act, ref);
            cr_assert(rel_d(ox_tensor_f32(y), ref, B * T * C) <= 1e-5, "case %d act %d: rel %g", c, act,
                      rel_d(ox_tensor_f32(y), ref, B * T * C));
        }
    ox_ctx_free(ctx);
}

struct conv_case { int kind; ox_nn_act act; };

static ox_tensor *f_conv(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct conv_case *c = arg;
    ox_tensor *x = c->kind == 0 ? ox_ag_permute(ctx, in[0], (const int[]){ 1, 0, 2 })   /* [T, B, C] */
                                : ox_ag_permute(ctx, in[0], (const int[]){ 1, 2, 0 });  /* [C, B, T] */
    return ox_nn_shortconv(ctx, x, ox_ag_transpose(ctx, in[1], 0, 1), c->act);
}

Test(nn_shortconv, gradcheck_x_and_w)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(14);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(4, 3), 0, 0.7);
    ox_tensor *xa = leaf(ctx, &rng, OX_DIMS(6, 2, 3), 0, 1);     /* T = 6 */
    ox_tensor *xb = leaf(ctx, &rng, OX_DIMS(3, 2, 2), 0, 1);     /* T = 2 < 3: only the late taps */
    for (int act = 0; act < 2; act++) {
        assert_gradcheck(ctx, f_conv, &((struct conv_case){ 0, (ox_nn_act)act }), 2, ((ox_tensor *[]){ xa, w }), &o);
        assert_gradcheck(ctx, f_conv, &((struct conv_case){ 1, (ox_nn_act)act }), 2, ((ox_tensor *[]){ xb, w }), &o);
    }
    ox_ctx_free(ctx);
}

/* Step form vs parallel form. Both add the same products in the same order (tap 3 first), so they agree
 * to the last bit or within an ulp if the compiler contracts differently; we accept rel <= 1e-6. */
Test(nn_shortconv, step_and_prefill_match_parallel)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(15);
    int64_t B = 2, T = 9, C = 5;
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(C, 4), 0, 0.5);
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(B, T, C), 0, 1);
    ox_tensor *st = ox_nn_shortconv_state_new(ctx, B, C);
    cr_assert_not_null(st);
    ox_tensor *out = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, C));
    for (int act = 0; act < 2; act++) {
        ox_tensor *y = ox_nn_shortconv(ctx, x, w, (ox_nn_act)act);
        cr_assert_not_null(y);
        for (int prefill = 0; prefill <= 5; prefill += (prefill == 0 ? 2 : 3)) {   /* 0, 2 (< 3), 5 */
            int64_t t0 = prefill;
            if (prefill) {
                ox_tensor *yp = ox_nn_shortconv_prefill(ctx, ox_tensor_view_narrow(ctx, x, 1, 0, prefill), w,
                                                        (ox_nn_act)act, st);
                cr_assert_not_null(yp, "%s", ox_ctx_message(ctx));
                for (int64_t b = 0; b < B; b++)
                    for (int64_t t = 0; t < prefill; t++)
                        for (int64_t c = 0; c < C; c++)
                            cr_assert_eq(AT3(yp, b, t, c), AT3(y, b, t, c));
            } else {
                memset(st->data, 0, sizeof(float) * (size_t)(B * 3 * C));
            }
            ox_tensor *xt[9];
            for (int64_t t = t0; t < T; t++)
                xt[t] = ox_tensor_view_select(ctx, x, 1, t);                /* [B, C], row stride T*C */
            uint64_t allocs = ox_alloc_count();
            size_t arena = ctx->arena.used;
            for (int64_t t = t0; t < T; t++) {
                assert_ok(ctx, ox_nn_shortconv_step(ctx, xt[t], w, (ox_nn_act)act, st, out));
                for (int64_t b = 0; b < B; b++) {
                    double ref[5];
                    for (int64_t c = 0; c < C; c++)
                        ref[c] = AT3(y, b, t, c);
                    cr_assert(rel_d(ox_tensor_f32(out) + b * C, ref, C) <= 1e-6, "act %d prefill %d t %lld",
                              act, prefill, (long long)t);
                }
            }
            cr_assert_eq(ox_alloc_count(), allocs, "the step allocates nothing");
            cr_assert_eq(ctx->arena.used, arena, "the step uses no arena memory");
        }
    }
    ox_tensor_free(st);
    ox_ctx_free(ctx);
}

Test(nn_shortconv, errors_and_module)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 6));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(6, 3));
    expect_error(ctx, ox_nn_shortconv(ctx, x, w, OX_NN_ACT_NONE), OX_ERR_SHAPE, "[2, 5, 6]", "[6, 3]");
    ox_tensor *w4 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(6, 4));
    expect_error(ctx, ox_nn_shortconv(ctx, x, w4, (ox_nn_act)7), OX_ERR_ARG, "activation 7", NULL);
    ox_tensor *bad_state = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 6));
    ox_tensor *x1 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 6));
    cr_assert_eq(ox_nn_shortconv_step(ctx, x1, w4, OX_NN_ACT_NONE, bad_state, x1), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 4, 6]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_shortconv_t m;
    ox_rng rng = ox_rng_seed(16);
    assert_ok(ctx, ox_nn_shortconv_init(ctx, &ps, &m, "layers.0.mixer.v_conv", 4096, OX_NN_ACT_SILU, &rng));
    cr_assert_str_eq(m.weight->name, "layers.0.mixer.v_conv.weight");
    cr_assert(m.weight->shape[0] == 4096 && m.weight->shape[1] == 4);
    /* U(-0.5, 0.5): mean 0 (s.e. sqrt(1/12 / n)), std sqrt(1/12) (s.e. sqrt((1/80 - 1/144) / (4/12 n)));
     * 4 standard errors each, and every value inside the interval */
    double mean, sd, n = 4096 * 4;
    moments(m.weight, &mean, &sd);
    cr_assert(fabs(mean) <= 4 * sqrt(1.0 / 12 / n), "mean %g", mean);
    cr_assert(fabs(sd - sqrt(1.0 / 12)) <= 4 * sqrt((1.0 / 80 - 1.0 / 144) / (4.0 / 12 * n)), "std %g", sd);
    for (int64_t i = 0; i < 4096 * 4; i++)
        cr_assert(fabsf(ox_tensor_f32(m.weight)[i]) <= 0.5f);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}
