/* test_attention.c - RoPE (suite rope) and attention (suite attention; causal, and with masks): forward against
 * double-precision loops written here, the fast path against the materialised reference, gradients by
 * gradcheck and against a double-precision backward oracle, subset rows, the work count, memory, KV-cache
 * decoding and argument errors.
 *
 * Metric: rel(a, ref) = max|a - ref| / max|ref| per tensor (MODELS.md section 1). Tolerances for fp32
 * attention against fp64 (MODELS.md section 11 item 5): outputs 1e-5, gradients 1e-4. fp32 unit roundoff
 * is 6e-8; with scores of order one a dot product of length dk <= 64 and a softmax over <= 200 keys
 * accumulate errors of ~1e-7 .. 1e-6 in rel, so 1e-5 leaves >= 10x margin, while a wrong term (a missed
 * mask, a wrong scale, a dropped rescale) shows up as rel ~1e-2 or worse. Gradients chain four products
 * (dP, dS, dQ/dK, dV) and a difference (dP - Delta) that cancels, hence the looser 1e-4. */
#include "test_util.h"

#include <string.h>

#include "nn/attention.h"
#include "nn/rope.h"

/* ================================================================================== helpers */

/* rel(a, ref) against a double reference. */
static double rel_d(const float *a, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= num))
            num = d != d ? INFINITY : d;
        if (fabs(ref[i]) > den)
            den = fabs(ref[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

static const float *f32c(ox_ctx *ctx, ox_tensor *t)
{
    ox_tensor *c = ox_tensor_contiguous(ctx, t);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    return ox_tensor_f32(c);
}

/* A [B, T] I32 rows map: each row selected with probability frac (or all when frac >= 1). */
static ox_tensor *random_rows(ox_ctx *ctx, ox_rng *rng, int64_t B, int64_t T, double frac)
{
    ox_tensor *r = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    cr_assert_not_null(r);
    for (int64_t i = 0; i < B * T; i++)
        ox_tensor_i32(r)[i] = ox_rng_uniform(rng) < frac;
    return r;
}

/* ---- double-precision oracle of causal attention with subset rows: forward and backward ---- */

typedef struct oracle {
    double *o, *dq, *dk, *dv;
    double max_abs_score;
} oracle;

/* q, k [B, T, H, dk], v, dout [B, T, H, dv] contiguous; rows [B, T] or NULL; query t of batch b sees keys
 * s <= lim = (causal ? min(t, len_b - 1) : len_b - 1), len_b = len[b] or T when len is NULL; a row with
 * lim < 0 is skipped. Caller frees with oracle_free. */
static oracle oracle_run_mask(const float *q, const float *k, const float *v, const float *dout,
                              const int32_t *rows, int causal, const int32_t *len, int64_t B, int64_t T,
                              int64_t H, int64_t dk, int64_t dv)
{
    oracle r;
    r.o = calloc((size_t)(B * T * H * dv), sizeof(double));
    r.dv = calloc((size_t)(B * T * H * dv), sizeof(double));
    r.dq = calloc((size_t)(B * T * H * dk), sizeof(double));
    r.dk = calloc((size_t)(B * T * H * dk), sizeof(double));
    r.max_abs_score = 0;
    double *p = calloc((size_t)T, sizeof(double)), *dp = calloc((size_t)T, sizeof(double));
    double sc = 1.0 / sqrt((double)dk);
#define QI(b, t, h) (((b) * T + (t)) * H + (h))
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                int64_t last = (len ? len[b] : T) - 1, lim = causal && t < last ? t : last;
                if (lim < 0 || (rows && !rows[b * T + t]))
                    continue;
                const float *qt = q + QI(b, t, h) * dk;
                double mx = -INFINITY;
                for (int64_t s = 0; s <= lim; s++) {
                    const float *ks = k + QI(b, s, h) * dk;
                    double d = 0;
                    for (int64_t i = 0; i < dk; i++)
                        d += (double)qt[i] * ks[i];
                    p[s] = d * sc;
                    if (fabs(p[s]) > r.max_abs_score)
                        r.max_abs_score = fabs(p[s]);
                    if (p[s] > mx)
                        mx = p[s];
                }
                double l = 0;
                for (int64_t s = 0; s <= lim; s++)
                    l += (p[s] = exp(p[s] - mx));
                double *ot = r.o + QI(b, t, h) * dv;
                const float *dot = dout + QI(b, t, h) * dv;
                for (int64_t s = 0; s <= lim; s++) {
                    p[s] /= l;
                    for (int64_t i = 0; i < dv; i++)
                        ot[i] += p[s] * v[QI(b, s, h) * dv + i];
                }
                /* backward of this row */
                double delta = 0;
                for (int64_t s = 0; s <= lim; s++) {
                    double d = 0;
                    for (int64_t i = 0; i < dv; i++)
                        d += (double)dot[i] * v[QI(b, s, h) * dv + i];
                    dp[s] = d;
                    delta += p[s] * d;
                }
                for (int64_t s = 0; s <= lim; s++) {
                    double ds = p[s] * (dp[s] - delta) * sc;
                    for (int64_t i = 0; i < dk; i++) {
                        r.dq[QI(b, t, h) * dk + i] += ds * k[QI(b, s, h) * dk + i];
                        r.dk[QI(b, s, h) * dk + i] += ds * qt[i];
                    }
                    for (int64_t i = 0; i < dv; i++)
                        r.dv[QI(b, s, h) * dv + i] += p[s] * dot[i];
                }
            }
#undef QI
    free(p);
    free(dp);
    return r;
}

/* The causal oracle without key lengths. */
static oracle oracle_run(const float *q, const float *k, const float *v, const float *dout,
                         const int32_t *rows, int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv)
{
    return oracle_run_mask(q, k, v, dout, rows, 1, NULL, B, T, H, dk, dv);
}

static void oracle_free(oracle *r)
{
    free(r->o);
    free(r->dq);
    free(r->dk);
    free(r->dv);
}

typedef ox_tensor *(*attn_fn)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, const ox_tensor *);

