/* test_matmul.c - ox_ag_matmul: forward against a plain double-precision loop for every transpose
 * combination, odd sizes, batched/broadcast and strided inputs; backward against the same reference
 * (with accumulation into existing gradients) and by gradcheck; errors; determinism at 2 threads; and
 * the BLIS build and kernel set (suite blis).
 *
 * Tolerance of the fp32 product against the double reference, metric rel = max|c - ref| / max|ref|
 * (MODELS.md section 1): each output is a sum of K products of N(0, 1) values, so |ref| is of order
 * sqrt(K) and the fp32 rounding errors of the K-term sum (random-walk accumulation, any blocking or
 * FMA order BLIS uses) give an absolute error of order u * K, i.e. rel ~ u * sqrt(K) with
 * u = 6e-8. We accept rel <= 1e-5 * sqrt(K): more than 100x above that estimate, while a wrong or
 * missing term (error ~ |a b| ~ 1 against max|ref| ~ 3 sqrt(K)) gives rel >= 1e-2 for every K used
 * here (K <= 257: 1e-5 * sqrt(257) = 1.6e-4). Gradients use the same rule with K replaced by the
 * number of terms summed into each gradient element. */
#include "test_util.h"
#include "tensor/gemm.h"

#include <stdio.h>
#include <string.h>

/* ---- reference: plain loops in double, any strides, numpy batch broadcasting ---- */

struct ref_out {
    int nd;
    int64_t shape[OX_MAX_DIMS];
    int64_t items;          /* product of the batch sizes */
};

static struct ref_out ref_shape(const ox_tensor *a, const ox_tensor *b)
{
    struct ref_out o;
    int R = (a->ndim > b->ndim ? a->ndim : b->ndim) - 2;
    o.nd = R + 2;
    o.items = 1;
    for (int d = 0; d < R; d++) {
        int da = d - (R - (a->ndim - 2)), db = d - (R - (b->ndim - 2));
        int64_t xa = da >= 0 ? a->shape[da] : 1, xb = db >= 0 ? b->shape[db] : 1;
        o.shape[d] = xa > xb ? xa : xb;
        o.items *= o.shape[d];
    }
    o.shape[R] = a->shape[a->ndim - 2];
    o.shape[R + 1] = b->shape[b->ndim - 1];
    return o;
}

/* Offset of output batch item `item` in x: through x's strides, or (contig) in a row-major buffer of
 * x's shape. Broadcast axes (missing or size 1) contribute nothing. */
static int64_t ref_offset(const struct ref_out *o, const ox_tensor *x, int64_t item, int contig)
{
    int R = o->nd - 2, rx = x->ndim - 2;
    int64_t off = 0, rem = item;
    for (int d = R - 1; d >= 0; d--) {
        int64_t idx = rem % o->shape[d];
        rem /= o->shape[d];
        int dx = d - (R - rx);
        if (dx < 0 || x->shape[dx] == 1)
            continue;
        int64_t st = x->stride[dx];
        if (contig) {
            st = 1;
            for (int e = dx + 1; e < x->ndim; e++)
                st *= x->shape[e];
        }
        off += idx * st;
    }
    return off;
}

/* out[items, M, N] = a b */
static double *ref_matmul(const ox_tensor *a, const ox_tensor *b, struct ref_out *o)
{
    *o = ref_shape(a, b);
    int na = a->ndim, nb = b->ndim;
    int64_t M = a->shape[na - 2], K = a->shape[na - 1], N = b->shape[nb - 1];
    int64_t rsa = a->stride[na - 2], csa = a->stride[na - 1], rsb = b->stride[nb - 2], csb = b->stride[nb - 1];
    const float *pa = ox_tensor_f32(a), *pb = ox_tensor_f32(b);
    double *out = calloc((size_t)(o->items * M * N + 1), sizeof(double));
    cr_assert_not_null(out);
    for (int64_t it = 0; it < o->items; it++) {
        int64_t oa = ref_offset(o, a, it, 0), ob = ref_offset(o, b, it, 0);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)pa[oa + m * rsa + k * csa] * (double)pb[ob + k * rsb + n * csb];
                out[(it * M + m) * N + n] = s;
            }
    }
    return out;
}

