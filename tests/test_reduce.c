/* test_reduce.c - reductions (sum, mean, max, logsumexp and their *_all forms), softmax / log_softmax,
 * cumsum and tril: forward against plain double-precision loops on contiguous, transposed, sliced and
 * permuted inputs for every axis; gradients by gradcheck with views made inside the checked function;
 * errors; numerical edge cases (-inf masks, large magnitudes, ties, NaN, empty axes); bit-identical
 * results at 1 and 2 threads. Suites: reduce, softmax, cumsum, tril. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

#define U32 5.9604644775390625e-8     /* fp32 unit roundoff, 2^-24 */

/* x at logical row-major index i, whatever its strides */
static double at(const ox_tensor *x, int64_t i)
{
    int64_t off = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        off += (i % x->shape[d]) * x->stride[d];
        i /= x->shape[d];
    }
    return ox_tensor_f32(x)[off];
}

/* outer, n, inner of a reduction over `axis` (-1: all elements) */
static void split(const ox_tensor *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    *n = ox_tensor_numel(x);
    if (axis < 0)
        return;
    for (int d = 0; d < axis; d++)
        *outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
    *n = x->shape[axis];
}

/* ================================================================ reduce */

enum { OP_SUM, OP_MEAN, OP_MAX, OP_LSE, N_OPS };
static const char *const op_names[] = { "sum", "mean", "max", "logsumexp" };
typedef ox_tensor *(*axis_fn)(ox_ctx *, ox_tensor *, int, int);
typedef ox_tensor *(*all_fn)(ox_ctx *, ox_tensor *);
static const axis_fn axis_ops[] = { ox_ag_sum, ox_ag_mean, ox_ag_max, ox_ag_logsumexp };
static const all_fn all_ops[] = { ox_ag_sum_all, ox_ag_mean_all, ox_ag_max_all, ox_ag_logsumexp_all };

/* The double reference: out[o * inner + k] over the axis; scale[] = what the error is measured against
 * (sum |x| for sum, sum |x| / n for mean, max(1, |out|) for logsumexp); arg = first argmax. */
static void ref_reduce(const ox_tensor *x, int op, int axis, double *out, double *scale, int64_t *arg)
{
    int64_t outer, n, inner;
    split(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) {
            double s = 0, a = 0, m = -INFINITY;
            int64_t am = 0;
            for (int64_t r = 0; r < n; r++) {
                double v = at(x, (o * n + r) * inner + k);
                s += v;
                a += fabs(v);
                if (v > m) {
                    m = v;
                    am = r;
                }
            }
            double e = 0;
            for (int64_t r = 0; r < n; r++)
                e += exp(at(x, (o * n + r) * inner + k) - m);
            int64_t i = o * inner + k;
            arg[i] = am;
            switch (op) {
            case OP_SUM: out[i] = s; scale[i] = a; break;
            case OP_MEAN: out[i] = s / n; scale[i] = a / n; break;
            case OP_MAX: out[i] = m; scale[i] = 0; break;
            case OP_LSE: out[i] = m + log(e); scale[i] = fmax(1, fabs(out[i])); break;
            }
        }
}

/* Forward tolerance, |y - ref| <= tol * scale:
 *  - sum: 1e-6 sum|x|. fp32 recursive summation errs by at most (chain length) u sum|x|; our chains are
 *    at most ~16 adds for n <= 33 (rigorous bound 1e-6), and for the 20000-long axis (16 lanes of
 *    ~1000 adds, partials combined) the rounding errors add like a random walk, ~sqrt(1000) u |partial|,
 *    30x below the bound. A dropped or doubled element errs by |x_i| ~ sum|x| / n >= 5e-5 sum|x|.
 *  - mean: the same on sum|x| / n (the scaling by 1/n adds 2u).
 *  - max: exact (no arithmetic).
 *  - logsumexp: 1e-5 max(1, |y|): the error is the relative error of sum exp(x - m) (positive terms:
 *    ~sqrt(chain) u, at most ~2e-6 here) plus 1 ulp each from expf and logf; a wrong term at n <= 33
 *    errs by > 1e-2. */
static const double fwd_tol[] = { 1e-6, 1e-6, 0, 1e-5 };

static void check_reduction(ox_ctx *ctx, const char *what, const ox_tensor *x, int op, int axis_arg,
                            int keepdim, int all)
{
    int axis = all ? -1 : (axis_arg < 0 ? axis_arg + x->ndim : axis_arg);
    ox_tensor *y = all ? all_ops[op](ctx, (ox_tensor *)x) : axis_ops[op](ctx, (ox_tensor *)x, axis_arg, keepdim);
    cr_assert_not_null(y, "%s %s axis %d: %s", what, op_names[op], axis_arg, ox_ctx_message(ctx));
    /* shape: the axis removed, or kept as 1, or [] */
    if (all) {
        cr_assert_eq(y->ndim, 0, "%s %s_all: ndim %d", what, op_names[op], y->ndim);
    } else {
        cr_assert_eq(y->ndim, x->ndim - !keepdim);
        for (int d = 0, e = 0; d < x->ndim; d++) {
            if (d == axis && !keepdim)
                continue;
            cr_assert_eq(y->shape[e], d == axis ? 1 : x->shape[d], "%s %s axis %d keepdim %d: shape", what,
                         op_names[op], axis_arg, keepdim);
            e++;
        }
    }
    int64_t m = ox_tensor_numel(y);
    double *ref = malloc(sizeof(double) * (size_t)m), *scale = malloc(sizeof(double) * (size_t)m);
    int64_t *arg = malloc(sizeof(int64_t) * (size_t)m);
    ref_reduce(x, op, axis, ref, scale, arg);
    for (int64_t i = 0; i < m; i++) {
        double v = ox_tensor_f32(y)[i];
        cr_assert(fabs(v - ref[i]) <= fwd_tol[op] * scale[i], "%s %s axis %d keepdim %d all %d: [%lld] %.9g vs %.9g",
                  what, op_names[op], axis_arg, keepdim, all, (long long)i, v, ref[i]);
    }
    free(ref);
    free(scale);
    free(arg);
}