/* Result of one forward + backward, copied out of the arena (caller frees). */
typedef struct run {
    float *o, *dq, *dk, *dv;
} run;

static float *copy_out(ox_ctx *ctx, ox_tensor *t)
{
    int64_t n = ox_tensor_numel(t);
    float *c = malloc(sizeof(float) * (size_t)n);
    memcpy(c, f32c(ctx, t), sizeof(float) * (size_t)n);
    return c;
}

/* Forward and backward with seed dout (contiguous [B, T, H, dv]) on leaves q, k, v. */
static run run_attn(ox_ctx *ctx, attn_fn fn, ox_tensor *q, ox_tensor *k, ox_tensor *v, const ox_tensor *rows,
                    ox_tensor *dout)
{
    ox_ag_zero_grad((ox_tensor *[]){ q, k, v }, 3);
    ox_tensor *o = fn(ctx, q, k, v, rows);
    cr_assert_not_null(o, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward_seeded(ctx, o, dout));
    run r = { copy_out(ctx, o), copy_out(ctx, q->grad), copy_out(ctx, k->grad), copy_out(ctx, v->grad) };
    return r;
}

static void run_free(run *r)
{
    free(r->o);
    free(r->dq);
    free(r->dk);
    free(r->dv);
}

/* ================================================================================== rope */

/* Double-precision RoPE of x (contiguous [B, T, H, d]) at positions pos0 + t. */
static void rope_double(const float *x, double *y, int64_t B, int64_t T, int64_t H, int64_t d, int64_t pos0)
{
    int64_t half = d / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                const float *xv = x + ((b * T + t) * H + h) * d;
                double *yv = y + ((b * T + t) * H + h) * d;
                for (int64_t i = 0; i < half; i++) {
                    double a = (double)(pos0 + t) * pow(10000.0, -2.0 * (double)i / (double)d);
                    yv[i] = xv[i] * cos(a) - xv[i + half] * sin(a);
                    yv[i + half] = xv[i] * sin(a) + xv[i + half] * cos(a);
                }
            }
}

/* Tolerance 1e-6 in rel: each output is two products with cos/sin rounded to float (relative error
 * <= 6e-8 each) and one rounded sum, so |error| <= ~3 * 6e-8 * max|x| => rel <= ~2e-7. A float angle
 * instead of a double one at position 10^6 errs by ~10^6 * 6e-8 = 0.06 rad (rel ~ 0.06): it fails, as
 * does any wrong theta, pairing or sign. */
Test(rope, forward_matches_double_on_strided_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    const int64_t B = 2, T = 37, H = 3, d = 16, n = B * T * H * d;
    const int64_t starts[] = { 0, 7, 1000000 };
    ox_tensor *xl = ox_tensor_randn(ctx, &rng, OX_DIMS(B, H, T, d), 0, 1);
    ox_tensor *x = ox_tensor_view_transpose(ctx, xl, 1, 2);            /* [B, T, H, d], strided */
    const float *xc = f32c(ctx, x);
    double *ref = malloc(sizeof(double) * (size_t)n);
    for (int s = 0; s < 3; s++) {
        ox_tensor *y = ox_nn_rope(ctx, x, starts[s]);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert(ox_tensor_is_contiguous(y));
        rope_double(xc, ref, B, T, H, d, starts[s]);
        double e = rel_d(ox_tensor_f32(y), ref, n);
        cr_assert(e <= 1e-6, "pos0 %lld: rel %g", (long long)starts[s], e);
        /* the decode helper gives the same bits for each token */
        float row[3 * 16];
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                memcpy(row, xc + (b * T + t) * H * d, sizeof row);
                ox_nn_rope_rows(row, H, d, starts[s] + t);
                cr_assert(memcmp(row, ox_tensor_f32(y) + (b * T + t) * H * d, sizeof row) == 0,
                          "rope_rows differs at b %lld t %lld", (long long)b, (long long)t);
            }
    }
    free(ref);
    ox_ctx_free(ctx);
}

static ox_tensor *f_rope(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    /* leaf [B, T, d, H] -> [B, T, H, d] with a strided last axis */
    return ox_nn_rope(ctx, ox_ag_transpose(ctx, in[0], 2, 3), 5);
}

/* fp32 gradcheck defaults (eps 1e-3, rtol 1e-2, atol 1e-3; gradcheck.h): RoPE is linear, so the
 * difference quotient is exact up to fp32 rounding of L (~1e-4 relative). */
Test(rope, gradcheck_on_transposed_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(2, 5, 8, 3), 1.0);
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_rope, NULL, 1, (ox_tensor *[]){ x }, &o);
    ox_ctx_free(ctx);
}

Test(rope, bad_arguments_are_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *odd = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 2, 5));
    cr_assert_null(ox_nn_rope(ctx, odd, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[1, 2, 2, 5]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_nn_rope(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 8)), 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_nn_rope(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 2, 4)), -1));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_nn_rope(ctx, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(1, 2, 2, 4)), 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
    ox_ctx_free(ctx);
}

/* ================================================================================== attention */

/* Leaves q, k [B, T, H, dk] ~ N(0, qscale^2), N(0, 1) (norm ~ sqrt(dk): scores of order one when
 * qscale = 1), v ~ N(0, 1); and a seed dO ~ N(0, 1). */
typedef struct qkv {
    ox_tensor *q, *k, *v, *dout;
} qkv;

static qkv make_qkv(ox_ctx *ctx, ox_rng *rng, int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv,
                    double qscale)
{
    qkv x = { test_leaf(ctx, rng, OX_DIMS(B, T, H, dk), qscale), test_leaf(ctx, rng, OX_DIMS(B, T, H, dk), 1),
              test_leaf(ctx, rng, OX_DIMS(B, T, H, dv), 1),
              ox_tensor_randn(ctx, rng, OX_DIMS(B, T, H, dv), 0, 1) };
    return x;
}

/* rel(a, ref), except when the exact gradient (the oracle's, `exact`) is identically zero: dq and dk at
 * T = 1, where the softmax over a single key has no gradient. Both fp32 results are then rounding residue
 * of dP - Delta (~u |dO| |v|), and max|a - ref| is measured against `scale`, the size of the problem's
 * other gradients (max |dv|), instead of against 0. */
