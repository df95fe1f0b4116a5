/* test_optim.c - optimizers, schedule and gradient clipping (optim/): AdamW and SGD against plain
 * double-precision references of their formulas, the cosine schedule at its key steps, the global norm,
 * clipping, NaN/Inf detection before anything is touched, no allocation in steady-state steps, bitwise
 * agreement of 1 and 2 threads, and convergence on a small quadratic trained through autograd. */
#include "test_util.h"

#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "tensor/iter.h"

#include <float.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ---- */

static void fill_randn(ox_ctx *ctx, ox_rng *rng, ox_tensor *t, double std)
{
    ox_tensor *src = ox_tensor_randn(ctx, rng, t->ndim, t->shape, 0.0, std);
    cr_assert_not_null(src, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_tensor_copy(ctx, t, src));
}

static ox_tensor *add_param(ox_ctx *ctx, ox_nn_params *ps, const char *name, int ndim, const int64_t *shape,
                            ox_nn_decay decay)
{
    ox_tensor *t = ox_nn_params_add(ctx, ps, name, ndim, shape, decay);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    return t;
}

static float *fdata(const ox_tensor *t) { return ox_tensor_f32(t); }
static int64_t numel(const ox_tensor *t) { return ox_tensor_numel(t); }

/* Copies of every weight and gradient of ps (test-side malloc, not counted by ox_alloc_count). */
typedef struct snapshot {
    int n;
    float *w[8], *g[8];
} snapshot;

static snapshot snap(const ox_nn_params *ps)
{
    snapshot s = { .n = ps->n };
    cr_assert(ps->n <= 8);
    for (int i = 0; i < ps->n; i++) {
        size_t bytes = sizeof(float) * (size_t)numel(ps->items[i].t);
        s.w[i] = malloc(bytes);
        s.g[i] = malloc(bytes);
        memcpy(s.w[i], fdata(ps->items[i].t), bytes);
        memcpy(s.g[i], fdata(ps->items[i].t->grad), bytes);
    }
    return s;
}

static void snap_free(snapshot *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->w[i]);
        free(s->g[i]);
    }
}

/* ---- AdamW: double-precision reference of adamw.h's formula ---- */

typedef struct ref_param {
    int64_t n;
    double w[64], m[64], v[64], wd;
} ref_param;

static void ref_adamw_step(ref_param *r, const float *g, ox_optim_adamw_config c, double lr, int64_t t)
{
    double b1 = c.b1, b2 = c.b2, eps = c.eps;
    for (int64_t i = 0; i < r->n; i++) {
        r->m[i] = b1 * r->m[i] + (1 - b1) * g[i];
        r->v[i] = b2 * r->v[i] + (1 - b2) * (double)g[i] * g[i];
        double mh = r->m[i] / (1 - pow(b1, (double)t)), vh = r->v[i] / (1 - pow(b2, (double)t));
        r->w[i] -= lr * (mh / (sqrt(vh) + eps) + r->wd * r->w[i]);
    }
}

/* Float vs double after a few steps. m and v are two float operations per step on values of size |g|
 * (<= ~4 here): a few ulps of 4, so 8 * FLT_EPSILON * 4 absolute. w is rounded once per step at its own
 * magnitude (half an ulp of |w|) and its update (size <= lr * ~1.1) carries a few ulps from the float
 * moments, bias corrections, sqrt and division: 4 * FLT_EPSILON * (|w| + sum of lr) per comparison
 * covers both with a margin of ~2x. */
static void assert_close_adamw(const ox_tensor *w, const ox_tensor *m, const ox_tensor *v, const ref_param *r,
                               double lr_sum, const char *what)
{
    for (int64_t i = 0; i < r->n; i++) {
        double tw = 4 * FLT_EPSILON * (fabs(r->w[i]) + lr_sum), tm = 32 * FLT_EPSILON;
        cr_assert(fabs(fdata(w)[i] - r->w[i]) <= tw, "%s w[%lld] %.9g vs %.9g", what, (long long)i, fdata(w)[i],
                  r->w[i]);
        cr_assert(fabs(fdata(m)[i] - r->m[i]) <= tm, "%s m[%lld] %.9g vs %.9g", what, (long long)i, fdata(m)[i],
                  r->m[i]);
        cr_assert(fabs(fdata(v)[i] - r->v[i]) <= tm, "%s v[%lld] %.9g vs %.9g", what, (long long)i, fdata(v)[i],
                  r->v[i]);
    }
}

/* Three parameters: a decayed 2-d weight, a 1-d norm weight registered without decay, and a 1-d vector
 * wrongly flagged for decay (never decayed: adamw.h). Three steps with new gradients and lrs each time;
 * optionally starting from a restored step count t0 (checks the bias corrections at t0+1 .. t0+3). */
static void adamw_three_steps(int64_t t0)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    add_param(ctx, &ps, "layers.0.mlp.up_proj.weight", OX_DIMS(3, 5), OX_NN_DECAY);
    add_param(ctx, &ps, "layers.0.norm.weight", OX_DIMS(5), OX_NN_NO_DECAY);
    add_param(ctx, &ps, "layers.0.flagged.bias", OX_DIMS(4), OX_NN_DECAY);
    ox_optim_adamw_config cfg = { .b1 = 0.9f, .b2 = 0.99f, .eps = 1e-8f, .wd = 0.1f };
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &ps, cfg);
    cr_assert_not_null(opt, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_optim_adamw_set_step(ctx, opt, t0));
    ref_param ref[3] = { { .n = 15, .wd = 0.1 }, { .n = 5, .wd = 0 }, { .n = 4, .wd = 0 } };
    for (int i = 0; i < 3; i++) {
        fill_randn(ctx, &rng, ps.items[i].t, 1.0);
        for (int64_t j = 0; j < ref[i].n; j++)
            ref[i].w[j] = fdata(ps.items[i].t)[j];
    }
    const float lrs[3] = { 1e-2f, 5e-3f, 2e-2f };
    double lr_sum = 0;
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 3; i++)
            fill_randn(ctx, &rng, ps.items[i].t->grad, 1.0);
        assert_ok(ctx, ox_optim_adamw_step(ctx, opt, lrs[s]));
        cr_assert_eq(ox_optim_adamw_get_step(opt), t0 + s + 1);
        lr_sum += lrs[s];
        for (int i = 0; i < 3; i++) {
            ref_adamw_step(&ref[i], fdata(ps.items[i].t->grad), cfg, (double)lrs[s], t0 + s + 1);
            assert_close_adamw(ps.items[i].t, ox_optim_adamw_m(opt, i), ox_optim_adamw_v(opt, i), &ref[i], lr_sum,
                               ps.items[i].name);
        }
    }
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(adamw, three_steps_match_double_reference)
{
    adamw_three_steps(0);
}

