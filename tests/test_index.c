/* test_index.c - indexing, joining and triangular-solve ops (autograd/index.c, concat.c, solve.c):
 * forward against plain loops (repeated indices, transposed / sliced / broadcast inputs), gradients by
 * gradcheck and against double-precision references, determinism at 2 threads, and error cases.
 *
 * Suites: gather, scatter, take, concat, split, solve. */
#include "test_util.h"

#include <string.h>

/* ---- helpers ---- */

/* Element [i, j] / [i, j, k] of a strided F32 tensor. */
static float at2(const ox_tensor *t, int64_t i, int64_t j)
{
    return ox_tensor_f32(t)[i * t->stride[0] + j * t->stride[1]];
}

static float at3(const ox_tensor *t, int64_t i, int64_t j, int64_t k)
{
    return ox_tensor_f32(t)[i * t->stride[0] + j * t->stride[1] + k * t->stride[2]];
}

static int bits_equal(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* An I32 tensor over a caller array (borrowed). */
static ox_tensor *i32_tensor(ox_ctx *ctx, int ndim, const int64_t *shape, int32_t *data)
{
    ox_tensor *t = ox_tensor_from_buffer(ctx, OX_I32, ndim, shape, data);
    cr_assert_not_null(t, "%s", ox_ctx_message(ctx));
    return t;
}

/* An I32 tensor [n] of uniform ids in [0, limit). */
static ox_tensor *random_ids(ox_ctx *ctx, ox_rng *rng, int64_t n, int64_t limit)
{
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, OX_DIMS(n));
    cr_assert_not_null(t);
    for (int64_t i = 0; i < n; i++)
        ox_tensor_i32(t)[i] = (int32_t)ox_rng_below(rng, (uint64_t)limit);
    return t;
}

static void assert_error(ox_ctx *ctx, ox_status want, const char *must_contain)
{
    cr_assert_eq(ox_ctx_status(ctx), want, "status %d (want %d): %s", ox_ctx_status(ctx), want,
                 ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), must_contain), "message \"%s\" should contain \"%s\"",
              ox_ctx_message(ctx), must_contain);
    ox_ctx_clear_error(ctx);
}

/* =================================================================================== gather */

Test(gather, forward_transposed_table_repeated_strided_indices)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    const int64_t N = 7, D = 5;
    ox_tensor *store = ox_tensor_randn(ctx, &rng, OX_DIMS(D, N), 0, 1);
    ox_tensor *table = ox_tensor_view_transpose(ctx, store, 0, 1);      /* [N, D], strides (1, N) */
    int32_t ids[6] = { 3, 0, 3, 6, 3, 1 };                               /* stored [3, 2] */
    ox_tensor *idx = ox_tensor_view_transpose(ctx, i32_tensor(ctx, OX_DIMS(3, 2), ids), 0, 1);  /* [2, 3] */
    ox_tensor *y = ox_ag_gather_rows(ctx, table, idx);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert_eq(y->ndim, 3);
    cr_assert(y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == D);
    cr_assert(ox_tensor_is_contiguous(y));
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int j = 0; j < D; j++) {
                int32_t r = ids[b * 2 + a];
                cr_assert_eq(ox_tensor_f32(y)[(a * 3 + b) * D + j], at2(table, r, j), "[%d, %d, %d]", a, b, j);
            }
    /* a 0-d index gives one row [D] */
    int32_t one = 6;
    ox_tensor *y0 = ox_ag_gather_rows(ctx, table, i32_tensor(ctx, 0, (const int64_t[]){ 1 }, &one));
    cr_assert_not_null(y0, "%s", ox_ctx_message(ctx));
    cr_assert(y0->ndim == 1 && y0->shape[0] == D);
    for (int j = 0; j < D; j++)
        cr_assert_eq(ox_tensor_f32(y0)[j], at2(table, 6, j));
    ox_ctx_free(ctx);
}

/* Backward scatter-adds the seed into the rows picked (repeats summed) and ACCUMULATES into the grad. */
Test(gather, backward_accumulates_repeated_rows)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    const int64_t N = 6, D = 4, M = 9;
    ox_tensor *table = test_leaf(ctx, &rng, OX_DIMS(N, D), 1.0);
    assert_ok(ctx, ox_tensor_fill(ctx, table->grad, 1.0));               /* a previous contribution */
    int32_t ids[9] = { 2, 5, 2, 0, 2, 5, 1, 0, 2 };                    /* row 3 and 4 never picked */
    ox_tensor *y = ox_ag_gather_rows(ctx, table, i32_tensor(ctx, OX_DIMS(M), ids));
    ox_tensor *seed = ox_tensor_randn(ctx, &rng, OX_DIMS(M, D), 0, 1);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
    double ref[6][4];
    for (int r = 0; r < N; r++)
        for (int j = 0; j < D; j++)
            ref[r][j] = 1.0;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < D; j++)
            ref[ids[m]][j] += ox_tensor_f32(seed)[m * D + j];
    /* each element is 1 plus at most 4 float terms of order one added in sequence: the float result is
     * within a few ulps (~1e-6 absolute) of the double sum */
    for (int r = 0; r < N; r++)
        for (int j = 0; j < D; j++)
            cr_assert(fabs(ox_tensor_f32(table->grad)[r * D + j] - ref[r][j]) <= 1e-6,
                      "grad[%d, %d] = %g, want %g", r, j, ox_tensor_f32(table->grad)[r * D + j], ref[r][j]);
    ox_ctx_free(ctx);
}

struct idx_arg { ox_tensor *idx; };

/* The table is used as the transpose of its stored [D, N] leaf. */
static ox_tensor *f_gather(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct idx_arg *a = arg;
    return ox_ag_gather_rows(ctx, ox_ag_transpose(ctx, in[0], 0, 1), a->idx);
}

Test(gather, gradcheck_transposed_table_repeated_indices)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *store = test_leaf(ctx, &rng, OX_DIMS(3, 5), 1.0);        /* table [5, 3] after transpose */
    int32_t ids[8] = { 4, 1, 4, 0, 4, 2, 1, 3 };
    struct idx_arg a = { i32_tensor(ctx, OX_DIMS(2, 4), ids) };
    /* fp32 defaults (MODELS.md section 11 item 9): the op is linear in the table, so the difference
     * quotient has no truncation error, only the ~1e-4 relative fp32 rounding of L */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_gather, &a, 1, (ox_tensor *[]){ store }, &o);
    ox_ctx_free(ctx);
}