static double rel_z(const float *a, const float *ref, const float *exact, int64_t n, double scale)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs((double)exact[i]));
    if (mx > 0)
        return rel_err(a, ref, n);
    double num = 0;
    for (int64_t i = 0; i < n; i++)
        num = fmax(num, fabs((double)a[i] - (double)ref[i]));
    return num / scale;
}

static void check_case(int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv, double qscale,
                       double tol_o, double tol_g, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, qscale);
    run f = run_attn(ctx, ox_nn_attention, x.q, x.k, x.v, NULL, x.dout);
    run r = run_attn(ctx, ox_nn_attention_reference, x.q, x.k, x.v, NULL, x.dout);
    oracle g = oracle_run(ox_tensor_f32(x.q), ox_tensor_f32(x.k), ox_tensor_f32(x.v), ox_tensor_f32(x.dout),
                          NULL, B, T, H, dk, dv);
    int64_t nk = B * T * H * dk, nv = B * T * H * dv;
    double gs = 0;                               /* the gradient scale: max |dv| */
    for (int64_t i = 0; i < nv; i++)
        gs = fmax(gs, fabs(g.dv[i]));
    float *gq32 = malloc(sizeof(float) * (size_t)nk), *gk32 = malloc(sizeof(float) * (size_t)nk);
    for (int64_t i = 0; i < nk; i++) {
        gq32[i] = (float)g.dq[i];
        gk32[i] = (float)g.dk[i];
    }
    double e[8] = { rel_err(f.o, r.o, nv), rel_z(f.dq, r.dq, gq32, nk, gs), rel_z(f.dk, r.dk, gk32, nk, gs),
                    rel_err(f.dv, r.dv, nv), rel_d(f.o, g.o, nv), rel_z(f.dq, gq32, gq32, nk, gs),
                    rel_z(f.dk, gk32, gk32, nk, gs), rel_d(f.dv, g.dv, nv) };
    const char *name[8] = { "o fast/ref", "dq fast/ref", "dk fast/ref", "dv fast/ref",
                            "o fast/oracle", "dq fast/oracle", "dk fast/oracle", "dv fast/oracle" };
    for (int i = 0; i < 8; i++)
        cr_assert(e[i] <= (i % 4 == 0 ? tol_o : tol_g), "T %lld dk %lld dv %lld qscale %g: %s rel %g",
                  (long long)T, (long long)dk, (long long)dv, qscale, name[i], e[i]);
    cr_assert(rel_z(r.dq, gq32, gq32, nk, gs) <= tol_g && rel_z(r.dk, gk32, gk32, nk, gs) <= tol_g,
              "reference dq, dk vs oracle, T %lld", (long long)T);
    free(gq32);
    free(gk32);
    /* the reference itself against the oracle */
    cr_assert(rel_d(r.o, g.o, nv) <= tol_o && rel_d(r.dv, g.dv, nv) <= tol_g, "reference vs oracle, T %lld",
              (long long)T);
    if (qscale > 1)
        /* meaningful only if exp of the raw scores would overflow fp32 (exp(88.7) = FLT_MAX) */
        cr_assert(g.max_abs_score > 89, "max |score| %g too small to test stability", g.max_abs_score);
    run_free(&f);
    run_free(&r);
    oracle_free(&g);
    ox_ctx_free(ctx);
}

Test(attention, fast_matches_reference_and_oracle)
{
    const int64_t Ts[] = { 1, 37, 64, 65, 200 };
    for (int i = 0; i < 5; i++)
        check_case(2, Ts[i], 2, 16, 16, 1.0, 1e-5, 1e-4, 100 + i);
    check_case(2, 65, 2, 16, 32, 1.0, 1e-5, 1e-4, 110);     /* dk != dv */
}

/* Scores up to ~150 (q scaled by 30): the naive exp overflows, the online softmax must not. The problem
 * is worse conditioned: a score computed in fp32 carries an absolute error of ~u * sum_i |q_i k_i| /
 * sqrt(dk) ~ 6e-8 * 30 * 16 * 0.64 / 4 ~ 5e-6 (the oracle's is ~0), and exp turns that into a relative
 * error of the weights of the same size, which every output and gradient inherits, times the few
 * products that follow. We keep the outputs at 1e-4 and the gradients at 1e-3 (20x over the 5e-6
 * estimate, times the cancellation in dP - Delta for the gradients); an overflow gives NaN and a
 * missing max subtraction or rescale gives O(1) errors. */
Test(attention, large_scores_are_stable)
{
    check_case(2, 200, 2, 16, 16, 30.0, 1e-4, 1e-3, 120);
}

/* ---- gradcheck: non-contiguous inputs made inside f ---- */

struct gc_arg {
    attn_fn fn;
    const ox_tensor *rows;
    int64_t dv;
};

/* q leaf [B, H, T, dk] -> transposed; k leaf [B, T, dk, H] -> transposed (strided last axis: the copy
 * path); v leaf [B, T, H, dv + 3] -> narrowed to [.., 1 : 1 + dv]. */
static ox_tensor *f_attn(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct gc_arg *a = arg;
    ox_tensor *q = ox_ag_transpose(ctx, in[0], 1, 2);
    ox_tensor *k = ox_ag_transpose(ctx, in[1], 2, 3);
    ox_tensor *v = ox_ag_narrow(ctx, in[2], 3, 1, a->dv);
    return a->fn(ctx, q, k, v, a->rows);
}

/* fp32 gradcheck defaults (gradcheck.h, MODELS.md 11 item 9), scores of order one so the loss is smooth
 * on the 1e-3 step; evenly spaced subsets of up to 300 elements per input keep the time small. */
