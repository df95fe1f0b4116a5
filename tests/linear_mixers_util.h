/* linear_mixers_util.h - test helpers shared by tests/test_ssd.c and tests/test_gdn.c: input generators
 * with the distributions the model produces (MODELS.md section 11), double-precision sequential oracles of
 * both recurrences (forward 5.2 / 6.2 and backward 5.3 / 6.3, written here independently of the library),
 * and a driver that runs an op forward + backward and collects every output and gradient. */
#ifndef OX_TEST_LINEAR_MIXERS_UTIL_H
#define OX_TEST_LINEAR_MIXERS_UTIL_H

#include <string.h>

#include "test_util.h"

enum lm_kind { LM_SSD = 0, LM_GDN = 1 };

/* The operands of one case, contiguous host copies (float), and the output gradients used as seeds. */
typedef struct lm_case {
    int kind;
    int64_t B, T, H, dk, dv;
    float *q, *k, *v, *beta, *a, *s0;   /* q, k [B,T,H,dk]; v [B,T,H,dv]; beta, a [B,T,H]; s0 [B,H,dv,dk] */
    float *dy, *ds;                     /* seeds: [B,T,H,dv] and [B,H,dv,dk] */
} lm_case;

/* Everything one run produces: outputs and gradients, contiguous. */
typedef struct lm_result {
    float *y, *s, *gq, *gk, *gv, *gbeta, *ga, *gs0;
} lm_result;

typedef ox_status (*lm_op)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *,
                           ox_tensor *, ox_tensor **, ox_tensor **);

static inline float *lm_alloc(int64_t n)
{
    float *p = calloc((size_t)n, sizeof(float));
    cr_assert_not_null(p);
    return p;
}

static inline void lm_unit(float *x, int64_t n, double scale)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        s += (double)x[j] * x[j];
    s = scale / sqrt(s);
    for (int64_t j = 0; j < n; j++)
        x[j] = (float)(x[j] * s);
}

/* stress = 0: the model's distributions (GDN: unit-norm k, q unit-norm / sqrt(dk), beta in (0,1); SSD:
 * normal c, b, dt in (0.01, 1)); a in [-8, 0] with every 13th step at -30 (underflow of gam).
 * stress = 1 (GDN, MODELS 11 item 2): near-duplicate keys (one common unit vector plus 5% noise),
 * beta = 0.98, slow decay a in [-0.05, 0]. Nonzero initial state in both. */
