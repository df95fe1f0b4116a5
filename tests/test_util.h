/* test_util.h - helpers shared by the Criterion tests: a context per test, relative error, gradcheck
 * assertion, filling, and the size knob for the sanitizer run. */
#ifndef OX_TEST_UTIL_H
#define OX_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/alloc.h"
#include "tensor/rng.h"

/* A fresh context with OX_TEST_THREADS threads (the Makefile sets 1; tests of threading set their own). */
static inline ox_ctx *test_ctx(void)
{
    ox_ctx *ctx = ox_ctx_new();
    cr_assert_not_null(ctx);
    const char *t = getenv("OX_TEST_THREADS");
    ox_ctx_set_threads(ctx, t ? atoi(t) : 1);
    return ctx;
}

/* 1 under `make test-asan`: tests with a size knob use smaller sizes. */
static inline int test_small(void) { return getenv("OX_TEST_SMALL") != NULL; }

/* rel(a, ref) = max|a - ref| / max|ref|, the metric of MODELS.md section 1. */
static inline double rel_err(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num || d != d)
            num = d != d ? INFINITY : d;
        if (fabs((double)ref[i]) > den)
            den = fabs((double)ref[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

/* Asserts rel(got, ref) <= tol (both read in row-major order, any strides); `file` (may be "") and `what`
 * name the tensor in the failure message. */
static inline void assert_rel(ox_ctx *ctx, const char *file, const char *what, const ox_tensor *got,
                              const ox_tensor *ref, double tol)
{
    cr_assert_not_null(got, "%s: %s missing (%s)", file, what, ox_ctx_message(ctx));
    cr_assert_not_null(ref, "%s: reference %s missing", file, what);
    cr_assert_eq(ox_tensor_numel(got), ox_tensor_numel(ref), "%s: %s size", file, what);
    ox_tensor *g = ox_tensor_contiguous(ctx, (ox_tensor *)got), *r = ox_tensor_contiguous(ctx, (ox_tensor *)ref);
    cr_assert_not_null(g, "%s", ox_ctx_message(ctx));
    cr_assert_not_null(r, "%s", ox_ctx_message(ctx));
    double e = rel_err(ox_tensor_f32(g), ox_tensor_f32(r), ox_tensor_numel(r));
    cr_assert_leq(e, tol, "%s: %s rel error %.3g > %.0e", file, what, e, tol);
}

/* An arena leaf [shape] filled with normal(0, std) values, requiring a gradient. */
static inline ox_tensor *test_leaf(ox_ctx *ctx, ox_rng *rng, int ndim, const int64_t *shape, double std)
{
    ox_tensor *t = ox_tensor_randn(ctx, rng, ndim, shape, 0.0, std);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_tensor_require_grad(ctx, t), OX_OK);
    return t;
}

#define assert_ok(ctx, expr) \
    cr_assert((expr) == OX_OK, "%s failed: %s", #expr, ox_ctx_message(ctx))

#define assert_gradcheck(ctx, f, arg, n, inputs, opts) \
    cr_assert(ox_gradcheck((ctx), (f), (arg), (n), (inputs), (opts)) == OX_OK, "%s", ox_ctx_message(ctx))

#endif