Test(adamw, restored_step_count_drives_bias_correction)
{
    adamw_three_steps(99);
}

Test(adamw, first_step_is_lr_times_sign)
{
    /* t = 1: m_hat = g and v_hat = g^2 exactly (the bias corrections undo the (1 - b) factors), so with
     * wd = 0 the update is lr * g / (|g| + eps): lr * sign(g) up to eps/|g| (here |g| >= 0.1, eps = 1e-8).
     * Tolerance: half an ulp of |w| for the final rounding plus a few ulps of lr for the ratio. */
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *w = add_param(ctx, &ps, "w", OX_DIMS(6, 7), OX_NN_DECAY);
    fill_randn(ctx, &rng, w, 1.0);
    for (int64_t i = 0; i < numel(w); i++)
        fdata(w->grad)[i] = (float)((i % 2 ? -1 : 1) * (0.1 + 0.37 * (double)i));
    ox_optim_adamw_config cfg = { .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .wd = 0.0f };
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &ps, cfg);
    cr_assert_not_null(opt);
    float *w0 = malloc(sizeof(float) * (size_t)numel(w));
    memcpy(w0, fdata(w), sizeof(float) * (size_t)numel(w));
    const float lr = 1e-3f;
    assert_ok(ctx, ox_optim_adamw_step(ctx, opt, lr));
    for (int64_t i = 0; i < numel(w); i++) {
        double g = fdata(w->grad)[i], ref = w0[i] - (double)lr * g / (fabs(g) + 1e-8);
        cr_assert(fabs(fdata(w)[i] - ref) <= 4 * FLT_EPSILON * (fabs(ref) + lr), "w[%lld] %.9g vs %.9g", (long long)i,
                  fdata(w)[i], ref);
    }
    free(w0);
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(adamw, decay_only_for_flagged_matrices)
{
    /* Zero gradients keep m = v = 0, so the Adam term is 0 / (0 + eps) = 0 and only the decay acts:
     * w_new = w - lr * wd * w for the decayed 2-d parameter (same float expression: within one rounding
     * of the double value), and bitwise unchanged for the others. */
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *a = add_param(ctx, &ps, "a.weight", OX_DIMS(4, 4), OX_NN_DECAY);
    ox_tensor *b = add_param(ctx, &ps, "b.weight", OX_DIMS(4, 4), OX_NN_NO_DECAY);
    ox_tensor *c = add_param(ctx, &ps, "c.bias", OX_DIMS(9), OX_NN_DECAY);
    for (int i = 0; i < 3; i++)
        fill_randn(ctx, &rng, ps.items[i].t, 1.0);
    snapshot s = snap(&ps);
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &ps, (ox_optim_adamw_config){ 0.9f, 0.95f, 1e-8f, 0.5f });
    cr_assert_not_null(opt);
    assert_ok(ctx, ox_optim_adamw_step(ctx, opt, 0.1f));
    for (int i = 0; i < 16; i++) {
        double ref = s.w[0][i] - 0.1 * 0.5 * s.w[0][i];
        cr_assert(fabs(fdata(a)[i] - ref) <= 2 * FLT_EPSILON * fabs(ref), "%.9g vs %.9g", fdata(a)[i], ref);
    }
    cr_assert(memcmp(fdata(b), s.w[1], 16 * sizeof(float)) == 0, "NO_DECAY matrix changed");
    cr_assert(memcmp(fdata(c), s.w[2], 9 * sizeof(float)) == 0, "1-d parameter flagged DECAY was decayed");
    snap_free(&s);
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(adamw, state_by_name_and_checkpoint_restore)
{
    /* Optimizer A takes two steps; B, over a second list with the same names and weights, receives A's
     * moments (found by their checkpoint names) and step count. Both then take the same step: every
     * weight and moment must agree bitwise. */
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_nn_params pa, pb;
    ox_nn_params_init(&pa);
    ox_nn_params_init(&pb);
    const char *names[2] = { "embed.weight", "norm_f.weight" };
    add_param(ctx, &pa, names[0], OX_DIMS(7, 3), OX_NN_DECAY);
    add_param(ctx, &pa, names[1], OX_DIMS(3), OX_NN_NO_DECAY);
    add_param(ctx, &pb, names[0], OX_DIMS(7, 3), OX_NN_DECAY);
    add_param(ctx, &pb, names[1], OX_DIMS(3), OX_NN_NO_DECAY);
    ox_optim_adamw *a = ox_optim_adamw_new(ctx, &pa, ox_optim_adamw_defaults());
    ox_optim_adamw *b = ox_optim_adamw_new(ctx, &pb, ox_optim_adamw_defaults());
    cr_assert(a && b, "%s", ox_ctx_message(ctx));
    cr_assert_str_eq(ox_optim_adamw_m(a, 0)->name, "optim.m.embed.weight");
    cr_assert_str_eq(ox_optim_adamw_v(a, 1)->name, "optim.v.norm_f.weight");
    cr_assert_eq(ox_optim_adamw_find(a, "optim.v.embed.weight"), ox_optim_adamw_v(a, 0));
    cr_assert_eq(ox_optim_adamw_find(a, "optim.m.norm_f.weight"), ox_optim_adamw_m(a, 1));
    cr_assert_null(ox_optim_adamw_find(a, "optim.m.missing"));
    cr_assert_null(ox_optim_adamw_m(a, 2));
    cr_assert_null(ox_optim_adamw_v(a, -1));
    for (int i = 0; i < 2; i++)
        fill_randn(ctx, &rng, pa.items[i].t, 1.0);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 2; i++)
            fill_randn(ctx, &rng, pa.items[i].t->grad, 1.0);
        assert_ok(ctx, ox_optim_adamw_step(ctx, a, 1e-2f));
    }
    /* "checkpoint": weights, the moments by name, the step count */
    for (int i = 0; i < 2; i++) {
        assert_ok(ctx, ox_tensor_copy(ctx, pb.items[i].t, pa.items[i].t));
        char nm[64];
        snprintf(nm, sizeof nm, "optim.m.%s", names[i]);
        assert_ok(ctx, ox_tensor_copy(ctx, ox_optim_adamw_find(b, nm), ox_optim_adamw_find(a, nm)));
        snprintf(nm, sizeof nm, "optim.v.%s", names[i]);
        assert_ok(ctx, ox_tensor_copy(ctx, ox_optim_adamw_find(b, nm), ox_optim_adamw_find(a, nm)));
    }
    assert_ok(ctx, ox_optim_adamw_set_step(ctx, b, ox_optim_adamw_get_step(a)));
    cr_assert_eq(ox_optim_adamw_get_step(b), 2);
    for (int i = 0; i < 2; i++) {
        fill_randn(ctx, &rng, pa.items[i].t->grad, 1.0);
        assert_ok(ctx, ox_tensor_copy(ctx, pb.items[i].t->grad, pa.items[i].t->grad));
    }
    assert_ok(ctx, ox_optim_adamw_step(ctx, a, 1e-2f));
    assert_ok(ctx, ox_optim_adamw_step(ctx, b, 1e-2f));
    for (int i = 0; i < 2; i++) {
        size_t bytes = sizeof(float) * (size_t)numel(pa.items[i].t);
        cr_assert(memcmp(fdata(pa.items[i].t), fdata(pb.items[i].t), bytes) == 0);
        cr_assert(memcmp(fdata(ox_optim_adamw_m(a, i)), fdata(ox_optim_adamw_m(b, i)), bytes) == 0);
        cr_assert(memcmp(fdata(ox_optim_adamw_v(a, i)), fdata(ox_optim_adamw_v(b, i)), bytes) == 0);
    }
    ox_optim_adamw_free(a);
    ox_optim_adamw_free(b);
    ox_nn_params_free(&pa);
    ox_nn_params_free(&pb);
    ox_ctx_free(ctx);
}

