/* test_nn_modules.c - the small nn/ modules (MODELS.md 2, 3, 3.1, 3.2): Linear, Embedding, RMSNorm,
 * GatedRMSNorm, ShortConv, SwiGLU, cross entropy. For each: forward against a plain double-precision loop
 * on strided inputs, gradcheck of every input and parameter (non-contiguous views made inside the
 * checked function), shape errors, and the module's parameter names and initialisation.
 *
 * Forward tolerances: every op here is a short fp32 computation (dot products of <= 64 terms, a few
 * multiplies, one exp) on inputs of order one. fp32 rounding (6e-8 per operation) accumulates to at most
 * ~K * 6e-8 ~ 4e-6 relative for K = 64 terms, typically 1e-7; we accept rel <= 1e-5 (MODELS.md section 1
 * metric). A wrong term (wrong tap, missing eps, wrong head) gives rel ~ 1e-1 or worse.
 * Gradchecks use the fp32 defaults of MODELS.md section 11 item 9 (eps 1e-3, rtol 1e-2, atol 1e-3, see
 * gradcheck.h), with inputs and weights of order one so the gradients are of order one. */
#include "test_util.h"

#include <string.h>

#include "nn/cross_entropy.h"
#include "nn/embedding.h"
#include "nn/gated_rmsnorm.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "nn/shortconv.h"
#include "nn/swiglu.h"
#include "nn/util.h"

/* ---- helpers ---------------------------------------------------------------------------------------- */

static double at(const ox_tensor *t, const int64_t *ix)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++)
        off += ix[d] * t->stride[d];
    return ox_tensor_f32(t)[off];
}
#define AT2(t, i, j) at((t), (const int64_t[]){ (i), (j) })
#define AT3(t, i, j, k) at((t), (const int64_t[]){ (i), (j), (k) })

/* rel(got, ref) of MODELS.md section 1 against a double reference. */
static double rel_d(const float *got, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        num = (d > num || d != d) ? (d != d ? INFINITY : d) : num;
        den = fabs(ref[i]) > den ? fabs(ref[i]) : den;
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

static ox_tensor *randn(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = ox_tensor_randn(ctx, rng, ndim, shape, mean, std);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    return t;
}

static ox_tensor *leaf(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = randn(ctx, rng, ndim, shape, mean, std);
    assert_ok(ctx, ox_tensor_require_grad(ctx, t));
    return t;
}

static ox_tensor *ids(ox_ctx *ctx, int ndim, const int64_t *shape, const int32_t *v)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, ndim, shape);
    cr_assert_not_null(t);
    memcpy(ox_tensor_i32(t), v, sizeof(int32_t) * (size_t)ox_tensor_numel(t));
    return t;
}

static void expect_error(ox_ctx *ctx, ox_tensor *result, ox_status want, const char *s1, const char *s2)
{
    cr_assert_null(result);
    cr_assert_eq(ox_ctx_status(ctx), want, "status %d: %s", ox_ctx_status(ctx), ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), s1) && (!s2 || strstr(ox_ctx_message(ctx), s2)),
              "message should name %s%s%s: %s", s1, s2 ? " and " : "", s2 ? s2 : "", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
}