/* The inputs every forward test runs on: sizes 1, 7, 33, contiguous or not, plus two shapes whose
 * reduced axis is long enough to be split into chunks (over the last axis and over a middle axis). */
static int reduce_inputs(ox_ctx *ctx, ox_rng *rng, ox_tensor **xs, const char **names)
{
    int k = 0;
    names[k] = "contiguous [7, 1, 33]";
    xs[k++] = ox_tensor_randn(ctx, rng, OX_DIMS(7, 1, 33), 0, 1);
    names[k] = "transposed [7, 33]";
    xs[k++] = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(33, 7), 0, 1), 0, 1);
    names[k] = "sliced [7, 33, 5]";
    ox_tensor *b = ox_tensor_randn(ctx, rng, OX_DIMS(9, 40, 5), 0, 1);
    xs[k++] = ox_tensor_view_narrow(ctx, ox_tensor_view_narrow(ctx, b, 0, 1, 7), 1, 3, 33);
    names[k] = "permuted [33, 5, 7]";
    xs[k++] = ox_tensor_view_permute(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(5, 7, 33), 0, 1), (int[]){ 2, 0, 1 });
    names[k] = "one element [1]";
    xs[k++] = ox_tensor_randn(ctx, rng, OX_DIMS(1), 0, 1);
    names[k] = "long last axis [3, 20000]";
    xs[k++] = ox_tensor_randn(ctx, rng, OX_DIMS(3, 20000), 0, 1);
    names[k] = "long middle axis [2, 100, 600]";
    xs[k++] = ox_tensor_randn(ctx, rng, OX_DIMS(2, 100, 600), 0, 1);
    for (int i = 0; i < k; i++)
        cr_assert_not_null(xs[i], "%s", ox_ctx_message(ctx));
    return k;
}

Test(reduce, forward_every_op_axis_and_layout)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(100);
    ox_tensor *xs[8];
    const char *names[8];
    int nx = reduce_inputs(ctx, &rng, xs, names);
    for (int i = 0; i < nx; i++)
        for (int op = 0; op < N_OPS; op++) {
            for (int axis = -xs[i]->ndim; axis < xs[i]->ndim; axis++)
                for (int keepdim = 0; keepdim < 2; keepdim++)
                    check_reduction(ctx, names[i], xs[i], op, axis, keepdim, 0);
            check_reduction(ctx, names[i], xs[i], op, 0, 0, 1);
        }
    /* max of an input that requires a gradient runs the argmax kernels: same values */
    for (int i = 5; i < nx; i++) {
        cr_assert_eq(ox_tensor_require_grad(ctx, xs[i]), OX_OK);
        for (int axis = 0; axis < xs[i]->ndim; axis++)
            check_reduction(ctx, names[i], xs[i], OP_MAX, axis, 0, 0);
        check_reduction(ctx, names[i], xs[i], OP_MAX, 0, 0, 1);
    }
    ox_ctx_free(ctx);
}

Test(reduce, bad_axis_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 4));
    const int bad[] = { 3, -4, 100 };
    for (int op = 0; op < N_OPS; op++)
        for (int b = 0; b < 3; b++) {
            cr_assert_null(axis_ops[op](ctx, x, bad[b], 0));
            cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG, "%s axis %d", op_names[op], bad[b]);
            char want[32];
            snprintf(want, sizeof want, "axis %d", bad[b]);
            cr_assert(strstr(ox_ctx_message(ctx), op_names[op]) && strstr(ox_ctx_message(ctx), want) &&
                          strstr(ox_ctx_message(ctx), "[2, 3, 4]"),
                      "message names the op, the axis and the shape: %s", ox_ctx_message(ctx));
            /* sticky: nothing runs until cleared */
            cr_assert_null(ox_ag_sum_all(ctx, x));
            ox_ctx_clear_error(ctx);
        }
    cr_assert_null(ox_ag_sum(ctx, NULL, 0, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK, "a NULL input returns NULL without a new error");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(4));
    cr_assert_null(ox_ag_mean(ctx, ids, 0, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
    ox_ctx_free(ctx);
}

Test(reduce, empty_axis)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 0));
    ox_tensor *s = ox_ag_sum(ctx, x, 1, 0), *m = ox_ag_mean(ctx, x, 1, 0), *l = ox_ag_logsumexp(ctx, x, -1, 1);
    cr_assert(s && m && l, "%s", ox_ctx_message(ctx));
    cr_assert_eq(l->ndim, 2);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ox_tensor_f32(s)[i], 0.0f);
        cr_assert(isnan(ox_tensor_f32(m)[i]));
        cr_assert(isinf(ox_tensor_f32(l)[i]) && ox_tensor_f32(l)[i] < 0);
    }
    ox_tensor *z = ox_ag_sum(ctx, x, 0, 0);     /* [0]: nothing to compute */
    cr_assert(z && z->ndim == 1 && z->shape[0] == 0, "%s", ox_ctx_message(ctx));
    cr_assert_null(ox_ag_max(ctx, x, 1, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "empty"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_ag_max_all(ctx, x));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}