Test(adamw, bad_arguments_are_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *w = add_param(ctx, &ps, "w", OX_DIMS(2, 2), OX_NN_DECAY);
    ox_optim_adamw_config bad = ox_optim_adamw_defaults();
    bad.b2 = 1.0f;
    cr_assert_null(ox_optim_adamw_new(ctx, &ps, bad));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "b2 1"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    bad = ox_optim_adamw_defaults();
    bad.eps = 0;
    cr_assert_null(ox_optim_adamw_new(ctx, &ps, bad));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);

    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &ps, ox_optim_adamw_defaults());
    cr_assert_not_null(opt);
    cr_assert_eq(ox_optim_adamw_step(ctx, opt, NAN), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_optim_adamw_step(ctx, opt, -1e-3f), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_optim_adamw_set_step(ctx, opt, -1), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    /* sticky: with an error set, a step changes nothing and returns that error */
    fdata(w->grad)[0] = 1;
    ox_ctx_fail(ctx, OX_ERR_SHAPE, "earlier failure");
    cr_assert_eq(ox_optim_adamw_step(ctx, opt, 1e-2f), OX_ERR_SHAPE);
    cr_assert_eq(fdata(w)[0], 0.0f);
    cr_assert_eq(ox_optim_adamw_get_step(opt), 0);
    ox_ctx_clear_error(ctx);
    /* a parameter registered after the optimizer was made */
    add_param(ctx, &ps, "late", OX_DIMS(3), OX_NN_NO_DECAY);
    cr_assert_eq(ox_optim_adamw_step(ctx, opt, 1e-2f), OX_ERR_STATE);
    cr_assert(strstr(ox_ctx_message(ctx), "adamw_step"), "%s", ox_ctx_message(ctx));
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* Two identical parameter lists, one stepped on 1 thread and one on 2: bitwise equal. The sizes are odd
 * so that the 2-thread split falls inside a parameter, off any vector boundary. */
static void threads_agree(int use_adamw)
{
    int64_t r = test_small() ? 131 : 517, n1 = test_small() ? 30011 : 100003;
    ox_ctx *c1 = test_ctx(), *c2 = test_ctx();
    ox_ctx_set_threads(c1, 1);
    ox_ctx_set_threads(c2, 2);
    cr_assert_eq(ox_ctx_threads(c2), 2);
    ox_nn_params p1, p2;
    ox_nn_params_init(&p1);
    ox_nn_params_init(&p2);
    ox_nn_params *pp[2] = { &p1, &p2 };
    ox_ctx *cc[2] = { c1, c2 };
    for (int k = 0; k < 2; k++) {
        add_param(cc[k], pp[k], "big.weight", OX_DIMS(r, 389), OX_NN_DECAY);
        add_param(cc[k], pp[k], "vec", OX_DIMS(n1), OX_NN_NO_DECAY);
    }
    cr_assert_gt(ox_nn_params_numel(&p1), 2 * OX_PARALLEL_MIN);
    ox_rng rng = ox_rng_seed(6);
    for (int i = 0; i < 2; i++) {
        fill_randn(c1, &rng, p1.items[i].t, 1.0);
        assert_ok(c1, ox_tensor_copy(c1, p2.items[i].t, p1.items[i].t));
    }
    ox_optim_adamw *a[2] = { NULL, NULL };
    ox_optim_sgd *s[2] = { NULL, NULL };
    for (int k = 0; k < 2; k++) {
        if (use_adamw)
            a[k] = ox_optim_adamw_new(cc[k], pp[k], ox_optim_adamw_defaults());
        else
            s[k] = ox_optim_sgd_new(cc[k], pp[k],
                                    (ox_optim_sgd_config){ .momentum = 0.9f, .wd = 0.01f, .nesterov = 1 });
        cr_assert(a[k] || s[k]);
    }
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 2; i++) {
            fill_randn(c1, &rng, p1.items[i].t->grad, 1.0);
            assert_ok(c1, ox_tensor_copy(c1, p2.items[i].t->grad, p1.items[i].t->grad));
        }
        double n[2];
        for (int k = 0; k < 2; k++) {
            assert_ok(cc[k], ox_optim_clip_grad_norm(cc[k], pp[k], 300.0, &n[k]));
            if (use_adamw)
                assert_ok(cc[k], ox_optim_adamw_step(cc[k], a[k], 1e-3f));
            else
                assert_ok(cc[k], ox_optim_sgd_step(cc[k], s[k], 1e-3f));
        }
        cr_assert(memcmp(&n[0], &n[1], sizeof(double)) == 0, "norms %.17g vs %.17g", n[0], n[1]);
    }
    for (int i = 0; i < 2; i++) {
        size_t bytes = sizeof(float) * (size_t)numel(p1.items[i].t);
        cr_assert(memcmp(fdata(p1.items[i].t), fdata(p2.items[i].t), bytes) == 0, "weights of %d differ", i);
        cr_assert(memcmp(fdata(p1.items[i].t->grad), fdata(p2.items[i].t->grad), bytes) == 0, "clipped grads");
        const ox_tensor *x1 = use_adamw ? ox_optim_adamw_m(a[0], i) : ox_optim_sgd_buf(s[0], i);
        const ox_tensor *x2 = use_adamw ? ox_optim_adamw_m(a[1], i) : ox_optim_sgd_buf(s[1], i);
        cr_assert(memcmp(fdata(x1), fdata(x2), bytes) == 0, "state of %d differs", i);
        if (use_adamw)
            cr_assert(memcmp(fdata(ox_optim_adamw_v(a[0], i)), fdata(ox_optim_adamw_v(a[1], i)), bytes) == 0);
    }
    for (int k = 0; k < 2; k++) {
        ox_optim_adamw_free(a[k]);
        ox_optim_sgd_free(s[k]);
        ox_nn_params_free(pp[k]);
        ox_ctx_free(cc[k]);
    }
}