/* mean and standard deviation of all elements, in double */
static void moments(const ox_tensor *t, double *mean, double *std)
{
    int64_t n = ox_tensor_numel(t);
    const float *p = ox_tensor_f32(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += p[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        s2 += (p[i] - *mean) * (p[i] - *mean);
    *std = sqrt(s2 / (double)(n - 1));
}

/* A normal(0, std) init of n values: the sample mean has standard error std / sqrt(n) and the sample std
 * std / sqrt(2n); we accept 4 standard errors (a false failure has probability ~6e-5 per check, and the
 * seed is fixed, so the test is deterministic). */
static void expect_normal_init(const ox_tensor *t, double std)
{
    double m, s, n = (double)ox_tensor_numel(t);
    moments(t, &m, &s);
    cr_assert(fabs(m) <= 4 * std / sqrt(n), "%s: mean %g, expected 0 +- %g", t->name, m, 4 * std / sqrt(n));
    cr_assert(fabs(s - std) <= 4 * std / sqrt(2 * n), "%s: std %g, expected %g +- %g", t->name, s, std,
              4 * std / sqrt(2 * n));
}

static double silu_d(double z) { return z / (1 + exp(-z)); }

/* ==== Linear ============================================================================================ */

/* y[r, o] = sum_i x[r, i] w[o, i] for a 2-D (possibly strided) x */
static void ref_linear(const ox_tensor *x2, const ox_tensor *w, double *y)
{
    int64_t R = x2->shape[0], I = x2->shape[1], O = w->shape[0];
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) {
            double s = 0;
            for (int64_t i = 0; i < I; i++)
                s += AT2(x2, r, i) * AT2(w, o, i);
            y[r * O + o] = s;
        }
}

Test(nn_linear, forward_3d_equals_2d_product_and_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(3, 5, 24), 0, 1);
    ox_tensor *w = randn(ctx, &rng, OX_DIMS(17, 24), 0, 1);
    ox_tensor *y = ox_nn_linear(ctx, x, w);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 3 && y->shape[0] == 3 && y->shape[1] == 5 && y->shape[2] == 17);
    ox_tensor *x2 = ox_tensor_view_reshape(ctx, x, OX_DIMS(15, 24));
    ox_tensor *y2 = ox_nn_linear(ctx, x2, w);
    cr_assert_not_null(y2);
    /* the [B, T, D] input folds to the same single GEMM as the [B*T, D] one: identical bits */
    cr_assert(memcmp(ox_tensor_f32(y), ox_tensor_f32(y2), sizeof(float) * 15 * 17) == 0);
    double ref[15 * 17];
    ref_linear(x2, w, ref);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 15 * 17) <= 1e-5, "rel %g", rel_d(ox_tensor_f32(y), ref, 15 * 17));
    ox_ctx_free(ctx);
}

Test(nn_linear, forward_strided_inputs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    /* x transposed (column stride != 1), w transposed (stored [in, out]) */
    ox_tensor *xs = randn(ctx, &rng, OX_DIMS(9, 6), 0, 1);
    ox_tensor *ws = randn(ctx, &rng, OX_DIMS(9, 4), 0, 1);
    ox_tensor *x = ox_tensor_view_transpose(ctx, xs, 0, 1), *w = ox_tensor_view_transpose(ctx, ws, 0, 1);
    ox_tensor *y = ox_nn_linear(ctx, x, w);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    double ref[6 * 4];
    ref_linear(x, w, ref);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 24) <= 1e-5);
    /* a 3-D x whose leading axes do not fold (permuted): copied, same result as the contiguous copy */
    ox_tensor *xp = randn(ctx, &rng, OX_DIMS(3, 2, 9), 0, 1);
    ox_tensor *xv = ox_tensor_view_permute(ctx, xp, (const int[]){ 1, 0, 2 });      /* [2, 3, 9] */
    ox_tensor *yv = ox_nn_linear(ctx, xv, w);
    cr_assert_not_null(yv, "%s", ox_ctx_message(ctx));
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++)
            for (int o = 0; o < 4; o++) {
                double s = 0;
                for (int i = 0; i < 9; i++)
                    s += AT3(xv, b, t, i) * AT2(w, o, i);
                cr_assert(fabs(AT3(yv, b, t, o) - s) <= 1e-5 * 4, "y[%d,%d,%d] %g vs %g", b, t, o,
                          AT3(yv, b, t, o), s);
            }
    ox_ctx_free(ctx);
}

struct lin_case { int kind; };

static ox_tensor *f_linear(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct lin_case *c = arg;
    switch (c->kind) {
    case 0:     /* x: transpose of [5, 6] (column stride 6); w: transpose of [5, 4] */
        return ox_nn_linear(ctx, ox_ag_transpose(ctx, in[0], 0, 1), ox_ag_transpose(ctx, in[1], 0, 1));
    case 1:     /* x: [2, 3, 7] narrowed to [2, 3, 5] (row stride 7) */
        return ox_nn_linear(ctx, ox_ag_narrow(ctx, in[0], 2, 1, 5), in[1]);
    default:    /* x: [3, 2, 5] permuted to [2, 3, 5] (leading axes do not fold: copy path) */
        return ox_nn_linear(ctx, ox_ag_permute(ctx, in[0], (const int[]){ 1, 0, 2 }), in[1]);
    }
}

Test(nn_linear, gradcheck_x_and_w_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *x0 = leaf(ctx, &rng, OX_DIMS(5, 6), 0, 1), *w0 = leaf(ctx, &rng, OX_DIMS(5, 4), 0, 1);
    assert_gradcheck(ctx, f_linear, &(struct lin_case){ 0 }, 2, ((ox_tensor *[]){ x0, w0 }), &o);
    ox_tensor *x1 = leaf(ctx, &rng, OX_DIMS(2, 3, 7), 0, 1), *w1 = leaf(ctx, &rng, OX_DIMS(4, 5), 0, 1);
    assert_gradcheck(ctx, f_linear, &(struct lin_case){ 1 }, 2, ((ox_tensor *[]){ x1, w1 }), &o);
    ox_tensor *x2 = leaf(ctx, &rng, OX_DIMS(3, 2, 5), 0, 1);
    assert_gradcheck(ctx, f_linear, &(struct lin_case){ 2 }, 2, ((ox_tensor *[]){ x2, w1 }), &o);
    ox_ctx_free(ctx);
}

