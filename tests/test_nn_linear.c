/* test_nn_linear.c - nn/linear (MODELS.md 3; with and without bias) and nn/embedding (MODELS.md 2: lookup
 * and tied head).
 * For each: forward against a plain double-precision loop on strided inputs, gradcheck of every input and
 * parameter (non-contiguous views made inside the checked function), shape errors, and the module's
 * parameter names and initialisation. Tolerances: see tests/nn_modules_util.h (forward rel <= 1e-5;
 * gradchecks at the fp32 defaults of MODELS.md section 11 item 9). */
#include "nn_modules_util.h"

#include "nn/embedding.h"
#include "nn/linear.h"

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

/* ==== Linear with bias ==================================================================================== */

/* b[o] for a 1-D (possibly strided) b */
static double bias_at(const ox_tensor *b, int64_t o) { return ox_tensor_f32(b)[o * b->stride[0]]; }

/* x [2, 3, 24] with w [17, 24] stored transposed and b a stride-2 view: y = x W^T + b against the double
 * loop; b = NULL gives ox_nn_linear's bits exactly. */
Test(nn_linear_bias, forward_matches_reference_and_null_bias_is_bias_free)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(30);
    ox_tensor *x = randn(ctx, &rng, OX_DIMS(2, 3, 24), 0, 1);
    ox_tensor *w = ox_tensor_view_transpose(ctx, randn(ctx, &rng, OX_DIMS(24, 17), 0, 1), 0, 1);
    ox_tensor *b2 = randn(ctx, &rng, OX_DIMS(17, 2), 0, 1);
    ox_tensor *b = ox_tensor_view_select(ctx, b2, 1, 1);                 /* [17], stride 2 */
    cr_assert(b && b->stride[0] == 2);
    ox_tensor *y = ox_nn_linear_bias(ctx, x, w, b);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 17);
    double ref[6 * 17];
    ref_linear(ox_tensor_view_reshape(ctx, x, OX_DIMS(6, 24)), w, ref);
    for (int r = 0; r < 6; r++)
        for (int o = 0; o < 17; o++)
            ref[r * 17 + o] += bias_at(b, o);
    cr_assert(rel_d(ox_tensor_f32(y), ref, 6 * 17) <= 1e-5, "rel %g", rel_d(ox_tensor_f32(y), ref, 6 * 17));
    ox_tensor *y0 = ox_nn_linear_bias(ctx, x, w, NULL), *y1 = ox_nn_linear(ctx, x, w);
    cr_assert(y0 && y1);
    cr_assert(memcmp(ox_tensor_f32(y0), ox_tensor_f32(y1), sizeof(float) * 6 * 17) == 0);
    /* in = 0: y = b on every row */
    ox_tensor *x0 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 0)), *w0 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(17, 0));
    ox_tensor *ye = ox_nn_linear_bias(ctx, x0, w0, b);
    cr_assert_not_null(ye, "%s", ox_ctx_message(ctx));
    for (int r = 0; r < 4; r++)
        for (int o = 0; o < 17; o++)
            cr_assert_eq(ox_tensor_f32(ye)[r * 17 + o], (float)bias_at(b, o));
    ox_ctx_free(ctx);
}

/* db = sum over rows of dy, exactly as the double column sums (to 1e-6: 12 terms of order one); dx and dW
 * are the bias-free layer's bits (the bias changes neither). */
Test(nn_linear_bias, bias_gradient_and_unchanged_dx_dw)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(31);
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(3, 4, 9), 0, 1), *w = leaf(ctx, &rng, OX_DIMS(5, 9), 0, 1);
    ox_tensor *b = leaf(ctx, &rng, OX_DIMS(5), 0, 1);
    ox_tensor *seed = randn(ctx, &rng, OX_DIMS(3, 4, 5), 0, 1);
    float gx[2][108], gw[2][45];
    for (int k = 0; k < 2; k++) {
        ox_tensor *leaves[3] = { x, w, b };
        ox_ag_zero_grad(leaves, 3);
        ox_tensor *y = k ? ox_nn_linear_bias(ctx, x, w, b) : ox_nn_linear(ctx, x, w);
        assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
        memcpy(gx[k], ox_tensor_f32(x->grad), sizeof gx[k]);
        memcpy(gw[k], ox_tensor_f32(w->grad), sizeof gw[k]);
    }
    cr_assert(memcmp(gx[0], gx[1], sizeof gx[0]) == 0 && memcmp(gw[0], gw[1], sizeof gw[0]) == 0);
    for (int o = 0; o < 5; o++) {
        double s = 0;
        for (int r = 0; r < 12; r++)
            s += ox_tensor_f32(seed)[r * 5 + o];
        cr_assert(fabs(ox_tensor_f32(b->grad)[o] - s) <= 1e-6 * fmax(1, fabs(s)), "db[%d] %g vs %g", o,
                  ox_tensor_f32(b->grad)[o], s);
    }
    ox_ctx_free(ctx);
}

struct linb_case { int kind; };

static ox_tensor *f_linear_bias(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct linb_case *c = arg;
    if (c->kind == 0)   /* x [6, 5] and w [4, 5] as transposed views (f_linear case 0), b [4] contiguous */
        return ox_nn_linear_bias(ctx, ox_ag_transpose(ctx, in[0], 0, 1), ox_ag_transpose(ctx, in[1], 0, 1), in[2]);
    /* x [2, 3, 7] narrowed to [2, 3, 5]; b a stride-2 view of a [4, 2] leaf */
    return ox_nn_linear_bias(ctx, ox_ag_narrow(ctx, in[0], 2, 1, 5), in[1], ox_ag_select(ctx, in[2], 1, 0));
}