Test(adamw, one_and_two_threads_bitwise_equal)
{
    threads_agree(1);
}

/* Trainer-shaped loop (clip, step, zero_grad) after init: ox_alloc_count must stay flat over 5 steps. */
static void no_alloc_in_steps(int use_adamw)
{
    ox_ctx *ctx = test_ctx();
    ox_ctx_set_threads(ctx, 2);
    ox_rng rng = ox_rng_seed(7);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    add_param(ctx, &ps, "w", OX_DIMS(300, 200), OX_NN_DECAY);
    add_param(ctx, &ps, "g", OX_DIMS(200), OX_NN_NO_DECAY);
    ox_optim_adamw *a = use_adamw ? ox_optim_adamw_new(ctx, &ps, ox_optim_adamw_defaults()) : NULL;
    ox_optim_sgd *s = use_adamw ? NULL : ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 0.9f });
    cr_assert(a || s);
    for (int i = 0; i < 2; i++)
        fill_randn(ctx, &rng, ps.items[i].t->grad, 1.0);
    uint64_t before = ox_alloc_count();
    for (int step = 0; step < 5; step++) {
        double norm;
        assert_ok(ctx, ox_optim_grad_scale(ctx, &ps, 0.5f));
        assert_ok(ctx, ox_optim_clip_grad_norm(ctx, &ps, 1.0, &norm));
        float lr = (float)ox_optim_lr_cosine(step, 2, 5, 1e-2, 1e-3);
        assert_ok(ctx, use_adamw ? ox_optim_adamw_step(ctx, a, lr) : ox_optim_sgd_step(ctx, s, lr));
    }
    cr_assert_eq(ox_alloc_count(), before, "%llu allocations during 5 steps",
                 (unsigned long long)(ox_alloc_count() - before));
    ox_optim_adamw_free(a);
    ox_optim_sgd_free(s);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(adamw, no_allocation_in_steps)
{
    no_alloc_in_steps(1);
}

/* Minimises 0.5 * sum(a * (w - c)^2) over a decayed matrix and an undecayed vector, the gradient coming
 * from autograd (backward into the parameters' grads), with a cosine schedule. Returns
 * final loss / initial loss. */