/* max's gradient goes to the FIRST maximal element: ties placed within one lane, across lanes, in the
 * tail after the 16-lane body, across chunks of the long-axis split, and along a middle axis. */
Test(reduce, max_gradient_goes_to_first_of_ties)
{
    ox_ctx *ctx = test_ctx();
    struct { int64_t n; int64_t ties[3]; } cases[] = {
        { 5, { 0, 2, 4 } },             /* short row, scalar path */
        { 40, { 3, 19, 35 } },          /* same lane (3 = 19 = 35 mod 16) */
        { 40, { 20, 3, -1 } },          /* lanes 4 and 3: the smaller index is in the later-tested lane */
        { 40, { 33, 10, -1 } },         /* tail (33) vs body */
        { 40000, { 30000, 20000, 5000 } }, /* three chunks of 16384 */
        { 40000, { 35000, 20000, -1 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t n = cases[c].n, first = n;
        ox_rng rng = ox_rng_seed(7 + c);
        ox_tensor *x = ox_tensor_rand(ctx, &rng, OX_DIMS(2, n), -1, 1);
        for (int t = 0; t < 3; t++)
            if (cases[c].ties[t] >= 0) {
                ox_tensor_f32(x)[n + cases[c].ties[t]] = 2.0f;      /* row 1 */
                first = cases[c].ties[t] < first ? cases[c].ties[t] : first;
            }
        ox_tensor_f32(x)[n - 1] = 1.5f;                             /* row 0: a unique max at the end */
        assert_ok(ctx, ox_tensor_require_grad(ctx, x));
        ox_tensor *y = ox_ag_max(ctx, x, 1, 0);
        cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
        cr_assert_eq(ox_tensor_f32(y)[0], 1.5f);
        cr_assert_eq(ox_tensor_f32(y)[1], 2.0f);
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, y)));
        const float *g = ox_tensor_f32(x->grad);
        for (int64_t i = 0; i < n; i++) {
            cr_assert_eq(g[i], i == n - 1 ? 1.0f : 0.0f, "case %zu row 0 [%lld]", c, (long long)i);
            cr_assert_eq(g[n + i], i == first ? 1.0f : 0.0f, "case %zu row 1 [%lld]: first max is %lld", c,
                         (long long)i, (long long)first);
        }
        /* the same through max_all (row 1 holds the global max) */
        ox_ag_zero_grad(&x, 1);
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_max_all(ctx, x)));
        for (int64_t i = 0; i < 2 * n; i++)
            cr_assert_eq(g[i], i == n + first ? 1.0f : 0.0f, "case %zu max_all [%lld]", c, (long long)i);
        ox_ctx_reset(ctx);
    }
    /* along a middle axis (inner > 1): x [3, 50, 4], ties at rows 7 and 40 of column 2 */
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *x = ox_tensor_rand(ctx, &rng, OX_DIMS(3, 50, 4), -1, 1);
    ox_tensor_f32(x)[(1 * 50 + 40) * 4 + 2] = 5.0f;
    ox_tensor_f32(x)[(1 * 50 + 7) * 4 + 2] = 5.0f;
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_max(ctx, x, 1, 1))));
    cr_assert_eq(ox_tensor_f32(x->grad)[(1 * 50 + 7) * 4 + 2], 1.0f);
    cr_assert_eq(ox_tensor_f32(x->grad)[(1 * 50 + 40) * 4 + 2], 0.0f);
    ox_ctx_free(ctx);
}

Test(reduce, max_and_logsumexp_propagate_nan)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    const int64_t lens[] = { 5, 40, 20000 };
    for (int c = 0; c < 3; c++) {
        ox_tensor *x = ox_tensor_rand(ctx, &rng, OX_DIMS(lens[c]), -1, 1);
        ox_tensor_f32(x)[lens[c] / 2] = NAN;
        cr_assert(isnan(ox_tensor_f32(ox_ag_max_all(ctx, x))[0]), "n = %lld", (long long)lens[c]);
        cr_assert(isnan(ox_tensor_f32(ox_ag_logsumexp(ctx, x, 0, 0))[0]), "n = %lld", (long long)lens[c]);
    }
    ox_tensor *x = ox_tensor_rand(ctx, &rng, OX_DIMS(6, 3), -1, 1);    /* middle-axis path */
    ox_tensor_f32(x)[4 * 3 + 1] = NAN;
    ox_tensor *y = ox_ag_max(ctx, x, 0, 0);
    cr_assert(!isnan(ox_tensor_f32(y)[0]) && isnan(ox_tensor_f32(y)[1]) && !isnan(ox_tensor_f32(y)[2]));
    ox_ctx_free(ctx);
}