Test(nn_linear, shape_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 5));
    ox_tensor *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 6));
    expect_error(ctx, ox_nn_linear(ctx, x, w), OX_ERR_SHAPE, "[2, 3, 5]", "[4, 6]");
    ox_tensor *w3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 4, 5));
    expect_error(ctx, ox_nn_linear(ctx, x, w3), OX_ERR_SHAPE, "[1, 4, 5]", NULL);
    /* sticky: with an error recorded, the op returns NULL without a new message */
    ox_ctx_fail(ctx, OX_ERR_ARG, "earlier");
    cr_assert_null(ox_nn_linear(ctx, x, ox_tensor_view_transpose(ctx, w, 0, 1)));
    cr_assert_str_eq(ox_ctx_message(ctx), "earlier");
    ox_ctx_free(ctx);
}

Test(nn_linear, module_name_and_init_statistics)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_linear_t lin;
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &lin, "layers.0.mixer.k_proj", 256, 512, 0.02, &rng));
    cr_assert_str_eq(lin.weight->name, "layers.0.mixer.k_proj.weight");
    cr_assert(lin.weight->shape[0] == 512 && lin.weight->shape[1] == 256);
    cr_assert_eq(ps.items[0].decay, OX_NN_DECAY);
    expect_normal_init(lin.weight, 0.02);
    /* the module applies its weight */
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(2, 256), 0, 1);
    ox_tensor *y = ox_nn_linear_forward(ctx, &lin, x);
    cr_assert_not_null(y);
    double ref[2 * 512];
    ref_linear(x, lin.weight, ref);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 2 * 512) <= 1e-5);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* ==== Embedding ========================================================================================== */

static const int32_t emb_ids[6] = { 0, 2, 2, 5, 0, 1 };     /* repeats on purpose */

Test(nn_embedding, lookup_forward_strided_ids)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_tensor *E = randn(ctx, &rng, OX_DIMS(6, 4), 0, 1);
    ox_tensor *idx = ox_tensor_view_transpose(ctx, ids(ctx, OX_DIMS(3, 2), emb_ids), 0, 1);   /* [2, 3] */
    ox_tensor *h = ox_nn_embedding_lookup(ctx, E, idx);
    cr_assert_not_null(h, "%s", ox_ctx_message(ctx));
    cr_assert(h->ndim == 3 && h->shape[0] == 2 && h->shape[1] == 3 && h->shape[2] == 4);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int d = 0; d < 4; d++)
                cr_assert_eq(AT3(h, i, j, d), AT2(E, emb_ids[j * 2 + i], d));
    /* a transposed table view */
    ox_tensor *Es = randn(ctx, &rng, OX_DIMS(4, 6), 0, 1);
    ox_tensor *ht = ox_nn_embedding_lookup(ctx, ox_tensor_view_transpose(ctx, Es, 0, 1), idx);
    cr_assert_not_null(ht);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int d = 0; d < 4; d++)
                cr_assert_eq(AT3(ht, i, j, d), AT2(Es, d, emb_ids[j * 2 + i]));
    ox_ctx_free(ctx);
}

static ox_tensor *f_lookup(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    return ox_nn_embedding_lookup(ctx, in[0], arg);
}

/* the tied model ends: logits = lookup(E, ids) E^T, E receiving both gradients */
static ox_tensor *f_tied(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    return ox_nn_linear(ctx, ox_nn_embedding_lookup(ctx, in[0], arg), in[0]);
}

Test(nn_embedding, gradcheck_lookup_and_tied_head)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(6);
    ox_tensor *E = leaf(ctx, &rng, OX_DIMS(6, 4), 0, 1);
    ox_tensor *idx = ox_tensor_view_transpose(ctx, ids(ctx, OX_DIMS(3, 2), emb_ids), 0, 1);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    /* row 3 and 4 of E are never picked: their gradient must be exactly 0 (checked by gradcheck as
     * numeric 0 vs analytic), and the max-gradient floor is met by the picked rows */
    assert_gradcheck(ctx, f_lookup, idx, 1, ((ox_tensor *[]){ E }), &o);
    assert_gradcheck(ctx, f_tied, idx, 1, ((ox_tensor *[]){ E }), &o);
    ox_ctx_free(ctx);
}