static double train_quadratic(int use_adamw)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(8);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *w = add_param(ctx, &ps, "q.weight", OX_DIMS(8, 16), OX_NN_DECAY);
    ox_tensor *u = add_param(ctx, &ps, "q.norm", OX_DIMS(16), OX_NN_NO_DECAY);
    /* targets and curvatures, heap-owned so they survive ox_ctx_reset */
    ox_tensor *cw = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(8, 16));
    ox_tensor *aw = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(8, 16));
    ox_tensor *cu = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(16));
    ox_tensor *au = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(16));
    fill_randn(ctx, &rng, cw, 1.0);
    fill_randn(ctx, &rng, cu, 1.0);
    assert_ok(ctx, ox_tensor_copy(ctx, aw, ox_tensor_rand(ctx, &rng, OX_DIMS(8, 16), 0.5, 2.0)));
    assert_ok(ctx, ox_tensor_copy(ctx, au, ox_tensor_rand(ctx, &rng, OX_DIMS(16), 0.5, 2.0)));
    /* wd = 0: decoupled decay would move the minimum away from c */
    ox_optim_adamw *a = use_adamw ? ox_optim_adamw_new(ctx, &ps, (ox_optim_adamw_config){ 0.9f, 0.99f, 1e-8f, 0 })
                                  : NULL;
    ox_optim_sgd *s = use_adamw ? NULL : ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 0.9f });
    cr_assert(a || s);
    const int steps = 300;
    double first = 0, last = 0;
    for (int step = 0; step < steps; step++) {
        ox_nn_params_zero_grad(&ps);
        /* per-element losses 0.5 a (w - c)^2 in one [8, 16] tensor, the vector's losses spread over the 8
         * rows with weight 1/8; backpropagated with a seed of ones = the gradient of the total loss */
        ox_tensor *lw = ox_ag_scale(ctx, ox_ag_mul(ctx, aw, ox_ag_square(ctx, ox_ag_sub(ctx, w, cw))), 0.5);
        ox_tensor *lu = ox_ag_scale(ctx, ox_ag_mul(ctx, au, ox_ag_square(ctx, ox_ag_sub(ctx, u, cu))), 0.5 / 8);
        ox_tensor *l = ox_ag_add(ctx, lw, lu);
        cr_assert_not_null(l, "%s", ox_ctx_message(ctx));
        last = 0;
        for (int64_t i = 0; i < numel(l); i++)
            last += fdata(l)[i];
        if (step == 0)
            first = last;
        assert_ok(ctx, ox_ag_backward_seeded(ctx, l, ox_tensor_ones(ctx, OX_F32, OX_DIMS(8, 16))));
        assert_ok(ctx, ox_optim_clip_grad_norm(ctx, &ps, 100.0, NULL));
        if (use_adamw)
            assert_ok(ctx, ox_optim_adamw_step(ctx, a, (float)ox_optim_lr_cosine(step, 10, steps, 0.1, 0.0)));
        else
            assert_ok(ctx, ox_optim_sgd_step(ctx, s, (float)ox_optim_lr_cosine(step, 10, steps, 0.1, 0.0)));
        ox_ctx_reset(ctx);
    }
    ox_optim_adamw_free(a);
    ox_optim_sgd_free(s);
    ox_tensor_free(cw);
    ox_tensor_free(cu);
    ox_tensor_free(aw);
    ox_tensor_free(au);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
    cr_assert_gt(first, 10.0, "the start is far from the minimum: %g", first);
    return last / first;
}

Test(adamw, quadratic_converges)
{
    double ratio = train_quadratic(1);
    cr_assert_lt(ratio, 1e-2, "loss only fell to %g of its start", ratio);
}

/* ---- SGD ---- */

typedef struct ref_sgd {
    int64_t n;
    double w[64], buf[64], wd;
} ref_sgd;

static void ref_sgd_step(ref_sgd *r, const float *g, double mu, int nesterov, double lr)
{
    for (int64_t i = 0; i < r->n; i++) {
        double d = g[i] + r->wd * r->w[i];
        r->buf[i] = mu * r->buf[i] + d;
        r->w[i] -= lr * (nesterov ? d + mu * r->buf[i] : r->buf[i]);
    }
}

static void sgd_three_steps(int nesterov)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(nesterov ? 21 : 22);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    add_param(ctx, &ps, "mlp.down_proj.weight", OX_DIMS(4, 6), OX_NN_DECAY);
    add_param(ctx, &ps, "norm.weight", OX_DIMS(6), OX_NN_NO_DECAY);
    add_param(ctx, &ps, "flagged.bias", OX_DIMS(5), OX_NN_DECAY);
    ox_optim_sgd_config cfg = { .momentum = 0.9f, .wd = 0.05f, .nesterov = nesterov };
    ox_optim_sgd *opt = ox_optim_sgd_new(ctx, &ps, cfg);
    cr_assert_not_null(opt, "%s", ox_ctx_message(ctx));
    cr_assert_str_eq(ox_optim_sgd_buf(opt, 1)->name, "optim.buf.norm.weight");
    cr_assert_eq(ox_optim_sgd_find(opt, "optim.buf.flagged.bias"), ox_optim_sgd_buf(opt, 2));
    ref_sgd ref[3] = { { .n = 24, .wd = cfg.wd }, { .n = 6, .wd = 0 }, { .n = 5, .wd = 0 } };
    for (int i = 0; i < 3; i++) {
        fill_randn(ctx, &rng, ps.items[i].t, 1.0);
        for (int64_t j = 0; j < ref[i].n; j++)
            ref[i].w[j] = fdata(ps.items[i].t)[j];
    }
    const float lrs[3] = { 0.1f, 0.05f, 0.02f };
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 3; i++)
            fill_randn(ctx, &rng, ps.items[i].t->grad, 1.0);
        assert_ok(ctx, ox_optim_sgd_step(ctx, opt, lrs[s]));
        cr_assert_eq(ox_optim_sgd_get_step(opt), s + 1);
        for (int i = 0; i < 3; i++) {
            ref_sgd_step(&ref[i], fdata(ps.items[i].t->grad), cfg.momentum, nesterov, lrs[s]);
            /* buf: sums of <= 3 terms of size <= ~5 (|g| up to ~4 plus decay), a few ulps each:
             * 16 * FLT_EPSILON * 5. w: its own rounding per step plus a few ulps of the update
             * (lr * |buf| <= ~1): 4 * FLT_EPSILON * (|w| + 1) with margin. */
            for (int64_t j = 0; j < ref[i].n; j++) {
                float wj = fdata(ps.items[i].t)[j], bj = fdata(ox_optim_sgd_buf(opt, i))[j];
                cr_assert(fabs(bj - ref[i].buf[j]) <= 80 * FLT_EPSILON, "%s buf[%lld] %.9g vs %.9g",
                          ps.items[i].name, (long long)j, bj, ref[i].buf[j]);
                cr_assert(fabs(wj - ref[i].w[j]) <= 4 * FLT_EPSILON * (fabs(ref[i].w[j]) + 1),
                          "%s w[%lld] %.9g vs %.9g", ps.items[i].name, (long long)j, wj, ref[i].w[j]);
            }
        }
    }
    ox_optim_sgd_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(sgd, momentum_matches_double_reference)
{
    sgd_three_steps(0);
}

Test(sgd, nesterov_matches_double_reference)
{
    sgd_three_steps(1);
}

