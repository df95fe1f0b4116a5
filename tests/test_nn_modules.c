/* test_nn_modules.c - the small nn/ modules together (MODELS.md 2, 3, 3.1, 3.2): parameter names as
 * in the checkpoint table, backward bit-identical at 1 and 2 threads, gradients accumulating over passes,
 * and the vectorised expf / sigmoid of tensor/vmath.h. Each module's own tests are in tests/test_nn_*.c;
 * shared helpers and the tolerance rationale in tests/nn_modules_util.h. */
#include "nn_modules_util.h"

#include "nn/cross_entropy.h"
#include "nn/embedding.h"
#include "nn/gated_rmsnorm.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "nn/shortconv.h"
#include "nn/swiglu.h"

/* ==== all modules together ================================================================================ */

/* Parameter names exactly as MODELS.md 12.2 for the pieces built here (one layer's trunk and MLP, the
 * embedding and the final norm), in registration order. */
Test(nn_modules, parameter_names_match_checkpoint_table)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(23);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    int64_t D = 32, H = 2, dk = 8, dv = 8, F = 96, V = 256;
    ox_nn_embedding_t emb;
    ox_nn_rmsnorm_t n1, n2, nf;
    ox_nn_linear_t kp, vp, gp, op;
    ox_nn_shortconv_t kc, vc;
    ox_nn_gated_rmsnorm_t gn;
    ox_nn_swiglu_t mlp;
    assert_ok(ctx, ox_nn_embedding_init(ctx, &ps, &emb, "embed", V, D, 0.02, &rng));
    assert_ok(ctx, ox_nn_rmsnorm_init(ctx, &ps, &n1, "layers.3.norm1", D));
    assert_ok(ctx, ox_nn_rmsnorm_init(ctx, &ps, &n2, "layers.3.norm2", D));
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &kp, "layers.3.mixer.k_proj", D, H * dk, 0.02, &rng));
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &vp, "layers.3.mixer.v_proj", D, H * dv, 0.02, &rng));
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &gp, "layers.3.mixer.g_proj", D, H * dv, 0.02, &rng));
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &op, "layers.3.mixer.o_proj", H * dv, D, 0.02 / sqrt(8.0), &rng));
    assert_ok(ctx, ox_nn_shortconv_init(ctx, &ps, &kc, "layers.3.mixer.k_conv", H * dk, OX_NN_ACT_SILU, &rng));
    assert_ok(ctx, ox_nn_shortconv_init(ctx, &ps, &vc, "layers.3.mixer.v_conv", H * dv, OX_NN_ACT_SILU, &rng));
    assert_ok(ctx, ox_nn_gated_rmsnorm_init(ctx, &ps, &gn, "layers.3.mixer.norm", H, dv));
    assert_ok(ctx, ox_nn_swiglu_init(ctx, &ps, &mlp, "layers.3.mlp", D, F, 4, &rng));
    assert_ok(ctx, ox_nn_rmsnorm_init(ctx, &ps, &nf, "norm_f", D));
    static const struct { const char *name; int64_t s0, s1; } want[] = {
        { "embed.weight", 256, 32 },
        { "layers.3.norm1.weight", 32, -1 },
        { "layers.3.norm2.weight", 32, -1 },
        { "layers.3.mixer.k_proj.weight", 16, 32 },
        { "layers.3.mixer.v_proj.weight", 16, 32 },
        { "layers.3.mixer.g_proj.weight", 16, 32 },
        { "layers.3.mixer.o_proj.weight", 32, 16 },
        { "layers.3.mixer.k_conv.weight", 16, 4 },
        { "layers.3.mixer.v_conv.weight", 16, 4 },
        { "layers.3.mixer.norm.weight", 16, -1 },
        { "layers.3.mlp.gate_proj.weight", 96, 32 },
        { "layers.3.mlp.up_proj.weight", 96, 32 },
        { "layers.3.mlp.down_proj.weight", 32, 96 },
        { "norm_f.weight", 32, -1 },
    };
    cr_assert_eq(ps.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < ps.n; i++) {
        const ox_tensor *t = ps.items[i].t;
        cr_assert_str_eq(ps.items[i].name, want[i].name);
        cr_assert_eq(t->ndim, want[i].s1 < 0 ? 1 : 2, "%s", want[i].name);
        cr_assert(t->shape[0] == want[i].s0 && (want[i].s1 < 0 || t->shape[1] == want[i].s1), "%s", want[i].name);
        cr_assert_eq(ps.items[i].decay, t->ndim == 1 ? OX_NN_NO_DECAY : OX_NN_DECAY, "%s", want[i].name);
    }
    /* a duplicate name is refused */
    ox_nn_rmsnorm_t dup;
    cr_assert_eq(ox_nn_rmsnorm_init(ctx, &ps, &dup, "norm_f", D), OX_ERR_ARG);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* Runs every fused op on leaves (forward, then backward seeded with fixed random values), `passes`
 * times without zeroing, and returns all the leaves' gradients concatenated. Sizes are above
 * OX_PARALLEL_MIN so that the parallel paths run at 2 threads. */
static ox_tensor *seeded(ox_ctx *ctx, ox_rng *rng, ox_tensor *y)
{
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    ox_tensor *seed = ox_tensor_randn(ctx, rng, y->ndim, y->shape, 0, 1);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
    return y;
}