/* At 2 threads the scatter-add runs by column ranges (D >= 64) or by table-row ranges (narrow D):
 * both must give exactly the 1-thread result (each element is summed in the same m order) and the
 * double reference. */
Test(gather, backward_two_threads_bit_identical)
{
    const int64_t Ds[2] = { 96, 16 }, N = 50, M = 4096;
    for (int c = 0; c < 2; c++) {
        int64_t D = Ds[c];
        float *grads[2];
        ox_ctx *ctxs[2];
        for (int t = 0; t < 2; t++) {
            ox_ctx *ctx = ctxs[t] = test_ctx();
            ox_ctx_set_threads(ctx, t + 1);
            ox_rng rng = ox_rng_seed(4);
            ox_tensor *table = test_leaf(ctx, &rng, OX_DIMS(N, D), 1.0);
            ox_tensor *idx = random_ids(ctx, &rng, M, N);
            ox_tensor *y = ox_ag_gather_rows(ctx, table, idx);
            ox_tensor *seed = ox_tensor_randn(ctx, &rng, OX_DIMS(M, D), 0, 1);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            for (int64_t m = 0; m < M; m++)                             /* forward: exact copies */
                cr_assert(bits_equal(ox_tensor_f32(y) + m * D,
                                     ox_tensor_f32(table) + ox_tensor_i32(idx)[m] * D, D));
            assert_ok(ctx, ox_ag_backward_seeded(ctx, y, seed));
            grads[t] = ox_tensor_f32(table->grad);
            if (t == 0) {
                double *ref = calloc((size_t)(N * D), sizeof(double));
                for (int64_t m = 0; m < M; m++)
                    for (int64_t j = 0; j < D; j++)
                        ref[ox_tensor_i32(idx)[m] * D + j] += ox_tensor_f32(seed)[m * D + j];
                /* ~80 terms of order one per element summed in float: rounding error grows like
                 * sqrt(80) * 6e-8 * partial sums (~10) ~ 5e-6 absolute; 1e-4 leaves margin while a
                 * missing or doubled term (error ~1) still fails */
                for (int64_t i = 0; i < N * D; i++)
                    cr_assert(fabs(grads[0][i] - ref[i]) <= 1e-4, "D %lld elem %lld: %g vs %g", (long long)D,
                              (long long)i, grads[0][i], ref[i]);
                free(ref);
            }
        }
        cr_assert(bits_equal(grads[0], grads[1], N * D), "D = %lld: 1 and 2 threads differ", (long long)D);
        ox_ctx_free(ctxs[0]);
        ox_ctx_free(ctxs[1]);
    }
}

Test(gather, errors_name_values_and_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *table = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(10, 4));
    assert_ok(ctx, ox_tensor_require_grad(ctx, table));
    int32_t bad_hi[6] = { 0, 1, 2, 3, 4, 10 }, bad_lo[4] = { 0, -1, 2, 3 };
    cr_assert_null(ox_ag_gather_rows(ctx, table, i32_tensor(ctx, OX_DIMS(2, 3), bad_hi)));
    cr_assert(strstr(ox_ctx_message(ctx), "[1, 2]"), "position named: %s", ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_ARG, "index 10");
    cr_assert_eq(ctx->tape_len, 0);             /* nothing recorded */
    cr_assert_null(ox_ag_gather_rows(ctx, table, i32_tensor(ctx, OX_DIMS(4), bad_lo)));
    cr_assert(strstr(ox_ctx_message(ctx), "[1]"), "position named: %s", ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_ARG, "index -1");
    /* F32 indices, I32 table, 3-D table */
    ox_tensor *fidx = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3));
    cr_assert_null(ox_ag_gather_rows(ctx, table, fidx));
    assert_error(ctx, OX_ERR_DTYPE, "gather_rows");
    int32_t ok[2] = { 0, 1 };
    ox_tensor *iok = i32_tensor(ctx, OX_DIMS(2), ok);
    cr_assert_null(ox_ag_gather_rows(ctx, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(10, 4)), iok));
    assert_error(ctx, OX_ERR_DTYPE, "gather_rows");
    cr_assert_null(ox_ag_gather_rows(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 10, 4)), iok));
    assert_error(ctx, OX_ERR_SHAPE, "[2, 10, 4]");
    /* sticky errors and NULL inputs */
    cr_assert_null(ox_ag_gather_rows(ctx, NULL, iok));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_fail(ctx, OX_ERR_ARG, "earlier");
    cr_assert_null(ox_ag_gather_rows(ctx, table, iok));
    ox_ctx_free(ctx);
}

/* =================================================================================== scatter */

Test(scatter, forward_repeated_indices_strided_inputs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    const int64_t N = 5, D = 3, M = 7;
    ox_tensor *dst = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(D, N), 0, 1), 0, 1);
    ox_tensor *src = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(M, D + 4), 0, 1), 1, 2, D);
    int32_t ids[7] = { 4, 0, 4, 2, 4, 0, 1 };
    ox_tensor *y = ox_ag_scatter_add_rows(ctx, dst, i32_tensor(ctx, OX_DIMS(M), ids), src);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 2 && y->shape[0] == N && y->shape[1] == D && ox_tensor_is_contiguous(y));
    for (int r = 0; r < N; r++)
        for (int j = 0; j < D; j++) {
            double ref = at2(dst, r, j);
            for (int m = 0; m < M; m++)
                if (ids[m] == r)
                    ref += at2(src, m, j);
            /* at most 3 terms of order one added in float: a few ulps */
            cr_assert(fabs(ox_tensor_f32(y)[r * D + j] - ref) <= 1e-6, "[%d, %d]: %g vs %g", r, j,
                      ox_tensor_f32(y)[r * D + j], ref);
        }
    ox_ctx_free(ctx);
}

static ox_tensor *f_scatter(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct idx_arg *a = arg;
    /* dst used as-is, src as the transpose of its stored [D, M] leaf */
    return ox_ag_scatter_add_rows(ctx, in[0], a->idx, ox_ag_transpose(ctx, in[1], 0, 1));
}

