/* test_ops_moments.c - variance and standard deviation over one axis (autograd/moments.c). Values against a
 * double-precision reference along every axis of a strided input, with corrections 0, 1, 2 and keepdim;
 * accuracy on data with a large mean (where a one-pass formula cancels); gradients by gradcheck; the edge
 * cases (d = 0, an empty axis, a constant row whose std gradient is 0); 1 and 2 threads bit-identical;
 * errors.
 *
 * Suite: ops_moments. */
#include "index_util.h"

#include "tensor/iter.h"

/* var / std of x (read through its strides) along `axis` at the output position `pos` (x's rank, the
 * axis entry ignored), in double. */
static double ref_moment(const ox_tensor *x, int axis, const int64_t *pos, int64_t correction, int std)
{
    int64_t n = x->shape[axis], p[OX_MAX_DIMS];
    memcpy(p, pos, sizeof(int64_t) * (size_t)x->ndim);
    double s = 0, ss = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < n; i++) {
            p[axis] = i;
            int64_t off = 0;
            for (int d = 0; d < x->ndim; d++)
                off += p[d] * x->stride[d];
            double v = ox_tensor_f32(x)[off];
            if (pass == 0)
                s += v;
            else
                ss += (v - s / n) * (v - s / n);
        }
    double var = ss / (double)(n - correction);
    return std ? sqrt(var) : var;
}

/* x [5, 6, 7] built as a permuted view of a [7, 5, 6] tensor (every axis strided) */
Test(ops_moments, values_every_axis_correction_keepdim_strided)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *base = ox_tensor_randn(ctx, &rng, OX_DIMS(7, 5, 6), 0.5, 2.0);
    ox_tensor *x = ox_ag_permute(ctx, base, (const int[]){ 1, 2, 0 });
    cr_assert_not_null(x);
    for (int axis = 0; axis < 3; axis++)
        for (int64_t c = 0; c <= 2; c++)
            for (int keep = 0; keep < 2; keep++)
                for (int sd = 0; sd < 2; sd++) {
                    ox_tensor *y = (sd ? ox_ag_std : ox_ag_var)(ctx, x, axis - 3 * (c == 1), c, keep);
                    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
                    cr_assert_eq(y->ndim, keep ? 3 : 2);
                    int64_t pos[OX_MAX_DIMS] = { 0 };
                    for (pos[0] = 0; pos[0] < (axis == 0 ? 1 : 5); pos[0]++)
                        for (pos[1] = 0; pos[1] < (axis == 1 ? 1 : 6); pos[1]++)
                            for (pos[2] = 0; pos[2] < (axis == 2 ? 1 : 7); pos[2]++) {
                                int64_t o = 0;
                                for (int d = 0; d < 3; d++)
                                    if (d != axis)
                                        o = o * x->shape[d] + pos[d];
                                double ref = ref_moment(x, axis, pos, c, sd), got = ox_tensor_f32(y)[o];
                                /* fp32 two-pass sums of <= 7 terms: a few ulp */
                                cr_assert(fabs(got - ref) <= 2e-6 * ref, "%s axis %d c %lld: %.8g vs %.8g",
                                          sd ? "std" : "var", axis, (long long)c, got, ref);
                            }
                }
    ox_ctx_free(ctx);
}

/* Mean 1e4, spread 1: the one-pass E[x^2] - m^2 loses every digit in fp32 (1e8 - 1e8, ulp 8); the two
 * passes keep the variance to ~1e-3 relative, along the last axis (lanes, tail included: n = 1000) and
 * along a middle axis. */
Test(ops_moments, large_mean_is_accurate_both_kernels)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    int64_t n = 1000;
    ox_tensor *x = ox_tensor_randn(ctx, &rng, OX_DIMS(3, n), 1e4, 1.0);
    ox_tensor *xt = ox_ag_contiguous(ctx, ox_ag_transpose(ctx, x, 0, 1));    /* [n, 3], axis 0 */
    ox_tensor *v1 = ox_ag_var(ctx, x, 1, 1, 0), *v0 = ox_ag_var(ctx, xt, 0, 1, 0);
    cr_assert(v1 && v0, "%s", ox_ctx_message(ctx));
    for (int r = 0; r < 3; r++) {
        double ref = ref_moment(x, 1, (const int64_t[]){ r, 0 }, 1, 0);
        cr_assert(fabs(ox_tensor_f32(v1)[r] - ref) <= 1e-3 * ref, "last axis %g vs %g", ox_tensor_f32(v1)[r], ref);
        cr_assert(fabs(ox_tensor_f32(v0)[r] - ref) <= 1e-3 * ref, "middle axis %g vs %g", ox_tensor_f32(v0)[r], ref);
    }
    ox_ctx_free(ctx);
}

struct mom_arg { int axis; int64_t correction; int std; };

/* in[0] [4, 5, 3] used as its transpose [3, 5, 4]: the op sees a strided input */
static ox_tensor *f_mom(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct mom_arg *m = arg;
    ox_tensor *x = ox_ag_transpose(ctx, in[0], 0, 2);
    return (m->std ? ox_ag_std : ox_ag_var)(ctx, x, m->axis, m->correction, m->axis == 1);
}

/* The fp32 defaults (eps 1e-3, rtol 1e-2, atol 1e-3): x ~ N(0, 1), so the gradients 2 (x - m) / d and
 * (x - m) / (d std) are of order 1/n..1 and std is of order 1, far from its kink at 0; the loss is a
 * smooth quadratic (var) or its square root, so the O(eps^2) truncation term is ~1e-6 relative. */