static inline lm_case lm_make(int kind, int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv, int stress,
                              uint64_t seed)
{
    lm_case c = { kind, B, T, H, dk, dv, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    ox_rng r = ox_rng_seed(seed);
    const int64_t rows = B * T * H;
    c.q = lm_alloc(rows * dk);
    c.k = lm_alloc(rows * dk);
    c.v = lm_alloc(rows * dv);
    c.beta = lm_alloc(rows);
    c.a = lm_alloc(rows);
    c.s0 = lm_alloc(B * H * dv * dk);
    c.dy = lm_alloc(rows * dv);
    c.ds = lm_alloc(B * H * dv * dk);
    float *common = lm_alloc(dk);
    for (int64_t j = 0; j < dk; j++)
        common[j] = (float)ox_rng_normal(&r);
    lm_unit(common, dk, 1.0);
    for (int64_t i = 0; i < rows; i++) {
        float *qi = c.q + i * dk, *ki = c.k + i * dk;
        for (int64_t j = 0; j < dk; j++) {
            qi[j] = (float)ox_rng_normal(&r);
            ki[j] = stress ? common[j] + 0.05f * (float)ox_rng_normal(&r) / sqrtf((float)dk)
                           : (float)ox_rng_normal(&r);
        }
        if (kind == LM_GDN) {
            lm_unit(qi, dk, 1.0 / sqrt((double)dk));
            lm_unit(ki, dk, 1.0);
        } else {
            for (int64_t j = 0; j < dk; j++) {
                qi[j] *= 0.5f;
                ki[j] *= 0.5f;
            }
        }
        for (int64_t j = 0; j < dv; j++)
            c.v[i * dv + j] = (float)ox_rng_normal(&r);
        if (kind == LM_GDN)
            c.beta[i] = stress ? 0.98f : (float)(0.02 + 0.96 * ox_rng_uniform(&r));
        else
            c.beta[i] = (float)(0.01 + 0.99 * ox_rng_uniform(&r));
        const int64_t t = (i / H) % T;
        c.a[i] = stress ? (float)(-0.05 * ox_rng_uniform(&r)) : (float)(-8.0 * ox_rng_uniform(&r));
        if (!stress && t % 13 == 7)
            c.a[i] = -30.0f;
    }
    for (int64_t i = 0; i < B * H * dv * dk; i++) {
        c.s0[i] = (float)(0.5 * ox_rng_normal(&r));
        c.ds[i] = (float)ox_rng_normal(&r);
    }
    for (int64_t i = 0; i < rows * dv; i++)
        c.dy[i] = (float)ox_rng_normal(&r);
    free(common);
    return c;
}

static inline void lm_case_free(lm_case *c)
{
    float *all[] = { c->q, c->k, c->v, c->beta, c->a, c->s0, c->dy, c->ds };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static inline lm_result lm_result_alloc(const lm_case *c)
{
    const int64_t rows = c->B * c->T * c->H, st = c->B * c->H * c->dv * c->dk;
    lm_result r = { lm_alloc(rows * c->dv), lm_alloc(st), lm_alloc(rows * c->dk), lm_alloc(rows * c->dk),
                    lm_alloc(rows * c->dv), lm_alloc(rows), lm_alloc(rows), lm_alloc(st) };
    return r;
}

static inline void lm_result_free(lm_result *r)
{
    float *all[] = { r->y, r->s, r->gq, r->gk, r->gv, r->gbeta, r->ga, r->gs0 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* ---- double-precision sequential oracle (test-only) ------------------------------------------------ */

/* The operands in double: in[0..5] = q, k, v, beta, a, s0 (shapes of lm_case); seeds dy, ds. */
typedef struct lm_dcase {
    int kind;
    int64_t B, T, H, dk, dv;
    double *in[6];
    double *dy, *ds;
} lm_dcase;

static inline int64_t lm_numel(const lm_dcase *c, int i)
{
    const int64_t rows = c->B * c->T * c->H;
    const int64_t n[6] = { rows * c->dk, rows * c->dk, rows * c->dv, rows, rows, c->B * c->H * c->dv * c->dk };
    return n[i];
}

/* Forward (y [B,T,H,dv], s [B,H,dv,dk]) and, if g is not NULL, backward from the seeds into g[0..5] (input
 * shapes), for every (b, h), with all T + 1 states kept. GDN: MODELS.md 5.2 / 5.3; SSD: 6.2 / 6.3. */
static inline void lm_oracle_d(const lm_dcase *c, double *y, double *s, double *const *g)
{
    const int64_t B = c->B, T = c->T, H = c->H, dk = c->dk, dv = c->dv, M = dv * dk;
    const double *Q = c->in[0], *K = c->in[1], *V = c->in[2], *BE = c->in[3], *A = c->in[4], *S0 = c->in[5];
    double *S = calloc((size_t)((T + 1) * M), sizeof(double)), *dS = calloc((size_t)M, sizeof(double));
    double *e = calloc((size_t)dv, sizeof(double)), *du = calloc((size_t)dv, sizeof(double));
    cr_assert(S && dS && e && du);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t bh = b * H + h;
            for (int64_t m = 0; m < M; m++)
                S[m] = S0[bh * M + m];
            for (int64_t t = 0; t < T; t++) {
                const int64_t row = (b * T + t) * H + h;
                const double *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv;
                const double al = exp(A[row]), be = BE[row];
                double *Sp = S + t * M, *Sn = S + (t + 1) * M;
                for (int64_t i = 0; i < dv; i++) {
                    double sk = 0;
                    for (int64_t j = 0; j < dk; j++)
                        sk += al * Sp[i * dk + j] * k[j];
                    /* GDN: u = beta (v - alpha S k); SSD: u = dt v */
                    const double u = c->kind == LM_GDN ? be * (v[i] - sk) : be * v[i];
                    double o = 0;
                    for (int64_t j = 0; j < dk; j++) {
                        Sn[i * dk + j] = al * Sp[i * dk + j] + u * k[j];
                        o += Sn[i * dk + j] * q[j];
                    }
                    y[row * dv + i] = o;
                }
            }
            for (int64_t m = 0; m < M; m++) {
                s[bh * M + m] = S[T * M + m];
                dS[m] = c->ds[bh * M + m];
            }
            if (!g)
                continue;
            for (int64_t t = T - 1; t >= 0; t--) {
                const int64_t row = (b * T + t) * H + h;
                const double *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *dy = c->dy + row * dv;
                const double al = exp(A[row]), be = BE[row];
                const double *Sp = S + t * M, *Sn = S + (t + 1) * M;
                for (int64_t i = 0; i < dv; i++)
                    for (int64_t j = 0; j < dk; j++)
                        dS[i * dk + j] += dy[i] * q[j];
                for (int64_t j = 0; j < dk; j++) {
                    double acc = 0;
                    for (int64_t i = 0; i < dv; i++)
                        acc += Sn[i * dk + j] * dy[i];
                    g[0][row * dk + j] = acc;
                }
                double da = 0, dbe = 0;
                if (c->kind == LM_GDN) {
                    /* 5.3 */
                    for (int64_t i = 0; i < dv; i++) {
                        double sk = 0, dsk = 0;
                        for (int64_t j = 0; j < dk; j++) {
                            sk += al * Sp[i * dk + j] * k[j];
                            dsk += dS[i * dk + j] * k[j];
                        }
                        e[i] = v[i] - sk;
                        du[i] = dsk;
                        dbe += du[i] * e[i];
                        g[2][row * dv + i] = be * du[i];
                    }
                    for (int64_t j = 0; j < dk; j++) {
                        double acc = 0;
                        for (int64_t i = 0; i < dv; i++)
                            acc += dS[i * dk + j] * be * e[i] - be * al * Sp[i * dk + j] * du[i];
                        g[1][row * dk + j] = acc;
                    }
                    for (int64_t i = 0; i < dv; i++)
                        for (int64_t j = 0; j < dk; j++) {
                            const double dsb = dS[i * dk + j] - be * du[i] * k[j];
                            da += dsb * al * Sp[i * dk + j];
                            dS[i * dk + j] = al * dsb;
                        }
                } else {
                    /* 6.3 */
                    for (int64_t i = 0; i < dv; i++) {
                        double dhb = 0;
                        for (int64_t j = 0; j < dk; j++)
                            dhb += dS[i * dk + j] * k[j];
                        g[2][row * dv + i] = be * dhb;
                        dbe += v[i] * dhb;
                    }
                    for (int64_t j = 0; j < dk; j++) {
                        double acc = 0;
                        for (int64_t i = 0; i < dv; i++)
                            acc += be * dS[i * dk + j] * v[i];
                        g[1][row * dk + j] = acc;
                    }
                    for (int64_t m = 0; m < M; m++) {
                        da += dS[m] * al * Sp[m];
                        dS[m] *= al;
                    }
                }
                g[3][row] = dbe;
                g[4][row] = da;
            }
            for (int64_t m = 0; m < M; m++)
                g[5][bh * M + m] = dS[m];
        }
    free(S);
    free(dS);
    free(e);
    free(du);
}

static inline double *lm_dup_d(const float *x, int64_t n)
{
    double *d = calloc((size_t)n, sizeof(double));
    cr_assert_not_null(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static inline lm_dcase lm_to_double(const lm_case *c)
{
    lm_dcase d = { c->kind, c->B, c->T, c->H, c->dk, c->dv, { NULL }, NULL, NULL };
    const float *src[6] = { c->q, c->k, c->v, c->beta, c->a, c->s0 };
    for (int i = 0; i < 6; i++)
        d.in[i] = lm_dup_d(src[i], lm_numel(&d, i));
    d.dy = lm_dup_d(c->dy, c->B * c->T * c->H * c->dv);
    d.ds = lm_dup_d(c->ds, c->B * c->H * c->dv * c->dk);
    return d;
}

static inline void lm_dcase_free(lm_dcase *d)
{
    for (int i = 0; i < 6; i++)
        free(d->in[i]);
    free(d->dy);
    free(d->ds);
}

/* The oracle's outputs and gradients rounded to float, for comparison with the library. */
static inline lm_result lm_oracle(const lm_case *c)
{
    lm_dcase d = lm_to_double(c);
    lm_result res = lm_result_alloc(c);
    const int64_t ny = c->B * c->T * c->H * c->dv, ns = c->B * c->H * c->dv * c->dk;
    double *y = calloc((size_t)ny, sizeof(double)), *s = calloc((size_t)ns, sizeof(double)), *g[6];
    for (int i = 0; i < 6; i++)
        g[i] = calloc((size_t)lm_numel(&d, i), sizeof(double));
    lm_oracle_d(&d, y, s, g);
    float *dst[6] = { res.gq, res.gk, res.gv, res.gbeta, res.ga, res.gs0 };
    for (int64_t i = 0; i < ny; i++)
        res.y[i] = (float)y[i];
    for (int64_t i = 0; i < ns; i++)
        res.s[i] = (float)s[i];
    for (int i = 0; i < 6; i++) {
        for (int64_t j = 0; j < lm_numel(&d, i); j++)
            dst[i][j] = (float)g[i][j];
        free(g[i]);
    }
    free(y);
    free(s);
    lm_dcase_free(&d);
    return res;
}

/* MODELS.md 11 item 8: the fp64 oracle's backward against central differences of its own forward, step
 * 1e-6, loss sum(dy * y) + sum(ds * s_final): rel <= 1e-6 per gradient tensor (truncation error ~h^2 = 1e-12
 * and rounding ~1e-16 |L| / h ~ 1e-10 relative; a wrong term is of order one). */
static inline void lm_oracle_fd(int kind)
{
    lm_case c = lm_make(kind, 1, 70, 2, 4, 3, 0, 21);
    lm_dcase d = lm_to_double(&c);
    const int64_t ny = c.B * c.T * c.H * c.dv, ns = c.B * c.H * c.dv * c.dk;
    double *y = calloc((size_t)ny, sizeof(double)), *s = calloc((size_t)ns, sizeof(double)), *g[6];
    for (int i = 0; i < 6; i++)
        g[i] = calloc((size_t)lm_numel(&d, i), sizeof(double));
    lm_oracle_d(&d, y, s, g);
    const double h = 1e-6;
    for (int i = 0; i < 6; i++) {
        const int64_t n = lm_numel(&d, i);
        double num = 0, den = 0;
        for (int64_t j = 0; j < n; j++) {
            double L[2];
            const double x0 = d.in[i][j];
            for (int side = 0; side < 2; side++) {
                d.in[i][j] = x0 + (side ? -h : h);
                lm_oracle_d(&d, y, s, NULL);
                double acc = 0;
                for (int64_t m = 0; m < ny; m++)
                    acc += d.dy[m] * y[m];
                for (int64_t m = 0; m < ns; m++)
                    acc += d.ds[m] * s[m];
                L[side] = acc;
            }
            d.in[i][j] = x0;
            const double fd = (L[0] - L[1]) / (2 * h);
            num = fmax(num, fabs(fd - g[i][j]));
            den = fmax(den, fabs(fd));
        }
        cr_assert(den > 1e-3, "input %d: finite differences vanish (%g)", i, den);
        cr_assert(num / den <= 1e-6, "input %d: oracle gradient vs finite differences rel = %.3g", i, num / den);
        cr_log_info("oracle fd: input %d rel %.2g", i, num / den);
    }
    for (int i = 0; i < 6; i++)
        free(g[i]);
    free(y);
    free(s);
    lm_dcase_free(&d);
    lm_case_free(&c);
}

/* ---- running the library op ---------------------------------------------------------------------------- */

static inline ox_tensor *lm_leaf(ox_ctx *ctx, const float *src, int ndim, const int64_t *shape)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_F32, ndim, shape);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    memcpy(ox_tensor_f32(t), src, sizeof(float) * (size_t)ox_tensor_numel(t));
    assert_ok(ctx, ox_tensor_require_grad(ctx, t));
    return t;
}

/* Runs op forward (outputs y and the final state) and backward from the seeds dy and ds. */
static inline lm_result lm_run(ox_ctx *ctx, lm_op op, const lm_case *c)
{
    const int64_t B = c->B, T = c->T, H = c->H, dk = c->dk, dv = c->dv;
    ox_tensor *in[6] = {
        lm_leaf(ctx, c->q, OX_DIMS(B, T, H, dk)), lm_leaf(ctx, c->k, OX_DIMS(B, T, H, dk)),
        lm_leaf(ctx, c->v, OX_DIMS(B, T, H, dv)), lm_leaf(ctx, c->beta, OX_DIMS(B, T, H)),
        lm_leaf(ctx, c->a, OX_DIMS(B, T, H)), lm_leaf(ctx, c->s0, OX_DIMS(B, H, dv, dk)),
    };
    ox_tensor *y = NULL, *s = NULL;
    assert_ok(ctx, op(ctx, in[0], in[1], in[2], in[3], in[4], in[5], &y, &s));
    lm_result r = lm_result_alloc(c);
    memcpy(r.y, ox_tensor_f32(y), sizeof(float) * (size_t)ox_tensor_numel(y));
    memcpy(r.s, ox_tensor_f32(s), sizeof(float) * (size_t)ox_tensor_numel(s));
    ox_tensor *gs = ox_ag_grad(ctx, s);
    cr_assert_not_null(gs);
    memcpy(ox_tensor_f32(gs), c->ds, sizeof(float) * (size_t)ox_tensor_numel(gs));
    ox_tensor *seed = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(B, T, H, dv), c->dy);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
    float *dst[6] = { r.gq, r.gk, r.gv, r.gbeta, r.ga, r.gs0 };
    for (int i = 0; i < 6; i++) {
        cr_assert_not_null(in[i]->grad, "input %d got no gradient", i);
        memcpy(dst[i], ox_tensor_f32(in[i]->grad), sizeof(float) * (size_t)ox_tensor_numel(in[i]));
    }
    return r;
}

/* Asserts rel(x, ref) <= tol for the outputs (tol_out) and each gradient (tol_grad). */
static inline void lm_compare(const lm_case *c, const lm_result *x, const lm_result *ref, double tol_out,
                              double tol_grad, const char *what)
{
    const int64_t rows = c->B * c->T * c->H, st = c->B * c->H * c->dv * c->dk;
    const struct { const char *name; const float *a, *b; int64_t n; double tol; } cmp[] = {
        { "y", x->y, ref->y, rows * c->dv, tol_out },         { "s_final", x->s, ref->s, st, tol_out },
        { "dq", x->gq, ref->gq, rows * c->dk, tol_grad },     { "dk", x->gk, ref->gk, rows * c->dk, tol_grad },
        { "dv", x->gv, ref->gv, rows * c->dv, tol_grad },     { "dbeta", x->gbeta, ref->gbeta, rows, tol_grad },
        { "da", x->ga, ref->ga, rows, tol_grad },             { "ds0", x->gs0, ref->gs0, st, tol_grad },
    };
    double worst_out = 0, worst_grad = 0;
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        const double e = rel_err(cmp[i].a, cmp[i].b, cmp[i].n);
        if (i < 2)
            worst_out = fmax(worst_out, e);
        else
            worst_grad = fmax(worst_grad, e);
        cr_assert(e <= cmp[i].tol, "%s: T=%lld dk=%lld dv=%lld: rel(%s) = %.3g > %.1g", what, (long long)c->T,
                  (long long)c->dk, (long long)c->dv, cmp[i].name, e, cmp[i].tol);
    }
    cr_log_info("%s: T=%lld dk=%lld dv=%lld: worst rel outputs %.2g, gradients %.2g", what, (long long)c->T,
                (long long)c->dk, (long long)c->dv, worst_out, worst_grad);
}

/* ---- test bodies shared by the SSD and GDN suites -------------------------------------------------- */

/* (a) fast vs reference (both fp32): outputs and final state rel <= 1e-4, gradients rel <= 1e-3 (the issue's
 *     tolerance: two fp32 summation orders of the same math; a wrong term gives rel ~ 1e-2 or worse).
 * (b) fast and reference vs the fp64 oracle: rel <= 1e-4 for outputs and every gradient (MODELS.md 11:
 *     an fp32 emulation of the chunked form differed from fp64 by 3e-8 .. 2e-6, so 1e-4 leaves >= 50x). */
static inline void lm_check_case(lm_op fast, lm_op ref, const lm_case *c)
{
    ox_ctx *ctx = test_ctx();
    lm_result rf = lm_run(ctx, fast, c);
    ox_ctx_reset(ctx);
    lm_result rr = lm_run(ctx, ref, c);
    lm_result ro = lm_oracle(c);
    lm_compare(c, &rf, &rr, 1e-4, 1e-3, "fast vs reference");
    lm_compare(c, &rf, &ro, 1e-4, 1e-4, "fast vs fp64 oracle");
    lm_compare(c, &rr, &ro, 1e-4, 1e-4, "reference vs fp64 oracle");
    lm_result_free(&rf);
    lm_result_free(&rr);
    lm_result_free(&ro);
    ox_ctx_free(ctx);
}

/* T in {1, 37, 63, 64, 65, 200}, H = 2, dk = dv = 16, plus dk = 16, dv = 32 and dk = 5, dv = 3. */
static inline void lm_check_all(int kind, lm_op fast, lm_op ref, int stress)
{
    const int64_t Ts[] = { 1, 37, 63, 64, 65, 200 };
    for (size_t i = 0; i < sizeof Ts / sizeof Ts[0]; i++) {
        if (test_small() && Ts[i] > 100)
            continue;
        lm_case c = lm_make(kind, 2, Ts[i], 2, 16, 16, stress, 100 + i);
        lm_check_case(fast, ref, &c);
        lm_case_free(&c);
    }
    lm_case c = lm_make(kind, 1, test_small() ? 70 : 130, 2, 16, 32, stress, 7);
    lm_check_case(fast, ref, &c);
    lm_case_free(&c);
    /* awkward sizes: dk, dv not multiples of the vector width, three heads */
    lm_case c2 = lm_make(kind, 1, 70, 3, 5, 3, stress, 8);
    lm_check_case(fast, ref, &c2);
    lm_case_free(&c2);
}

/* (d) gradcheck with non-contiguous inputs made inside f: q as a transposed [B, H, T, dk] leaf, k as a
 * narrowed [B, T, H, dk + 2] leaf (strided rows), v with a strided last axis (the op copies it), beta
 * broadcast over heads from [B, T, 1], a transposed from [B, H, T], s0 transposed from [B, H, dk, dv]. */
typedef struct lm_gc { lm_op op; int which; int64_t dk; ox_tensor *q_fixed; } lm_gc;

/* which = 0: checks y against all six inputs. which = 1: checks the final state, which does not depend on
 * q: q is then a fixed tensor from arg and the five other inputs are checked. */
static inline ox_tensor *lm_gc_f(ox_ctx *ctx, ox_tensor *const *in6, void *arg)
{
    const lm_gc *g = arg;
    ox_tensor *const *in = g->which ? in6 - 1 : in6;   /* in[1..5] are the checked inputs when which = 1 */
    ox_tensor *q = ox_ag_transpose(ctx, g->which ? g->q_fixed : in[0], 1, 2);
    ox_tensor *k = ox_ag_narrow(ctx, in[1], 3, 1, g->dk);
    ox_tensor *v = ox_ag_transpose(ctx, in[2], 2, 3);
    ox_tensor *beta = ox_ag_expand(ctx, in[3], OX_DIMS(in[3]->shape[0], in[3]->shape[1], 2));
    ox_tensor *a = ox_ag_transpose(ctx, in[4], 1, 2);
    ox_tensor *s0 = ox_ag_transpose(ctx, in[5], 2, 3);
    ox_tensor *y = NULL, *s = NULL;
    if (g->op(ctx, q, k, v, beta, a, s0, &y, &s))
        return NULL;
    return g->which ? s : y;
}

/* Inputs of order one so gradients are of order one; beta / dt in [0.2, 0.8] and a in [-2, -0.05] (plus
 * one step at -30; slow decay for the final-state check) stay inside their domains under the +-1e-3 steps. Tolerances: the fp32 defaults of
 * MODELS.md 11 item 9 (eps 1e-3, rtol 1e-2, atol 1e-3; see autograd/gradcheck.h for why). */
/* Sizes are small (dk = dv = 4) because the difference quotient's noise is ~1e-7 |L| / eps with
 * L = sum(R * out): with dk = dv = 8 it already reached the 1e-3 floor on small gradient elements. */
static inline void lm_gradcheck(int kind, lm_op op)
{
    ox_ctx *ctx = test_ctx();
    ox_rng r = ox_rng_seed(kind ? 31 : 17);
    const int64_t B = 1, T = 70, H = 2, dk = 4, dv = 4;
    ox_tensor *q = test_leaf(ctx, &r, OX_DIMS(B, H, T, dk), kind == LM_GDN ? 0.35 : 0.5);
    ox_tensor *k = test_leaf(ctx, &r, OX_DIMS(B, T, H, dk + 2), kind == LM_GDN ? 0.35 : 0.5);
    ox_tensor *v = test_leaf(ctx, &r, OX_DIMS(B, T, dv, H), 1.0);
    ox_tensor *beta = ox_tensor_rand(ctx, &r, OX_DIMS(B, T, 1), 0.2, 0.8);
    ox_tensor *a = ox_tensor_rand(ctx, &r, OX_DIMS(B, H, T), -2.0, -0.05);
    ox_tensor_f32(a)[5] = -30.0f;
    ox_tensor *s0 = test_leaf(ctx, &r, OX_DIMS(B, H, dk, dv), 0.5);
    assert_ok(ctx, ox_tensor_require_grad(ctx, beta));
    assert_ok(ctx, ox_tensor_require_grad(ctx, a));
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    o.max_elems = test_small() ? 48 : 0;
    ox_tensor *all[6] = { q, k, v, beta, a, s0 };
    lm_gc g0 = { op, 0, dk, NULL };
    assert_gradcheck(ctx, lm_gc_f, &g0, 6, all, &o);
    /* the final state only sees s0 through prod_t exp(a_t): check it under slow decay (sum a ~ -1.5) */
    assert_ok(ctx, ox_tensor_fill_uniform(ctx, a, &r, -0.04, -0.005));
    lm_gc g1 = { op, 1, dk, ox_ag_detach(ctx, q) };
    assert_gradcheck(ctx, lm_gc_f, &g1, 5, all + 1, &o);
    ox_ctx_free(ctx);
}

static inline ox_tensor *lm_tensor(ox_ctx *ctx, const float *src, int ndim, const int64_t *shape)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_F32, ndim, shape);
    cr_assert_not_null(t);
    memcpy(ox_tensor_f32(t), src, sizeof(float) * (size_t)ox_tensor_numel(t));
    return t;
}