static void gradcheck_case(attn_fn fn, int64_t T, int with_rows, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    const int64_t B = 2, H = 2, dk = 8, dv = 6;
    ox_tensor *q = test_leaf(ctx, &rng, OX_DIMS(B, H, T, dk), 1.0);
    ox_tensor *k = test_leaf(ctx, &rng, OX_DIMS(B, T, dk, H), 1.0);
    ox_tensor *v = test_leaf(ctx, &rng, OX_DIMS(B, T, H, dv + 3), 1.0);
    struct gc_arg a = { fn, with_rows ? random_rows(ctx, &rng, B, T, 0.5) : NULL, dv };
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    o.max_elems = test_small() ? 100 : 300;
    o.seed = seed;
    ox_status s = ox_gradcheck(ctx, f_attn, &a, 3, (ox_tensor *[]){ q, k, v }, &o);
    cr_assert_eq(s, OX_OK, "T %lld rows %d: %s", (long long)T, with_rows, ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(attention, gradcheck_fast)
{
    gradcheck_case(ox_nn_attention, 9, 0, 200);
    gradcheck_case(ox_nn_attention, 70, 0, 201);     /* crosses a 64 block */
    gradcheck_case(ox_nn_attention, 70, 1, 202);     /* subset rows */
}

Test(attention, gradcheck_reference)
{
    gradcheck_case(ox_nn_attention_reference, 9, 0, 210);
    gradcheck_case(ox_nn_attention_reference, 70, 1, 211);
}

/* ---- subset rows ---- */

/* Selected output rows: the same dot products and the same key blocks as the full computation, only
 * the query blocks are made of other rows, so results agree to a few roundings: rel 1e-6. dk, dv: the
 * contributions of the same rows are summed in other groupings (query blocks), rel 1e-5. Rows that are
 * not selected must be exactly 0 in o and dq. */
static void subset_case(attn_fn fn, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    const int64_t B = 2, T = 200, H = 2, dk = 16, dv = 16, nk = B * T * H * dk, nv = B * T * H * dv;
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, 1.0);
    ox_tensor *rows = random_rows(ctx, &rng, B, T, 0.3);
    const int32_t *rv = ox_tensor_i32(rows);
    /* dO zeroed off the subset, for the full computation */
    ox_tensor *dmask = ox_tensor_zeros_like(ctx, x.dout);
    for (int64_t bt = 0; bt < B * T; bt++)
        if (rv[bt])
            memcpy(ox_tensor_f32(dmask) + bt * H * dv, ox_tensor_f32(x.dout) + bt * H * dv,
                   sizeof(float) * H * dv);
    run s = run_attn(ctx, fn, x.q, x.k, x.v, rows, x.dout);
    run f = run_attn(ctx, fn, x.q, x.k, x.v, NULL, dmask);
    double num = 0, den = 0;
    int n_sel = 0;
    for (int64_t bt = 0; bt < B * T; bt++) {
        n_sel += rv[bt];
        for (int64_t i = 0; i < H * dv; i++) {
            float a = s.o[bt * H * dv + i], b = f.o[bt * H * dv + i];
            if (rv[bt]) {
                num = fmax(num, fabs((double)a - b));
                den = fmax(den, fabs((double)b));
            } else {
                cr_assert(a == 0.0f, "o not zero at skipped row %lld", (long long)bt);
            }
        }
        if (!rv[bt])
            for (int64_t i = 0; i < H * dk; i++)
                cr_assert(s.dq[bt * H * dk + i] == 0.0f, "dq not zero at skipped row %lld", (long long)bt);
    }
    cr_assert(n_sel > 20 && n_sel < B * T - 20, "subset of %d rows", n_sel);
    cr_assert(num <= 1e-6 * den, "selected rows: rel %g", num / den);
    double e[3] = { rel_err(s.dq, f.dq, nk), rel_err(s.dk, f.dk, nk), rel_err(s.dv, f.dv, nv) };
    cr_assert(e[0] <= 1e-5 && e[1] <= 1e-5 && e[2] <= 1e-5, "dq %g dk %g dv %g", e[0], e[1], e[2]);
    /* and both against the oracle with the subset */
    oracle g = oracle_run(ox_tensor_f32(x.q), ox_tensor_f32(x.k), ox_tensor_f32(x.v), ox_tensor_f32(x.dout),
                          rv, B, T, H, dk, dv);
    cr_assert(rel_d(s.o, g.o, nv) <= 1e-5, "o vs oracle %g", rel_d(s.o, g.o, nv));
    cr_assert(rel_d(s.dq, g.dq, nk) <= 1e-4 && rel_d(s.dk, g.dk, nk) <= 1e-4 && rel_d(s.dv, g.dv, nv) <= 1e-4,
              "grads vs oracle %g %g %g", rel_d(s.dq, g.dq, nk), rel_d(s.dk, g.dk, nk),
              rel_d(s.dv, g.dv, nv));
    oracle_free(&g);
    run_free(&s);
    run_free(&f);
    ox_ctx_free(ctx);
}

Test(attention, subset_rows_match_full_rows) { subset_case(ox_nn_attention, 300); }
Test(attention, subset_rows_match_full_rows_reference) { subset_case(ox_nn_attention_reference, 301); }

/* ---- work count ---- */

/* The rule of attention.h, computed here from the map: selected rows of each batch in blocks of 64 (in
 * order); a row at position p in a block whose last position is pmax is charged
 * min(64 * ceil((p + 1) / 64), pmax + 1) keys, times (dk + dv), for every head. */
static uint64_t expected_madds(const int32_t *rows, int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv,
                               uint64_t *exact)
{
    uint64_t total = 0;
    *exact = 0;
    int64_t *sel = malloc(sizeof(int64_t) * (size_t)T);
    for (int64_t b = 0; b < B; b++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++)
            if (!rows || rows[b * T + t])
                sel[n++] = t;
        for (int64_t i = 0; i < n; i++) {
            int64_t blk_end = (i / 64) * 64 + 63 < n - 1 ? (i / 64) * 64 + 63 : n - 1;
            int64_t pmax = sel[blk_end], p = sel[i];
            int64_t keys = 64 * ((p + 1 + 63) / 64);
            if (keys > pmax + 1)
                keys = pmax + 1;
            total += (uint64_t)(keys * (dk + dv) * H);
            *exact += (uint64_t)((p + 1) * (dk + dv) * H);
        }
    }
    free(sel);
    return total;
}