/* da (a's shape, row-major) += dc b^T and db += a^T dc, summed over broadcast batches */
static void ref_matmul_grads(const ox_tensor *a, const ox_tensor *b, const float *dc, double *da, double *db)
{
    struct ref_out o = ref_shape(a, b);
    int na = a->ndim, nb = b->ndim;
    int64_t M = a->shape[na - 2], K = a->shape[na - 1], N = b->shape[nb - 1];
    int64_t rsa = a->stride[na - 2], csa = a->stride[na - 1], rsb = b->stride[nb - 2], csb = b->stride[nb - 1];
    const float *pa = ox_tensor_f32(a), *pb = ox_tensor_f32(b);
    for (int64_t it = 0; it < o.items; it++) {
        int64_t oa = ref_offset(&o, a, it, 0), ob = ref_offset(&o, b, it, 0);
        int64_t ga = ref_offset(&o, a, it, 1), gb = ref_offset(&o, b, it, 1);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double g = dc[(it * M + m) * N + n];
                for (int64_t k = 0; k < K; k++) {
                    da[ga + m * K + k] += g * (double)pb[ob + k * rsb + n * csb];
                    db[gb + k * N + n] += (double)pa[oa + m * rsa + k * csa] * g;
                }
            }
    }
}

static double rel_d(const float *x, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - ref[i]);
        num = d > num || d != d ? (d != d ? INFINITY : d) : num;
        den = fabs(ref[i]) > den ? fabs(ref[i]) : den;
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

/* Checks c = a b: shape and values within 1e-5 sqrt(K) (see the file header). */
static void check_forward(ox_ctx *ctx, ox_tensor *a, ox_tensor *b, const char *what)
{
    ox_tensor *c = ox_ag_matmul(ctx, a, b);
    cr_assert_not_null(c, "%s: %s", what, ox_ctx_message(ctx));
    struct ref_out o;
    double *ref = ref_matmul(a, b, &o);
    cr_assert_eq(c->ndim, o.nd, "%s: rank %d, expected %d", what, c->ndim, o.nd);
    for (int d = 0; d < o.nd; d++)
        cr_assert_eq(c->shape[d], o.shape[d], "%s: axis %d", what, d);
    cr_assert(ox_tensor_is_contiguous(c), "%s: result not contiguous", what);
    int64_t K = a->shape[a->ndim - 1];
    double tol = 1e-5 * sqrt((double)(K > 1 ? K : 1));
    double r = rel_d(ox_tensor_f32(c), ref, ox_tensor_numel(c));
    cr_assert(r <= tol, "%s: rel %.3g > %.3g", what, r, tol);
    free(ref);
}

/* An [rows, cols] operand of N(0, 1) values: contiguous, or (transposed) the transpose of a
 * contiguous [cols, rows] tensor, i.e. strides (1, rows). */
static ox_tensor *operand(ox_ctx *ctx, ox_rng *rng, int64_t rows, int64_t cols, int transposed)
{
    ox_tensor *t = transposed ? ox_tensor_randn(ctx, rng, OX_DIMS(cols, rows), 0, 1)
                              : ox_tensor_randn(ctx, rng, OX_DIMS(rows, cols), 0, 1);
    return transposed ? ox_tensor_view_transpose(ctx, t, 0, 1) : t;
}

/* ---- forward ---- */

