/* solve.c - unit lower triangular solve X = L^-1 B: forward, backward and tape glue.
 *
 * Forward: B is copied into the contiguous result X, then each batch is solved in place by BLIS trsm
 * (tensor/gemm.h), which reads only the strictly lower part of L and takes its diagonal as 1.
 * Backward, from L X = B:
 *     dB = L^-T dX                           (trsm with op(L) = L^T, an upper triangular solve)
 *     dL = -strictly_lower(dB X^T)           (only the strictly lower entries of L are parameters)
 * The batch (all axes but the last two) is walked in parallel with single-threaded BLIS when there are
 * at least as many batches as threads and the work is large; otherwise sequentially with threaded BLIS.
 * Either way every batch's result is computed by one call in a fixed order (bit-identical reruns). */
#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/iter.h"

/* Offset (elements, from ox_tensor_f32(t)) of matrix `b` of t's batch axes (all but the last two). */
static int64_t batch_offset(const ox_tensor *t, int64_t b)
{
    int64_t off = 0;
    for (int d = t->ndim - 3; d >= 0; d--) {
        off += (b % t->shape[d]) * t->stride[d];
        b /= t->shape[d];
    }
    return off;
}

/* 1 if BLIS accepts an r x c matrix with these strides: row- or column-major with a leading dimension
 * that does not overlap rows/columns. (Expanded stride-0 or interleaved views are copied first.) */
static int blis_strides_ok(int64_t r, int64_t c, int64_t rs, int64_t cs)
{
    if (r <= 1 || c <= 1)
        return 1;       /* a vector: gemm.c fixes the stride of the size-1 axis */
    return (cs == 1 && rs >= c) || (rs == 1 && cs >= r);
}

/* Threads for the batch loop (1 = run batches sequentially and give BLIS all threads). */
static int batch_threads(const ox_ctx *ctx, int64_t nb, int64_t work)
{
    return ctx->n_threads > 1 && nb >= ctx->n_threads && work >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
}

/* saved: L as BLIS reads it (l itself, or a contiguous copy when its strides are not BLIS-compatible) */
static ox_status solve_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *l = node->in[0], *b = node->in[1], *x = node->out[0], *dx = x->grad, *lb = node->saved;
    ox_tensor *gl = ox_ag_grad(ctx, l), *gb = ox_ag_grad(ctx, b);
    if (ctx->status)
        return ctx->status;
    int nd = x->ndim;
    int64_t n = x->shape[nd - 2], m = x->shape[nd - 1], nb = ox_tensor_numel(x) / (n * m > 0 ? n * m : 1);
    if (n == 0 || m == 0)
        return OX_OK;           /* dB is empty, and dL = -dB X^T with an empty inner axis is 0 */

    /* scratch (released below): dB [..., n, n] and, for dL, one n x n product per batch */
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    ox_tensor *db = ox_tensor_empty_like(ctx, x);
    float *prod = gl ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nb * n * n)) : NULL;
    if (!db || ox_tensor_copy(ctx, db, dx) || (gl && !prod))
        return ctx->status;

    const float *lv = ox_tensor_f32(lb), *xv = ox_tensor_f32(x);
    float *dbv = ox_tensor_f32(db), *glv = gl ? ox_tensor_f32(gl) : NULL;
    int64_t rsl = lb->stride[nd - 2], csl = lb->stride[nd - 1];
    int bt = batch_threads(ctx, nb, nb * n * (n + m));
    int blis_t = bt > 1 ? 1 : ctx->n_threads;
    /* batches are independent: each writes only its own dB, product and dL block */
#pragma omp parallel for num_threads(bt) if (bt > 1) schedule(guided)
    for (int64_t i = 0; i < nb; i++) {
        const float *li = lv + batch_offset(lb, i), *xi = xv + i * n * m;
        float *dbi = dbv + i * n * m;
        ox_strsm_unit_lower(blis_t, 1, n, m, li, rsl, csl, dbi, m, 1);      /* dB = L^-T dX */
        if (glv) {
            float *p = prod + i * n * n, *g = glv + i * n * n;
            /* p = -dB X^T: dB [n, m] row-major, X^T [m, n] is X with strides (1, m) */
            ox_sgemm(blis_t, n, n, m, -1.0f, dbi, m, 1, xi, 1, m, 0.0f, p, n, 1);
            for (int64_t r = 1; r < n; r++)
                for (int64_t c = 0; c < r; c++)
                    g[r * n + c] += p[r * n + c];
        }
    }
    ox_status st = gb ? ox_tensor_add_into(ctx, gb, db) : OX_OK;
    ox_arena_rewind(&ctx->arena, mark);
    return st;
}

static const ox_ag_op solve_op = { "solve_tril_unit", solve_backward };

ox_tensor *ox_ag_solve_tril_unit(ox_ctx *ctx, ox_tensor *l, ox_tensor *b)
{
    if (ctx->status || !l || !b)
        return NULL;
    const char *op = "solve_tril_unit";
    if (ox_check_f32(ctx, op, l) || ox_check_f32(ctx, op, b))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    int nd = l->ndim;
    if (nd < 2 || l->shape[nd - 1] != l->shape[nd - 2]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: L must be [..., n, n] (square in its last two axes), got %s", op,
                    ox_shape_str(l, b1));
        return NULL;
    }
    int ok = b->ndim == nd && b->shape[nd - 2] == l->shape[nd - 1];
    for (int d = 0; ok && d < nd - 2; d++)
        ok = b->shape[d] == l->shape[d];
    if (!ok) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE,
                    "%s: B must be [..., n, m] with L's n and exactly L's batch axes (no broadcasting), "
                    "got L %s and B %s", op, ox_shape_str(l, b1), ox_shape_str(b, b2));
        return NULL;
    }
    int64_t n = l->shape[nd - 1], m = b->shape[nd - 1];
    ox_tensor *lb = l;
    if (!blis_strides_ok(n, n, l->stride[nd - 2], l->stride[nd - 1])) {
        lb = ox_tensor_empty_like(ctx, l);
        if (!lb || ox_tensor_copy(ctx, lb, l))
            return NULL;
    }
    ox_tensor *x = ox_tensor_empty_like(ctx, b);
    if (!x || ox_tensor_copy(ctx, x, b))
        return NULL;
    int64_t nb = n * m > 0 ? ox_tensor_numel(x) / (n * m) : 0;
    const float *lv = ox_tensor_f32(lb);
    float *xv = ox_tensor_f32(x);
    int64_t rsl = lb->stride[nd - 2], csl = lb->stride[nd - 1];
    int bt = batch_threads(ctx, nb, nb * n * m);
    int blis_t = bt > 1 ? 1 : ctx->n_threads;
    /* batches are independent: each solves its own block of X in place */
#pragma omp parallel for num_threads(bt) if (bt > 1) schedule(guided)
    for (int64_t i = 0; i < nb; i++)
        ox_strsm_unit_lower(blis_t, 0, n, m, lv + batch_offset(lb, i), rsl, csl, xv + i * n * m, m, 1);
    ox_ag_node *node = ox_ag_record(ctx, &solve_op, 2, (ox_tensor *[]){ l, b }, 1, &x);
    if (node)
        node->saved = lb;
    return ctx->status ? NULL : x;
}