typedef ox_status (*lm_step_fn)(ox_ctx *, const ox_tensor *, const ox_tensor *, const ox_tensor *,
                                const ox_tensor *, const ox_tensor *, ox_tensor *, ox_tensor *);

/* (e) prefill 100 tokens with the chunked op, then 28 steps == the chunked op over all 128 tokens.
 * Both are fp32 evaluations of the same recurrence (each within ~1e-6 of fp64, test (b)): rel <= 1e-4. */
static inline void lm_step_matches_chunked(int kind, lm_op op, lm_step_fn step)
{
    ox_ctx *ctx = test_ctx();
    const int64_t B = 2, T = 128, H = 2, dk = 16, dv = 16, P = 100;
    lm_case c = lm_make(kind, B, T, H, dk, dv, 0, 5);
    ox_tensor *in[6] = { lm_tensor(ctx, c.q, OX_DIMS(B, T, H, dk)), lm_tensor(ctx, c.k, OX_DIMS(B, T, H, dk)),
                         lm_tensor(ctx, c.v, OX_DIMS(B, T, H, dv)), lm_tensor(ctx, c.beta, OX_DIMS(B, T, H)),
                         lm_tensor(ctx, c.a, OX_DIMS(B, T, H)), lm_tensor(ctx, c.s0, OX_DIMS(B, H, dv, dk)) };
    ox_tensor *y = NULL, *s = NULL, *yp = NULL, *sp = NULL;
    assert_ok(ctx, op(ctx, in[0], in[1], in[2], in[3], in[4], in[5], &y, &s));
    ox_tensor *pre[5];
    for (int i = 0; i < 5; i++)
        pre[i] = ox_tensor_view_narrow(ctx, in[i], 1, 0, P);
    assert_ok(ctx, op(ctx, pre[0], pre[1], pre[2], pre[3], pre[4], in[5], &yp, &sp));
    ox_tensor *o = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(B, H, dv));
    float *ys = lm_alloc(B * T * H * dv), *yf = ox_tensor_f32(y);
    for (int64_t i = 0; i < B * P * H * dv; i++)   /* prefill rows (b, t < P) */
        ys[(i / (P * H * dv)) * T * H * dv + i % (P * H * dv)] = ox_tensor_f32(yp)[i];
    for (int64_t t = P; t < T; t++) {
        ox_tensor *x[5];
        for (int i = 0; i < 5; i++)
            x[i] = ox_tensor_view_select(ctx, in[i], 1, t);
        assert_ok(ctx, step(ctx, x[0], x[1], x[2], x[3], x[4], sp, o));
        for (int64_t b = 0; b < B; b++)
            memcpy(ys + ((b * T + t) * H) * dv, ox_tensor_f32(o) + b * H * dv, sizeof(float) * (size_t)(H * dv));
    }
    const double ey = rel_err(ys, yf, B * T * H * dv), es = rel_err(ox_tensor_f32(sp), ox_tensor_f32(s), B * H * dv * dk);
    cr_assert(ey <= 1e-4 && es <= 1e-4, "step vs chunked: rel(y) = %.3g, rel(state) = %.3g", ey, es);
    free(ys);
    lm_case_free(&c);
    ox_ctx_free(ctx);
}

