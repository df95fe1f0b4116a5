/* test_gdn.c - the Gated DeltaNet core (nn/gdn.h): chunked WY/UT fast path vs the sequential reference and
 * a double-precision oracle (model-like and stress inputs), gradchecks of both, step == chunked, padding
 * invariance, saved memory, errors, determinism across thread counts; and l2norm (nn/l2norm.h). Shared
 * bodies and tolerances: tests/linear_mixers_util.h. */
#include "linear_mixers_util.h"
#include "nn/gdn.h"
#include "nn/l2norm.h"

Test(gdn, fast_matches_reference_and_fp64_oracle, .timeout = 60)
{
    lm_check_all(LM_GDN, ox_nn_gdn, ox_nn_gdn_reference, 0);
}

/* MODELS.md 11 item 2: near-duplicate keys, beta = 0.98, slow decay (I + A least well conditioned). */
Test(gdn, stress_inputs_match_fp64_oracle, .timeout = 60)
{
    lm_check_all(LM_GDN, ox_nn_gdn, ox_nn_gdn_reference, 1);
}

Test(gdn, gradcheck_fast, .timeout = 60)
{
    lm_gradcheck(LM_GDN, ox_nn_gdn);
}

Test(gdn, gradcheck_reference, .timeout = 60)
{
    lm_gradcheck(LM_GDN, ox_nn_gdn_reference);
}

Test(gdn, step_matches_chunked)
{
    lm_step_matches_chunked(LM_GDN, ox_nn_gdn, ox_nn_gdn_step);
}

Test(gdn, padding_invariance)
{
    lm_padding_invariance(LM_GDN, ox_nn_gdn);
}

Test(gdn, saves_only_chunk_states)
{
    lm_saved_bytes(LM_GDN, ox_nn_gdn);
    lm_saved_bytes(LM_GDN, ox_nn_gdn_reference);
}

Test(gdn, bad_shapes_are_errors)
{
    lm_bad_shapes(ox_nn_gdn, ox_nn_gdn_step);
}

Test(gdn, threads_bit_identical)
{
    lm_threads_bit_identical(LM_GDN, ox_nn_gdn);
}

Test(gdn, fp64_oracle_matches_finite_differences)
{
    lm_oracle_fd(LM_GDN);
}

Test(gdn, null_state_arguments)
{
    lm_null_state(LM_GDN, ox_nn_gdn);
}

/* ---- l2norm ---- */

/* Forward against a double-precision loop on a transposed (non-contiguous) input: rel <= 1e-6 per row
 * (fp32 sum of 13 squares and one sqrt: a few ulps). */
Test(l2norm, forward_matches_double_loop_on_strided_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng r = ox_rng_seed(3);
    ox_tensor *x = ox_tensor_randn(ctx, &r, OX_DIMS(13, 6), 0, 1);
    ox_tensor *xt = ox_tensor_view_transpose(ctx, x, 0, 1);     /* [6, 13], last axis strided */
    ox_tensor *y = ox_nn_l2norm(ctx, xt);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    for (int i = 0; i < 6; i++) {
        double s = 1e-6;
        for (int j = 0; j < 13; j++)
            s += (double)ox_tensor_f32(x)[j * 6 + i] * ox_tensor_f32(x)[j * 6 + i];
        for (int j = 0; j < 13; j++) {
            const double ref = ox_tensor_f32(x)[j * 6 + i] / sqrt(s);
            cr_assert(fabs(ox_tensor_f32(y)[i * 13 + j] - ref) <= 1e-6, "[%d, %d]: %g vs %g", i, j,
                      ox_tensor_f32(y)[i * 13 + j], ref);
        }
    }
    /* the eps keeps a zero row finite (0, not NaN) */
    ox_tensor *z = ox_nn_l2norm(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4)));
    cr_assert_not_null(z);
    for (int j = 0; j < 8; j++)
        cr_assert(ox_tensor_f32(z)[j] == 0.0f);
    ox_ctx_free(ctx);
}

static ox_tensor *f_l2norm(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    return ox_nn_l2norm(ctx, ox_ag_narrow(ctx, ox_ag_transpose(ctx, in[0], 0, 2), 1, 1, 3));
}

/* gradcheck on a transposed + narrowed view, fp32 defaults (MODELS.md 11 item 9); rows have norm ~2, so
 * gradients are of order 1/2. */
Test(l2norm, gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_rng r = ox_rng_seed(4);
    ox_tensor *x = test_leaf(ctx, &r, OX_DIMS(8, 4, 3), 1.0);   /* used as [3, 3, 8] */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_l2norm, NULL, 1, &x, &o);
    ox_ctx_free(ctx);
}

Test(l2norm, errors)
{
    ox_ctx *ctx = test_ctx();
    cr_assert_null(ox_nn_l2norm(ctx, NULL));
    ox_tensor *i = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3));
    cr_assert_null(ox_nn_l2norm(ctx, i));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
    ox_ctx_free(ctx);
}