Test(scatter, gradcheck_dst_and_transposed_src)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(6);
    ox_tensor *dst = test_leaf(ctx, &rng, OX_DIMS(4, 3), 1.0);
    ox_tensor *src = test_leaf(ctx, &rng, OX_DIMS(3, 6), 1.0);          /* src [6, 3] after transpose */
    int32_t ids[6] = { 1, 3, 1, 0, 1, 3 };
    struct idx_arg a = { i32_tensor(ctx, OX_DIMS(6), ids) };
    /* fp32 defaults; linear op, no truncation error */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_tensor *in[2] = { dst, src };
    assert_gradcheck(ctx, f_scatter, &a, 2, in, &o);
    ox_ctx_free(ctx);
}

Test(scatter, two_threads_bit_identical)
{
    const int64_t Ds[2] = { 128, 8 }, N = 40, M = 8192;
    for (int c = 0; c < 2; c++) {
        int64_t D = Ds[c];
        ox_ctx *ctxs[2];
        ox_tensor *ys[2], *gs[2];
        for (int t = 0; t < 2; t++) {
            ox_ctx *ctx = ctxs[t] = test_ctx();
            ox_ctx_set_threads(ctx, t + 1);
            ox_rng rng = ox_rng_seed(7);
            ox_tensor *dst = test_leaf(ctx, &rng, OX_DIMS(N, D), 1.0);
            ox_tensor *src = test_leaf(ctx, &rng, OX_DIMS(M, D), 1.0);
            ox_tensor *idx = random_ids(ctx, &rng, M, N);
            ys[t] = ox_ag_scatter_add_rows(ctx, dst, idx, src);
            cr_assert_not_null(ys[t], "%s", ox_ctx_message(ctx));
            ox_tensor *seed = ox_tensor_randn(ctx, &rng, OX_DIMS(N, D), 0, 1);
            assert_ok(ctx, ox_tensor_fill(ctx, src->grad, 1.0));        /* gradients accumulate */
            assert_ok(ctx, ox_tensor_fill(ctx, dst->grad, -1.0));
            assert_ok(ctx, ox_ag_backward_seeded(ctx, ys[t], seed));
            gs[t] = src->grad;
            if (t == 0) {
                /* d src[m] = seed[idx[m]] and d dst = seed, each added once to the prior value: one
                 * float addition, so the expected values are exact */
                const float *gsv = ox_tensor_f32(src->grad), *gdv = ox_tensor_f32(dst->grad);
                const float *sv = ox_tensor_f32(seed);
                for (int64_t m = 0; m < M; m++)
                    for (int64_t j = 0; j < D; j++)
                        cr_assert_eq(gsv[m * D + j], 1.0f + sv[ox_tensor_i32(idx)[m] * D + j]);
                for (int64_t i = 0; i < N * D; i++)
                    cr_assert_eq(gdv[i], -1.0f + sv[i]);
            }
        }
        cr_assert(bits_equal(ox_tensor_f32(ys[0]), ox_tensor_f32(ys[1]), N * D), "D %lld forward", (long long)D);
        cr_assert(bits_equal(ox_tensor_f32(gs[0]), ox_tensor_f32(gs[1]), M * D), "D %lld backward", (long long)D);
        ox_ctx_free(ctxs[0]);
        ox_ctx_free(ctxs[1]);
    }
}

Test(scatter, errors_name_values_and_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *dst = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 3));
    ox_tensor *src = ox_tensor_ones(ctx, OX_F32, OX_DIMS(3, 3));
    int32_t bad[3] = { 0, 4, 1 }, ok[3] = { 0, 1, 2 };
    cr_assert_null(ox_ag_scatter_add_rows(ctx, dst, i32_tensor(ctx, OX_DIMS(3), bad), src));
    cr_assert(strstr(ox_ctx_message(ctx), "[1]") && strstr(ox_ctx_message(ctx), "[4, 3]"), "%s",
              ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_ARG, "index 4");
    for (int i = 0; i < 12; i++)                /* detected before anything was written */
        cr_assert_eq(ox_tensor_f32(dst)[i], 0.0f);
    ox_tensor *iok = i32_tensor(ctx, OX_DIMS(3), ok);
    ox_tensor *src_wide = ox_tensor_ones(ctx, OX_F32, OX_DIMS(3, 5));
    cr_assert_null(ox_ag_scatter_add_rows(ctx, dst, iok, src_wide));
    assert_error(ctx, OX_ERR_SHAPE, "src [3, 5]");
    ox_tensor *src_long = ox_tensor_ones(ctx, OX_F32, OX_DIMS(4, 3));
    cr_assert_null(ox_ag_scatter_add_rows(ctx, dst, iok, src_long));
    assert_error(ctx, OX_ERR_SHAPE, "idx [3]");
    cr_assert_null(ox_ag_scatter_add_rows(ctx, dst, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3)), src));
    assert_error(ctx, OX_ERR_DTYPE, "scatter_add_rows");
    cr_assert_null(ox_ag_scatter_add_rows(ctx, dst, iok, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3, 3))));
    assert_error(ctx, OX_ERR_DTYPE, "scatter_add_rows");
    ox_ctx_free(ctx);
}

/* =================================================================================== take */

Test(take, forward_permuted_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(8);
    const int64_t V = 6;
    ox_tensor *store = ox_tensor_randn(ctx, &rng, OX_DIMS(V, 3, 4), 0, 1);
    ox_tensor *x = ox_tensor_view_permute(ctx, store, (const int[]){ 1, 2, 0 });    /* [3, 4, V] strided */
    int32_t ids[12];
    for (int i = 0; i < 12; i++)
        ids[i] = (int32_t)ox_rng_below(&rng, V);
    ids[5] = 0;
    ids[7] = V - 1;
    ox_tensor *y = ox_ag_take_last(ctx, x, i32_tensor(ctx, OX_DIMS(3, 4), ids));
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            cr_assert_eq(ox_tensor_f32(y)[a * 4 + b], at3(x, a, b, ids[a * 4 + b]));
    /* x [V] with a 0-d index: a scalar */
    ox_tensor *x1 = ox_tensor_view_select(ctx, ox_tensor_view_select(ctx, x, 0, 2), 0, 1);
    int32_t k = 4;
    ox_tensor *y1 = ox_ag_take_last(ctx, x1, i32_tensor(ctx, 0, (const int64_t[]){ 1 }, &k));
    cr_assert_not_null(y1, "%s", ox_ctx_message(ctx));
    cr_assert_eq(y1->ndim, 0);
    cr_assert_eq(ox_tensor_f32(y1)[0], at3(x, 2, 1, 4));
    ox_ctx_free(ctx);
}