Test(reduce, logsumexp_large_magnitudes_do_not_overflow)
{
    ox_ctx *ctx = test_ctx();
    /* rows: all near +1000 (exp overflows without the shift), all near -1000 (underflows to log 0),
     * mixed, and all -inf (result -inf) */
    float v[4][5] = { { 1000, 999, 1000, 998.5f, 1001 },
                      { -1000, -1001, -999, -1000, -1002 },
                      { 1000, -1000, 0, -INFINITY, 999 },
                      { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY } };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(4, 5), v);
    ox_tensor *y = ox_ag_logsumexp(ctx, x, 1, 0);
    ox_tensor *yt = ox_ag_logsumexp(ctx, ox_tensor_view_transpose(ctx, x, 0, 1), 0, 0);  /* middle-axis path */
    cr_assert(y && yt, "%s", ox_ctx_message(ctx));
    for (int r = 0; r < 3; r++) {
        double m = -INFINITY, s = 0;
        for (int c = 0; c < 5; c++)
            m = fmax(m, v[r][c]);
        for (int c = 0; c < 5; c++)
            s += exp(v[r][c] - m);
        double ref = m + log(s);    /* |ref| ~ 1000: 1e-5 relative as in the forward test */
        cr_assert(isfinite(ox_tensor_f32(y)[r]) && fabs(ox_tensor_f32(y)[r] - ref) <= 1e-5 * fabs(ref),
                  "row %d: %.9g vs %.9g", r, ox_tensor_f32(y)[r], ref);
        cr_assert(fabs(ox_tensor_f32(yt)[r] - ref) <= 1e-5 * fabs(ref), "row %d transposed", r);
    }
    cr_assert(isinf(ox_tensor_f32(y)[3]) && ox_tensor_f32(y)[3] < 0);
    cr_assert(isinf(ox_tensor_f32(yt)[3]) && ox_tensor_f32(yt)[3] < 0);
    /* the gradient exp(x - y) is a finite softmax even at +-1000; the -inf entry gets 0 */
    float w[2][5];
    memcpy(w, v, sizeof w);
    ox_tensor *x2 = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2, 5), w);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x2));
    assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_logsumexp(ctx, x2, 1, 0))));
    for (int r = 0; r < 2; r++) {
        double m = -INFINITY, s = 0, gs = 0;
        for (int c = 0; c < 5; c++)
            m = fmax(m, w[r][c]);
        for (int c = 0; c < 5; c++)
            s += exp(w[r][c] - m);
        /* backward reads the fp32 output y, rounded to within u |y| (6e-5 at |y| ~ 1000); that error
         * enters exp(x - y) as a relative error: tolerance (1e-5 + 4 u |y|) of the weight */
        double tol = 1e-5 + 4 * U32 * fabs(m + log(s));
        for (int c = 0; c < 5; c++) {
            double g = ox_tensor_f32(x2->grad)[r * 5 + c], ref = exp(w[r][c] - m) / s;
            cr_assert(fabs(g - ref) <= tol * ref, "grad [%d, %d] %.9g vs %.9g", r, c, g, ref);
            gs += g;
        }
        cr_assert(fabs(gs - 1) <= tol, "weights sum to %.9g", gs);
    }
    ox_ctx_free(ctx);
}

/* ---- gradients ---- */

struct red_case { int op, axis, keepdim, all, view; };

/* views: 0 transpose(0, 2) of [5, 4, 3] -> [3, 4, 5]; 1 narrow -> [5, 2, 3]; 2 expand [5, 1, 3] of
 * a [5, 4, 3] input's slice -> broadcast along axis 1 */
static ox_tensor *view_of(ox_ctx *ctx, ox_tensor *x, int view)
{
    switch (view) {
    case 0: return ox_ag_transpose(ctx, x, 0, 2);
    case 1: return ox_ag_narrow(ctx, x, 1, 1, 2);
    default: return ox_ag_expand(ctx, ox_ag_narrow(ctx, x, 1, 2, 1), 3, (int64_t[]){ 5, 6, 3 });
    }
}

static ox_tensor *f_reduce(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct red_case *c = arg;
    ox_tensor *v = view_of(ctx, in[0], c->view);
    if (!c->all)
        return axis_ops[c->op](ctx, v, c->axis, c->keepdim);
    /* the scalar is expanded to [8] so that the check weights it by the sum of 8 normals (seed 1 gives
     * one R of 0.03, which would make every gradient too small to check) */
    return ox_ag_expand(ctx, all_ops[c->op](ctx, v), 1, (int64_t[]){ 8 });
}

/* Inputs of order one. For max, a shuffled ladder of distinct values 0.1 apart (>> the step 1e-3, so
 * no difference quotient crosses a change of argmax); the expanded view (view 2) repeats values along
 * the broadcast axis, whose ties go to the first copy: max is checked there only over other axes. */
