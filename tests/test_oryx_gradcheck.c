/* test_oryx_gradcheck.c - MODELS.md 11 item 10: the whole model's gradient against a finite difference of
 * its loss, for every preset of config.h, for the two Oryx presets under a mixed map, and for a hybrid
 * with the learned logit bias (model.h: logits += s * lm_head.bias, s = OX_ORYX_LOGIT_BIAS_SCALE), whose
 * bias gradient is also compared entry by entry with its closed form.
 *
 * Along a random unit direction u over ALL parameters (every entry of every parameter tensor):
 *     fd = (L(theta + eps u) - L(theta - eps u)) / (2 eps),   an = <grad L(theta), u>,   eps = 1e-3,
 * and |fd - an| <= 1e-2 * |an| is required (MODELS 11 item 10's "relative agreement 1e-2").
 *
 * How the two sides are computed:
 *  - grad L: the library's backward of ox_oryx_loss (fp32), summed against u in double.
 *  - L(theta +- eps u): the fp32 forward gives the logits, the mean cross entropy over the B*T positions is
 *    then taken in double (MODELS 2), so the only fp32 rounding in fd is the forward's.
 *  - theta +- eps u is stored in fp32, which rounds each entry's step by up to half an ulp of theta (relative
 *    error of a step eps |u_i| ~ 1e-3 / sqrt(P) up to ~1e-3 per entry). So `an` is taken along the step that
 *    was actually applied: an = <grad, (theta+) - (theta-)> / (2 eps) with theta+- the stored fp32 values.
 *    This is exactly the directional derivative the difference measures; only |u| = 1 is approximate (to
 *    ~1e-5), which does not matter for a relative comparison.
 *
 * Why 1e-2 is the right tolerance at these sizes: the truncation error of the central difference is
 * eps^2 / 6 * L''' ~ 1e-7 relative, so fd is limited by the fp32 rounding of the forward: ~1 ulp on the
 * logits moves the mean loss by a few 1e-7, i.e. |fd - an| ~ 1e-4 (2 eps = 2e-3 divides it), while a random
 * unit u gives |an| ~ |grad| / sqrt(P) ~ 3 / 85 ~ 3e-2 (P ~ 7 000 to 13 000 parameters; measured: |fd - an|
 * is 0.5e-3 to 3e-3 of |grad| / sqrt(P)). A relative test says nothing when <grad, u> happens to be near 0,
 * so each case draws 4 directions among those with |<grad, u>| >= |grad| / sqrt(P) (32% of random unit
 * directions; the choice only avoids tiny denominators, a wrong gradient is still compared along a random
 * direction). Measured worst rel over 10 seeds x 7 cases x 4 directions: 3.6e-3 (this seed: 2e-3), so 1e-2
 * keeps a 3x margin; errors of a few percent of the gradient fail it: scaling the gradient of embed.weight by
 * 1.02 fails all 7 cases, that of layers.0.mixer.k_proj.weight by 1.05 fails the three GDN-family cases.
 * (Smaller errors in a single small tensor are below what one direction over all parameters can see; the
 * per-op finite-difference checks of MODELS 11 item 9 cover those.)
 * Larger models make |an| smaller (1 / sqrt(P)) and logits of order 10 make the rounding larger; both are
 * avoided by the sizes below (loss ~ 3.8, near log V = 3.47).
 *
 * Sizes: V 32, D 16, H 2, dk = dv = 8, F 32, L 2 (4 for the hybrids, so they hold an attention layer), B 2,
 * T 70 (crosses the 64-token chunks of the linear mixers and the attention key blocks; 40 under ASan).
 * Weights are random and of order one (projections N(0, 1/fan_in), norm gains 1 + N(0, 0.2^2), convs
 * U(-0.5, 0.5), embeddings N(0, 0.2^2)), so every parameter moves the loss visibly. The logit bias b is drawn
 * N(0, (0.5 / s)^2), so s * b, what the logits see, is of order 0.5 like the tied head's logits; its gradient is
 * s times that of a logit, so it dominates |grad| (s = 100) and a random direction checks mostly it: the
 * rest of the model is checked by the same case without the bias (hybrid_gdn), and the bias alone exactly by
 * logit_bias_gradient_closed_form. Each case takes < 0.1 s. */
#include "test_util.h"

#include "models/oryx/model.h"
#include "models/oryx/modes.h"

#include <stdio.h>
#include <string.h>

#define EPS 1e-3
#define TOL 1e-2
#define DIRECTIONS 4

