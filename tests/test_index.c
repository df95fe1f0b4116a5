/* test_index.c - indexing ops (autograd/index.c): gather_rows, scatter_add_rows, take_last. Forward
 * against plain loops (repeated indices, transposed / sliced / permuted inputs), gradients by gradcheck,
 * determinism at 2 threads, and error cases.
 *
 * Suites: gather, scatter, take. */
#include "index_util.h"

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