Test(matmul, forward_every_transpose_combination_odd_sizes)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    /* each of 1, 7, 65, 257 appears as M, as K and as N at least once */
    static const int64_t sizes[][3] = { { 1, 7, 65 }, { 7, 65, 257 }, { 65, 257, 1 }, { 257, 1, 7 },
                                        { 65, 65, 65 }, { 7, 257, 7 }, { 1, 1, 1 } };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t M = sizes[s][0], K = sizes[s][1], N = sizes[s][2];
                char what[96];
                snprintf(what, sizeof what, "M=%lld K=%lld N=%lld %s %s", (long long)M, (long long)K,
                         (long long)N, ta ? "A^T" : "A", tb ? "B^T" : "B");
                check_forward(ctx, operand(ctx, &rng, M, K, ta), operand(ctx, &rng, K, N, tb), what);
                ox_ctx_reset(ctx);
            }
    ox_ctx_free(ctx);
}

Test(matmul, forward_batched_with_broadcasting)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2);
    const int64_t M = 7, K = 65, N = 9;
    /* batch against a shorter batch, size-1 axes against each other, shared 2-D operands (the folded
     * path and the batch loop with one b), size-1 batch axes on b */
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, M, K), 0, 1),
                  ox_tensor_randn(ctx, &rng, OX_DIMS(3, K, N), 0, 1), "[2,3,M,K] x [3,K,N]");
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 1, M, K), 0, 1),
                  ox_tensor_randn(ctx, &rng, OX_DIMS(1, 4, K, N), 0, 1), "[2,1,M,K] x [1,4,K,N]");
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(M, K), 0, 1),
                  ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, K, N), 0, 1), "[M,K] x [2,3,K,N]");
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, M, K), 0, 1),
                  ox_tensor_randn(ctx, &rng, OX_DIMS(K, N), 0, 1), "[2,3,M,K] x [K,N] (folded)");
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(3, M, K), 0, 1),
                  ox_tensor_randn(ctx, &rng, OX_DIMS(1, 1, K, N), 0, 1), "[3,M,K] x [1,1,K,N] (folded)");
    /* per-batch transposes: a is not foldable, b's batch is transposed */
    ox_tensor *at = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(4, K, M), 0, 1), 1, 2);
    check_forward(ctx, at, ox_tensor_randn(ctx, &rng, OX_DIMS(K, N), 0, 1), "[4,M,K]^T x [K,N]");
    ox_tensor *bt = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(3, N, K), 0, 1), -1, -2);
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, M, K), 0, 1), bt, "[2,3,M,K] x [3,K,N]^T");
    /* a batch axis in the middle of the folded rows: [M, 2, K] permuted to [2, M, K] */
    ox_tensor *ap = ox_tensor_view_transpose(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(M, 2, K), 0, 1), 0, 1);
    check_forward(ctx, ap, ox_tensor_randn(ctx, &rng, OX_DIMS(K, N), 0, 1), "[M,2,K]->[2,M,K] x [K,N]");
    ox_ctx_free(ctx);
}

