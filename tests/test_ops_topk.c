/* test_ops_topk.c - argmax and topk (autograd/topk.c). Both against a plain O(n^2) reference of the stated
 * order (descending, ties by lowest index, NaN largest) on every axis of strided inputs full of ties, NaNs,
 * infinities and signed zeros, through both topk paths (insertion for small k, sort for large k); topk's
 * value gradient by gradcheck and exactly; 1 and 2 threads identical; the error cases.
 *
 * Suite: ops_topk. */
#include "index_util.h"

#include "tensor/iter.h"

/* i comes before j (the order stated in ops.h) */
static int ref_before(float a, int i, float b, int j)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && (!isnan(b) || i < j);
    return a > b || (a == b && i < j);
}

/* Element at position pos (x's rank) of a strided tensor */
static float at_pos(const ox_tensor *x, const int64_t *pos)
{
    int64_t off = 0;
    for (int d = 0; d < x->ndim; d++)
        off += pos[d] * x->stride[d];
    return ox_tensor_f32(x)[off];
}

/* The rank (0 = first) of element i along `axis` at pos: how many elements come before it. */
static int ref_rank(const ox_tensor *x, int axis, int64_t *pos, int i)
{
    int64_t n = x->shape[axis], save = pos[axis];
    pos[axis] = i;
    float v = at_pos(x, pos);
    int r = 0;
    for (int64_t j = 0; j < n; j++) {
        pos[axis] = j;
        r += ref_before(at_pos(x, pos), (int)j, v, i);
    }
    pos[axis] = save;
    return r;
}

/* x [A, B, C] with A, B, C given, as a transposed view of a [C, B, A] tensor, values drawn from a small
 * set with NaN, +-inf and +-0 so that ties happen everywhere. */
static ox_tensor *tricky_input(ox_ctx *ctx, ox_rng *rng, int64_t A, int64_t B, int64_t C)
{
    static const float pool[] = { 0.0f, -0.0f, 1.0f, -1.0f, 2.5f, NAN, INFINITY, -INFINITY, 1.0f, 0.5f };
    ox_tensor *base = ox_tensor_empty(ctx, OX_F32, OX_DIMS(C, B, A));
    cr_assert_not_null(base);
    for (int64_t i = 0; i < A * B * C; i++)
        ox_tensor_f32(base)[i] = pool[ox_rng_below(rng, sizeof pool / sizeof pool[0])];
    return ox_ag_transpose(ctx, base, 0, 2);
}

/* The number of rows of a reduction of x [A, B, C] over `axis`, and the position (axis entry 0) of row o,
 * rows being numbered row-major over the other axes. */
static int64_t n_rows(const ox_tensor *x, int axis)
{
    return ox_tensor_numel(x) / x->shape[axis];
}

static void row_pos(const ox_tensor *x, int axis, int64_t o, int64_t *pos)
{
    for (int d = 2; d >= 0; d--) {
        int64_t len = d == axis ? 1 : x->shape[d];
        pos[d] = o % len;
        o /= len;
    }
}

/* ---- argmax ---- */

/* Axis lengths 40 (the lanes path: >= 32 elements, ties across lanes) and 3, 5 (short rows, middle axes). */
Test(ops_topk, argmax_matches_reference_every_axis_ties_nans)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_tensor *x = tricky_input(ctx, &rng, 3, 5, 40);
    for (int axis = 0; axis < 3; axis++)
        for (int keep = 0; keep < 2; keep++) {
            ox_tensor *y = ox_ag_argmax(ctx, x, keep ? axis : axis - 3, keep);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            cr_assert(y->dtype == OX_I32 && y->ndim == (keep ? 3 : 2));
            cr_assert(!keep || y->shape[axis] == 1);
            for (int64_t o = 0; o < n_rows(x, axis); o++) {
                int64_t pos[3];
                row_pos(x, axis, o, pos);
                int32_t got = ox_tensor_i32(y)[o];
                cr_assert(got >= 0 && got < x->shape[axis]);
                cr_assert_eq(ref_rank(x, axis, pos, got), 0, "axis %d row %lld: index %d is not first", axis,
                             (long long)o, got);
            }
        }
    ox_ctx_free(ctx);
}

/* ---- topk ---- */

/* Every axis, k small (insertion path) and large (sort path, k > 64 on an axis of 90), k = n: each output
 * j is the element of rank j. */
