/* topk.c - the largest elements along an axis: ox_ag_argmax (I32 indices, no gradient) and ox_ag_topk
 * (the k largest values, F32 with a gradient, and their I32 indices).
 *
 * One order for both (x viewed as [outer, n, inner], the axis in the middle): element i comes before
 * element j when x_i > x_j, or x_i == x_j and i < j (ties: the lowest index first), with NaN above every
 * number (NaNs among themselves: the lowest index first). This is a total order, so the result is unique:
 * it does not depend on the algorithm, the thread count or the platform's sort.
 *
 * argmax: over the last axis, lanes_argmax (lanes.h: 16 lanes, first NaN or first maximum); over a middle
 * axis a running (max, index) per inner element, the inner axis being the vectorised loop. Not recorded.
 *
 * topk: each of the outer * inner rows is gathered into a scratch row of (value, index) pairs, then
 *  - k <= TOPK_INSERT: one pass keeping the k best so far sorted (a candidate that does not beat the
 *    current k-th is rejected by one comparison; candidates come in index order, so an equal value never
 *    moves past an earlier one);
 *  - larger k: a bottom-up merge sort of the whole row with the order above (in the scratch, no
 *    allocation: the C library's qsort may malloc), then its first k.
 * Rows run in parallel (OpenMP, static schedule, one scratch row per thread) when x has at least
 * OX_PARALLEL_MIN elements. Backward of the values: dx[idx_j] += dy_j along each row (the k indices of a
 * row are distinct, so no two updates collide). Saved: the indices [outer, k, inner]. */
#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <omp.h>
#include <string.h>

#define TOPK_INSERT 64      /* k up to which the one-pass insertion is used instead of a full sort */

/* element (va, ia) comes before (vb, ib): larger value, NaN largest, ties by the lower index */
static inline int before(float va, int32_t ia, float vb, int32_t ib)
{
    int na = va != va, nb = vb != vb;
    if (na || nb)
        return na && (!nb || ia < ib);
    return va > vb || (va == vb && ia < ib);
}

/* ---------------------------------------------------------------- argmax */

/* Row block o of x [outer, n, inner] (n >= 1): idx[o, :] = the first NaN, else the first maximum.
 * m: scratch of `inner` floats (unused when inner == 1). */
static void argmax_block(const float *x, int32_t *idx, float *m, int64_t o, int64_t n, int64_t inner)
{
    const float *xo = x + o * n * inner;
    int32_t *io = idx + o * inner;
    if (inner == 1) {
        int64_t a;
        lanes_argmax(xo, n, &a);
        io[0] = (int32_t)a;
        return;
    }
    memcpy(m, xo, sizeof(float) * (size_t)inner);
    for (int64_t k = 0; k < inner; k++)
        io[k] = 0;
    for (int64_t r = 1; r < n; r++) {
        const float *xr = xo + r * inner;
        int32_t rr = (int32_t)r;
        for (int64_t k = 0; k < inner; k++) {
            int take = lanes_takes(xr[k], m[k]);
            m[k] = take ? xr[k] : m[k];
            io[k] = take ? rr : io[k];
        }
    }
}

/* The axis split shared by argmax and topk: outer, n, inner; -1 on error (recorded). */
static int split_axis(ox_ctx *ctx, const char *name, const ox_tensor *x, int axis, int64_t *outer, int64_t *n,
                      int64_t *inner)
{
    if (ox_check_f32(ctx, name, x))
        return -1;
    int a = ox_check_axis(ctx, name, x, axis);
    if (a < 0)
        return -1;
    *outer = *inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < a)
            *outer *= x->shape[d];
        else if (d > a)
            *inner *= x->shape[d];
    }
    *n = x->shape[a];
    if (*n > INT32_MAX) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: %lld elements along axis %d exceed the I32 index range (shape %s)", name,
                    (long long)*n, axis, ox_shape_str(x, b));
        return -1;
    }
    return a;
}

ox_tensor *ox_ag_argmax(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim)
{
    if (ctx->status || !x)
        return NULL;
    int64_t outer, n, inner;
    int a = split_axis(ctx, "argmax", x, axis, &outer, &n, &inner);
    if (a < 0)
        return NULL;
    char b[OX_SHAPE_BUF];
    if (n == 0) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "argmax: axis %d of shape %s is empty: there is no element to point at", axis,
                    ox_shape_str(x, b));
        return NULL;
    }
    int64_t shape[OX_MAX_DIMS] = { 0 };
    int nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != a || keepdim)
            shape[nd++] = d == a ? 1 : x->shape[d];
    ox_tensor *y = ox_tensor_empty(ctx, OX_I32, nd, shape);
    if (!y || outer * inner == 0)
        return y;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int nt = ctx->n_threads > 1 && outer > 1 && outer * n * inner >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    float *m = inner > 1 ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(inner * nt)) : NULL;
    if (xc && !ctx->status) {
        const float *xv = ox_tensor_f32(xc);
        int32_t *iv = ox_tensor_i32(y);
        if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t o = 0; o < outer; o++)
                argmax_block(xv, iv, m ? m + inner * omp_get_thread_num() : NULL, o, n, inner);
        } else {
            for (int64_t o = 0; o < outer; o++)
                argmax_block(xv, iv, m, o, n, inner);
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    return ctx->status ? NULL : y;
}

/* ---------------------------------------------------------------- topk */

struct pair {
    float v;
    int32_t i;
};

/* Sorts a[0 .. n-1] into the order of `before`, using tmp (n pairs): bottom-up merge sort, runs of width
 * w = 1, 2, 4, ... merged back and forth between a and tmp. */