static ox_tensor *f_take(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct idx_arg *a = arg;
    return ox_ag_take_last(ctx, ox_ag_permute(ctx, in[0], (const int[]){ 1, 2, 0 }), a->idx);
}

Test(take, gradcheck_permuted_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(9);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(5, 2, 3), 1.0);         /* used as [2, 3, 5] */
    int32_t ids[6] = { 4, 0, 2, 2, 1, 4 };
    struct idx_arg a = { i32_tensor(ctx, OX_DIMS(2, 3), ids) };
    /* fp32 defaults; linear op. Elements never picked get gradient 0 on both sides (atol floor). */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_take, &a, 1, (ox_tensor *[]){ x }, &o);
    ox_ctx_free(ctx);
}

Test(take, two_threads_bit_identical_and_exact)
{
    const int64_t R = 40000, V = 7;
    ox_ctx *ctxs[2];
    ox_tensor *ys[2], *gs[2];
    for (int t = 0; t < 2; t++) {
        ox_ctx *ctx = ctxs[t] = test_ctx();
        ox_ctx_set_threads(ctx, t + 1);
        ox_rng rng = ox_rng_seed(10);
        ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(R, V), 1.0);     /* used directly: its own grad */
        ox_tensor *idx = random_ids(ctx, &rng, R, V);
        ys[t] = ox_ag_take_last(ctx, x, idx);
        cr_assert_not_null(ys[t], "%s", ox_ctx_message(ctx));
        ox_tensor *seed = ox_tensor_randn(ctx, &rng, OX_DIMS(R), 0, 1);
        assert_ok(ctx, ox_tensor_fill(ctx, x->grad, 0.5));              /* gradients accumulate */
        assert_ok(ctx, ox_ag_backward_seeded(ctx, ys[t], seed));
        gs[t] = x->grad;
        for (int64_t r = 0; r < R; r++) {
            int32_t v = ox_tensor_i32(idx)[r];
            cr_assert_eq(ox_tensor_f32(ys[t])[r], ox_tensor_f32(x)[r * V + v]);
            for (int64_t w = 0; w < V; w++)
                cr_assert_eq(ox_tensor_f32(x->grad)[r * V + w], w == v ? 0.5f + ox_tensor_f32(seed)[r] : 0.5f);
        }
    }
    cr_assert(bits_equal(ox_tensor_f32(ys[0]), ox_tensor_f32(ys[1]), R));
    cr_assert(bits_equal(ox_tensor_f32(gs[0]), ox_tensor_f32(gs[1]), R * V));
    ox_ctx_free(ctxs[0]);
    ox_ctx_free(ctxs[1]);
}

Test(take, errors_name_values_and_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 5));
    int32_t bad[6] = { 0, 1, 2, 3, 5, 4 };
    cr_assert_null(ox_ag_take_last(ctx, x, i32_tensor(ctx, OX_DIMS(2, 3), bad)));
    cr_assert(strstr(ox_ctx_message(ctx), "[1, 1]"), "%s", ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_ARG, "index 5");
    bad[4] = -3;
    cr_assert_null(ox_ag_take_last(ctx, x, i32_tensor(ctx, OX_DIMS(2, 3), bad)));
    assert_error(ctx, OX_ERR_ARG, "index -3");
    int32_t ok[6] = { 0 };
    cr_assert_null(ox_ag_take_last(ctx, x, i32_tensor(ctx, OX_DIMS(3, 2), ok)));
    cr_assert(strstr(ox_ctx_message(ctx), "[3, 2]") && strstr(ox_ctx_message(ctx), "[2, 3, 5]"), "%s",
              ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_SHAPE, "take_last");
    cr_assert_null(ox_ag_take_last(ctx, x, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3))));
    assert_error(ctx, OX_ERR_DTYPE, "take_last");
    ox_ctx_free(ctx);
}

/* =================================================================================== concat */

/* Three inputs along `axis` of a [2, 3, 4]-like shape: x0 contiguous, x1 a transposed view, x2 a
 * narrowed view of a larger tensor (strided on another axis). Lengths along the axis: 2, 3, 1. */
struct concat_inputs { ox_tensor *x[3]; int64_t len[3]; };

static void shape_for(int axis, int64_t len, int64_t *s)
{
    s[0] = 2;
    s[1] = 3;
    s[2] = 4;
    s[axis] = len;
}

static struct concat_inputs make_concat_inputs(ox_ctx *ctx, ox_rng *rng, int axis)
{
    struct concat_inputs c = { { NULL }, { 2, 3, 1 } };
    int64_t s[3];
    shape_for(axis, c.len[0], s);
    c.x[0] = ox_tensor_randn(ctx, rng, 3, s, 0, 1);
    shape_for(axis, c.len[1], s);
    c.x[1] = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, rng, OX_DIMS(s[0], s[2], s[1]), 0, 1), 1, 2);
    shape_for(axis, c.len[2], s);
    int other = (axis + 1) % 3;
    s[other] += 3;
    c.x[2] = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, rng, 3, s, 0, 1), other, 1, s[other] - 3);
    for (int k = 0; k < 3; k++)
        cr_assert_not_null(c.x[k], "%s", ox_ctx_message(ctx));
    return c;
}

Test(concat, forward_strided_inputs_along_each_axis)
{
    ox_ctx *ctx = test_ctx();
    for (int axis = 0; axis < 3; axis++) {
        ox_rng rng = ox_rng_seed(11 + axis);
        struct concat_inputs c = make_concat_inputs(ctx, &rng, axis);
        /* the same axis given as a negative number must agree */
        for (int neg = 0; neg < 2; neg++) {
            ox_tensor *y = ox_ag_concat(ctx, 3, c.x, neg ? axis - 3 : axis);
            cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
            cr_assert(ox_tensor_is_contiguous(y));
            int64_t s[3];
            shape_for(axis, 6, s);
            cr_assert(y->ndim == 3 && y->shape[0] == s[0] && y->shape[1] == s[1] && y->shape[2] == s[2]);
            for (int64_t i = 0; i < s[0]; i++)
                for (int64_t j = 0; j < s[1]; j++)
                    for (int64_t k = 0; k < s[2]; k++) {
                        int64_t p[3] = { i, j, k }, pos = p[axis];
                        int part = 0;
                        while (pos >= c.len[part])
                            pos -= c.len[part++];
                        p[axis] = pos;
                        cr_assert_eq(ox_tensor_f32(y)[(i * s[1] + j) * s[2] + k], at3(c.x[part], p[0], p[1], p[2]),
                                     "axis %d [%lld, %lld, %lld]", axis, (long long)i, (long long)j, (long long)k);
                    }
        }
    }
    ox_ctx_free(ctx);
}