static void all_grads(ox_ctx *ctx, int threads, int passes, float **out, int64_t *n_out)
{
    ox_ctx_set_threads(ctx, threads);
    ox_rng rng = ox_rng_seed(24);
    int64_t B = 2, T = 128, D = 160, V = 96;
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(B, T, D), 0, 1);
    ox_tensor *w = leaf(ctx, &rng, OX_DIMS(D), 1, 0.3);
    ox_tensor *g = leaf(ctx, &rng, OX_DIMS(B, T, D), 0, 1);
    ox_tensor *cw = leaf(ctx, &rng, OX_DIMS(D, 4), 0, 0.5);
    ox_tensor *E = leaf(ctx, &rng, OX_DIMS(V, D), 0, 1);
    ox_tensor *z = leaf(ctx, &rng, OX_DIMS(B, T, V), 0, 2);
    ox_tensor *tok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
    ox_tensor *tgt = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
    for (int64_t i = 0; i < B * T; i++) {
        ox_tensor_i32(tok)[i] = (int32_t)ox_rng_below(&rng, (uint64_t)V);
        ox_tensor_i32(tgt)[i] = i % 7 == 0 ? -1 : (int32_t)ox_rng_below(&rng, (uint64_t)V);
    }
    for (int p = 0; p < passes; p++) {      /* no zeroing between passes: gradients accumulate */
        ox_rng srng = ox_rng_seed(25);
        seeded(ctx, &srng, ox_nn_rmsnorm(ctx, x, w));
        seeded(ctx, &srng, ox_nn_shortconv(ctx, x, cw, OX_NN_ACT_SILU));
        seeded(ctx, &srng, ox_nn_gated_rmsnorm(ctx, x, g, w, 32));
        seeded(ctx, &srng, ox_nn_silu_mul(ctx, x, g));
        seeded(ctx, &srng, ox_nn_linear(ctx, x, E));
        seeded(ctx, &srng, ox_nn_embedding_lookup(ctx, E, tok));
        seeded(ctx, &srng, ox_nn_cross_entropy(ctx, z, tgt, -1));
    }
    ox_tensor *ls[6] = { x, w, g, cw, E, z };
    int64_t n = 0;
    for (int k = 0; k < 6; k++)
        n += ox_tensor_numel(ls[k]);
    float *buf = malloc(sizeof(float) * (size_t)n);
    cr_assert_not_null(buf);
    n = 0;
    for (int k = 0; k < 6; k++) {
        memcpy(buf + n, ox_tensor_f32(ls[k]->grad), sizeof(float) * (size_t)ox_tensor_numel(ls[k]));
        n += ox_tensor_numel(ls[k]);
    }
    *out = buf;
    *n_out = n;
    ox_ctx_reset(ctx);
}

/* The gradients must be bit-identical at 1 and 2 threads (row-blocked / channel-split reductions
 * combined in a fixed order). */
Test(nn_modules, backward_is_bit_identical_at_1_and_2_threads)
{
    ox_ctx *ctx = test_ctx();
    float *g1, *g2;
    int64_t n1, n2;
    all_grads(ctx, 1, 1, &g1, &n1);
    all_grads(ctx, 2, 1, &g2, &n2);
    cr_assert_eq(n1, n2);
    for (int64_t i = 0; i < n1; i++)
        cr_assert(isfinite(g1[i]));
    cr_assert(memcmp(g1, g2, sizeof(float) * (size_t)n1) == 0, "gradients differ between 1 and 2 threads");
    free(g1);
    free(g2);
    ox_ctx_free(ctx);
}

/* Every backward adds (+=) into the gradient buffers of all its inputs: two passes without zeroing give
 * twice the gradient of one. Leaves that receive several contributions per pass (x from five ops, w, g,
 * E from two) add them in a different grouping the second time, so the match is up to the float rounding
 * of a few additions: rel <= 1e-6. A backward that overwrites (=) instead of adding gives rel ~0.1-1. */
Test(nn_modules, backward_accumulates_into_gradients)
{
    ox_ctx *ctx = test_ctx();
    float *g1, *g2;
    int64_t n1, n2;
    all_grads(ctx, 1, 1, &g1, &n1);
    all_grads(ctx, 1, 2, &g2, &n2);
    cr_assert_eq(n1, n2);
    for (int64_t i = 0; i < n1; i++)
        g1[i] *= 2.0f;
    cr_assert(rel_err(g2, g1, n1) <= 1e-6, "rel %g", rel_err(g2, g1, n1));
    free(g1);
    free(g2);
    ox_ctx_free(ctx);
}

/* expf through tensor/vmath.h (glibc's vector variants, used by sigmoid, silu and softmax): computed in a
 * loop the compiler vectorises, relative error against exp in double stays within a few ulp (fp32 ulp =
 * 1.2e-7 relative; accepted 5e-7: a wrong variant or a broken declaration shows up as 1e-5 or worse);
 * the ends saturate to 0 and inf, NaN stays NaN. */
Test(nn_modules, vectorised_expf_matches_libm)
{
    enum { N = 200001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    for (int i = 0; i < N; i++)
        y[i] = expf(x[i]);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = exp((double)x[i]), e = fabs((double)y[i] - ref) / ref;
        worst = e > worst ? e : worst;
    }
    cr_assert(worst <= 5e-7, "max relative error %g", worst);
    /* sigmoid saturates cleanly at both ends */
    cr_assert(ox_nn_sigmoidf(200.0f) == 1.0f && ox_nn_sigmoidf(-200.0f) < 1e-37f && ox_nn_sigmoidf(-200.0f) >= 0);
    cr_assert(isnan(ox_nn_sigmoidf(NAN)));
}