static void sort_pairs(struct pair *a, struct pair *tmp, int64_t n)
{
    struct pair *src = a, *dst = tmp;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = before(src[j].v, src[j].i, src[i].v, src[i].i) ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        struct pair *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, sizeof *a * (size_t)n);
}

/* Row (o, c) of x [outer, n, inner] -> values / indices [outer, k, inner] at (o, :, c). row: scratch of
 * 2n pairs (the sort path) or k pairs (the insertion path). */
static void topk_row(const float *x, float *vals, int32_t *idx, struct pair *row, int64_t o, int64_t c, int64_t n,
                     int64_t inner, int64_t k)
{
    const float *xr = x + o * n * inner + c;
    if (k > TOPK_INSERT) {
        for (int64_t i = 0; i < n; i++) {
            row[i].v = xr[i * inner];
            row[i].i = (int32_t)i;
        }
        sort_pairs(row, row + n, n);
    } else {
        int64_t cnt = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = xr[i * inner];
            int32_t ii = (int32_t)i;
            if (cnt == k && !before(v, ii, row[k - 1].v, row[k - 1].i))
                continue;
            int64_t j = cnt < k ? cnt++ : k - 1;      /* the slot freed at the end, then shift down */
            for (; j > 0 && before(v, ii, row[j - 1].v, row[j - 1].i); j--)
                row[j] = row[j - 1];
            row[j].v = v;
            row[j].i = ii;
        }
    }
    float *vo = vals ? vals + o * k * inner + c : NULL;
    int32_t *io = idx + o * k * inner + c;
    for (int64_t j = 0; j < k; j++) {
        io[j * inner] = row[j].i;
        if (vo)
            vo[j * inner] = row[j].v;
    }
}

/* node->i: outer, n, inner, k; node->saved: the indices [outer, k, inner] */
static ox_status topk_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, node->in[0]);
    if (!g || !y->grad)
        return ctx->status;
    int64_t outer = node->i[0], n = node->i[1], inner = node->i[2], k = node->i[3];
    const int32_t *idx = node->saved;
    const float *dy = ox_tensor_f32(y->grad);
    float *gv = ox_tensor_f32(g);
    /* row block o only touches g[o, :, :]: blocks are independent */
    if (ctx->n_threads > 1 && outer > 1 && outer * k * inner >= OX_PARALLEL_MIN) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < k; j++)
                for (int64_t c = 0; c < inner; c++) {
                    int64_t at = (o * k + j) * inner + c;
                    gv[(o * n + idx[at]) * inner + c] += dy[at];
                }
    } else {
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < k; j++)
                for (int64_t c = 0; c < inner; c++) {
                    int64_t at = (o * k + j) * inner + c;
                    gv[(o * n + idx[at]) * inner + c] += dy[at];
                }
    }
    return OX_OK;
}

static const ox_ag_op topk_op = { "topk", topk_backward };

ox_status ox_ag_topk(ox_ctx *ctx, ox_tensor *x, int64_t k, int axis, ox_tensor **values, ox_tensor **indices)
{
    if (values)
        *values = NULL;
    if (indices)
        *indices = NULL;
    if (ctx->status)
        return ctx->status;
    if (!x)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "topk: no input tensor");
    if (!values && !indices)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "topk: neither values nor indices asked for");
    int64_t outer, n, inner;
    int a = split_axis(ctx, "topk", x, axis, &outer, &n, &inner);
    if (a < 0)
        return ctx->status;
    char b[OX_SHAPE_BUF];
    if (k < 0 || k > n)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "topk: k = %lld is outside 0..%lld, the length of axis %d of %s",
                           (long long)k, (long long)n, axis, ox_shape_str(x, b));
    int64_t shape[OX_MAX_DIMS] = { 0 };
    for (int d = 0; d < x->ndim; d++)
        shape[d] = d == a ? k : x->shape[d];
    /* the indices live as long as the values: backward reads them */
    ox_tensor *it = ox_tensor_empty(ctx, OX_I32, x->ndim, shape);
    ox_tensor *vt = values ? ox_tensor_empty(ctx, OX_F32, x->ndim, shape) : NULL;
    if (ctx->status)
        return ctx->status;
    int64_t rows = outer * inner;
    if (rows > 0 && k > 0) {
        ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
        int nt = ctx->n_threads > 1 && rows > 1 && outer * n * inner >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
        int64_t row_len = k > TOPK_INSERT ? 2 * n : k;
        ox_tensor *xc = ox_tensor_contiguous(ctx, x);
        struct pair *scratch = ox_ctx_alloc(ctx, sizeof(struct pair) * (size_t)(row_len * nt));
        if (xc && scratch) {
            const float *xv = ox_tensor_f32(xc);
            float *vv = vt ? ox_tensor_f32(vt) : NULL;
            int32_t *iv = ox_tensor_i32(it);
            if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t r = 0; r < rows; r++)
                    topk_row(xv, vv, iv, scratch + row_len * omp_get_thread_num(), r / inner, r % inner, n, inner, k);
            } else {
                for (int64_t r = 0; r < rows; r++)
                    topk_row(xv, vv, iv, scratch, r / inner, r % inner, n, inner, k);
            }
        }
        ox_arena_rewind(&ctx->arena, mark);
        if (ctx->status)
            return ctx->status;
    }
    if (vt) {
        ox_ag_node *node = ox_ag_record(ctx, &topk_op, 1, &x, 1, &vt);
        if (node) {
            node->saved = ox_tensor_i32(it);
            node->i[0] = outer;
            node->i[1] = n;
            node->i[2] = inner;
            node->i[3] = k;
        }
        if (ctx->status)
            return ctx->status;
        *values = vt;
    }
    if (indices)
        *indices = it;
    return OX_OK;
}