Test(matmul, forward_strided_and_broadcast_views)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    const int64_t M = 7, K = 65, N = 33;
    ox_tensor *b2 = ox_tensor_randn(ctx, &rng, OX_DIMS(K, N), 0, 1);
    /* K axis narrowed: rows of stride K + 5, still foldable */
    ox_tensor *a1 = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, M, K + 5), 0, 1), 3, 2, K);
    check_forward(ctx, a1, b2, "a narrowed along K");
    /* M axis narrowed: the batch stride is not M times the row stride, so no fold */
    ox_tensor *a2 = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(3, M + 3, K), 0, 1), 1, 1, M);
    check_forward(ctx, a2, b2, "a narrowed along M");
    /* batch axis narrowed, b narrowed along N and along K */
    ox_tensor *a3 = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(5, M, K), 0, 1), 0, 1, 3);
    ox_tensor *b3 = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(3, K, N + 4), 0, 1), 2, 3, N);
    check_forward(ctx, a3, b3, "narrowed batch x narrowed N");
    ox_tensor *b4 = ox_tensor_view_narrow(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(K + 2, N), 0, 1), 0, 1, K);
    check_forward(ctx, a3, b4, "x b narrowed along K");
    /* a selected out of a wider tensor: row stride 3K */
    ox_tensor *a5 = ox_tensor_view_select(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(M, 3, K), 0, 1), 1, 1);
    check_forward(ctx, a5, b2, "a selected from [M,3,K]");
    /* attention layout: q, k [B, T, H, dk] permuted to [B, H, T, dk]; scores = q k^T, then scores v */
    ox_tensor *q = ox_tensor_randn(ctx, &rng, OX_DIMS(2, 9, 3, 8), 0, 1);
    ox_tensor *k = ox_tensor_randn(ctx, &rng, OX_DIMS(2, 9, 3, 8), 0, 1);
    ox_tensor *v = ox_tensor_randn(ctx, &rng, OX_DIMS(2, 9, 3, 5), 0, 1);
    const int perm[4] = { 0, 2, 1, 3 };
    ox_tensor *qh = ox_tensor_view_permute(ctx, q, perm), *kh = ox_tensor_view_permute(ctx, k, perm);
    check_forward(ctx, qh, ox_tensor_view_transpose(ctx, kh, 2, 3), "q k^T in [B,H,T,dk] views");
    check_forward(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(2, 3, 9, 9), 0, 1), ox_tensor_view_permute(ctx, v, perm),
                  "scores v in [B,H,T,dv] views");
    /* stride 0 inside the matrix (copied first): a row broadcast to M rows, b columns broadcast */
    ox_tensor *arow = ox_tensor_view_expand(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(1, K), 0, 1), OX_DIMS(M, K));
    ox_tensor *bcol = ox_tensor_view_expand(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(K, 1), 0, 1), OX_DIMS(K, N));
    check_forward(ctx, arow, bcol, "stride-0 rows x stride-0 columns");
    ox_tensor *brow = ox_tensor_view_expand(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(1, N), 0, 1), OX_DIMS(K, N));
    check_forward(ctx, a1, brow, "x stride-0 rows of b");
    /* stride 0 on a batch axis (an expanded view): read in place */
    ox_tensor *aexp = ox_tensor_view_expand(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(M, K), 0, 1), OX_DIMS(3, M, K));
    check_forward(ctx, aexp, b3, "batch-expanded a x [3,K,N]");
    check_forward(ctx, aexp, b2, "batch-expanded a x [K,N]");
    ox_ctx_free(ctx);
}