static int64_t seq_len(void) { return test_small() ? 40 : 70; }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Order-one random weights (A_log and dt_bias keep their initialisation, already of order one). */
static void randomize(ox_ctx *ctx, ox_oryx_model *m, ox_rng *rng)
{
    for (int i = 0; i < m->params.n; i++) {
        const char *name = m->params.items[i].name;
        ox_tensor *t = m->params.items[i].t;
        if (ends_with(name, "A_log") || ends_with(name, "dt_bias"))
            continue;
        if (strcmp(name, "lm_head.bias") == 0)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, rng, 0.0, 0.5 / m->cfg.logit_bias_scale));
        else if (ends_with(name, "conv.weight"))
            assert_ok(ctx, ox_tensor_fill_uniform(ctx, t, rng, -0.5, 0.5));
        else if (t->ndim == 1)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, rng, 1.0, 0.2));
        else if (strcmp(name, "embed.weight") == 0)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, rng, 0.0, 0.2));
        else
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, rng, 0.0, 1.0 / sqrt((double)t->shape[1])));
    }
}

/* Mean next-token cross entropy of MODELS 2 over rows [B, T + 1], from the fp32 logits, in double. */
static double loss_double(ox_ctx *ctx, const ox_oryx_model *m, const int32_t *rows, int64_t B, int64_t T,
                          const ox_tensor *mode)
{
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
    cr_assert_not_null(in, "%s", ox_ctx_message(ctx));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            ox_tensor_i32(in)[b * T + t] = rows[b * (T + 1) + t];
    ox_tensor *z = ox_oryx_forward(ctx, m, in, mode);
    cr_assert_not_null(z, "%s", ox_ctx_message(ctx));
    ox_tensor *zc = ox_tensor_contiguous(ctx, z);
    cr_assert_not_null(zc, "%s", ox_ctx_message(ctx));
    int64_t V = m->cfg.vocab;
    double s = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *zt = ox_tensor_f32(zc) + (b * T + t) * V;
            double mx = zt[0], e = 0;
            for (int64_t v = 1; v < V; v++)
                mx = zt[v] > mx ? zt[v] : mx;
            for (int64_t v = 0; v < V; v++)
                e += exp((double)zt[v] - mx);
            s += mx + log(e) - (double)zt[rows[b * (T + 1) + t + 1]];
        }
    ox_ag_set_grad_enabled(ctx, prev);
    return s / (double)(B * T);
}

/* Sets every parameter entry i (flattened over the parameter list) to theta_i + sign * eps * u_i, rounded to
 * fp32; the stored values go to out[i]. */
static void set_params(ox_oryx_model *m, const float *theta, const double *u, double sign, float *out)
{
    int64_t o = 0;
    for (int i = 0; i < m->params.n; i++) {
        ox_tensor *t = m->params.items[i].t;
        float *p = ox_tensor_f32(t);
        int64_t n = ox_tensor_numel(t);
        for (int64_t j = 0; j < n; j++, o++) {
            p[j] = (float)((double)theta[o] + sign * EPS * u[o]);
            if (out)
                out[o] = p[j];
        }
    }
}