/* (f) causality / padding invariance: T = 65 gives the first 65 rows of T = 128. The only difference is
 * the size of the second chunk (1 row vs 64), which can change BLIS's summation order: a few ulps, so
 * rel <= 1e-6 (a leak from the future would be of order one). */
static inline void lm_padding_invariance(int kind, lm_op op)
{
    ox_ctx *ctx = test_ctx();
    const int64_t B = 2, T = 128, H = 2, dk = 16, dv = 16, T1 = 65;
    lm_case c = lm_make(kind, B, T, H, dk, dv, 0, 9);
    ox_tensor *in[6] = { lm_tensor(ctx, c.q, OX_DIMS(B, T, H, dk)), lm_tensor(ctx, c.k, OX_DIMS(B, T, H, dk)),
                         lm_tensor(ctx, c.v, OX_DIMS(B, T, H, dv)), lm_tensor(ctx, c.beta, OX_DIMS(B, T, H)),
                         lm_tensor(ctx, c.a, OX_DIMS(B, T, H)), lm_tensor(ctx, c.s0, OX_DIMS(B, H, dv, dk)) };
    ox_tensor *y = NULL, *y1 = NULL, *pre[5];
    assert_ok(ctx, op(ctx, in[0], in[1], in[2], in[3], in[4], in[5], &y, NULL));
    for (int i = 0; i < 5; i++)
        pre[i] = ox_tensor_view_narrow(ctx, in[i], 1, 0, T1);
    assert_ok(ctx, op(ctx, pre[0], pre[1], pre[2], pre[3], pre[4], in[5], &y1, NULL));
    for (int64_t b = 0; b < B; b++) {
        const double e = rel_err(ox_tensor_f32(y1) + b * T1 * H * dv, ox_tensor_f32(y) + b * T * H * dv, T1 * H * dv);
        cr_assert(e <= 1e-6, "batch %lld: rel = %.3g", (long long)b, e);
    }
    lm_case_free(&c);
    ox_ctx_free(ctx);
}