Test(attention, madds_count_follows_the_block_rule)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(400);
    const int64_t B = 2, T = 300, H = 3, dk = 16, dv = 8;
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, 1.0);
    for (int c = 0; c < 3; c++) {
        ox_tensor *rows = c == 0 ? NULL : random_rows(ctx, &rng, B, T, c == 1 ? 0.1 : 0.6);
        uint64_t exact, want = expected_madds(rows ? ox_tensor_i32(rows) : NULL, B, T, H, dk, dv, &exact);
        ctx->attn_madds = 0;
        cr_assert_not_null(ox_nn_attention(ctx, x.q, x.k, x.v, rows), "%s", ox_ctx_message(ctx));
        cr_assert_eq(ctx->attn_madds, want, "case %d: counted %llu, rule gives %llu", c,
                     (unsigned long long)ctx->attn_madds, (unsigned long long)want);
        /* block rounding only adds masked keys of a row's last key block: < 64 per row and head */
        cr_assert(want >= exact && want - exact < (uint64_t)(64 * (dk + dv) * H * B * T));
    }
    /* the reference does not count */
    ctx->attn_madds = 0;
    cr_assert_not_null(ox_nn_attention_reference(ctx, x.q, x.k, x.v, NULL));
    cr_assert_eq(ctx->attn_madds, 0);
    ox_ctx_free(ctx);
}

/* ---- memory ---- */

/* Forward + backward at T = 2048, d = 64 (B = H = 1): the arena's growth beyond the inputs, their
 * gradients and the seed must stay below T*T*4/8 bytes (2 MiB): o, its gradient and 64-row scratch
 * (~1.1 MiB) fit, while any T x T float matrix (16 MiB) does not; the reference shows that the check
 * bites. The size is the same under the sanitizers (the work is ~2 GFLOP in BLIS, uninstrumented). */
Test(attention, memory_stays_linear_in_T)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(500);
    const int64_t T = 2048, d = 64;
    const size_t limit = (size_t)T * T * 4 / 8;
    qkv x = make_qkv(ctx, &rng, 1, T, 1, d, d, 1.0);
    for (int pass = 0; pass < 2; pass++) {
        attn_fn fn = pass == 0 ? ox_nn_attention : ox_nn_attention_reference;
        size_t base = ctx->arena.used;
        ctx->arena.high_water = base;
        ox_tensor *o = fn(ctx, x.q, x.k, x.v, NULL);
        cr_assert_not_null(o, "%s", ox_ctx_message(ctx));
        assert_ok(ctx, ox_ag_backward_seeded(ctx, o, x.dout));
        size_t peak = ctx->arena.high_water - base;
        if (pass == 0)
            cr_assert(peak < limit, "fast path peak %zu bytes >= %zu", peak, limit);
        else
            cr_assert(peak > (size_t)T * T * 4, "reference peak %zu should hold T x T floats", peak);
        ox_ag_zero_grad((ox_tensor *[]){ x.q, x.k, x.v }, 3);
    }
    ox_ctx_free(ctx);
}

/* ---- threads ---- */

/* B*H = 1 < 2 threads runs the two-pass backward (dQ by query blocks, dK/dV by key blocks) in parallel,
 * B*H = 4 >= 2 threads the one-pass backward split by (b, h); one thread always runs the one-pass
 * schedule. All make the same products in the same order: the results must be the same bits. */
static void threads_case(int64_t B, int64_t H, double frac, uint64_t seed)
{
    const int64_t T = 300, d = 32, n = B * T * H * d;
    run r[2];
    for (int th = 0; th < 2; th++) {
        ox_ctx *ctx = test_ctx();
        ox_ctx_set_threads(ctx, th + 1);
        ox_rng rng = ox_rng_seed(seed);
        qkv x = make_qkv(ctx, &rng, B, T, H, d, d, 1.0);
        ox_tensor *rows = random_rows(ctx, &rng, B, T, frac);
        r[th] = run_attn(ctx, ox_nn_attention, x.q, x.k, x.v, rows, x.dout);
        ox_ctx_free(ctx);
    }
    size_t bytes = sizeof(float) * (size_t)n;
    cr_assert(memcmp(r[0].o, r[1].o, bytes) == 0, "B %lld H %lld: o", (long long)B, (long long)H);
    cr_assert(memcmp(r[0].dq, r[1].dq, bytes) == 0, "B %lld H %lld: dq", (long long)B, (long long)H);
    cr_assert(memcmp(r[0].dk, r[1].dk, bytes) == 0, "B %lld H %lld: dk", (long long)B, (long long)H);
    cr_assert(memcmp(r[0].dv, r[1].dv, bytes) == 0, "B %lld H %lld: dv", (long long)B, (long long)H);
    run_free(&r[0]);
    run_free(&r[1]);
}

Test(attention, two_threads_give_the_same_bits)
{
    threads_case(1, 1, 0.7, 600);
    threads_case(1, 1, 0.1, 602);      /* sparse rows: many more key blocks than query blocks */
    threads_case(2, 2, 0.7, 601);
}

/* ---- decoding ---- */

/* Prefill 37 tokens, then step the rest, every third token without a query (linear mode). Each step's
 * output must equal the parallel forward's row: rel 1e-5 over all of them (the same math summed in
 * another order: dot products in a loop instead of BLIS, one softmax instead of the online one). With
 * q scaled by 30 (scores up to ~150: exp without the max subtraction overflows) the two fp32 results
 * each carry the ~5e-6 score error of large_scores_are_stable: rel 1e-4. */