Test(matmul, k_zero_gives_zeros_and_empty_shapes_work)
{
    ox_ctx *ctx = test_ctx();
    /* fill the arena with NaN and rewind, so the result's memory starts as garbage */
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    ox_tensor *junk = ox_tensor_full(ctx, OX_F32, OX_DIMS(1 << 14), NAN);
    cr_assert_not_null(junk);
    ox_arena_rewind(&ctx->arena, mark);
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 0));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 4));
    assert_ok(ctx, ox_tensor_require_grad(ctx, a));
    assert_ok(ctx, ox_tensor_require_grad(ctx, b));
    ox_tensor *c = ox_ag_matmul(ctx, a, b);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    cr_assert(c->ndim == 3 && c->shape[0] == 2 && c->shape[1] == 3 && c->shape[2] == 4);
    for (int i = 0; i < 24; i++)
        cr_assert(ox_tensor_f32(c)[i] == 0.0f, "element %d is %g", i, ox_tensor_f32(c)[i]);
    /* backward through an empty sum: nothing to add, no error */
    assert_ok(ctx, ox_ag_backward_seeded(ctx, c, ox_tensor_ones(ctx, OX_F32, c->ndim, c->shape)));
    cr_assert(a->grad->shape[2] == 0 && b->grad->shape[0] == 0);
    /* M = 0 and N = 0 give empty results of the right shape */
    ox_tensor *e1 = ox_ag_matmul(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 3)), ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 4)));
    cr_assert(e1 && e1->shape[0] == 0 && e1->shape[1] == 4, "%s", ox_ctx_message(ctx));
    ox_tensor *e2 = ox_ag_matmul(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3)), ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 3, 0)));
    cr_assert(e2 && e2->ndim == 3 && e2->shape[0] == 0 && e2->shape[1] == 2 && e2->shape[2] == 0,
              "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(matmul, shape_and_type_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));
    ox_tensor *b = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4, 5));
    cr_assert_null(ox_ag_matmul(ctx, a, b));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3]") && strstr(ox_ctx_message(ctx), "[4, 5]"),
              "message names both shapes: %s", ox_ctx_message(ctx));
    /* sticky: a valid product now returns NULL too */
    cr_assert_null(ox_ag_matmul(ctx, a, ox_tensor_view_transpose(ctx, a, 0, 1)));
    ox_ctx_clear_error(ctx);

    ox_tensor *a3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3, 4));
    ox_tensor *b3 = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3, 4, 5));
    cr_assert_null(ox_ag_matmul(ctx, a3, b3));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3, 4]") && strstr(ox_ctx_message(ctx), "[3, 4, 5]"),
              "message names both shapes: %s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    ox_tensor *v = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(3));
    cr_assert_null(ox_ag_matmul(ctx, a, v));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    cr_assert(strstr(ox_ctx_message(ctx), "[2, 3]") && strstr(ox_ctx_message(ctx), "[3]"), "%s",
              ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    ox_tensor *ai = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(3, 4));
    cr_assert_null(ox_ag_matmul(ctx, a, ai));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_DTYPE);
    ox_ctx_clear_error(ctx);

    /* a NULL input (an earlier failure) returns NULL without a new error */
    cr_assert_null(ox_ag_matmul(ctx, NULL, b));
    cr_assert_eq(ox_ctx_status(ctx), OX_OK);
    ox_ctx_free(ctx);
}

/* ---- backward against the reference, accumulating into existing gradients ---- */

/* Leaves a0 [shape_a] and b0 [shape_b] with random gradients already in place; c = matmul(view(a0),
 * view(b0)) where view transposes the last two axes when asked (then the leaves hold the transposed
 * shapes). Backward is seeded with random R; the gradient of each matmul input must equal its old
 * value plus the reference. */
struct bw_case {
    const char *name;
    int na; int64_t sa[4];
    int nb; int64_t sb[4];
    int ta, tb;
};

static void check_backward(ox_ctx *ctx, const struct bw_case *cs, uint64_t seed)
{
    ox_rng rng = ox_rng_seed(seed);
    ox_tensor *a0 = test_leaf(ctx, &rng, cs->na, cs->sa, 1.0);
    ox_tensor *b0 = test_leaf(ctx, &rng, cs->nb, cs->sb, 1.0);
    assert_ok(ctx, ox_tensor_fill_normal(ctx, a0->grad, &rng, 0, 1));
    assert_ok(ctx, ox_tensor_fill_normal(ctx, b0->grad, &rng, 0, 1));
    ox_tensor *a = cs->ta ? ox_ag_transpose(ctx, a0, -1, -2) : a0;
    ox_tensor *b = cs->tb ? ox_ag_transpose(ctx, b0, -1, -2) : b0;
    /* a transposed view gets its own (zeroed) gradient from the tape; a leaf keeps its old one */
    int64_t nA = ox_tensor_numel(a), nB = ox_tensor_numel(b);
    double *da = calloc((size_t)nA + 1, sizeof(double)), *db = calloc((size_t)nB + 1, sizeof(double));
    cr_assert(da && db);
    if (!cs->ta)
        for (int64_t i = 0; i < nA; i++)
            da[i] = ox_tensor_f32(a0->grad)[i];
    if (!cs->tb)
        for (int64_t i = 0; i < nB; i++)
            db[i] = ox_tensor_f32(b0->grad)[i];
    ox_tensor *c = ox_ag_matmul(ctx, a, b);
    cr_assert_not_null(c, "%s: %s", cs->name, ox_ctx_message(ctx));
    ox_tensor *r = ox_tensor_randn(ctx, &rng, c->ndim, c->shape, 0, 1);
    ref_matmul_grads(a, b, ox_tensor_f32(r), da, db);
    assert_ok(ctx, ox_ag_backward_seeded(ctx, c, r));
    /* terms per gradient element: N per item for dA, M per item for dB, times the items summed */
    int64_t M = c->shape[c->ndim - 2], N = c->shape[c->ndim - 1], K = a->shape[a->ndim - 1];
    int64_t items = ox_tensor_numel(c) / (M * N);
    double terms_a = (double)N * (double)items / (double)(nA / (M * K));
    double terms_b = (double)M * (double)items / (double)(nB / (K * N));
    double ra = rel_d(ox_tensor_f32(a->grad), da, nA), rb = rel_d(ox_tensor_f32(b->grad), db, nB);
    cr_assert(ra <= 1e-5 * sqrt(terms_a), "%s: dA rel %.3g", cs->name, ra);
    cr_assert(rb <= 1e-5 * sqrt(terms_b), "%s: dB rel %.3g", cs->name, rb);
    free(da);
    free(db);
}