Test(sgd, plain_sgd_is_w_minus_lr_g)
{
    /* momentum 0, wd 0: w_new = w - lr * g, one float multiply and subtract: bitwise equal to the same
     * float expression. */
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(23);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *w = add_param(ctx, &ps, "w", OX_DIMS(5, 5), OX_NN_DECAY);
    fill_randn(ctx, &rng, w, 1.0);
    fill_randn(ctx, &rng, w->grad, 1.0);
    snapshot s = snap(&ps);
    ox_optim_sgd *opt = ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ 0 });
    cr_assert_not_null(opt);
    assert_ok(ctx, ox_optim_sgd_step(ctx, opt, 0.25f));
    for (int i = 0; i < 25; i++) {
        float ref = s.w[0][i] - 0.25f * s.g[0][i];
        cr_assert(fdata(w)[i] == ref, "%.9g vs %.9g", fdata(w)[i], ref);
    }
    snap_free(&s);
    ox_optim_sgd_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(sgd, bad_arguments_are_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    add_param(ctx, &ps, "w", OX_DIMS(2, 2), OX_NN_DECAY);
    cr_assert_null(ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 0, .nesterov = 1 }));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 1.5f }));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    ox_optim_sgd *opt = ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 0.5f });
    cr_assert_not_null(opt);
    cr_assert_eq(ox_optim_sgd_step(ctx, opt, INFINITY), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_optim_sgd_set_step(ctx, opt, -3), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, ox_optim_sgd_set_step(ctx, opt, 41));
    cr_assert_eq(ox_optim_sgd_get_step(opt), 41);
    ox_optim_sgd_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(sgd, one_and_two_threads_bitwise_equal)
{
    threads_agree(0);
}

Test(sgd, no_allocation_in_steps)
{
    no_alloc_in_steps(0);
}

Test(sgd, quadratic_converges)
{
    double ratio = train_quadratic(0);
    cr_assert_lt(ratio, 1e-2, "loss only fell to %g of its start", ratio);
}

/* ---- schedule ---- */

Test(schedule, cosine_at_key_steps)
{
    /* Expected values written from the definition (schedule.h); the only rounding is that of cos and a
     * few double operations, so 1e-15 relative (a few double ulps) is the tolerance. */
    const double mx = 3e-3, mn = 3e-4;
    const int64_t wu = 100, tot = 1100;
#define LR(s) ox_optim_lr_cosine((s), wu, tot, mx, mn)
#define NEAR(a, b) cr_assert(fabs((a) - (b)) <= 1e-15 * fabs(b) + 1e-300, "%.17g vs %.17g", (a), (b))
    cr_assert_eq(LR(0), 0.0);
    NEAR(LR(1), mx / 100);
    NEAR(LR(wu - 1), mx * 99 / 100);
    NEAR(LR(wu), mx);
    NEAR(LR(wu + 250), mn + (mx - mn) * (1 + cos(M_PI / 4)) / 2);
    NEAR(LR((wu + tot) / 2), (mx + mn) / 2);
    NEAR(LR(wu + 750), mn + (mx - mn) * (1 + cos(3 * M_PI / 4)) / 2);
    NEAR(LR(tot - 1), mn + (mx - mn) * (1 + cos(M_PI * 999 / 1000)) / 2);
    cr_assert_eq(LR(tot), mn);
    cr_assert_eq(LR(tot + 1), mn);
    cr_assert_eq(LR(10 * tot), mn);
    cr_assert_eq(LR(-5), 0.0);
    /* rises through the warmup, falls after it, never leaves [min(0, mn), mx] */
    for (int64_t s = 1; s <= tot + 10; s++) {
        if (s <= wu)
            cr_assert_gt(LR(s), LR(s - 1));
        else if (s <= tot)
            cr_assert_lt(LR(s), LR(s - 1), "step %lld", (long long)s);
        cr_assert(LR(s) <= mx && LR(s) >= 0);
    }
#undef LR
#undef NEAR
}

Test(schedule, edge_cases)
{
    /* no warmup: starts at lr_max */
    cr_assert_eq(ox_optim_lr_cosine(0, 0, 10, 1.0, 0.1), 1.0);
    cr_assert(fabs(ox_optim_lr_cosine(5, 0, 10, 1.0, 0.1) - 0.55) <= 1e-15);
    /* total <= warmup: lr_min right after the warmup */
    cr_assert(fabs(ox_optim_lr_cosine(4, 8, 8, 1.0, 0.1) - 0.5) <= 1e-15);
    cr_assert_eq(ox_optim_lr_cosine(8, 8, 8, 1.0, 0.1), 0.1);
    cr_assert_eq(ox_optim_lr_cosine(9, 8, 4, 1.0, 0.1), 0.1);
}

/* ---- clip: norm, clipping, scaling, finiteness ---- */

/* Three gradients of different sizes (one spanning several 16384-element chunks), filled with normals. */
static void clip_params(ox_ctx *ctx, ox_nn_params *ps, double std)
{
    ox_rng rng = ox_rng_seed(31);
    ox_nn_params_init(ps);
    add_param(ctx, ps, "layers.0.mlp.up_proj.weight", OX_DIMS(test_small() ? 40 : 211, 157), OX_NN_DECAY);
    add_param(ctx, ps, "layers.0.norm.weight", OX_DIMS(157), OX_NN_NO_DECAY);
    add_param(ctx, ps, "embed.weight", OX_DIMS(33, 17), OX_NN_DECAY);
    for (int i = 0; i < ps->n; i++) {
        fill_randn(ctx, &rng, ps->items[i].t, 1.0);
        fill_randn(ctx, &rng, ps->items[i].t->grad, std);
    }
}

static double ref_norm(const ox_nn_params *ps)
{
    double s = 0;
    for (int i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < numel(ps->items[i].t); j++) {
            double g = fdata(ps->items[i].t->grad)[j];
            s += g * g;
        }
    return sqrt(s);
}