/* (g) the forward saves only the chunk-start states: arena bytes with gradients recorded minus bytes under
 * no-grad == B*H*ceil(T/64)*dv*dk*4 plus the node and saved-struct headers (< 4 KB). */
static inline void lm_saved_bytes(int kind, lm_op op)
{
    ox_ctx *ctx = test_ctx();
    const int64_t B = 2, T = 130, H = 2, dk = 16, dv = 32;
    lm_case c = lm_make(kind, B, T, H, dk, dv, 0, 11);
    ox_tensor *in[6] = { lm_leaf(ctx, c.q, OX_DIMS(B, T, H, dk)), lm_leaf(ctx, c.k, OX_DIMS(B, T, H, dk)),
                         lm_leaf(ctx, c.v, OX_DIMS(B, T, H, dv)), lm_leaf(ctx, c.beta, OX_DIMS(B, T, H)),
                         lm_leaf(ctx, c.a, OX_DIMS(B, T, H)), lm_leaf(ctx, c.s0, OX_DIMS(B, H, dv, dk)) };
    size_t used[2];
    for (int grad = 0; grad < 2; grad++) {
        int prev = ox_ag_set_grad_enabled(ctx, grad);
        ox_tensor *y = NULL, *s = NULL;
        size_t before = ctx->arena.used;
        assert_ok(ctx, op(ctx, in[0], in[1], in[2], in[3], in[4], in[5], &y, &s));
        used[grad] = ctx->arena.used - before;
        ox_ag_set_grad_enabled(ctx, prev);
    }
    const size_t states = (size_t)(B * H * 3 * dv * dk * 4);
    cr_assert(used[1] >= used[0] + states && used[1] <= used[0] + states + 4096,
              "grad forward used %zu bytes, no-grad %zu: difference %zu, states %zu", used[1], used[0],
              used[1] - used[0], states);
    lm_case_free(&c);
    ox_ctx_free(ctx);
}