static ox_tensor *red_input(ox_ctx *ctx, int op, uint64_t seed)
{
    ox_rng rng = ox_rng_seed(seed);
    ox_tensor *x = ox_tensor_randn(ctx, &rng, OX_DIMS(5, 4, 3), 0, 1);
    if (op == OP_MAX) {
        float *v = ox_tensor_f32(x);
        for (int i = 0; i < 60; i++)
            v[i] = 0.1f * (float)(i - 30);
        for (int i = 59; i > 0; i--) {
            int j = (int)ox_rng_below(&rng, (uint64_t)i + 1);
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
    cr_assert_eq(ox_tensor_require_grad(ctx, x), OX_OK);
    return x;
}

/* fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3; MODELS.md section 11 item 9) for every case: every
 * op here is smooth at these inputs (max: distinct values, see red_input). */
Test(reduce, gradcheck_every_op_axis_and_view)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int op = 0; op < N_OPS; op++)
        for (int view = 0; view < 3; view++) {
            for (int axis = -3; axis < 3; axis++) {
                if (op == OP_MAX && view == 2 && (axis == 1 || axis == -2))
                    continue;       /* a max over broadcast copies: a tie by construction, see red_input */
                struct red_case c = { op, axis, axis & 1, 0, view };
                ox_tensor *x = red_input(ctx, op, 20 + (uint64_t)(op * 10 + axis + 3));
                ox_status s = ox_gradcheck(ctx, f_reduce, &c, 1, &x, &o);
                cr_assert_eq(s, OX_OK, "%s axis %d keepdim %d view %d: %s", op_names[op], axis, c.keepdim, view,
                             ox_ctx_message(ctx));
            }
            if (op == OP_MAX && view == 2)
                continue;
            struct red_case c = { op, 0, 0, 1, view };
            ox_tensor *x = red_input(ctx, op, 90 + (uint64_t)op);
            ox_status s = ox_gradcheck(ctx, f_reduce, &c, 1, &x, &o);
            cr_assert_eq(s, OX_OK, "%s_all view %d: %s", op_names[op], view, ox_ctx_message(ctx));
        }
    ox_ctx_free(ctx);
}

/* ---- determinism ---- */

/* forward output and input gradient of f at n_threads, into out/grad (malloc'd copies) */
static void run_at(ox_ctx *ctx, int n_threads, ox_tensor *x, ox_tensor *(*f)(ox_ctx *, ox_tensor *, int),
                   int arg, float **out, int64_t *n_out, float **grad)
{
    ox_ctx_set_threads(ctx, n_threads);
    ox_ag_zero_grad(&x, 1);
    ox_tensor *y = f(ctx, x, arg);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    *n_out = ox_tensor_numel(y);
    *out = malloc(sizeof(float) * (size_t)*n_out);
    memcpy(*out, ox_tensor_f32(y), sizeof(float) * (size_t)*n_out);
    ox_rng rng = ox_rng_seed(77);
    ox_tensor *seed = ox_tensor_randn(ctx, &rng, y->ndim, y->shape, 0, 1);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
    int64_t n = ox_tensor_numel(x);
    *grad = malloc(sizeof(float) * (size_t)n);
    memcpy(*grad, ox_tensor_f32(x->grad), sizeof(float) * (size_t)n);
}

static void assert_same_bits_1_2_threads(ox_ctx *ctx, ox_tensor *x, ox_tensor *(*f)(ox_ctx *, ox_tensor *, int),
                                         int arg, const char *what)
{
    float *o1, *o2, *g1, *g2;
    int64_t n1, n2;
    run_at(ctx, 1, x, f, arg, &o1, &n1, &g1);
    run_at(ctx, 2, x, f, arg, &o2, &n2, &g2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(o1, o2, sizeof(float) * (size_t)n1) == 0, "%s arg %d: outputs differ at 1 and 2 threads", what, arg);
    cr_assert(memcmp(g1, g2, sizeof(float) * (size_t)ox_tensor_numel(x)) == 0,
              "%s arg %d: gradients differ at 1 and 2 threads", what, arg);
    free(o1);
    free(o2);
    free(g1);
    free(g2);
}

/* wrappers with one int argument: the axis (-1 .. 1), or 2 for the *_all form */
static ox_tensor *w_sum(ox_ctx *c, ox_tensor *x, int a) { return a == 2 ? ox_ag_sum_all(c, x) : ox_ag_sum(c, x, a, 0); }
static ox_tensor *w_mean(ox_ctx *c, ox_tensor *x, int a) { return a == 2 ? ox_ag_mean_all(c, x) : ox_ag_mean(c, x, a, 1); }
static ox_tensor *w_max(ox_ctx *c, ox_tensor *x, int a) { return a == 2 ? ox_ag_max_all(c, x) : ox_ag_max(c, x, a, 0); }
static ox_tensor *w_lse(ox_ctx *c, ox_tensor *x, int a) { return a == 2 ? ox_ag_logsumexp_all(c, x) : ox_ag_logsumexp(c, x, a, 0); }

/* 300 x 1000 (300k elements, above OX_PARALLEL_MIN, so 2 threads do split the work): the split depends on
 * the shape only, so 1 and 2 threads must give the same bits, forward and backward. */
Test(reduce, same_bits_at_1_and_2_threads)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(300);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(300, 1000), 1.0);
    ox_tensor *(*fs[])(ox_ctx *, ox_tensor *, int) = { w_sum, w_mean, w_max, w_lse };
    for (int f = 0; f < 4; f++)
        for (int a = 0; a <= 2; a++)
            assert_same_bits_1_2_threads(ctx, x, fs[f], a, op_names[f]);
    ox_ctx_free(ctx);
}

/* ================================================================ softmax */

/* double reference of (log_)softmax over the last axis of x into ref (row-major) */
static void ref_softmax(const ox_tensor *x, int log_form, double *ref)
{
    int64_t c = x->shape[x->ndim - 1], rows = ox_tensor_numel(x) / c;
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t i = 0; i < c; i++)
            m = fmax(m, at(x, r * c + i));
        for (int64_t i = 0; i < c; i++)
            s += exp(at(x, r * c + i) - m);
        for (int64_t i = 0; i < c; i++) {
            double z = at(x, r * c + i) - m;
            ref[r * c + i] = log_form ? z - log(s) : exp(z) / s;
        }
    }
}