Test(clip, norm_matches_double_reference)
{
    /* Both sums are in double over < 40k positive terms, only the order differs: the worst-case bound
     * of n * 2^-53 is ~4e-12 relative, so 1e-11. */
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    clip_params(ctx, &ps, 0.1);
    double norm = -1, ref = ref_norm(&ps);
    assert_ok(ctx, ox_optim_grad_norm(ctx, &ps, &norm));
    cr_assert(fabs(norm - ref) <= 1e-11 * ref, "%.17g vs %.17g", norm, ref);
    assert_ok(ctx, ox_optim_grad_check_finite(ctx, &ps));
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(clip, clips_to_max_norm)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    clip_params(ctx, &ps, 0.1);
    double ref = ref_norm(&ps), norm = 0;
    cr_assert_gt(ref, 5.0);
    snapshot s = snap(&ps);
    assert_ok(ctx, ox_optim_clip_grad_norm(ctx, &ps, 1.0, &norm));
    cr_assert(fabs(norm - ref) <= 1e-11 * ref, "returns the norm before clipping: %.17g vs %.17g", norm, ref);
    /* every element scaled by the one float factor max / (norm + 1e-6): bitwise the same product */
    float f = (float)(1.0 / (norm + 1e-6));
    for (int i = 0; i < ps.n; i++)
        for (int64_t j = 0; j < numel(ps.items[i].t); j++)
            cr_assert(fdata(ps.items[i].t->grad)[j] == s.g[i][j] * f);
    /* new norm: max * norm / (norm + 1e-6) (relative 1e-6 / norm < 2e-7) plus the float rounding of the
     * factor and of each product (~1e-7): within 1e-6 relative of max_norm */
    double after = ref_norm(&ps);
    cr_assert(fabs(after - 1.0) <= 1e-6, "clipped norm %.9g", after);
    /* weights untouched */
    for (int i = 0; i < ps.n; i++)
        cr_assert(memcmp(fdata(ps.items[i].t), s.w[i], sizeof(float) * (size_t)numel(ps.items[i].t)) == 0);
    snap_free(&s);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(clip, no_op_below_max_norm)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    clip_params(ctx, &ps, 0.01);
    double ref = ref_norm(&ps), norm = 0;
    snapshot s = snap(&ps);
    assert_ok(ctx, ox_optim_clip_grad_norm(ctx, &ps, 2 * ref, &norm));
    cr_assert(fabs(norm - ref) <= 1e-11 * ref);
    for (int i = 0; i < ps.n; i++)
        cr_assert(memcmp(fdata(ps.items[i].t->grad), s.g[i], sizeof(float) * (size_t)numel(ps.items[i].t)) == 0);
    snap_free(&s);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(clip, scale_divides_accumulated_gradients)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    clip_params(ctx, &ps, 1.0);
    snapshot s = snap(&ps);
    assert_ok(ctx, ox_optim_grad_scale(ctx, &ps, 1.0f / 3));
    for (int i = 0; i < ps.n; i++)
        for (int64_t j = 0; j < numel(ps.items[i].t); j++)
            cr_assert(fdata(ps.items[i].t->grad)[j] == s.g[i][j] * (1.0f / 3));
    cr_assert_eq(ox_optim_grad_scale(ctx, &ps, NAN), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_optim_clip_grad_norm(ctx, &ps, 0.0, NULL), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    snap_free(&s);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* A NaN (or Inf) in one gradient: norm, check and clip fail with OX_ERR_NUMERIC naming that parameter,
 * and the trainer's sequence (clip, then step only if it succeeded) leaves weights, gradients and the
 * AdamW moments bitwise unchanged. */
static void nonfinite_case(float bad, int where, const char *name)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    clip_params(ctx, &ps, 0.1);
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &ps, ox_optim_adamw_defaults());
    cr_assert_not_null(opt);
    assert_ok(ctx, ox_optim_adamw_step(ctx, opt, 1e-2f));   /* non-zero moments */
    fdata(ps.items[where].t->grad)[37] = bad;
    if (where == 2)   /* a later parameter is bad too: the message names the first */
        fdata(ps.items[0].t->grad)[numel(ps.items[0].t) - 1] = -INFINITY, name = ps.items[0].name;
    snapshot s = snap(&ps);
    float *m[3], *v[3];
    for (int i = 0; i < 3; i++) {
        size_t bytes = sizeof(float) * (size_t)numel(ps.items[i].t);
        m[i] = malloc(bytes);
        v[i] = malloc(bytes);
        memcpy(m[i], fdata(ox_optim_adamw_m(opt, i)), bytes);
        memcpy(v[i], fdata(ox_optim_adamw_v(opt, i)), bytes);
    }
    double norm = 0;
    cr_assert_eq(ox_optim_grad_norm(ctx, &ps, &norm), OX_ERR_NUMERIC);
    cr_assert(!isfinite(norm));
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_optim_grad_check_finite(ctx, &ps), OX_ERR_NUMERIC);
    ox_ctx_clear_error(ctx);
    ox_status st = ox_optim_clip_grad_norm(ctx, &ps, 1e-3, &norm);
    if (st == OX_OK)
        ox_optim_adamw_step(ctx, opt, 1e-2f);
    cr_assert_eq(st, OX_ERR_NUMERIC);
    char quoted[80];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    cr_assert(strstr(ox_ctx_message(ctx), quoted), "message names %s: %s", quoted, ox_ctx_message(ctx));
    cr_assert_eq(ox_optim_adamw_get_step(opt), 1);
    for (int i = 0; i < 3; i++) {
        size_t bytes = sizeof(float) * (size_t)numel(ps.items[i].t);
        cr_assert(memcmp(fdata(ps.items[i].t), s.w[i], bytes) == 0, "weights of %s changed", ps.items[i].name);
        cr_assert(memcmp(fdata(ps.items[i].t->grad), s.g[i], bytes) == 0, "gradient changed");
        cr_assert(memcmp(fdata(ox_optim_adamw_m(opt, i)), m[i], bytes) == 0, "m changed");
        cr_assert(memcmp(fdata(ox_optim_adamw_v(opt, i)), v[i], bytes) == 0, "v changed");
        free(m[i]);
        free(v[i]);
    }
    snap_free(&s);
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(clip, nan_is_numeric_error_before_any_change)
{
    nonfinite_case(NAN, 1, "layers.0.norm.weight");
}

Test(clip, inf_names_first_offending_parameter)
{
    nonfinite_case(INFINITY, 2, NULL);
}