static void step_case(double qscale, double tol, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    const int64_t B = 2, T = 100, H = 2, dk = 16, dv = 24, T0 = 37;
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, qscale);
    ox_tensor *full = ox_nn_attention(ctx, x.q, x.k, x.v, NULL);
    cr_assert_not_null(full, "%s", ox_ctx_message(ctx));
    ox_nn_kv_cache c;
    assert_ok(ctx, ox_nn_kv_cache_init(ctx, &c, B, H, T, dk, dv));
    assert_ok(ctx, ox_nn_kv_cache_append(ctx, &c, ox_tensor_view_narrow(ctx, x.k, 1, 0, T0),
                                         ox_tensor_view_narrow(ctx, x.v, 1, 0, T0)));
    cr_assert_eq(c.len, T0);
    ox_tensor *out = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(B, H, dv));
    float *got = calloc((size_t)(B * T * H * dv), sizeof(float));
    float *want = calloc((size_t)(B * T * H * dv), sizeof(float));
    uint64_t madds = 0;
    ctx->attn_madds = 0;
    for (int64_t t = T0; t < T; t++) {
        int with_q = (t % 3) != 0;
        ox_tensor *qt = with_q ? ox_tensor_view_select(ctx, x.q, 1, t) : NULL;
        if (with_q && t % 3 == 2) {     /* every other query in a strided layout ([B, dk, H] transposed) */
            ox_tensor *qbuf = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, dk, H));
            ox_tensor *qs = ox_tensor_view_transpose(ctx, qbuf, 1, 2);
            assert_ok(ctx, ox_tensor_copy(ctx, qs, qt));
            cr_assert_neq(qs->stride[2], 1);
            qt = qs;
        }
        assert_ok(ctx, ox_nn_attention_step(ctx, &c, qt, ox_tensor_view_select(ctx, x.k, 1, t),
                                            ox_tensor_view_select(ctx, x.v, 1, t), out));
        if (!with_q)
            continue;
        madds += (uint64_t)(B * H * (t + 1) * (dk + dv));
        for (int64_t b = 0; b < B; b++) {
            size_t off = (size_t)((b * T + t) * H * dv);
            memcpy(got + off, ox_tensor_f32(out) + b * H * dv, sizeof(float) * H * dv);
            memcpy(want + off, ox_tensor_f32(full) + off, sizeof(float) * H * dv);
        }
    }
    cr_assert_eq(c.len, T);
    cr_assert_eq(ctx->attn_madds, madds);
    double e = rel_err(got, want, B * T * H * dv);
    cr_assert(e <= tol, "qscale %g: step vs parallel rel %g", qscale, e);
    /* the cache is full now */
    cr_assert_eq(ox_nn_attention_step(ctx, &c, NULL, ox_tensor_view_select(ctx, x.k, 1, 0),
                                      ox_tensor_view_select(ctx, x.v, 1, 0), out), OX_ERR_STATE);
    cr_assert_eq(c.len, T);
    free(got);
    free(want);
    ox_nn_kv_cache_free(&c);
    ox_nn_kv_cache_free(&c);     /* idempotent */
    ox_ctx_free(ctx);
}

Test(attention, step_decoding_matches_parallel_rows)
{
    step_case(1.0, 1e-5, 700);
    step_case(30.0, 1e-4, 701);
}

Test(attention, step_and_cache_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_kv_cache c;
    assert_ok(ctx, ox_nn_kv_cache_init(ctx, &c, 1, 2, 4, 8, 6));
    ox_tensor *k = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 8));
    ox_tensor *v = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 6));
    ox_tensor *bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 7));
    ox_tensor *out = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 2, 6));
    cr_assert_eq(ox_nn_attention_step(ctx, &c, NULL, bad, v, out), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[1, 2, 7]"), "%s", ox_ctx_message(ctx));
    cr_assert_eq(c.len, 0);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_nn_attention_step(ctx, &c, bad, k, v, out), OX_ERR_SHAPE);      /* q of the wrong dk */
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_nn_attention_step(ctx, &c, k, k, v, bad), OX_ERR_SHAPE);        /* out of the wrong dv */
    ox_ctx_clear_error(ctx);
    cr_assert_eq(c.len, 0);
    /* prefill beyond the capacity */
    ox_tensor *k5 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 5, 2, 8));
    ox_tensor *v5 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, 5, 2, 6));
    cr_assert_eq(ox_nn_kv_cache_append(ctx, &c, k5, v5), OX_ERR_STATE);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_nn_kv_cache_append(ctx, &c, k5, ox_tensor_view_narrow(ctx, v5, 1, 0, 4)), OX_ERR_SHAPE);
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, ox_nn_kv_cache_append(ctx, &c, ox_tensor_view_narrow(ctx, k5, 1, 0, 4),
                                         ox_tensor_view_narrow(ctx, v5, 1, 0, 4)));
    cr_assert_eq(ox_nn_attention_step(ctx, &c, k, k, v, out), OX_ERR_STATE);        /* full */
    ox_ctx_clear_error(ctx);
    ox_nn_kv_cache_clear(&c);
    assert_ok(ctx, ox_nn_attention_step(ctx, &c, k, k, v, out));
    cr_assert_eq(c.len, 1);
    ox_nn_kv_cache_free(&c);
    cr_assert_eq(ox_nn_kv_cache_init(ctx, &c, 1, 0, 4, 8, 6), OX_ERR_ARG);
    ox_nn_kv_cache_free(&c);
    ox_ctx_free(ctx);
}

Test(attention, bad_shapes_are_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *q = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 8));
    ox_tensor *k7 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 7));
    ox_tensor *v = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 4));
    ox_tensor *v6 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 6, 3, 4));
    attn_fn fns[2] = { ox_nn_attention, ox_nn_attention_reference };
    for (int f = 0; f < 2; f++) {
        cr_assert_null(fns[f](ctx, q, k7, v, NULL));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
        cr_assert(strstr(ox_ctx_message(ctx), "[2, 5, 3, 8]") && strstr(ox_ctx_message(ctx), "[2, 5, 3, 7]"),
                  "%s", ox_ctx_message(ctx));
        cr_assert_null(fns[f](ctx, q, q, v, NULL));                  /* sticky */
        ox_ctx_clear_error(ctx);
        cr_assert_null(fns[f](ctx, q, q, v6, NULL));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
        ox_ctx_clear_error(ctx);
        cr_assert_null(fns[f](ctx, q, q, ox_tensor_view_select(ctx, v, 3, 0), NULL));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
        ox_ctx_clear_error(ctx);
        ox_tensor *rows_bad = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 4));
        cr_assert_null(fns[f](ctx, q, q, v, rows_bad));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
        ox_ctx_clear_error(ctx);
        cr_assert_null(fns[f](ctx, q, q, v, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5))));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
        ox_ctx_clear_error(ctx);
        ox_tensor *rows2 = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 5));
        ox_tensor_i32(rows2)[7] = 2;
        cr_assert_null(fns[f](ctx, q, q, v, rows2));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
        cr_assert(strstr(ox_ctx_message(ctx), "rows[1, 2] = 2"), "%s", ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
        cr_assert_null(fns[f](ctx, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 5, 3, 8)), q, v, NULL));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
        ox_ctx_clear_error(ctx);
        cr_assert_null(fns[f](ctx, q, NULL, v, NULL));
        cr_assert_eq(ox_ctx_status(ctx), OX_OK);       /* a NULL input is a previous failure, not a new one */
    }
    ox_ctx_free(ctx);
}