/* (h) bad shapes -> OX_ERR_SHAPE with both shapes in the message; errors are sticky; NULL outputs. */
static inline void lm_bad_shapes(lm_op op, lm_step_fn step)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *q = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 4));
    ox_tensor *v = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 6));
    ox_tensor *bt = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3));
    ox_tensor *s0 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 6, 4));
    ox_tensor *k_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3, 5));
    ox_tensor *v_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 3, 6));
    ox_tensor *bt_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 2));
    ox_tensor *s0_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 4, 6));
    ox_tensor *q3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 12));
    struct { ox_tensor *in[6]; const char *s1, *s2; } bad[] = {
        { { q, k_bad, v, bt, bt, s0 }, "[2, 5, 3, 4]", "[2, 5, 3, 5]" },
        { { q, q, v_bad, bt, bt, s0 }, "[2, 5, 3, 4]", "[2, 4, 3, 6]" },
        { { q, q, v, bt_bad, bt, s0 }, "[2, 5, 2]", "[2, 5, 3, 4]" },
        { { q, q, v, bt, bt_bad, s0 }, "[2, 5, 2]", "[2, 5, 3, 4]" },
        { { q, q, v, bt, bt, s0_bad }, "[2, 3, 4, 6]", "[2, 3, 6, 4]" },
        { { q3, q3, v, bt, bt, s0 }, "[2, 5, 12]", "[2, 5, 3, 6]" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ox_tensor *y = q, *s = q;
        ox_status st = op(ctx, bad[i].in[0], bad[i].in[1], bad[i].in[2], bad[i].in[3], bad[i].in[4],
                          bad[i].in[5], &y, &s);
        cr_assert_eq(st, OX_ERR_SHAPE, "case %zu: status %d (%s)", i, st, ox_ctx_message(ctx));
        cr_assert(y == NULL && s == NULL, "case %zu: outputs not cleared", i);
        cr_assert(strstr(ox_ctx_message(ctx), bad[i].s1) && strstr(ox_ctx_message(ctx), bad[i].s2),
                  "case %zu: message should name %s and %s: %s", i, bad[i].s1, bad[i].s2, ox_ctx_message(ctx));
        /* sticky: a valid call fails too until the error is cleared */
        cr_assert_neq(op(ctx, q, q, v, bt, bt, s0, &y, NULL), OX_OK);
        cr_assert_null(y);
        ox_ctx_clear_error(ctx);
    }
    /* a NULL input is an argument error */
    ox_tensor *y = NULL;
    cr_assert_eq(op(ctx, q, NULL, v, bt, bt, s0, &y, NULL), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    /* a valid call works (and h0 = NULL is allowed) */
    assert_ok(ctx, op(ctx, q, q, v, bt, bt, NULL, &y, NULL));
    cr_assert_not_null(y);
    /* step: state of the wrong shape, and a strided last axis (no copy allowed) */
    ox_tensor *sq = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 4));
    ox_tensor *sv = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 6));
    ox_tensor *sb = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *st_bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 4, 6));
    cr_assert_eq(step(ctx, sq, sq, sv, sb, sb, st_bad, sv), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3, 4, 6]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_tensor *sq_t = ox_tensor_view_transpose(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 3)), 1, 2);
    cr_assert_eq(step(ctx, sq_t, sq, sv, sb, sb, s0, sv), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, step(ctx, sq, sq, sv, sb, sb, s0, sv));
    ox_ctx_free(ctx);
}