Test(clip, missing_gradient_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_tensor *w = add_param(ctx, &ps, "w", OX_DIMS(3), OX_NN_NO_DECAY);
    ox_tensor *g = w->grad;
    w->grad = NULL;
    cr_assert_eq(ox_optim_grad_norm(ctx, &ps, NULL), OX_ERR_STATE);
    cr_assert(strstr(ox_ctx_message(ctx), "'w'"), "%s", ox_ctx_message(ctx));
    w->grad = g;
    ox_ctx_clear_error(ctx);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(clip, many_tensors_cross_chunk_batches)
{
    /* 300 small gradients and two spanning several 16384-element chunks: more chunks than one batch of
     * clip.c (256), so the sum is carried across batches. The norm matches the double reference
     * (tolerance as in norm_matches_double_reference), is bitwise the same on 1 and 2 threads, and a NaN
     * in a tensor of the second batch is reported under that tensor's name. */
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(41);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    for (int i = 0; i < 302; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d", i);
        int64_t n = i == 7 || i == 150 ? 40000 + i : 1 + (i * 37) % 61;
        ox_tensor *t = add_param(ctx, &ps, name, OX_DIMS(n), OX_NN_NO_DECAY);
        fill_randn(ctx, &rng, t->grad, 0.5);
    }
    double ref = ref_norm(&ps), n1 = 0, n2 = 0;
    assert_ok(ctx, ox_optim_grad_norm(ctx, &ps, &n1));
    cr_assert(fabs(n1 - ref) <= 1e-11 * ref, "%.17g vs %.17g", n1, ref);
    ox_ctx_set_threads(ctx, 2);
    assert_ok(ctx, ox_optim_grad_norm(ctx, &ps, &n2));
    cr_assert(memcmp(&n1, &n2, sizeof n1) == 0, "%.17g vs %.17g", n1, n2);
    fdata(ps.items[290].t->grad)[3] = NAN;
    cr_assert_eq(ox_optim_grad_check_finite(ctx, &ps), OX_ERR_NUMERIC);
    cr_assert(strstr(ox_ctx_message(ctx), "'p290'"), "%s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "element 3"), "%s", ox_ctx_message(ctx));
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* ---- AdamW parameter groups ---- */

/* Three parameters "emb.weight" [4, 3] (decay), "head.weight" [3, 2] (decay), "norm.gain" [3] (no decay), with
 * random weights and gradients from seed. */
static void group_params(ox_ctx *ctx, ox_nn_params *ps, uint64_t seed)
{
    ox_nn_params_init(ps);
    ox_rng rng = ox_rng_seed(seed);
    ox_tensor *t[3] = { add_param(ctx, ps, "emb.weight", 2, (int64_t[]){ 4, 3 }, OX_NN_DECAY),
                        add_param(ctx, ps, "head.weight", 2, (int64_t[]){ 3, 2 }, OX_NN_DECAY),
                        add_param(ctx, ps, "norm.gain", 1, (int64_t[]){ 3 }, OX_NN_NO_DECAY) };
    for (int i = 0; i < 3; i++) {
        fill_randn(ctx, &rng, t[i], 1.0);
        fill_randn(ctx, &rng, t[i]->grad, 1.0);
    }
}

/* A frozen group (lr_scale 0) does not move; a group's wd applies as given (here to a 1-d parameter, which the
 * rule never decays), matching the double reference; a parameter in no group is bit-identical to an optimizer
 * without groups; the first matching group wins; removing the groups restores the rule; bad groups refused. */
Test(adamw, parameter_groups)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params a, b;
    group_params(ctx, &a, 5);
    group_params(ctx, &b, 5);
    ox_optim_adamw_config c = ox_optim_adamw_defaults();
    ox_optim_adamw *oa = ox_optim_adamw_new(ctx, &a, c), *ob = ox_optim_adamw_new(ctx, &b, c);
    cr_assert(oa && ob, "%s", ox_ctx_message(ctx));
    ox_optim_group g[3] = { { "emb.", 0.0f, 0.1f }, { "norm.", 2.0f, 0.5f }, { "norm.gain", 9.0f, 9.0f } };
    assert_ok(ctx, ox_optim_adamw_set_groups(ctx, oa, g, 3));
    float emb0[12], gain0[3], gg[3];
    memcpy(emb0, fdata(a.items[0].t), sizeof emb0);
    memcpy(gain0, fdata(a.items[2].t), sizeof gain0);
    memcpy(gg, fdata(a.items[2].t->grad), sizeof gg);
    assert_ok(ctx, ox_optim_adamw_step(ctx, oa, 1e-2f));
    assert_ok(ctx, ox_optim_adamw_step(ctx, ob, 1e-2f));
    cr_assert_eq(memcmp(fdata(a.items[0].t), emb0, sizeof emb0), 0, "a frozen group moved");
    cr_assert_eq(memcmp(fdata(a.items[1].t), fdata(b.items[1].t), sizeof(float) * 6), 0,
                 "a parameter in no group differs from the groupless optimizer");
    ref_param r = { .n = 3, .wd = 0.5 };
    for (int j = 0; j < 3; j++) {
        r.w[j] = gain0[j];
        r.m[j] = r.v[j] = 0;
    }
    /* the first matching group: "norm." (lr x2 = (float)1e-2 * 2, wd 0.5) */
    ref_adamw_step(&r, gg, c, (double)(1e-2f * 2.0f), 1);
    assert_close_adamw(a.items[2].t, ox_optim_adamw_m(oa, 2), ox_optim_adamw_v(oa, 2), &r, 2e-2, "norm.gain");
    /* no groups: the rule again, bit-identical to ob from here */
    assert_ok(ctx, ox_optim_adamw_set_groups(ctx, oa, NULL, 0));
    cr_assert_null(oa->lr_scale);
    ox_optim_group bad = { "x", -1.0f, 0.0f };
    cr_assert_eq(ox_optim_adamw_set_groups(ctx, oa, &bad, 1), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    bad = (ox_optim_group){ NULL, 1.0f, 0.0f };
    cr_assert_eq(ox_optim_adamw_set_groups(ctx, oa, &bad, 1), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    ox_optim_adamw_free(oa);
    ox_optim_adamw_free(ob);
    ox_nn_params_free(&a);
    ox_nn_params_free(&b);
    ox_ctx_free(ctx);
}