/* The fp32 defaults: y is linear in each of x, w, b (bilinear in x and w), gradients of order one. */
Test(nn_linear_bias, gradcheck_x_w_b_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(32);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *x0 = leaf(ctx, &rng, OX_DIMS(5, 6), 0, 1), *w0 = leaf(ctx, &rng, OX_DIMS(5, 4), 0, 1);
    ox_tensor *b0 = leaf(ctx, &rng, OX_DIMS(4), 0, 1);
    assert_gradcheck(ctx, f_linear_bias, &(struct linb_case){ 0 }, 3, ((ox_tensor *[]){ x0, w0, b0 }), &o);
    ox_tensor *x1 = leaf(ctx, &rng, OX_DIMS(2, 3, 7), 0, 1), *w1 = leaf(ctx, &rng, OX_DIMS(4, 5), 0, 1);
    ox_tensor *b1 = leaf(ctx, &rng, OX_DIMS(4, 2), 0, 1);
    assert_gradcheck(ctx, f_linear_bias, &(struct linb_case){ 1 }, 3, ((ox_tensor *[]){ x1, w1, b1 }), &o);
    ox_ctx_free(ctx);
}

/* The existing init registers no bias (the Oryx checkpoint names stay as they are); init_bias draws the
 * same weight from the same rng, then "<prefix>.bias" U(-1/sqrt(in), 1/sqrt(in)): all values inside the
 * bound, sample mean 0 and variance bound^2 / 3 within 4 standard errors (fixed seed: deterministic). */
Test(nn_linear_bias, module_init_names_and_bias_distribution)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    ox_nn_linear_t plain, biased;
    ox_rng r1 = ox_rng_seed(33), r2 = ox_rng_seed(33);
    assert_ok(ctx, ox_nn_linear_init(ctx, &ps, &plain, "a", 64, 4096, 0.02, &r1));
    cr_assert_null(plain.bias);
    cr_assert_eq(ps.n, 1, "the bias-free init registers only the weight");
    assert_ok(ctx, ox_nn_linear_init_bias(ctx, &ps, &biased, "transformer.h.0.mlp.c_fc", 64, 4096, 0.02, &r2));
    cr_assert_eq(ps.n, 3);
    cr_assert_str_eq(ps.items[1].name, "transformer.h.0.mlp.c_fc.weight");
    cr_assert_str_eq(ps.items[2].name, "transformer.h.0.mlp.c_fc.bias");
    cr_assert(ps.items[1].decay == OX_NN_DECAY && ps.items[2].decay == OX_NN_NO_DECAY);
    cr_assert(biased.bias && biased.bias->ndim == 1 && biased.bias->shape[0] == 4096);
    cr_assert(memcmp(ox_tensor_f32(plain.weight), ox_tensor_f32(biased.weight), sizeof(float) * 64 * 4096) == 0,
              "same weight draw with or without bias");
    double bound = 1.0 / 8.0, m, sd, n = 4096;
    for (int o = 0; o < 4096; o++)
        cr_assert(fabs(ox_tensor_f32(biased.bias)[o]) <= bound, "bias %g outside +-%g", ox_tensor_f32(biased.bias)[o], bound);
    moments(biased.bias, &m, &sd);
    double var = bound * bound / 3;    /* uniform: variance b^2/3, variance of the sample variance ~ 4b^4/(45 n) */
    cr_assert(fabs(m) <= 4 * sqrt(var / n), "bias mean %g", m);
    cr_assert(fabs(sd * sd - var) <= 4 * sqrt(4 * pow(bound, 4) / 45 / n), "bias variance %g, want %g", sd * sd, var);
    /* the module adds its bias; the bias-free module is ox_nn_linear */
    ox_tensor *x = randn(ctx, &r1, OX_DIMS(3, 64), 0, 1);
    ox_tensor *yb = ox_nn_linear_forward(ctx, &biased, x), *yb2 = ox_nn_linear_bias(ctx, x, biased.weight, biased.bias);
    ox_tensor *yp = ox_nn_linear_forward(ctx, &plain, x), *yp2 = ox_nn_linear(ctx, x, plain.weight);
    cr_assert(yb && yb2 && yp && yp2, "%s", ox_ctx_message(ctx));
    cr_assert(memcmp(ox_tensor_f32(yb), ox_tensor_f32(yb2), sizeof(float) * 3 * 4096) == 0);
    cr_assert(memcmp(ox_tensor_f32(yp), ox_tensor_f32(yp2), sizeof(float) * 3 * 4096) == 0);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(nn_linear_bias, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5)), *w = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 5));
    ox_tensor *b3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3)), *b2d = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 4));
    expect_error(ctx, ox_nn_linear_bias(ctx, x, w, b3), OX_ERR_SHAPE, "bias [3]", "[4, 5]");
    expect_error(ctx, ox_nn_linear_bias(ctx, x, w, b2d), OX_ERR_SHAPE, "bias [1, 4]", NULL);
    ox_tensor *bi = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(4));
    expect_error(ctx, ox_nn_linear_bias(ctx, x, w, bi), OX_ERR_DTYPE, "linear", NULL);
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