Test(nn_embedding, out_of_range_id_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *E = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(6, 4));
    ox_tensor *bad = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 1, 6, 2 }));
    expect_error(ctx, ox_nn_embedding_lookup(ctx, E, bad), OX_ERR_ARG, "id 6", "position 1");
    ox_tensor *neg = ids(ctx, OX_DIMS(2), ((const int32_t[]){ -1, 0 }));
    expect_error(ctx, ox_nn_embedding_lookup(ctx, E, neg), OX_ERR_ARG, "id -1", NULL);
    ox_tensor *E3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 6, 4));
    expect_error(ctx, ox_nn_embedding_lookup(ctx, E3, neg), OX_ERR_SHAPE, "[2, 6, 4]", NULL);
    expect_error(ctx, ox_nn_embedding_lookup(ctx, E, E), OX_ERR_DTYPE, "embedding", NULL);
    ox_ctx_free(ctx);
}

Test(nn_embedding, module_name_init_and_tied_logits)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(7);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_embedding_t emb;
    assert_ok(ctx, ox_nn_embedding_init(ctx, &ps, &emb, "embed", 256, 512, 0.02, &rng));
    cr_assert_str_eq(emb.weight->name, "embed.weight");
    cr_assert(emb.weight->shape[0] == 256 && emb.weight->shape[1] == 512);
    expect_normal_init(emb.weight, 0.02);
    ox_tensor *tok = ids(ctx, OX_DIMS(1, 3), ((const int32_t[]){ 7, 255, 7 }));
    ox_tensor *h = ox_nn_embedding_forward(ctx, &emb, tok);
    ox_tensor *z = ox_nn_embedding_logits(ctx, &emb, h);       /* [1, 3, 256] */
    cr_assert_not_null(z, "%s", ox_ctx_message(ctx));
    cr_assert(z->ndim == 3 && z->shape[2] == 256);
    double ref[3 * 256];
    ox_tensor *h2 = ox_tensor_view_reshape(ctx, h, OX_DIMS(3, 512));
    ref_linear(h2, emb.weight, ref);
    cr_assert(rel_d(ox_tensor_f32(z), ref, 3 * 256) <= 1e-5);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

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

/* ==== cross entropy ====================================================================================== */

/* loss and dz (for an incoming gradient of 1) in double, over 2-D (possibly strided) logits */
static double ref_ce(const ox_tensor *z, const int32_t *y, int32_t ignore, double *dz)
{
    int64_t N = z->shape[0], V = z->shape[1], count = 0;
    double total = 0;
    for (int64_t r = 0; r < N; r++)
        count += y[r] != ignore;
    for (int64_t r = 0; r < N; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t v = 0; v < V; v++)
            m = fmax(m, AT2(z, r, v));
        for (int64_t v = 0; v < V; v++)
            s += exp(AT2(z, r, v) - m);
        double lse = m + log(s);
        for (int64_t v = 0; v < V; v++)
            dz[r * V + v] = y[r] == ignore ? 0 : (exp(AT2(z, r, v) - lse) - (v == y[r])) / (double)count;
        if (y[r] != ignore)
            total += lse - AT2(z, r, y[r]);
    }
    return count ? total / (double)count : 0;
}

static const int32_t ce_targets[6] = { 3, -1, 0, 4, 4, -1 };

/* Loss and its gradient against the double reference, for transposed (copy path) and narrowed logits,
 * with ignored targets; then for logits of size 1e3. */