/* ================================================================================== masks */

typedef ox_tensor *(*attn_mask_fn)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, const ox_tensor *,
                                   const ox_nn_attn_mask *);

/* run_attn with a mask. */
static run run_attn_mask(ox_ctx *ctx, attn_mask_fn fn, qkv *x, const ox_tensor *rows, const ox_nn_attn_mask *m)
{
    ox_ag_zero_grad((ox_tensor *[]){ x->q, x->k, x->v }, 3);
    ox_tensor *o = fn(ctx, x->q, x->k, x->v, rows, m);
    cr_assert_not_null(o, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward_seeded(ctx, o, x->dout));
    run r = { copy_out(ctx, o), copy_out(ctx, x->q->grad), copy_out(ctx, x->k->grad), copy_out(ctx, x->v->grad) };
    return r;
}

static ox_tensor *lens_tensor(ox_ctx *ctx, const int32_t *len, int64_t B)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B));
    cr_assert_not_null(t);
    memcpy(ox_tensor_i32(t), len, sizeof(int32_t) * (size_t)B);
    return t;
}

/* One mask: fast and reference against the fp64 oracle (the tolerances of check_case: outputs 1e-5,
 * gradients 1e-4), fast against reference, and exact zeros where the mask says so: o and dq at rows that
 * see no key (len_b = 0), dk and dv at hidden keys (s >= len_b). */
static void mask_case(int64_t T, int causal, const int32_t *len, double rows_frac, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    const int64_t B = 3, H = 2, dk = 16, dv = 12, nk = B * T * H * dk, nv = B * T * H * dv;
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, 1.0);
    ox_tensor *rows = rows_frac < 1 ? random_rows(ctx, &rng, B, T, rows_frac) : NULL;
    ox_nn_attn_mask m = { causal, len ? lens_tensor(ctx, len, B) : NULL };
    run f = run_attn_mask(ctx, ox_nn_attention_masked, &x, rows, &m);
    run r = run_attn_mask(ctx, ox_nn_attention_reference_masked, &x, rows, &m);
    oracle g = oracle_run_mask(ox_tensor_f32(x.q), ox_tensor_f32(x.k), ox_tensor_f32(x.v), ox_tensor_f32(x.dout),
                               rows ? ox_tensor_i32(rows) : NULL, causal, len, B, T, H, dk, dv);
    const run *rs[2] = { &f, &r };
    for (int i = 0; i < 2; i++) {
        double e[4] = { rel_d(rs[i]->o, g.o, nv), rel_d(rs[i]->dq, g.dq, nk), rel_d(rs[i]->dk, g.dk, nk),
                        rel_d(rs[i]->dv, g.dv, nv) };
        cr_assert(e[0] <= 1e-5 && e[1] <= 1e-4 && e[2] <= 1e-4 && e[3] <= 1e-4,
                  "%s T %lld causal %d: vs oracle o %g dq %g dk %g dv %g", i ? "reference" : "fast",
                  (long long)T, causal, e[0], e[1], e[2], e[3]);
    }
    double e[4] = { rel_err(f.o, r.o, nv), rel_err(f.dq, r.dq, nk), rel_err(f.dk, r.dk, nk),
                    rel_err(f.dv, r.dv, nv) };
    cr_assert(e[0] <= 1e-5 && e[1] <= 1e-4 && e[2] <= 1e-4 && e[3] <= 1e-4,
              "T %lld causal %d: fast vs reference o %g dq %g dk %g dv %g", (long long)T, causal, e[0], e[1],
              e[2], e[3]);
    for (int i = 0; i < 2; i++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                int64_t row = (b * T + t) * H;
                int dead = len && len[b] == 0, hidden = len && t >= len[b];
                for (int64_t j = 0; j < H * dv; j++) {
                    cr_assert(!dead || rs[i]->o[row * dv + j] == 0.0f, "o at a row with no key");
                    cr_assert(!hidden || rs[i]->dv[row * dv + j] == 0.0f, "dv at a hidden key");
                }
                for (int64_t j = 0; j < H * dk; j++) {
                    cr_assert(!dead || rs[i]->dq[row * dk + j] == 0.0f, "dq at a row with no key");
                    cr_assert(!hidden || rs[i]->dk[row * dk + j] == 0.0f, "dk at a hidden key");
                }
            }
    run_free(&f);
    run_free(&r);
    oracle_free(&g);
    ox_ctx_free(ctx);
}

Test(attention, masks_match_reference_and_oracle)
{
    const int32_t full65[3] = { 65, 65, 65 }, mix65[3] = { 65, 1, 40 }, edge150[3] = { 0, 64, 129 };
    mask_case(65, 0, NULL, 1, 800);             /* bidirectional */
    mask_case(65, 0, mix65, 1, 801);            /* bidirectional with padding */
    mask_case(65, 0, full65, 1, 802);           /* lengths T: the same as none */
    mask_case(150, 1, edge150, 1, 803);         /* causal with padding; a batch with no key at all */
    mask_case(150, 0, edge150, 1, 804);
    mask_case(150, 0, edge150, 0.4, 805);       /* with subset rows */
}

/* Bidirectional attention gives every query every key: min(64 ceil(T / 64), T) = T keys per row, so the
 * work count is B T H T (dk + dv); with lengths, len_b per row of batch b (none for len_b = 0). */