struct concat_arg { int axis; };

/* in[0] contiguous, in[1] stored with its last two axes swapped, in[2] sliced along another axis,
 * in[3] of size 1 on axis 0 and broadcast (expanded) to 2 there. */
static ox_tensor *f_concat(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct concat_arg *a = arg;
    int other = (a->axis + 1) % 3;
    int64_t s[3];
    shape_for(a->axis, 2, s);
    ox_tensor *xs[4] = {
        in[0],
        ox_ag_transpose(ctx, in[1], 1, 2),
        ox_ag_narrow(ctx, in[2], other, 1, in[2]->shape[other] - 3),
        ox_ag_expand(ctx, in[3], 3, s),
    };
    return ox_ag_concat(ctx, 4, xs, a->axis);
}

Test(concat, gradcheck_strided_and_broadcast_inputs_each_axis)
{
    ox_ctx *ctx = test_ctx();
    for (int axis = 0; axis < 3; axis++) {
        ox_rng rng = ox_rng_seed(20 + axis);
        int64_t s0[3], s1[3], s2[3], s3[3];
        shape_for(axis, 2, s0);
        shape_for(axis, 3, s1);
        int64_t t = s1[1];
        s1[1] = s1[2];
        s1[2] = t;
        shape_for(axis, 1, s2);
        s2[(axis + 1) % 3] += 3;
        shape_for(axis, 2, s3);
        s3[0] = 1;
        ox_tensor *in[4] = { test_leaf(ctx, &rng, 3, s0, 1.0), test_leaf(ctx, &rng, 3, s1, 1.0),
                             test_leaf(ctx, &rng, 3, s2, 1.0), test_leaf(ctx, &rng, 3, s3, 1.0) };
        struct concat_arg a = { axis };
        /* fp32 defaults; concat is linear (copies), so only fp32 rounding of L enters */
        ox_gradcheck_opts o = ox_gradcheck_defaults();
        ox_status st = ox_gradcheck(ctx, f_concat, &a, 4, in, &o);
        cr_assert_eq(st, OX_OK, "axis %d: %s", axis, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

/* More inputs than a tape node holds (OX_AG_MAX_IO = 12): recorded as concat of concats. */
static ox_tensor *f_concat_many(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    return ox_ag_concat(ctx, *(const int *)arg, in, 1);
}

Test(concat, many_inputs_forward_and_gradcheck)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(30);
    enum { NIN = 27 };
    ox_tensor *in[NIN];
    int64_t off[NIN + 1] = { 0 };
    for (int k = 0; k < NIN; k++) {
        in[k] = test_leaf(ctx, &rng, OX_DIMS(2, k % 3 + 1), 1.0);
        off[k + 1] = off[k] + k % 3 + 1;
    }
    int n = NIN;
    ox_tensor *y = ox_ag_concat(ctx, n, in, 1);
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    cr_assert(y->shape[0] == 2 && y->shape[1] == off[NIN]);
    for (int k = 0; k < NIN; k++)
        for (int i = 0; i < 2; i++)
            for (int64_t j = 0; j < k % 3 + 1; j++)
                cr_assert_eq(ox_tensor_f32(y)[i * off[NIN] + off[k] + j], at2(in[k], i, j));
    /* fp32 defaults; linear op */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_concat_many, &n, NIN, in, &o);
    /* the same without gradients: a single pass, nothing recorded */
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *y2 = ox_ag_concat(ctx, n, in, 1);
    ox_ag_set_grad_enabled(ctx, prev);
    cr_assert_not_null(y2, "%s", ox_ctx_message(ctx));
    cr_assert(bits_equal(ox_tensor_f32(y), ox_tensor_f32(y2), 2 * off[NIN]));
    ox_ctx_free(ctx);
}

Test(concat, errors_name_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 3));
    ox_tensor *c = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5));
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 1));
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3]") && strstr(ox_ctx_message(ctx), "[4, 3]"), "%s",
              ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_SHAPE, "input 1");
    cr_assert_not_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 0));
    cr_assert_not_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, c }, -1));
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 1)) }, 0));
    assert_error(ctx, OX_ERR_SHAPE, "[2, 3, 1]");
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 3)) }, 0));
    assert_error(ctx, OX_ERR_DTYPE, "input 1");
    cr_assert_null(ox_ag_concat(ctx, 2, (ox_tensor *[]){ a, b }, 2));
    assert_error(ctx, OX_ERR_ARG, "axis 2");
    cr_assert_null(ox_ag_concat(ctx, 0, (ox_tensor *[]){ a }, 0));
    assert_error(ctx, OX_ERR_ARG, "n = 0");
    ox_ctx_free(ctx);
}

/* =================================================================================== split */

Test(split, pieces_are_views_of_the_right_slices)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(40);
    ox_tensor *x = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(10, 4), 0, 1), 0, 1);
    ox_tensor *outs[3];
    assert_ok(ctx, ox_ag_split(ctx, x, -1, 3, (const int64_t[]){ 3, 0, 7 }, outs));
    const int64_t start[3] = { 0, 3, 3 }, len[3] = { 3, 0, 7 };
    for (int k = 0; k < 3; k++) {
        cr_assert(outs[k]->ndim == 2 && outs[k]->shape[0] == 4 && outs[k]->shape[1] == len[k]);
        cr_assert_eq(outs[k]->data, x->data, "piece %d is a view, not a copy", k);
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; j < len[k]; j++)
                cr_assert_eq(at2(outs[k], i, j), at2(x, i, start[k] + j));
    }
    ox_tensor *rows[2];
    assert_ok(ctx, ox_ag_split(ctx, x, 0, 2, (const int64_t[]){ 1, 3 }, rows));
    cr_assert(rows[0]->shape[0] == 1 && rows[1]->shape[0] == 3);
    cr_assert_eq(at2(rows[1], 2, 9), at2(x, 3, 9));
    ox_ctx_free(ctx);
}

