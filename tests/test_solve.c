/* test_solve.c - the unit-lower triangular solve (autograd/solve.c): forward against substitution in
 * double (strided, broadcast and 4-D inputs), gradients by gradcheck and against a double-precision
 * reference, determinism at 2 threads, and error cases.
 *
 * Suite: solve. */
#include "index_util.h"

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