Test(ops_topk, topk_matches_reference_every_axis_both_paths)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    ox_tensor *x = tricky_input(ctx, &rng, 4, 90, 6);
    const int64_t ks[][3] = { { 1, 3, 2 }, { 4, 70, 6 }, { 2, 90, 1 }, { 3, 0, 5 } };
    for (int axis = 0; axis < 3; axis++)
        for (int c = 0; c < 4; c++) {
            int64_t k = ks[c][axis];
            ox_tensor *v, *ix;
            assert_ok(ctx, ox_ag_topk(ctx, x, k, axis, &v, &ix));
            cr_assert(v->dtype == OX_F32 && ix->dtype == OX_I32 && v->ndim == 3 && v->shape[axis] == k);
            for (int64_t o = 0; o < n_rows(x, axis); o++) {
                int64_t pos[3];
                row_pos(x, axis, o, pos);
                for (int64_t j = 0; j < k; j++) {
                    int64_t q[3] = { pos[0], pos[1], pos[2] };
                    q[axis] = j;
                    int64_t off = (q[0] * v->shape[1] + q[1]) * v->shape[2] + q[2];
                    int32_t i = ox_tensor_i32(ix)[off];
                    cr_assert_eq(ref_rank(x, axis, pos, i), j, "axis %d k %lld: slot %lld holds index %d", axis,
                                 (long long)k, (long long)j, i);
                    int64_t p2[3] = { pos[0], pos[1], pos[2] };
                    p2[axis] = i;
                    float want = at_pos(x, p2), got = ox_tensor_f32(v)[off];
                    cr_assert(memcmp(&want, &got, sizeof got) == 0, "value of slot %lld", (long long)j);
                }
            }
        }
    ox_ctx_free(ctx);
}

Test(ops_topk, argmax_equals_topk_of_one_and_outputs_are_optional)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *x = tricky_input(ctx, &rng, 7, 33, 2);
    ox_tensor *am = ox_ag_argmax(ctx, x, 1, 1);
    ox_tensor *ix, *v;
    assert_ok(ctx, ox_ag_topk(ctx, x, 1, 1, NULL, &ix));
    cr_assert_not_null(am, "%s", ox_ctx_message(ctx));
    cr_assert_eq(memcmp(ox_tensor_i32(am), ox_tensor_i32(ix), sizeof(int32_t) * 14), 0);
    assert_ok(ctx, ox_ag_topk(ctx, x, 5, 1, &v, NULL));
    cr_assert(v->shape[1] == 5);
    ox_ctx_free(ctx);
}

struct topk_arg { int64_t k; int axis; };

static ox_tensor *f_topk(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct topk_arg *t = arg;
    ox_tensor *v = NULL;
    ox_ag_topk(ctx, ox_ag_transpose(ctx, in[0], 0, 1), t->k, t->axis, &v, NULL);
    return v;
}

/* topk's values are a selection: piecewise the identity on the chosen elements. Inputs are a permutation
 * of a grid of step 0.05, so a +-eps (1e-3) step never changes the order and the difference quotient is
 * exact up to fp32 rounding: the fp32 defaults (rtol 1e-2, atol 1e-3) apply with a wide margin. Both
 * paths (k = 3 and k = 70 > 64) and both kernels' layouts (last axis, middle axis). */
Test(ops_topk, gradcheck_values_both_paths)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    int64_t rows = 3, n = 80;
    ox_tensor *x = ox_tensor_empty(ctx, OX_F32, OX_DIMS(n, rows));     /* transposed to [rows, n] in f */
    for (int64_t i = 0; i < rows * n; i++)
        ox_tensor_f32(x)[i] = (float)(0.05 * (double)i - 6.0);
    for (int64_t i = rows * n - 1; i > 0; i--) {      /* Fisher-Yates shuffle */
        int64_t j = (int64_t)ox_rng_below(&rng, (uint64_t)(i + 1));
        float t = ox_tensor_f32(x)[i];
        ox_tensor_f32(x)[i] = ox_tensor_f32(x)[j];
        ox_tensor_f32(x)[j] = t;
    }
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    const struct topk_arg cases[] = { { 3, 1 }, { 70, 1 }, { 2, 0 }, { 3, -2 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ox_status s = ox_gradcheck(ctx, f_topk, (void *)&cases[c], 1, &x, &o);
        cr_assert_eq(s, OX_OK, "k %lld axis %d: %s", (long long)cases[c].k, cases[c].axis, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

/* d sum(w * topk(x)) / dx: w at the chosen positions, 0 elsewhere, exactly; accumulated on a second pass */
Test(ops_topk, value_gradient_scatters_to_the_indices)
{
    ox_ctx *ctx = test_ctx();
    float xv[6] = { 0.3f, 2.0f, -1.0f, 2.0f, 7.0f, 0.0f };   /* tie at 2.0: index 1 before index 3 */
    float wv[3] = { 10, 20, 30 };
    ox_tensor *x = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(6), xv);
    ox_tensor *w = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(3), wv);
    assert_ok(ctx, ox_tensor_require_grad(ctx, x));
    for (int pass = 1; pass <= 2; pass++) {
        ox_tensor *v, *ix;
        assert_ok(ctx, ox_ag_topk(ctx, x, 3, 0, &v, &ix));
        cr_assert(ox_tensor_i32(ix)[0] == 4 && ox_tensor_i32(ix)[1] == 1 && ox_tensor_i32(ix)[2] == 3);
        cr_assert_eq(ix->requires_grad, 0, "indices carry no gradient");
        assert_ok(ctx, ox_ag_backward(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, v, w))));
        const float want[6] = { 0, 20, 0, 30, 10, 0 };
        for (int i = 0; i < 6; i++)
            cr_assert_eq(ox_tensor_f32(x->grad)[i], pass * want[i], "pass %d [%d]", pass, i);
    }
    /* argmax is never recorded */
    int64_t len = ctx->tape_len;
    ox_tensor *am = ox_ag_argmax(ctx, x, 0, 0);
    cr_assert(am && am->requires_grad == 0 && ctx->tape_len == len && ox_tensor_i32(am)[0] == 4);
    ox_ctx_free(ctx);
}