/* Tolerance |y - ref| <= 1e-5 * (softmax: ref; log_softmax: max(1, |ref|)): expf/logf are within 1 ulp,
 * the row sum of <= 1000 positive terms in 16 lanes has chains of <= ~70 adds (~sqrt(70) u ~ 5e-7 in
 * practice), then one division or subtraction: ~1e-6 in all, 10x below. A wrong shift or normaliser errs
 * by >= 1e-3. -inf references (masked entries of log_softmax) must be matched exactly, and 0 references
 * (masked entries of softmax) too. Probabilities below FLT_MIN (exp(-500) in the large-magnitude test)
 * underflow in fp32: an absolute floor of FLT_MIN covers them. */
static void check_softmax(ox_ctx *ctx, const char *what, const ox_tensor *x, int log_form)
{
    ox_tensor *y = log_form ? ox_ag_log_softmax(ctx, (ox_tensor *)x) : ox_ag_softmax(ctx, (ox_tensor *)x);
    cr_assert_not_null(y, "%s: %s", what, ox_ctx_message(ctx));
    cr_assert(ox_tensor_same_shape(x, y));
    int64_t n = ox_tensor_numel(x);
    double *ref = malloc(sizeof(double) * (size_t)n);
    ref_softmax(x, log_form, ref);
    for (int64_t i = 0; i < n; i++) {
        double v = ox_tensor_f32(y)[i];
        if (isinf(ref[i]) || ref[i] == 0)
            cr_assert(v == ref[i], "%s log %d [%lld]: %g vs %g", what, log_form, (long long)i, v, ref[i]);
        else
            cr_assert(fabs(v - ref[i]) <= 1e-5 * (log_form ? fmax(1, fabs(ref[i])) : ref[i]) + FLT_MIN,
                      "%s log %d [%lld]: %.9g vs %.9g", what, log_form, (long long)i, v, ref[i]);
    }
    free(ref);
}

Test(softmax, forward_matches_reference_on_strided_inputs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(200);
    ox_tensor *xs[] = {
        ox_tensor_randn(ctx, &rng, OX_DIMS(7, 33), 0, 2),
        ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(33, 7), 0, 2), 0, 1),
        ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(3, 4, 40), 0, 2), 2, 5, 33),
        ox_tensor_randn(ctx, &rng, OX_DIMS(1, 1), 0, 2),
        ox_tensor_randn(ctx, &rng, OX_DIMS(7), 0, 2),
        ox_tensor_randn(ctx, &rng, OX_DIMS(2, 1000), 0, 2),
    };
    const char *names[] = { "[7, 33]", "transposed [7, 33]", "sliced [3, 4, 33]", "[1, 1]", "[7]", "[2, 1000]" };
    for (int i = 0; i < 6; i++)
        for (int lf = 0; lf < 2; lf++)
            check_softmax(ctx, names[i], xs[i], lf);
    ox_ctx_free(ctx);
}

Test(softmax, masked_rows_from_tril_are_finite_and_correct)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(201);
    const int64_t diags[] = { 0, -1, 2 };
    for (int d = 0; d < 3; d++) {
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(2, 6, 6), 1.0);
        ox_tensor *m = ox_ag_tril(ctx, x, diags[d], -INFINITY);
        if (diags[d] < 0)       /* row 0 is fully masked for diagonal -1: take rows 1.. only */
            m = ox_ag_narrow(ctx, m, 1, 1, 5);
        ox_tensor *p = ox_ag_softmax(ctx, m);
        cr_assert_not_null(p, "%s", ox_ctx_message(ctx));
        int64_t rows = ox_tensor_numel(p) / 6;
        for (int64_t r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < 6; c++) {
                float v = ox_tensor_f32(p)[r * 6 + c];
                cr_assert(isfinite(v), "diag %lld row %lld col %d: %g", (long long)diags[d], (long long)r, c, v);
                s += v;
            }
            cr_assert(fabs(s - 1) <= 1e-5, "row sums to %.9g", s);
        }
        check_softmax(ctx, "masked", m, 0);     /* masked entries exactly 0 */
        check_softmax(ctx, "masked", m, 1);     /* masked entries exactly -inf, the rest finite */
        /* backward through the mask: finite everywhere, exactly 0 where masked */
        ox_tensor *seed = ox_tensor_randn(ctx, &rng, p->ndim, p->shape, 0, 1);
        assert_ok(ctx, ox_ag_backward_seeded(ctx, p, seed));
        for (int b = 0; b < 2; b++)
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 6; c++) {
                    float g = ox_tensor_f32(x->grad)[(b * 6 + r) * 6 + c];
                    int used = c <= r + diags[d] && (diags[d] >= 0 || r >= 1);
                    cr_assert(isfinite(g));
                    if (!used)
                        cr_assert_eq(g, 0.0f, "diag %lld [%d, %d, %d]", (long long)diags[d], b, r, c);
                }
        ox_ctx_reset(ctx);
    }
    ox_ctx_free(ctx);
}