Test(attention, masks_madds_count)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(810);
    const int64_t B = 3, T = 150, H = 2, dk = 16, dv = 8;
    const int32_t len[3] = { 0, 64, 129 };
    qkv x = make_qkv(ctx, &rng, B, T, H, dk, dv, 1.0);
    ox_nn_attn_mask m = { 0, NULL };
    ctx->attn_madds = 0;
    cr_assert_not_null(ox_nn_attention_masked(ctx, x.q, x.k, x.v, NULL, &m), "%s", ox_ctx_message(ctx));
    cr_assert_eq(ctx->attn_madds, (uint64_t)(B * T * H * T * (dk + dv)));
    m.key_len = lens_tensor(ctx, len, B);
    ctx->attn_madds = 0;
    cr_assert_not_null(ox_nn_attention_masked(ctx, x.q, x.k, x.v, NULL, &m), "%s", ox_ctx_message(ctx));
    cr_assert_eq(ctx->attn_madds, (uint64_t)((0 + 64 + 129) * T * H * (dk + dv)));
    ox_ctx_free(ctx);
}

struct gc_mask_arg {
    attn_mask_fn fn;
    const ox_tensor *rows;
    ox_nn_attn_mask mask;
    int64_t dv;
};

static ox_tensor *f_attn_mask(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct gc_mask_arg *a = arg;
    ox_tensor *q = ox_ag_transpose(ctx, in[0], 1, 2);
    ox_tensor *k = ox_ag_transpose(ctx, in[1], 2, 3);
    ox_tensor *v = ox_ag_narrow(ctx, in[2], 3, 1, a->dv);
    return a->fn(ctx, q, k, v, a->rows, &a->mask);
}

/* As gradcheck_case (fp32 defaults, scores of order one), with a mask: B = 2 with lengths len. */
static void gradcheck_mask_case(attn_mask_fn fn, int64_t T, int causal, const int32_t *len, uint64_t seed)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(seed);
    const int64_t B = 2, H = 2, dk = 8, dv = 6;
    ox_tensor *q = test_leaf(ctx, &rng, OX_DIMS(B, H, T, dk), 1.0);
    ox_tensor *k = test_leaf(ctx, &rng, OX_DIMS(B, T, dk, H), 1.0);
    ox_tensor *v = test_leaf(ctx, &rng, OX_DIMS(B, T, H, dv + 3), 1.0);
    struct gc_mask_arg a = { fn, NULL, { causal, len ? lens_tensor(ctx, len, B) : NULL }, dv };
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    o.max_elems = test_small() ? 100 : 300;
    o.seed = seed;
    ox_status s = ox_gradcheck(ctx, f_attn_mask, &a, 3, (ox_tensor *[]){ q, k, v }, &o);
    cr_assert_eq(s, OX_OK, "T %lld causal %d: %s", (long long)T, causal, ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(attention, gradcheck_masks)
{
    const int32_t len9[2] = { 9, 4 }, len70[2] = { 66, 70 };
    gradcheck_mask_case(ox_nn_attention_masked, 9, 0, NULL, 820);
    gradcheck_mask_case(ox_nn_attention_masked, 9, 0, len9, 821);
    gradcheck_mask_case(ox_nn_attention_masked, 70, 0, len70, 822);     /* crosses a 64 block */
    gradcheck_mask_case(ox_nn_attention_masked, 70, 1, len70, 823);
    gradcheck_mask_case(ox_nn_attention_reference_masked, 9, 0, len9, 824);
    gradcheck_mask_case(ox_nn_attention_reference_masked, 70, 1, len70, 825);
}

/* The thread schedules of two_threads_give_the_same_bits, bidirectional with lengths. */
Test(attention, masks_two_threads_give_the_same_bits)
{
    const int64_t B = 2, T = 300, H = 1, d = 32, n = B * T * H * d;
    const int32_t len[2] = { 300, 130 };
    run r[2];
    for (int th = 0; th < 2; th++) {
        ox_ctx *ctx = test_ctx();
        ox_ctx_set_threads(ctx, th + 1);
        ox_rng rng = ox_rng_seed(830);
        qkv x = make_qkv(ctx, &rng, B, T, H, d, d, 1.0);
        ox_nn_attn_mask m = { 0, lens_tensor(ctx, len, B) };
        r[th] = run_attn_mask(ctx, ox_nn_attention_masked, &x, NULL, &m);
        ox_ctx_free(ctx);
    }
    size_t bytes = sizeof(float) * (size_t)n;
    cr_assert(memcmp(r[0].o, r[1].o, bytes) == 0 && memcmp(r[0].dq, r[1].dq, bytes) == 0 &&
              memcmp(r[0].dk, r[1].dk, bytes) == 0 && memcmp(r[0].dv, r[1].dv, bytes) == 0);
    run_free(&r[0]);
    run_free(&r[1]);
}

Test(attention, bad_key_lengths_are_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *q = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 8));
    attn_mask_fn fns[2] = { ox_nn_attention_masked, ox_nn_attention_reference_masked };
    for (int f = 0; f < 2; f++) {
        ox_nn_attn_mask m = { 0, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2)) };
        cr_assert_null(fns[f](ctx, q, q, q, NULL, &m));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
        ox_ctx_clear_error(ctx);
        m.key_len = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
        cr_assert_null(fns[f](ctx, q, q, q, NULL, &m));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
        cr_assert(strstr(ox_ctx_message(ctx), "key_len [3]"), "%s", ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
        const int32_t over[2] = { 5, 6 }, neg[2] = { -1, 0 };
        m.key_len = lens_tensor(ctx, over, 2);
        cr_assert_null(fns[f](ctx, q, q, q, NULL, &m));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
        cr_assert(strstr(ox_ctx_message(ctx), "key_len[1] = 6"), "%s", ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
        m.key_len = lens_tensor(ctx, neg, 2);
        cr_assert_null(fns[f](ctx, q, q, q, NULL, &m));
        cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
        ox_ctx_clear_error(ctx);
    }
    ox_ctx_free(ctx);
}