Test(ops_moments, gradcheck_var_std_axes_corrections)
{
    ox_ctx *ctx = test_ctx();
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    for (int axis = 0; axis < 3; axis++)
        for (int64_t c = 0; c <= 1; c++)
            for (int sd = 0; sd < 2; sd++) {
                ox_rng rng = ox_rng_seed(10 + axis * 4 + c * 2 + sd);
                ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(4, 5, 3), 1.0);
                struct mom_arg a = { axis, c, sd };
                ox_status s = ox_gradcheck(ctx, f_mom, &a, 1, &x, &o);
                cr_assert_eq(s, OX_OK, "%s axis %d correction %lld: %s", sd ? "std" : "var", axis, (long long)c,
                             ox_ctx_message(ctx));
            }
    ox_ctx_free(ctx);
}

Test(ops_moments, edge_cases_zero_divisor_empty_axis_constant_row)
{
    ox_ctx *ctx = test_ctx();
    float v[6] = { 1, 2, 3, 5, 5, 5 };        /* rows [1, 2, 3] and the constant [5, 5, 5] */
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2, 3), v);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    /* n - correction = 0: positive sum of squares / 0 = inf, 0 / 0 = NaN (PyTorch's values) */
    ox_tensor *y = ox_ag_var(ctx, x, 1, 3, 0);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(isinf(ox_tensor_f32(y)[0]) && isnan(ox_tensor_f32(y)[1]));
    y = ox_ag_var(ctx, x, 1, 7, 0);
    cr_assert(isinf(ox_tensor_f32(y)[0]) && isnan(ox_tensor_f32(y)[1]), "d = max(n - correction, 0)");
    /* the constant row: var = std = 0, both gradients exactly 0 (std's by convention, not NaN) */
    for (int sd = 0; sd < 2; sd++) {
        ox_ag_zero_grad(&x, 1);
        ox_tensor *s = (sd ? ox_ag_std : ox_ag_var)(ctx, x, 1, 1, 0);
        cr_assert_eq(ox_tensor_f32(s)[1], 0.0f);
        cr_assert_float_eq(ox_tensor_f32(s)[0], 1.0f, 1e-6);    /* the sample var (and std) of 1, 2, 3 is 1 */
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, s)));
        for (int i = 0; i < 3; i++) {
            /* row 0: var' = 2 (x - 2) / 2 = x - 2; std' = (x - 2) / (2 * 1) */
            float want = sd ? (v[i] - 2.0f) / 2.0f : v[i] - 2.0f;
            cr_assert_float_eq(ox_tensor_f32(x->grad)[i], want, 1e-6);
            cr_assert_eq(ox_tensor_f32(x->grad)[3 + i], 0.0f, "%s of a constant row", sd ? "std" : "var");
        }
    }
    /* an empty axis: NaN, with the other axes kept */
    ox_tensor *e = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 0));
    ox_tensor *ye = ox_ag_std(ctx, e, 1, 0, 1);
    cr_assert_not_null(ye, "%s", ox_ctx_message(ctx));
    cr_assert(ye->ndim == 2 && ye->shape[0] == 2 && ye->shape[1] == 1);
    cr_assert(isnan(ox_tensor_f32(ye)[0]) && isnan(ox_tensor_f32(ye)[1]));
    ox_ctx_free(ctx);
}

/* Enough elements for the parallel paths (outer > 1, numel >= OX_PARALLEL_MIN): x [64, 1031] over its
 * last axis (the lanes kernel, outer 64) and x viewed as [2, 32, 1031] over the middle axis (outer 2,
 * inner 1031). Forward values and gradients (of sum y^2) are bit-identical for 1 and 2 threads. */
Test(ops_moments, threads_bit_identical)
{
    ox_ctx *ctx = test_ctx();
    int64_t rows = 64, cols = 1031;
    for (int middle = 0; middle < 2; middle++)
        for (int sd = 0; sd < 2; sd++) {
            float *ref_y = NULL, *ref_g = NULL;
            for (int threads = 1; threads <= 2; threads++) {
                ox_ctx_set_threads(ctx, threads);
                ox_rng rng = ox_rng_seed(4);
                ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(rows, cols), 1.0);
                ox_tensor *xin = middle ? ox_ag_reshape(ctx, x, OX_DIMS(2, rows / 2, cols)) : x;
                ox_tensor *y = (sd ? ox_ag_std : ox_ag_var)(ctx, xin, 1, 1, 0);
                cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
                assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, y))));
                if (threads == 1) {
                    ref_y = ox_tensor_f32(y);
                    ref_g = ox_tensor_f32(x->grad);
                } else {
                    cr_assert(bits_equal(ref_y, ox_tensor_f32(y), ox_tensor_numel(y)), "forward, middle %d", middle);
                    cr_assert(bits_equal(ref_g, ox_tensor_f32(x->grad), rows * cols), "backward, middle %d", middle);
                }
            }
        }
    ox_ctx_free(ctx);
}

Test(ops_moments, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    cr_assert_null(ox_ag_var(ctx, x, 1, -1, 0));
    assert_error(ctx, OX_ERR_ARG, "var: correction -1 is negative");
    cr_assert_null(ox_ag_std(ctx, x, 2, 1, 0));
    assert_error(ctx, OX_ERR_ARG, "std");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
    cr_assert_null(ox_ag_std(ctx, ids, 0, 1, 0));
    assert_error(ctx, OX_ERR_DTYPE, "std");
    cr_assert_null(ox_ag_var(ctx, NULL, 0, 1, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}