Test(matmul, backward_matches_reference_and_accumulates)
{
    ox_ctx *ctx = test_ctx();
    static const struct bw_case cases[] = {
        { "2-D", 2, { 65, 7 }, 2, { 7, 33 }, 0, 0 },
        { "2-D A^T B^T", 2, { 7, 65 }, 2, { 33, 7 }, 1, 1 },
        { "[2,3,M,K] x [K,N] folded", 4, { 2, 3, 65, 7 }, 2, { 7, 33 }, 0, 0 },
        { "[2,3,M,K]^T x [K,N] (dB by batch loop)", 4, { 2, 3, 7, 65 }, 2, { 7, 33 }, 1, 0 },
        { "[2,3,M,K] x [3,K,N]^T", 4, { 2, 3, 65, 7 }, 3, { 3, 33, 7 }, 0, 1 },
        { "[2,1,M,K] x [1,4,K,N]", 4, { 2, 1, 65, 7 }, 4, { 1, 4, 7, 33 }, 0, 0 },
        { "[M,K] x [2,3,K,N]", 2, { 65, 7 }, 4, { 2, 3, 7, 33 }, 0, 0 },
        { "[1,M,K] x [1,1,K,N] K=257", 3, { 1, 7, 257 }, 4, { 1, 1, 257, 1 }, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_backward(ctx, &cases[i], 100 + i);
        ox_ctx_reset(ctx);
    }
    ox_ctx_free(ctx);
}

/* ---- gradcheck (small sizes; defaults of MODELS.md section 11 item 9: eps 1e-3, rtol 1e-2,
 * atol 1e-3). matmul is bilinear, so the central difference has no truncation error; the tolerance
 * only has to absorb fp32 rounding of L, ~1e-7 |L| / eps ~ 1e-4 here. N(0, 1) inputs and seed give
 * gradients of order sqrt(K) ~ 2. ---- */

enum gc_kind { GC_PLAIN, GC_TRANSPOSED, GC_BATCHED, GC_BROADCAST, GC_FOLDED, GC_SHARED_A, GC_ROW_EXPAND };

struct gc_arg { enum gc_kind kind; int ta, tb; };

static ox_tensor *f_matmul(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const struct gc_arg *g = arg;
    ox_tensor *a = in[0], *b = in[1];
    switch (g->kind) {
    case GC_TRANSPOSED:     /* leaves hold the transposes where asked */
        return ox_ag_matmul(ctx, g->ta ? ox_ag_transpose(ctx, a, -1, -2) : a,
                            g->tb ? ox_ag_transpose(ctx, b, -1, -2) : b);
    case GC_FOLDED:         /* a [2, 3, M, K] narrowed from K + 2 columns: strided rows, folded */
        return ox_ag_matmul(ctx, ox_ag_narrow(ctx, a, 3, 1, a->shape[3] - 2), b);
    case GC_ROW_EXPAND: {   /* a [1, K] broadcast to [M, K] inside the matrix (copied) */
        int64_t shape[2] = { 3, a->shape[1] };
        return ox_ag_matmul(ctx, ox_ag_expand(ctx, a, 2, shape), b);
    }
    default:
        return ox_ag_matmul(ctx, a, b);
    }
}

static void gc_run(enum gc_kind kind, int ta, int tb, int na, const int64_t *sa, int nb, const int64_t *sb)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(7 + kind * 4 + ta * 2 + tb);
    ox_tensor *a = test_leaf(ctx, &rng, na, sa, 1.0);
    ox_tensor *b = test_leaf(ctx, &rng, nb, sb, 1.0);
    struct gc_arg g = { kind, ta, tb };
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    ox_status s = ox_gradcheck(ctx, f_matmul, &g, 2, (ox_tensor *[]){ a, b }, &o);
    cr_assert_eq(s, OX_OK, "kind %d ta %d tb %d: %s", kind, ta, tb, ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(matmul, gradcheck_plain_and_transposed)
{
    const int64_t M = 3, K = 4, N = 5;
    gc_run(GC_PLAIN, 0, 0, OX_DIMS(M, K), OX_DIMS(K, N));
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            gc_run(GC_TRANSPOSED, ta, tb, 2, ta ? (int64_t[]){ K, M } : (int64_t[]){ M, K },
                   2, tb ? (int64_t[]){ N, K } : (int64_t[]){ K, N });
}

Test(matmul, gradcheck_batched_and_broadcast)
{
    const int64_t M = 3, K = 4, N = 2;
    gc_run(GC_BATCHED, 0, 0, OX_DIMS(2, 3, M, K), OX_DIMS(3, K, N));
    gc_run(GC_TRANSPOSED, 1, 1, OX_DIMS(2, 3, K, M), OX_DIMS(3, N, K));
    gc_run(GC_BROADCAST, 0, 0, OX_DIMS(2, 1, M, K), OX_DIMS(1, 2, K, N));
    gc_run(GC_FOLDED, 0, 0, OX_DIMS(2, 3, M, K + 2), OX_DIMS(K, N));
    gc_run(GC_TRANSPOSED, 1, 0, OX_DIMS(2, 3, K, M), OX_DIMS(K, N));
    gc_run(GC_SHARED_A, 0, 0, OX_DIMS(M, K), OX_DIMS(2, 2, K, N));
    gc_run(GC_ROW_EXPAND, 0, 0, OX_DIMS(1, K), OX_DIMS(K, N));
}

/* ---- threads ---- */

/* Forward and backward of one case at 2 threads, twice: bit-identical both times, and correct. */
static void run_twice_identical(const struct bw_case *cs)
{
    float *first[3] = { NULL, NULL, NULL };
    for (int rep = 0; rep < 2; rep++) {
        ox_ctx *ctx = test_ctx();
        ox_ctx_set_threads(ctx, 2);
        ox_rng rng = ox_rng_seed(42);
        ox_tensor *a = test_leaf(ctx, &rng, cs->na, cs->sa, 1.0);
        ox_tensor *b = test_leaf(ctx, &rng, cs->nb, cs->sb, 1.0);
        ox_tensor *c = ox_ag_matmul(ctx, a, b);
        cr_assert_not_null(c, "%s: %s", cs->name, ox_ctx_message(ctx));
        ox_tensor *r = ox_tensor_randn(ctx, &rng, c->ndim, c->shape, 0, 1);
        struct ref_out o;
        double *ref = ref_matmul(a, b, &o);
        double rc = rel_d(ox_tensor_f32(c), ref, ox_tensor_numel(c));
        cr_assert(rc <= 1e-5 * sqrt((double)a->shape[a->ndim - 1]), "%s: rel %.3g", cs->name, rc);
        free(ref);
        assert_ok(ctx, ox_ag_backward_seeded(ctx, c, r));
        const ox_tensor *res[3] = { c, a->grad, b->grad };
        for (int k = 0; k < 3; k++) {
            size_t bytes = sizeof(float) * (size_t)ox_tensor_numel(res[k]);
            if (rep == 0) {
                first[k] = malloc(bytes);
                cr_assert_not_null(first[k]);
                memcpy(first[k], ox_tensor_f32(res[k]), bytes);
            } else {
                cr_assert(memcmp(first[k], ox_tensor_f32(res[k]), bytes) == 0,
                          "%s: result %d differs between two runs at 2 threads", cs->name, k);
                free(first[k]);
            }
        }
        ox_ctx_free(ctx);
    }
}

Test(matmul, deterministic_at_two_threads)
{
    static const struct bw_case cases[] = {
        /* one big folded GEMM (BLIS threads) and its one-GEMM backward */
        { "folded [4,129,257] x [257,130]", 3, { 4, 129, 257 }, 2, { 257, 130 }, 0, 0 },
        /* 128 small products: the OpenMP batch loop, one thread per GEMM */
        { "batch loop [128,24,32] x [128,32,24]", 3, { 128, 24, 32 }, 3, { 128, 32, 24 }, 0, 0 },
        /* broadcast gradients summed per group, groups in parallel */
        { "broadcast [8,1,24,32] x [1,16,32,24]", 4, { 8, 1, 24, 32 }, 4, { 1, 16, 32, 24 }, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_twice_identical(&cases[i]);
}

Test(matmul, backward_at_two_threads_matches_reference)
{
    ox_ctx *ctx = test_ctx();
    ox_ctx_set_threads(ctx, 2);
    static const struct bw_case cases[] = {
        { "[8,1,24,32] x [1,16,32,24]", 4, { 8, 1, 24, 32 }, 4, { 1, 16, 32, 24 }, 0, 0 },
        { "[128,24,32]^T x [32,24]", 3, { 128, 32, 24 }, 2, { 32, 24 }, 1, 0 },
        { "[4,129,257] x [257,130]^T", 3, { 4, 129, 257 }, 2, { 130, 257 }, 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_backward(ctx, &cases[i], 200 + i);
        ox_ctx_reset(ctx);
    }
    ox_ctx_free(ctx);
}

/* ---- the BLIS build ---- */

Test(blis, openmp_build_and_optimised_kernels)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5);
    ox_tensor *c = ox_ag_matmul(ctx, ox_tensor_randn(ctx, &rng, OX_DIMS(8, 8), 0, 1),
                                ox_tensor_randn(ctx, &rng, OX_DIMS(8, 8), 0, 1));
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    cr_assert_eq(ox_gemm_blis_openmp(), 1, "the linked BLIS is not its OpenMP build");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        cr_assert(strcmp(ox_gemm_arch(), "generic") != 0,
                  "BLIS uses its generic kernels on a CPU with AVX2 (kernel set %s)", ox_gemm_arch());
    ox_ctx_free(ctx);
}

/* ox_gemm_arch must work before any product: with BLIS_ARCH_TYPE set (ox_gemm_setup sets it on AVX2
 * CPUs) BLIS 0.9 aborts when the id is queried before it initialised its kernel table. Criterion runs
 * each test in a fresh process, so no GEMM has run yet here. */
Test(blis, kernel_set_query_before_any_gemm)
{
    ox_ctx *ctx = test_ctx();
    const char *arch = ox_gemm_arch();
    cr_assert(arch && arch[0], "no kernel set name");
    ox_ctx_free(ctx);
}