/* The check of the header on one model and map (mode may be NULL for models without oryx layers). */
static void check_direction_derivative_s(const char *what, const char *preset, int64_t L, int mixed_map,
                                        double logit_bias_scale)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(7);
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, preset, L, &c));
    c.vocab = 32;
    c.d_model = 16;
    c.n_heads = 2;
    c.d_k = 8;
    c.d_v = 8;
    c.mlp_hidden = 32;
    c.logit_bias_scale = logit_bias_scale;
    ox_oryx_model m;
    assert_ok(ctx, ox_oryx_model_init(ctx, &m, &c, &rng));
    cr_assert_eq(m.logit_bias != NULL, logit_bias_scale > 0, "%s: lm_head.bias present iff s > 0", what);
    randomize(ctx, &m, &rng);

    const int64_t B = 2, T = seq_len(), P = ox_nn_params_numel(&m.params);
    int32_t *rows = malloc(sizeof *rows * (size_t)(B * (T + 1)));
    float *theta = malloc(sizeof *theta * (size_t)P), *grad = malloc(sizeof *grad * (size_t)P);
    float *plus = malloc(sizeof *plus * (size_t)P), *minus = malloc(sizeof *minus * (size_t)P);
    double *u = malloc(sizeof *u * (size_t)P);
    cr_assert(rows && theta && grad && plus && minus && u);
    for (int64_t i = 0; i < B * (T + 1); i++)
        rows[i] = (int32_t)ox_rng_below(&rng, (uint64_t)c.vocab);

    /* The map: per token ATTN with probability 1/2 (switches in both directions on every row); the
     * non-oryx presets take none. */
    ox_tensor *mode = NULL;
    if (mixed_map) {
        mode = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T));
        cr_assert_not_null(mode, "%s", ox_ctx_message(ctx));
        int64_t attn = 0;
        for (int64_t i = 0; i < B * T; i++)
            attn += ox_tensor_i32(mode)[i] = ox_rng_uniform(&rng) < 0.5 ? OX_NN_ATTN : OX_NN_LIN;
        cr_assert(attn > 0 && attn < B * T);
    }

    /* grad L at theta (fp32 backward), and theta itself */
    ox_tensor *rt = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T + 1));
    cr_assert_not_null(rt, "%s", ox_ctx_message(ctx));
    memcpy(ox_tensor_i32(rt), rows, sizeof *rows * (size_t)(B * (T + 1)));
    ox_nn_params_zero_grad(&m.params);
    ox_tensor *loss = ox_oryx_loss(ctx, &m, rt, mode, NULL);
    cr_assert_not_null(loss, "%s: %s", what, ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    double lf = (double)ox_tensor_f32(loss)[0], gnorm = 0;
    for (int i = 0, o = 0; i < m.params.n; i++) {
        ox_tensor *t = m.params.items[i].t;
        int64_t n = ox_tensor_numel(t);
        cr_assert_not_null(t->grad, "%s: %s has no gradient", what, m.params.items[i].name);
        memcpy(theta + o, ox_tensor_f32(t), sizeof(float) * (size_t)n);
        memcpy(grad + o, ox_tensor_f32(t->grad), sizeof(float) * (size_t)n);
        for (int64_t j = 0; j < n; j++)
            gnorm += (double)grad[o + j] * grad[o + j];
        o += (int)n;
    }
    ox_ctx_reset(ctx);
    gnorm = sqrt(gnorm);
    /* the double loss at theta equals the library's fp32 loss up to the fp32 rounding of its mean over B*T
     * terms of ~4 (~1e-6 relative; 1e-5 allowed), so fd differentiates the loss that was back-propagated */
    double l0 = loss_double(ctx, &m, rows, B, T, mode);
    ox_ctx_reset(ctx);
    cr_assert_leq(fabs(l0 - lf), 1e-5 * l0, "%s: loss %.9g (fp32) vs %.9g (double from the logits)", what, lf, l0);

    double worst = 0;
    for (int d = 0; d < DIRECTIONS; d++) {
        /* a random unit direction with |<grad, u>| >= |grad| / sqrt(P) (32% of them; see the header) */
        double gu = 0;
        for (int tries = 0; tries < 50 && fabs(gu) < gnorm / sqrt((double)P); tries++) {
            double norm = 0;
            for (int64_t i = 0; i < P; i++) {
                u[i] = ox_rng_normal(&rng);
                norm += u[i] * u[i];
            }
            norm = sqrt(norm);
            gu = 0;
            for (int64_t i = 0; i < P; i++) {
                u[i] /= norm;
                gu += (double)grad[i] * u[i];
            }
        }
        cr_assert_geq(fabs(gu), gnorm / sqrt((double)P), "%s: no direction drawn", what);
        set_params(&m, theta, u, +1, plus);
        double lp = loss_double(ctx, &m, rows, B, T, mode);
        ox_ctx_reset(ctx);
        set_params(&m, theta, u, -1, minus);
        double lm = loss_double(ctx, &m, rows, B, T, mode);
        ox_ctx_reset(ctx);
        double fd = (lp - lm) / (2 * EPS), an = 0;
        for (int64_t i = 0; i < P; i++)
            an += (double)grad[i] * ((double)plus[i] - (double)minus[i]);
        an /= 2 * EPS;
        double rel = fabs(fd - an) / fabs(an);
        worst = fmax(worst, rel);
        cr_log_info("%s: P %lld, |grad| %.3g, L %.6f, direction %d: fd %.8g an %.8g rel %.2e", what, (long long)P,
                    gnorm, l0, d, fd, an, rel);
        cr_assert_leq(rel, TOL, "%s: direction %d: finite difference %.8g vs <grad, u> %.8g, rel %.3g > %g", what,
                      d, fd, an, rel, TOL);
    }
    set_params(&m, theta, u, 0, NULL);
    cr_log_info("%s: worst rel %.2e", what, worst);

    ox_tensor_free(rt);
    ox_tensor_free(mode);
    free(rows);
    free(theta);
    free(grad);
    free(plus);
    free(minus);
    free(u);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

static void check_direction_derivative(const char *what, const char *preset, int64_t L, int mixed_map)
{
    check_direction_derivative_s(what, preset, L, mixed_map, 0);
}

Test(oryx_gradcheck, transformer) { check_direction_derivative("transformer", "transformer", 2, 0); }
Test(oryx_gradcheck, gdn) { check_direction_derivative("gdn", "gdn", 2, 0); }
Test(oryx_gradcheck, mamba2) { check_direction_derivative("mamba2", "mamba2", 2, 0); }
Test(oryx_gradcheck, hybrid_gdn) { check_direction_derivative("hybrid-gdn", "hybrid-gdn", 4, 0); }
Test(oryx_gradcheck, hybrid_mamba2) { check_direction_derivative("hybrid-mamba2", "hybrid-mamba2", 4, 0); }
Test(oryx_gradcheck, oryx_gdn_mixed_map) { check_direction_derivative("oryx-gdn, mixed map", "oryx-gdn", 2, 1); }
Test(oryx_gradcheck, oryx_mamba2_mixed_map)
{
    check_direction_derivative("oryx-mamba2, mixed map", "oryx-mamba2", 2, 1);
}
Test(oryx_gradcheck, hybrid_gdn_logit_bias)
{
    check_direction_derivative_s("hybrid-gdn + logit bias", "hybrid-gdn", 4, 0, OX_ORYX_LOGIT_BIAS_SCALE);
}

/* The bias gradient in closed form: loss = (1 / (B T)) sum_{b,t} logsumexp(z_bt) - z_bt[y_bt] with
 * z = head + s * bias, so dL/dbias_v = (s / (B T)) sum_{b,t} (softmax(z_bt)_v - [y_bt = v]), taken here in
 * double from the library's fp32 logits. The library sums B*T fp32 terms of size <= s / (B T) each, so its
 * error is a few ulps of those terms summed: measured 7e-9 * s (the largest entry is 4.4e-2 * s), allowed
 * 1e-7 * s; a bias gradient off by 1% in one entry (4e-4 * s), or missing the factor s, fails. */
Test(oryx_gradcheck, logit_bias_gradient_closed_form)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "hybrid-gdn", 4, &c));
    c.vocab = 32;
    c.d_model = 16;
    c.n_heads = 2;
    c.d_k = c.d_v = 8;
    c.mlp_hidden = 32;
    const double s = OX_ORYX_LOGIT_BIAS_SCALE;
    c.logit_bias_scale = s;
    ox_oryx_model m;
    assert_ok(ctx, ox_oryx_model_init(ctx, &m, &c, &rng));
    randomize(ctx, &m, &rng);
    const int64_t B = 2, T = seq_len(), V = c.vocab;
    ox_tensor *rows = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T + 1));
    cr_assert_not_null(rows, "%s", ox_ctx_message(ctx));
    for (int64_t i = 0; i < B * (T + 1); i++)
        ox_tensor_i32(rows)[i] = (int32_t)ox_rng_below(&rng, (uint64_t)V);
    ox_nn_params_zero_grad(&m.params);
    ox_tensor *logits = NULL;
    ox_tensor *loss = ox_oryx_loss(ctx, &m, rows, NULL, &logits);
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    ox_tensor *zc = ox_tensor_contiguous(ctx, logits);
    cr_assert_not_null(zc, "%s", ox_ctx_message(ctx));
    double *ref = calloc((size_t)V, sizeof *ref);
    cr_assert_not_null(ref);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *zt = ox_tensor_f32(zc) + (b * T + t) * V;
            double mx = zt[0], e = 0;
            for (int64_t v = 1; v < V; v++)
                mx = zt[v] > mx ? zt[v] : mx;
            for (int64_t v = 0; v < V; v++)
                e += exp((double)zt[v] - mx);
            for (int64_t v = 0; v < V; v++)
                ref[v] += s * exp((double)zt[v] - mx) / e / (double)(B * T);
            ref[ox_tensor_i32(rows)[b * (T + 1) + t + 1]] -= s / (double)(B * T);
        }
    const float *g = ox_tensor_f32(m.logit_bias->grad);
    double worst = 0, big = 0;
    for (int64_t v = 0; v < V; v++) {
        worst = fmax(worst, fabs((double)g[v] - ref[v]));
        big = fmax(big, fabs(ref[v]));
    }
    cr_log_info("logit bias gradient: max |lib - closed form| %.3g, max |closed form| %.3g", worst, big);
    cr_assert(big > 1e-2 * s / V, "the closed form is too small (%g) to test anything", big);
    cr_assert_leq(worst, 1e-7 * s, "logit bias gradient: max |lib - closed form| %.3g > %.3g", worst, 1e-7 * s);
    free(ref);
    ox_tensor_free(rows);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}