Test(softmax, large_magnitudes_do_not_overflow)
{
    ox_ctx *ctx = test_ctx();
    float v[3][4] = { { 1000, 999, 998, 1000 }, { -1000, -1001, -999.5f, -1000 }, { 1000, -1000, 0, 500 } };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3, 4), v);
    for (int lf = 0; lf < 2; lf++) {
        ox_tensor *y = lf ? ox_ag_log_softmax(ctx, x) : ox_ag_softmax(ctx, x);
        for (int i = 0; i < 12; i++)
            cr_assert(isfinite(ox_tensor_f32(y)[i]), "log %d [%d] = %g", lf, i, ox_tensor_f32(y)[i]);
        check_softmax(ctx, "large", x, lf);
    }
    ox_ctx_free(ctx);
}

Test(softmax, bad_input_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *s = ox_tensor_zeros(ctx, OX_F32, 0, (int64_t[]){ 0 });
    cr_assert_null(ox_ag_softmax(ctx, s));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "softmax") && strstr(ox_ctx_message(ctx), "[]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_log_softmax(ctx, ids));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
    ox_ctx_free(ctx);
}

static ox_tensor *f_softmax(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    int mode = *(const int *)arg;
    switch (mode) {
    case 0: return ox_ag_softmax(ctx, ox_ag_transpose(ctx, in[0], 0, 1));
    case 1: return ox_ag_log_softmax(ctx, ox_ag_transpose(ctx, in[0], 0, 1));
    case 2: return ox_ag_softmax(ctx, ox_ag_tril(ctx, ox_ag_narrow(ctx, in[0], 0, 1, 5), 0, -INFINITY));
    default: return ox_ag_log_softmax(ctx, ox_ag_expand(ctx, ox_ag_narrow(ctx, in[0], 0, 0, 1), 2,
                                                        (int64_t[]){ 3, 5 }));
    }
}

/* fp32 defaults (MODELS.md section 11 item 9): softmax is smooth; inputs std 1 so probabilities are not
 * saturated and gradients are of order 0.1-1. */
Test(softmax, gradcheck_softmax_and_log_softmax)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int mode = 0; mode < 4; mode++) {
        ox_rng rng = ox_rng_seed(210 + (uint64_t)mode);
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(6, 5), 1.0);
        ox_status s = ox_gradcheck(ctx, f_softmax, &mode, 1, &x, &o);
        cr_assert_eq(s, OX_OK, "mode %d: %s", mode, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

static ox_tensor *w_softmax(ox_ctx *c, ox_tensor *x, int lf) { return lf ? ox_ag_log_softmax(c, x) : ox_ag_softmax(c, x); }

Test(softmax, same_bits_at_1_and_2_threads)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(301);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(300, 1000), 1.0);
    for (int lf = 0; lf < 2; lf++)
        assert_same_bits_1_2_threads(ctx, x, w_softmax, lf, "softmax");
    ox_ctx_free(ctx);
}

/* ================================================================ cumsum */

/* Forward tolerance: the fp32 scan adds sequentially, so prefix r errs by at most r u sum_{s<=r} |x_s|
 * (rigorous, to first order); we allow 2 r u sum|x| (+ nothing for r = 0, where y_0 = x_0 exactly).
 * A dropped or doubled term errs by a whole |x_s|. */
static void check_cumsum(ox_ctx *ctx, const char *what, const ox_tensor *x, int axis_arg)
{
    ox_tensor *y = ox_ag_cumsum(ctx, (ox_tensor *)x, axis_arg);
    cr_assert_not_null(y, "%s: %s", what, ox_ctx_message(ctx));
    cr_assert(ox_tensor_same_shape(x, y));
    int axis = axis_arg < 0 ? axis_arg + x->ndim : axis_arg;
    int64_t outer, n, inner;
    split(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) {
            double s = 0, a = 0;
            for (int64_t r = 0; r < n; r++) {
                int64_t i = (o * n + r) * inner + k;
                s += at(x, i);
                a += fabs(at(x, i));
                double v = ox_tensor_f32(y)[i];
                cr_assert(fabs(v - s) <= 2.0 * (double)r * U32 * a, "%s axis %d [%lld]: %.9g vs %.9g", what,
                          axis_arg, (long long)i, v, s);
            }
        }
}

Test(cumsum, forward_every_axis_and_layout)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(400);
    ox_tensor *xs[] = {
        ox_tensor_randn(ctx, &rng, OX_DIMS(7, 1, 33), 0, 1),
        ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(33, 7), 0, 1), 0, 1),
        ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(9, 40, 5), 0, 1), 1, 3, 33),
        ox_tensor_view_permute(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(5, 7, 300), 0, 1), (int[]){ 1, 2, 0 }),
        ox_tensor_randn(ctx, &rng, OX_DIMS(1), 0, 1),
    };
    const char *names[] = { "[7, 1, 33]", "transposed [7, 33]", "sliced [9, 33, 5]", "permuted [7, 300, 5]", "[1]" };
    for (int i = 0; i < 5; i++)
        for (int axis = -xs[i]->ndim; axis < xs[i]->ndim; axis++)
            check_cumsum(ctx, names[i], xs[i], axis);
    ox_ctx_free(ctx);
}