/* Pieces of the transposed leaf, recombined in another order with different functions of each. */
static ox_tensor *f_split(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *p[3];
    if (ox_ag_split(ctx, ox_ag_transpose(ctx, in[0], 0, 1), 1, 3, (const int64_t[]){ 2, 1, 3 }, p))
        return NULL;
    return ox_ag_concat(ctx, 3, (ox_tensor *[]){ ox_ag_square(ctx, p[2]), p[0], ox_ag_scale(ctx, p[1], 3.0) }, 1);
}

Test(split, gradcheck_transposed_input)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(41);
    ox_tensor *x = test_leaf(ctx, &rng, OX_DIMS(6, 3), 1.0);
    /* fp32 defaults; the square term's truncation error eps^2 = 1e-6 is far below atol */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    assert_gradcheck(ctx, f_split, NULL, 1, (ox_tensor *[]){ x }, &o);
    ox_ctx_free(ctx);
}

Test(split, errors_name_sizes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 10));
    ox_tensor *outs[3] = { x, x, x };
    cr_assert_eq(ox_ag_split(ctx, x, 1, 3, (const int64_t[]){ 3, 3, 3 }, outs), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "9") && strstr(ox_ctx_message(ctx), "10") &&
              strstr(ox_ctx_message(ctx), "[4, 10]"), "%s", ox_ctx_message(ctx));
    for (int k = 0; k < 3; k++)
        cr_assert_null(outs[k]);
    assert_error(ctx, OX_ERR_ARG, "split");
    cr_assert_eq(ox_ag_split(ctx, x, 1, 2, (const int64_t[]){ 12, -2 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "negative");
    cr_assert_eq(ox_ag_split(ctx, x, 2, 1, (const int64_t[]){ 10 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "axis 2");
    cr_assert_eq(ox_ag_split(ctx, x, 0, 0, (const int64_t[]){ 4 }, outs), OX_ERR_ARG);
    assert_error(ctx, OX_ERR_ARG, "n = 0");
    ox_ctx_free(ctx);
}

/* =================================================================================== solve */

/* Reference: X = L^-1 B by forward substitution in double, reading only L's strictly lower part.
 * l: [nb, n, n] strided, b: [nb, n, m] strided, x: nb*n*m row-major. */
static void ref_solve(const ox_tensor *l, const ox_tensor *b, double *x)
{
    int64_t nb = l->shape[0], n = l->shape[1], m = b->shape[2];
    for (int64_t q = 0; q < nb; q++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < m; c++) {
                double s = at3(b, q, i, c);
                for (int64_t j = 0; j < i; j++)
                    s -= (double)at3(l, q, i, j) * x[(q * n + j) * m + c];
                x[(q * n + i) * m + c] = s;
            }
}

static double rel_err_d(const float *a, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        num = d > num || d != d ? (d != d ? INFINITY : d) : num;
        den = fabs(ref[i]) > den ? fabs(ref[i]) : den;
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

/* [nb, n, n] with strictly-lower entries N(0, 0.3^2) / sqrt(n) (well conditioned: |L^-1| stays of order
 * one) and large garbage (N(0, 10^2)) on and above the diagonal, which the solve must ignore. */
static ox_tensor *make_l(ox_ctx *ctx, ox_rng *rng, int64_t nb, int64_t n, double garbage)
{
    ox_tensor *l = ox_tensor_randn(ctx, rng, OX_DIMS(nb, n, n), 0, 0.3 / sqrt((double)n));
    cr_assert_not_null(l);
    float *v = ox_tensor_f32(l);
    for (int64_t q = 0; q < nb; q++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i; j < n; j++)
                v[(q * n + i) * n + j] = (float)(garbage * ox_rng_normal(rng));
    return l;
}

/* Tolerance of the fp32 solve against the double reference: a triangular solve has componentwise
 * backward error |dL| <= n u |L| (Higham, Accuracy and Stability, Thm 8.5), so the forward error is
 * <= n u cond(L, x) |x| with cond ~ | |L^-1| |L| | of order one for these L. With n <= 65 and
 * u = 6e-8, n u = 3.9e-6: 1e-5 is the bound with a margin of ~2.5 for cond, while reading a garbage
 * entry (or a wrong sign) makes the error of order one. */
#define SOLVE_TOL 1e-5

Test(solve, forward_matches_substitution_and_ignores_upper_part)
{
    ox_ctx *ctx = test_ctx();
    const int64_t ns[4] = { 1, 7, 64, 65 }, ms[4] = { 3, 5, 64, 33 };
    for (int c = 0; c < 4; c++) {
        int64_t n = ns[c], m = ms[c], nb = 2;
        ox_rng rng = ox_rng_seed(50 + c);
        ox_tensor *l = make_l(ctx, &rng, nb, n, 10.0);
        ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, n, m), 0, 1);
        ox_tensor *l_clean = ox_tensor_empty_like(ctx, l);          /* zero upper part, zero diagonal */
        for (int64_t i = 0; i < nb * n * n; i++)
            ox_tensor_f32(l_clean)[i] = (i % n) < (i / n) % n ? ox_tensor_f32(l)[i] : 0.0f;
        double *ref = malloc(sizeof(double) * (size_t)(nb * n * m));
        ref_solve(l, b, ref);
        ox_tensor *x = ox_ag_solve_tril_unit(ctx, l, b);
        ox_tensor *x_clean = ox_ag_solve_tril_unit(ctx, l_clean, b);
        cr_assert_not_null(x, "%s", ox_ctx_message(ctx));
        cr_assert_not_null(x_clean, "%s", ox_ctx_message(ctx));
        cr_assert(ox_tensor_same_shape(x, b) && ox_tensor_is_contiguous(x));
        double e = rel_err_d(ox_tensor_f32(x), ref, nb * n * m);
        double e_clean = rel_err_d(ox_tensor_f32(x_clean), ref, nb * n * m);
        cr_assert(e <= SOLVE_TOL, "n %lld: rel err %g", (long long)n, e);
        cr_assert(e_clean <= SOLVE_TOL, "n %lld (clean L): rel err %g", (long long)n, e_clean);
        free(ref);
    }
    ox_ctx_free(ctx);
}

/* Views: L as the transpose of a stored upper-triangular matrix, B as a transposed view, L broadcast
 * over the batch (stride 0), and an L whose rows are a broadcast row (stride 0 inside the matrix, which
 * BLIS cannot take directly and the op copies). Two batch axes. */
Test(solve, forward_strided_broadcast_and_4d_inputs)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(60);
    const int64_t n = 9, m = 4, nb = 3;
    /* transposed L and B */
    ox_tensor *u = make_l(ctx, &rng, nb, n, 10.0);
    ox_tensor *lt = ox_tensor_view_transpose(ctx, u, 1, 2);    /* strided "L" whose lower part is u's upper */
    ox_tensor *bs = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, m, n), 0, 1);
    ox_tensor *bt = ox_tensor_view_transpose(ctx, bs, 1, 2);   /* [nb, n, m] */
    double *ref = malloc(sizeof(double) * (size_t)(nb * n * m * 2));
    ref_solve(lt, bt, ref);
    ox_tensor *x = ox_ag_solve_tril_unit(ctx, lt, bt);
    cr_assert_not_null(x, "%s", ox_ctx_message(ctx));
    cr_assert(rel_err_d(ox_tensor_f32(x), ref, nb * n * m) <= SOLVE_TOL);
    /* L [n, n] broadcast over the batch */
    ox_tensor *l2 = make_l(ctx, &rng, 1, n, 10.0);
    ox_tensor *le = ox_tensor_view_expand(ctx, l2, OX_DIMS(nb, n, n));
    ref_solve(le, bt, ref);
    x = ox_ag_solve_tril_unit(ctx, le, bt);
    cr_assert_not_null(x, "%s", ox_ctx_message(ctx));
    cr_assert(rel_err_d(ox_tensor_f32(x), ref, nb * n * m) <= SOLVE_TOL);
    /* every row of L equal to one broadcast row: strides (0, 1) */
    ox_tensor *row = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, 1, n), 0, 0.3 / sqrt((double)n));
    ox_tensor *lr = ox_tensor_view_expand(ctx, row, OX_DIMS(nb, n, n));
    ref_solve(lr, bt, ref);
    x = ox_ag_solve_tril_unit(ctx, lr, bt);
    cr_assert_not_null(x, "%s", ox_ctx_message(ctx));
    cr_assert(rel_err_d(ox_tensor_f32(x), ref, nb * n * m) <= SOLVE_TOL);
    /* two batch axes [2, 3, n, n]: compared through 3-D reshaped views of the contiguous tensors */
    ox_tensor *l4 = ox_tensor_view_reshape(ctx, make_l(ctx, &rng, 6, n, 10.0), OX_DIMS(2, 3, n, n));
    ox_tensor *b4 = ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, n, m), 0, 1);
    ref_solve(ox_tensor_view_reshape(ctx, l4, OX_DIMS(6, n, n)), ox_tensor_view_reshape(ctx, b4, OX_DIMS(6, n, m)),
              ref);
    x = ox_ag_solve_tril_unit(ctx, l4, b4);
    cr_assert_not_null(x, "%s", ox_ctx_message(ctx));
    cr_assert(x->ndim == 4 && ox_tensor_same_shape(x, b4));
    cr_assert(rel_err_d(ox_tensor_f32(x), ref, 6 * n * m) <= SOLVE_TOL);
    free(ref);
    ox_ctx_free(ctx);
}