/* Large enough for the parallel paths: 1 and 2 threads give identical indices and values. */
Test(ops_topk, threads_identical)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_tensor *x = tricky_input(ctx, &rng, 8, 100, 48);     /* 38400 elements */
    struct { ox_tensor *am[2], *v[2], *ix[2], *vb[2], *ixb[2]; } r;
    for (int t = 0; t < 2; t++) {
        ox_ctx_set_threads(ctx, t + 1);
        r.am[t] = ox_ag_argmax(ctx, x, 1, 0);
        assert_ok(ctx, ox_ag_topk(ctx, x, 5, 1, &r.v[t], &r.ix[t]));
        assert_ok(ctx, ox_ag_topk(ctx, x, 80, 1, &r.vb[t], &r.ixb[t]));
        cr_assert_not_null(r.am[t], "%s", ox_ctx_message(ctx));
    }
    cr_assert_eq(memcmp(ox_tensor_i32(r.am[0]), ox_tensor_i32(r.am[1]), sizeof(int32_t) * 8 * 48), 0);
    cr_assert_eq(memcmp(ox_tensor_i32(r.ix[0]), ox_tensor_i32(r.ix[1]), sizeof(int32_t) * 8 * 5 * 48), 0);
    cr_assert(bits_equal(ox_tensor_f32(r.v[0]), ox_tensor_f32(r.v[1]), 8 * 5 * 48));
    cr_assert_eq(memcmp(ox_tensor_i32(r.ixb[0]), ox_tensor_i32(r.ixb[1]), sizeof(int32_t) * 8 * 80 * 48), 0);
    cr_assert(bits_equal(ox_tensor_f32(r.vb[0]), ox_tensor_f32(r.vb[1]), 8 * 80 * 48));
    ox_ctx_free(ctx);
}

Test(ops_topk, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *v = x, *ix = x;
    cr_assert_eq(ox_ag_topk(ctx, x, 4, 1, &v, &ix), OX_ERR_ARG);
    cr_assert(v == NULL && ix == NULL, "outputs are NULL on error");
    assert_error(ctx, OX_ERR_ARG, "topk: k = 4 is outside 0..3, the length of axis 1 of [2, 3]");
    cr_assert_eq(ox_ag_topk(ctx, x, -1, 0, &v, NULL), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "k = -1");
    cr_assert_eq(ox_ag_topk(ctx, x, 1, 0, NULL, NULL), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "neither values nor indices");
    cr_assert_eq(ox_ag_topk(ctx, x, 1, 2, &v, NULL), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "axis 2");
    ox_tensor *ids = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3));
    cr_assert_null(ox_ag_argmax(ctx, ids, 0, 0));
    assert_error(ctx, OX_ERR_DTYPE, "argmax");
    cr_assert_null(ox_ag_argmax(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 0)), 1, 0));
    assert_error(ctx, OX_ERR_ARG, "argmax: axis 1 of shape [2, 0] is empty");
    /* k = 0 is allowed: empty outputs */
    assert_ok(ctx, ox_ag_topk(ctx, x, 0, 1, &v, &ix));
    cr_assert(v->shape[1] == 0 && ix->shape[1] == 0);
    ox_ctx_free(ctx);
}