Test(nn_cross_entropy, forward_and_gradient_match_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(20);
    int64_t N = 6, V = 5;
    ox_tensor *y = ids(ctx, OX_DIMS(N), ce_targets);
    for (int c = 0; c < 3; c++) {
        double scale = c == 2 ? 1e3 : 2;
        ox_tensor *leafz = c == 0 ? leaf(ctx, &rng, OX_DIMS(V, N), 0, scale) : leaf(ctx, &rng, OX_DIMS(N, V + 2), 0, scale);
        ox_tensor *z = c == 0 ? ox_ag_transpose(ctx, leafz, 0, 1) : ox_ag_narrow(ctx, leafz, 1, 1, V);
        ox_tensor *loss = ox_nn_cross_entropy(ctx, z, y, -1);
        cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
        cr_assert_eq(loss->ndim, 0);
        double dz[30];
        double ref = ref_ce(z, ce_targets, -1, dz);
        float got = ox_tensor_f32(loss)[0];
        cr_assert(isfinite(got));
        /* loss: a sum of 4 logsumexp terms, each with float error ~6e-8 * |z|: rel 1e-5 */
        cr_assert(fabs(got - ref) <= 1e-5 * fmax(1, fabs(ref)), "case %d: loss %g vs %g", c, got, ref);
        assert_ok(ctx, ox_ag_backward(ctx, loss));
        /* gradient of z (a view): take it from the leaf's gradient through the same view */
        ox_tensor *g = c == 0 ? ox_tensor_view_transpose(ctx, leafz->grad, 0, 1)
                              : ox_tensor_view_narrow(ctx, leafz->grad, 1, 1, V);
        float gd[30];
        for (int64_t r = 0; r < N; r++)
            for (int64_t v = 0; v < V; v++)
                gd[r * V + v] = (float)AT2(g, r, v);
        /* softmax(z) = exp(z - lse): for |z| ~ 1e3 the float difference z - lse carries an absolute error
         * ~ulp(1e3) = 6e-5, so p has relative error ~1e-4 there; 1e-5 (rel) for order-one logits */
        double tol = c == 2 ? 1e-3 : 1e-5;
        cr_assert(rel_d(gd, dz, N * V) <= tol, "case %d: grad rel %g", c, rel_d(gd, dz, N * V));
        for (int64_t r = 0; r < N; r++) {
            double rs = 0;
            for (int64_t v = 0; v < V; v++) {
                cr_assert(isfinite(gd[r * V + v]));
                rs += gd[r * V + v];
                if (ce_targets[r] == -1)
                    cr_assert_eq(gd[r * V + v], 0.0f, "ignored rows get no gradient");
            }
            cr_assert(fabs(rs) <= 1e-6, "each row's gradient sums to 0, got %g", rs);
        }
    }
    ox_ctx_free(ctx);
}

static ox_tensor *f_ce(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    /* logits [2, 3, 5] from a transposed [5, 6] leaf (copy path) */
    ox_tensor *z = ox_ag_reshape(ctx, ox_ag_contiguous(ctx, ox_ag_transpose(ctx, in[0], 0, 1)), OX_DIMS(2, 3, 5));
    ox_tensor *loss = ox_nn_cross_entropy(ctx, z, arg, -1);
    /* the loss is a mean over 4 tokens: scale it so its gradients are of order one */
    return ox_ag_scale(ctx, loss, 4);
}

static ox_tensor *f_ce_narrow(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    ox_tensor *z = ox_ag_narrow(ctx, in[0], 2, 1, 5);        /* [2, 3, 7] -> [2, 3, 5], row stride 7 */
    return ox_ag_scale(ctx, ox_nn_cross_entropy(ctx, z, arg, -1), 4);
}

Test(nn_cross_entropy, gradcheck_with_ignored_targets)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(21);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *y = ids(ctx, OX_DIMS(2, 3), ce_targets);
    ox_tensor *z0 = leaf(ctx, &rng, OX_DIMS(5, 6), 0, 2);
    assert_gradcheck(ctx, f_ce, y, 1, ((ox_tensor *[]){ z0 }), &o);
    ox_tensor *z1 = leaf(ctx, &rng, OX_DIMS(2, 3, 7), 0, 2);
    assert_gradcheck(ctx, f_ce_narrow, y, 1, ((ox_tensor *[]){ z1 }), &o);
    ox_ctx_free(ctx);
}

Test(nn_cross_entropy, all_ignored_and_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(22);
    ox_tensor *z = leaf(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *none = ids(ctx, OX_DIMS(3), ((const int32_t[]){ -100, -100, -100 }));
    ox_tensor *loss = ox_nn_cross_entropy(ctx, z, none, -100);
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_tensor_f32(loss)[0], 0.0f);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    for (int i = 0; i < 12; i++)
        cr_assert_eq(ox_tensor_f32(z->grad)[i], 0.0f);
    ox_tensor *bad = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 0, 4, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, bad, -1), OX_ERR_ARG, "target 4", "position 1");
    ox_tensor *neg = ids(ctx, OX_DIMS(3), ((const int32_t[]){ 0, -2, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, neg, -1), OX_ERR_ARG, "target -2", NULL);
    ox_tensor *short_t = ids(ctx, OX_DIMS(2), ((const int32_t[]){ 0, 1 }));
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, short_t, -1), OX_ERR_SHAPE, "[3, 4]", "[2]");
    expect_error(ctx, ox_nn_cross_entropy(ctx, z, z, -1), OX_ERR_DTYPE, "cross_entropy", NULL);
    ox_ctx_free(ctx);
}

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