/* in[0]: L stored transposed ([nb, n, n], its upper part is L's lower part); in[1]: B stored as
 * [nb, m, n]; in[2]: a 2-D L shared by the batch (broadcast), solved against the first result. */
static ox_tensor *f_solve(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *x = ox_ag_solve_tril_unit(ctx, ox_ag_transpose(ctx, in[0], 1, 2), ox_ag_transpose(ctx, in[1], 1, 2));
    if (!x)
        return NULL;
    ox_tensor *l2 = ox_ag_expand(ctx, in[2], 3, in[0]->shape);
    return ox_ag_solve_tril_unit(ctx, l2, x);
}

Test(solve, gradcheck_transposed_and_broadcast_inputs)
{
    ox_ctx *ctx = test_ctx();
    /* n = 1 has no strictly-lower entry (L is the identity, dL is empty): its forward is checked above */
    const int64_t ns[3] = { 2, 5, 8 }, ms[3] = { 2, 3, 4 };
    for (int c = 0; c < 3; c++) {
        int64_t n = ns[c], m = ms[c], nb = 2;
        ox_rng rng = ox_rng_seed(70 + c);
        /* strictly-lower entries N(0, 0.3^2)/sqrt(n); the upper part and diagonal (here: of the stored
         * transpose) are O(1) values whose gradient must be exactly zero */
        ox_tensor *lt = make_l(ctx, &rng, nb, n, 1.0);
        ox_tensor *l2 = make_l(ctx, &rng, 1, n, 1.0);
        ox_tensor *l2v = ox_tensor_view_reshape(ctx, l2, OX_DIMS(n, n));
        ox_tensor *in[3] = { ox_tensor_view_transpose(ctx, lt, 1, 2), ox_tensor_randn(ctx, &rng, OX_DIMS(nb, m, n), 0, 1),
                             ox_tensor_empty(ctx, OX_F32, OX_DIMS(n, n)) };
        in[0] = ox_tensor_contiguous(ctx, in[0]);       /* stored transposed: upper part holds L's lower */
        assert_ok(ctx, ox_tensor_copy(ctx, in[2], l2v));
        for (int k = 0; k < 3; k++)
            assert_ok(ctx, ox_tensor_require_grad(ctx, in[k]));
        /* fp32 defaults (MODELS.md section 11 item 9). X is a rational function of L with O(1) second
         * derivatives here (|L^-1| ~ 1, |B| ~ 1), so the O(eps^2) = 1e-6 truncation term is far below
         * atol; the difference quotient's rounding is ~1e-4 |L|. */
        ox_gradcheck_opts o = ox_gradcheck_defaults();
        ox_status st = ox_gradcheck(ctx, f_solve, NULL, 3, in, &o);
        cr_assert_eq(st, OX_OK, "n %lld: %s", (long long)n, ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
}

/* Backward at n = 65 (BLIS's blocked path) against double references:
 *   dB = L^-T dX (back substitution),  dL = -strictly_lower(dB X^T),  accumulated onto prior grads. */
Test(solve, backward_matches_double_reference_large)
{
    ox_ctx *ctx = test_ctx();
    const int64_t n = test_small() ? 33 : 65, m = 17, nb = 2;
    ox_rng rng = ox_rng_seed(80);
    ox_tensor *l = make_l(ctx, &rng, nb, n, 10.0);
    ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, n, m), 0, 1);
    assert_ok(ctx, ox_tensor_require_grad(ctx, l));
    assert_ok(ctx, ox_tensor_require_grad(ctx, b));
    assert_ok(ctx, ox_tensor_fill(ctx, l->grad, 0.5));
    assert_ok(ctx, ox_tensor_fill(ctx, b->grad, -0.25));
    ox_tensor *x = ox_ag_solve_tril_unit(ctx, l, b);
    ox_tensor *dx = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, n, m), 0, 1);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, x, dx));
    double *xr = malloc(sizeof(double) * (size_t)(nb * n * m));
    double *dbr = malloc(sizeof(double) * (size_t)(nb * n * m));
    double *dlr = malloc(sizeof(double) * (size_t)(nb * n * n));
    ref_solve(l, b, xr);
    for (int64_t q = 0; q < nb; q++) {
        for (int64_t i = n - 1; i >= 0; i--)            /* L^T dB = dX: back substitution */
            for (int64_t c = 0; c < m; c++) {
                double s = ox_tensor_f32(dx)[(q * n + i) * m + c];
                for (int64_t j = i + 1; j < n; j++)
                    s -= (double)at3(l, q, j, i) * dbr[(q * n + j) * m + c];
                dbr[(q * n + i) * m + c] = s;
            }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t c = 0; c < m && j < i; c++)
                    s -= dbr[(q * n + i) * m + c] * xr[(q * n + j) * m + c];
                dlr[(q * n + i) * n + j] = 0.5 + s;
            }
    }
    for (int64_t i = 0; i < nb * n * m; i++)
        dbr[i] += -0.25;
    /* dB: the same triangular-solve bound as the forward (SOLVE_TOL). dL: products of dB and X (each
     * within SOLVE_TOL) summed over m = 17 terms in fp32 (17 u ~ 1e-6): 2 * SOLVE_TOL + 1e-6 bound. */
    double eb = rel_err_d(ox_tensor_f32(b->grad), dbr, nb * n * m);
    double el = rel_err_d(ox_tensor_f32(l->grad), dlr, nb * n * n);
    cr_assert(eb <= SOLVE_TOL, "dB rel err %g", eb);
    cr_assert(el <= 2 * SOLVE_TOL + 1e-6, "dL rel err %g", el);
    free(xr);
    free(dbr);
    free(dlr);
    ox_ctx_free(ctx);
}