Test(cumsum, bad_axis_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_cumsum(ctx, x, 2));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "cumsum") && strstr(ox_ctx_message(ctx), "axis 2") &&
                  strstr(ox_ctx_message(ctx), "[2, 3]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_ag_cumsum(ctx, x, -3));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}

static ox_tensor *f_cumsum(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    int axis = *(const int *)arg;
    /* [4, 3, 5] -> transpose(0, 2) -> [5, 3, 4] -> narrow axis 0 -> [3, 3, 4]: for the last axis, 9 rows
     * = two blocks of 4 scanned side by side and one row alone */
    return ox_ag_cumsum(ctx, ox_ag_narrow(ctx, ox_ag_transpose(ctx, in[0], 0, 2), 0, 1, 3), axis);
}

/* fp32 defaults (MODELS.md section 11 item 9): cumsum is linear; gradients are sums of up to 4 seed
 * entries, of order one (inputs sliced away get none: the check covers them with numeric 0). */
Test(cumsum, gradcheck_every_axis)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int axis = -3; axis < 3; axis++) {
        ox_rng rng = ox_rng_seed(410 + (uint64_t)(axis + 3));
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(4, 3, 5), 1.0);
        ox_status s = ox_gradcheck(ctx, f_cumsum, &axis, 1, &x, &o);
        cr_assert_eq(s, OX_OK, "axis %d: %s", axis, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

static ox_tensor *w_cumsum(ox_ctx *c, ox_tensor *x, int a) { return ox_ag_cumsum(c, x, a); }

Test(cumsum, same_bits_at_1_and_2_threads)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(302);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(300, 1000), 1.0);
    for (int a = 0; a < 2; a++)
        assert_same_bits_1_2_threads(ctx, x, w_cumsum, a, "cumsum");
    ox_ctx_free(ctx);
}

/* ================================================================ tril */

static void check_tril(ox_ctx *ctx, const char *what, const ox_tensor *x, int64_t diag, double fill)
{
    ox_tensor *y = ox_ag_tril(ctx, (ox_tensor *)x, diag, fill);
    cr_assert_not_null(y, "%s: %s", what, ox_ctx_message(ctx));
    cr_assert(ox_tensor_same_shape(x, y));
    int64_t r = x->shape[x->ndim - 2], c = x->shape[x->ndim - 1], n = ox_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t row = i / c % r, col = i % c;
        float want = (double)col <= (double)row + (double)diag ? (float)at(x, i) : (float)fill;   /* no overflow */
        float v = ox_tensor_f32(y)[i];
        cr_assert(v == want || (isnan(v) && isnan(want)), "%s diag %lld [%lld]: %g vs %g", what, (long long)diag,
                  (long long)i, v, want);
    }
}

Test(tril, forward_every_diagonal_and_fill)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(500);
    ox_tensor *xs[] = {
        ox_tensor_randn(ctx, &rng, OX_DIMS(7, 5), 0, 1),
        ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, 5, 7), 0, 1),
        ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(33, 7), 0, 1), 0, 1),
        ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 9, 9), 0, 1), 2, 2, 6),
        ox_tensor_randn(ctx, &rng, OX_DIMS(1, 1), 0, 1),
    };
    const char *names[] = { "[7, 5]", "[2, 3, 5, 7]", "transposed [7, 33]", "sliced [2, 9, 6]", "[1, 1]" };
    const int64_t diags[] = { 0, -1, -2, 1, 5, -10, 40, INT64_MAX, INT64_MIN };
    const double fills[] = { 0, -INFINITY, 2.5, NAN };
    for (int i = 0; i < 5; i++)
        for (int d = 0; d < 9; d++)
            for (int f = 0; f < 4; f++)
                check_tril(ctx, names[i], xs[i], diags[d], fills[f]);
    ox_ctx_free(ctx);
}

Test(tril, gradient_passes_where_kept_only)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(501);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(2, 4, 6), 1.0);
    ox_tensor *seed = ox_tensor_randn(ctx, &rng, OX_DIMS(2, 4, 6), 0, 1);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, ox_ag_tril(ctx, x, 1, -INFINITY), seed));
    for (int i = 0; i < 48; i++) {
        int row = i / 6 % 4, col = i % 6;
        cr_assert_eq(ox_tensor_f32(x->grad)[i], col <= row + 1 ? ox_tensor_f32(seed)[i] : 0.0f, "[%d]", i);
    }
    ox_ctx_free(ctx);
}

Test(tril, bad_input_is_an_error)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(5));
    cr_assert_null(ox_ag_tril(ctx, x, 0, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "tril") && strstr(ox_ctx_message(ctx), "[5]"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

struct tril_case { int64_t diag; double fill; };

static ox_tensor *f_tril(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct tril_case *c = arg;
    /* [3, 4, 5] -> transpose(1, 2) -> [3, 5, 4] -> narrow rows -> [3, 4, 4] */
    return ox_ag_tril(ctx, ox_ag_narrow(ctx, ox_ag_transpose(ctx, in[0], 1, 2), 1, 1, 4), c->diag, c->fill);
}

/* fp32 defaults (MODELS.md section 11 item 9); tril is linear in x (the fill is a constant). */
Test(tril, gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    const struct tril_case cases[] = { { 0, 0 }, { -1, 3.0 }, { 2, 0 }, { 1, -2.0 } };
    for (int c = 0; c < 4; c++) {
        ox_rng rng = ox_rng_seed(510 + (uint64_t)c);
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(3, 4, 5), 1.0);
        ox_status s = ox_gradcheck(ctx, f_tril, (void *)&cases[c], 1, &x, &o);
        cr_assert_eq(s, OX_OK, "case %d: %s", c, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}