/* s0 = NULL behaves as a zero initial state and s_final = NULL as a final state that receives no gradient:
 * same code paths after loading the state / seeding dS, so results are bit-identical to passing zeros. */
static inline void lm_null_state(int kind, lm_op op)
{
    lm_case c = lm_make(kind, 1, 70, 2, 8, 8, 0, 15);
    memset(c.s0, 0, sizeof(float) * (size_t)(c.B * c.H * c.dv * c.dk));
    memset(c.ds, 0, sizeof(float) * (size_t)(c.B * c.H * c.dv * c.dk));
    ox_ctx *ctx = test_ctx();
    lm_result r0 = lm_run(ctx, op, &c);
    ox_ctx_reset(ctx);
    const int64_t B = c.B, T = c.T, H = c.H, dk = c.dk, dv = c.dv;
    ox_tensor *in[5] = { lm_leaf(ctx, c.q, OX_DIMS(B, T, H, dk)), lm_leaf(ctx, c.k, OX_DIMS(B, T, H, dk)),
                         lm_leaf(ctx, c.v, OX_DIMS(B, T, H, dv)), lm_leaf(ctx, c.beta, OX_DIMS(B, T, H)),
                         lm_leaf(ctx, c.a, OX_DIMS(B, T, H)) };
    ox_tensor *y = NULL;
    assert_ok(ctx, op(ctx, in[0], in[1], in[2], in[3], in[4], NULL, &y, NULL));
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(B, T, H, dv), c.dy)));
    const float *want[5] = { r0.gq, r0.gk, r0.gv, r0.gbeta, r0.ga };
    cr_assert(rel_err(ox_tensor_f32(y), r0.y, B * T * H * dv) == 0);
    for (int i = 0; i < 5; i++)
        cr_assert(rel_err(ox_tensor_f32(in[i]->grad), want[i], ox_tensor_numel(in[i])) == 0, "input %d", i);
    lm_result_free(&r0);
    lm_case_free(&c);
    ox_ctx_free(ctx);
}

/* Same inputs, 1 and 2 threads: bit-identical outputs and gradients (no reductions across threads). */
static inline void lm_threads_bit_identical(int kind, lm_op op)
{
    lm_case c = lm_make(kind, 2, test_small() ? 70 : 150, 2, 16, 16, 0, 13);
    lm_result r[2];
    for (int i = 0; i < 2; i++) {
        ox_ctx *ctx = test_ctx();
        ox_ctx_set_threads(ctx, i + 1);
        r[i] = lm_run(ctx, op, &c);
        ox_ctx_free(ctx);
    }
    lm_compare(&c, &r[1], &r[0], 0, 0, "2 threads vs 1");
    lm_result_free(&r[0]);
    lm_result_free(&r[1]);
    lm_case_free(&c);
}

#endif