/* The batch-parallel path (8 batches, 2 threads, single-threaded BLIS per batch) must match the
 * 1-thread run bit for bit (same BLIS calls per batch) and the reference. */
Test(solve, two_threads_batch_parallel_bit_identical)
{
    const int64_t nb = 8, n = 64, m = 64;
    ox_ctx *ctxs[2];
    ox_tensor *xs[2], *gl[2], *gb[2];
    for (int t = 0; t < 2; t++) {
        ox_ctx *ctx = ctxs[t] = test_ctx();
        ox_ctx_set_threads(ctx, t + 1);
        ox_rng rng = ox_rng_seed(90);
        ox_tensor *l = make_l(ctx, &rng, nb, n, 10.0);
        ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, n, m), 0, 1);
        assert_ok(ctx, ox_tensor_require_grad(ctx, l));
        assert_ok(ctx, ox_tensor_require_grad(ctx, b));
        xs[t] = ox_ag_solve_tril_unit(ctx, l, b);
        cr_assert_not_null(xs[t], "%s", ox_ctx_message(ctx));
        if (t == 0) {
            double *ref = malloc(sizeof(double) * (size_t)(nb * n * m));
            ref_solve(l, b, ref);
            cr_assert(rel_err_d(ox_tensor_f32(xs[0]), ref, nb * n * m) <= SOLVE_TOL);
            free(ref);
        }
        ox_tensor *dx = ox_tensor_randn(ctx, &rng, OX_DIMS(nb, n, m), 0, 1);
        assert_ok(ctx, ox_ag_backward_seeded(ctx, xs[t], dx));
        gl[t] = l->grad;
        gb[t] = b->grad;
    }
    cr_assert(bits_equal(ox_tensor_f32(xs[0]), ox_tensor_f32(xs[1]), nb * n * m), "forward");
    cr_assert(bits_equal(ox_tensor_f32(gb[0]), ox_tensor_f32(gb[1]), nb * n * m), "dB");
    cr_assert(bits_equal(ox_tensor_f32(gl[0]), ox_tensor_f32(gl[1]), nb * n * n), "dL");
    ox_ctx_free(ctxs[0]);
    ox_ctx_free(ctxs[1]);
}

Test(solve, errors_name_shapes)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *l = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 4));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 3));
    cr_assert_not_null(ox_ag_solve_tril_unit(ctx, l, b), "%s", ox_ctx_message(ctx));
    cr_assert_null(ox_ag_solve_tril_unit(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 3)), b));
    assert_error(ctx, OX_ERR_SHAPE, "[2, 4, 3]");
    cr_assert_null(ox_ag_solve_tril_unit(ctx, l, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 4, 3))));
    cr_assert(strstr(ox_ctx_message(ctx), "no broadcasting") && strstr(ox_ctx_message(ctx), "[2, 4, 4]"), "%s",
              ox_ctx_message(ctx));
    assert_error(ctx, OX_ERR_SHAPE, "[3, 4, 3]");
    cr_assert_null(ox_ag_solve_tril_unit(ctx, l, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 3))));
    assert_error(ctx, OX_ERR_SHAPE, "[4, 3]");
    cr_assert_null(ox_ag_solve_tril_unit(ctx, l, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 5, 3))));
    assert_error(ctx, OX_ERR_SHAPE, "[2, 5, 3]");
    cr_assert_null(ox_ag_solve_tril_unit(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4)), b));
    assert_error(ctx, OX_ERR_SHAPE, "[4]");
    cr_assert_null(ox_ag_solve_tril_unit(ctx, l, ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 4, 3))));
    assert_error(ctx, OX_ERR_DTYPE, "solve_tril_unit");
    ox_ctx_free(ctx);
}
