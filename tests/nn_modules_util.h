/* nn_modules_util.h - helpers shared by the tests of the small nn/ modules (tests/test_nn_linear.c,
 * test_nn_norms.c, test_nn_shortconv.c, test_nn_swiglu.c, test_nn_cross_entropy.c, test_nn_modules.c):
 * strided element access, rel against a double reference, random leaves, I32 id tensors, error checks,
 * the sample moments of an initialisation and SiLU in double.
 *
 * Forward tolerances: every op here is a short fp32 computation (dot products of <= 64 terms, a few
 * multiplies, one exp) on inputs of order one. fp32 rounding (6e-8 per operation) accumulates to at most
 * ~K * 6e-8 ~ 4e-6 relative for K = 64 terms, typically 1e-7; we accept rel <= 1e-5 (MODELS.md section 1
 * metric). A wrong term (wrong tap, missing eps, wrong head) gives rel ~ 1e-1 or worse.
 * Gradchecks use the fp32 defaults of MODELS.md section 11 item 9 (eps 1e-3, rtol 1e-2, atol 1e-3, see
 * gradcheck.h), with inputs and weights of order one so the gradients are of order one. */
#ifndef OX_TEST_NN_MODULES_UTIL_H
#define OX_TEST_NN_MODULES_UTIL_H

#include "test_util.h"

#include <string.h>

#include "nn/util.h"

/* ---- helpers ---------------------------------------------------------------------------------------- */

static inline double at(const ox_tensor *t, const int64_t *ix)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++)
        off += ix[d] * t->stride[d];
    return ox_tensor_f32(t)[off];
}
#define AT2(t, i, j) at((t), (const int64_t[]){ (i), (j) })
#define AT3(t, i, j, k) at((t), (const int64_t[]){ (i), (j), (k) })

/* rel(got, ref) of MODELS.md section 1 against a double reference. */
static inline double rel_d(const float *got, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        num = (d > num || d != d) ? (d != d ? INFINITY : d) : num;
        den = fabs(ref[i]) > den ? fabs(ref[i]) : den;
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

static inline ox_tensor *randn(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = ox_tensor_randn(ctx, rng, ndim, shape, mean, std);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    return t;
}

static inline ox_tensor *leaf(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double mean, double std)
{
    ox_tensor *t = randn(ctx, rng, ndim, shape, mean, std);
    assert_ok(ctx, ox_tensor_require_grad(ctx, t));
    return t;
}

static inline ox_tensor *ids(ox_ctx *ctx, int ndim, const int64_t *shape, const int32_t *v)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, ndim, shape);
    cr_assert_not_null(t);
    memcpy(ox_tensor_i32(t), v, sizeof(int32_t) * (size_t)ox_tensor_numel(t));
    return t;
}

static inline void expect_error(ox_ctx *ctx, ox_tensor *result, ox_status want, const char *s1, const char *s2)
{
    cr_assert_null(result);
    cr_assert_eq(ox_ctx_status(ctx), want, "status %d: %s", ox_ctx_status(ctx), ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), s1) && (!s2 || strstr(ox_ctx_message(ctx), s2)),
              "message should name %s%s%s: %s", s1, s2 ? " and " : "", s2 ? s2 : "", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
}

/* mean and standard deviation of all elements, in double */
static inline void moments(const ox_tensor *t, double *mean, double *std)
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
static inline void expect_normal_init(const ox_tensor *t, double std)
{
    double m, s, n = (double)ox_tensor_numel(t);
    moments(t, &m, &s);
    cr_assert(fabs(m) <= 4 * std / sqrt(n), "%s: mean %g, expected 0 +- %g", t->name, m, 4 * std / sqrt(n));
    cr_assert(fabs(s - std) <= 4 * std / sqrt(2 * n), "%s: std %g, expected %g +- %g", t->name, s, std,
              4 * std / sqrt(2 * n));
}

static inline double silu_d(double z) { return z / (1 + exp(-z)); }

#endif
