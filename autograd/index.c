/* index.c - indexing ops: gather_rows (embedding lookup), scatter_add_rows, take_last.
 *
 * Forward kernels, backward kernels and tape glue for the three ops of ops.h's "indexing" group.
 * Index tensors are I32 of any strides; they are made contiguous once and validated in full before
 * anything is written, so an out-of-range id is an OX_ERR_ARG naming the value and its position.
 *
 * Determinism of the scatter-adds (an index may repeat): every output element is summed by one thread
 * in ascending m order. Threads split the work by column ranges of D (each thread walks all M rows
 * over its own columns) or, when D is too narrow to split, by ranges of table rows (each thread walks
 * all M indices and adds only those landing in its rows). Either way the sum order of every element is
 * m = 0, 1, ..., M-1 whatever the thread count. */
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- index validation */

/* Writes the multi-index of flat position `flat` in shape `t` as "[1, 2]" (OX_SHAPE_BUF bytes). */
static const char *position_str(const ox_tensor *t, int64_t flat, char *buf)
{
    int64_t c[OX_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        c[d] = t->shape[d] ? flat % t->shape[d] : 0;
        flat = t->shape[d] ? flat / t->shape[d] : 0;
    }
    int n = snprintf(buf, OX_SHAPE_BUF, "[");
    for (int d = 0; d < t->ndim && n < OX_SHAPE_BUF; d++)
        n += snprintf(buf + n, OX_SHAPE_BUF - n, d ? ", %lld" : "%lld", (long long)c[d]);
    if (n < OX_SHAPE_BUF)
        snprintf(buf + n, OX_SHAPE_BUF - n, "]");
    return buf;
}

/* A contiguous copy of idx (idx itself when contiguous) whose entries all lie in [0, limit); NULL with
 * OX_ERR_ARG naming the first bad value, its position, and the indexed tensor `name` `t` if not. */
static ox_tensor *checked_index(ox_ctx *ctx, const char *op, const ox_tensor *idx, int64_t limit,
                                const char *name, const ox_tensor *t)
{
    ox_tensor *ic = ox_tensor_contiguous(ctx, (ox_tensor *)idx);   /* reads idx, never writes it */
    if (!ic)
        return NULL;
    const int32_t *iv = ox_tensor_i32(ic);
    int64_t n = ox_tensor_numel(ic);
    for (int64_t m = 0; m < n; m++) {
        if (iv[m] < 0 || iv[m] >= limit) {
            char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
            ox_ctx_fail(ctx, OX_ERR_ARG, "%s: index %d at position %s of idx %s is outside [0, %lld) for %s %s",
                        op, (int)iv[m], position_str(idx, m, b1), ox_shape_str(idx, b2), (long long)limit,
                        name, ox_shape_str(t, b3));
            return NULL;
        }
    }
    return ic;
}

/* ---------------------------------------------------------------- row kernels */

/* y[m, :] = t[idx[m], :] (or += when acc) for m < M; y contiguous [M, D], t [N, D] with strides
 * (rs, cs). Rows are independent: threads split m. */
static void gather_kernel(float *y, int acc, const float *t, int64_t rs, int64_t cs, const int32_t *idx,
                          int64_t M, int64_t D, int n_threads)
{
    int nt = n_threads > 1 && M * D >= OX_PARALLEL_MIN ? n_threads : 1;
    /* each row of y is written by exactly one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(guided)
    for (int64_t m = 0; m < M; m++) {
        float *yr = y + m * D;
        const float *tr = t + idx[m] * rs;
        if (cs == 1) {
            if (acc)
                for (int64_t j = 0; j < D; j++) yr[j] += tr[j];
            else
                memcpy(yr, tr, sizeof(float) * (size_t)D);
        } else {
            if (acc)
                for (int64_t j = 0; j < D; j++) yr[j] += tr[j * cs];
            else
                for (int64_t j = 0; j < D; j++) yr[j] = tr[j * cs];
        }
    }
}

/* g[idx[m], j] += s[m, j] for m = 0..M-1 in order, j in [j0, j1); g contiguous [N, D], s strides
 * (srs, scs). Rows of g outside [r0, r1) are skipped (row ownership). */
static void scatter_range(float *g, int64_t D, const float *s, int64_t srs, int64_t scs, const int32_t *idx,
                          int64_t M, int64_t j0, int64_t j1, int64_t r0, int64_t r1)
{
    for (int64_t m = 0; m < M; m++) {
        int64_t r = idx[m];
        if (r < r0 || r >= r1)
            continue;
        float *gr = g + r * D;
        const float *sr = s + m * srs;
        if (scs == 1)
            for (int64_t j = j0; j < j1; j++) gr[j] += sr[j];
        else
            for (int64_t j = j0; j < j1; j++) gr[j] += sr[j * scs];
    }
}

/* g [N, D] (contiguous) += scatter of s [M, D] at rows idx; deterministic (see the file comment). */
static void scatter_kernel(float *g, int64_t N, int64_t D, const float *s, int64_t srs, int64_t scs,
                           const int32_t *idx, int64_t M, int n_threads)
{
    int nt = n_threads > 1 && M * D >= OX_PARALLEL_MIN ? n_threads : 1;
    if (nt == 1) {
        scatter_range(g, D, s, srs, scs, idx, M, 0, D, 0, N);
        return;
    }
    int by_cols = D >= 32 * (int64_t)nt;    /* at least 32 columns (two cache lines) per thread */
    /* thread t owns columns (by_cols) or table rows [t * n / nt, (t + 1) * n / nt): disjoint writes */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        if (by_cols) {
            int64_t j0 = (D * t / nt) & ~(int64_t)15, j1 = t == nt - 1 ? D : (D * (t + 1) / nt) & ~(int64_t)15;
            scatter_range(g, D, s, srs, scs, idx, M, j0, j1, 0, N);
        } else {
            scatter_range(g, D, s, srs, scs, idx, M, 0, D, N * t / nt, N * (t + 1) / nt);
        }
    }
}

/* ---------------------------------------------------------------- gather_rows */

/* saved: the contiguous, validated index tensor */
static ox_status gather_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *table = node->in[0], *dy = node->out[0]->grad, *ic = node->saved;
    ox_tensor *g = ox_ag_grad(ctx, table);
    if (!g)
        return ctx->status;
    int64_t N = table->shape[0], D = table->shape[1];
    scatter_kernel(ox_tensor_f32(g), N, D, ox_tensor_f32(dy), D, 1, ox_tensor_i32(ic), ox_tensor_numel(ic),
                   ctx->n_threads);
    return OX_OK;
}

static const ox_ag_op gather_op = { "gather_rows", gather_backward };

ox_tensor *ox_ag_gather_rows(ox_ctx *ctx, ox_tensor *table, const ox_tensor *idx)
{
    if (ctx->status || !table || !idx)
        return NULL;
    if (ox_check_f32(ctx, "gather_rows", table) || ox_check_i32(ctx, "gather_rows", idx))
        return NULL;
    char b1[OX_SHAPE_BUF];
    if (table->ndim != 2) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "gather_rows: table must be 2-D [N, D], got %s", ox_shape_str(table, b1));
        return NULL;
    }
    if (idx->ndim + 1 > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "gather_rows: idx %s has too many axes (result would have %d > %d)",
                    ox_shape_str(idx, b1), idx->ndim + 1, OX_MAX_DIMS);
        return NULL;
    }
    ox_tensor *ic = checked_index(ctx, "gather_rows", idx, table->shape[0], "table", table);
    if (!ic)
        return NULL;
    int64_t shape[OX_MAX_DIMS];
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = table->shape[1];
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, idx->ndim + 1, shape);
    if (!y)
        return NULL;
    gather_kernel(ox_tensor_f32(y), 0, ox_tensor_f32(table), table->stride[0], table->stride[1],
                  ox_tensor_i32(ic), ox_tensor_numel(ic), table->shape[1], ctx->n_threads);
    ox_ag_node *n = ox_ag_record(ctx, &gather_op, 2, (ox_tensor *[]){ table, (ox_tensor *)idx }, 1, &y);
    if (n)
        n->saved = ic;
    return ctx->status ? NULL : y;
}

/* ---------------------------------------------------------------- scatter_add_rows */

/* out = dst + scatter(src):  d dst += dy,  d src[m, :] += dy[idx[m], :] */
static ox_status scatter_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *dst = node->in[0], *src = node->in[2], *dy = node->out[0]->grad, *ic = node->saved;
    ox_tensor *gd = ox_ag_grad(ctx, dst), *gs = ox_ag_grad(ctx, src);
    if (ctx->status)
        return ctx->status;
    if (gd && ox_tensor_add_into(ctx, gd, dy))
        return ctx->status;
    if (gs)
        gather_kernel(ox_tensor_f32(gs), 1, ox_tensor_f32(dy), dy->shape[1], 1, ox_tensor_i32(ic),
                      src->shape[0], src->shape[1], ctx->n_threads);
    return OX_OK;
}

static const ox_ag_op scatter_op = { "scatter_add_rows", scatter_backward };

ox_tensor *ox_ag_scatter_add_rows(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *idx, ox_tensor *src)
{
    if (ctx->status || !dst || !idx || !src)
        return NULL;
    const char *op = "scatter_add_rows";
    if (ox_check_f32(ctx, op, dst) || ox_check_f32(ctx, op, src) || ox_check_i32(ctx, op, idx))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    if (dst->ndim != 2 || src->ndim != 2 || idx->ndim != 1 || src->shape[0] != idx->shape[0] ||
        src->shape[1] != dst->shape[1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: expected dst [N, D], idx [M], src [M, D], got dst %s, idx %s, src %s",
                    op, ox_shape_str(dst, b1), ox_shape_str(idx, b2), ox_shape_str(src, b3));
        return NULL;
    }
    ox_tensor *ic = checked_index(ctx, op, idx, dst->shape[0], "dst", dst);
    if (!ic)
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, 2, dst->shape);
    if (!y || ox_tensor_copy(ctx, y, dst))
        return NULL;
    scatter_kernel(ox_tensor_f32(y), dst->shape[0], dst->shape[1], ox_tensor_f32(src), src->stride[0],
                   src->stride[1], ox_tensor_i32(ic), idx->shape[0], ctx->n_threads);
    ox_ag_node *n = ox_ag_record(ctx, &scatter_op, 3, (ox_tensor *[]){ dst, (ox_tensor *)idx, src }, 1, &y);
    if (n)
        n->saved = ic;
    return ctx->status ? NULL : y;
}

/* ---------------------------------------------------------------- take_last */

/* Offset (in elements, from ox_tensor_f32(x)) of row r of x's leading axes (all but the last). */
static inline int64_t row_offset(const ox_tensor *x, int64_t r)
{
    int64_t off = 0;
    for (int d = x->ndim - 2; d >= 0; d--) {
        off += (r % x->shape[d]) * x->stride[d];
        r /= x->shape[d];
    }
    return off;
}

/* y = x[..., idx]:  d x[..., idx] += dy  (one element per row: rows are independent) */
static ox_status take_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *x = node->in[0], *dy = node->out[0]->grad, *ic = node->saved;
    ox_tensor *g = ox_ag_grad(ctx, x);
    if (!g)
        return ctx->status;
    int64_t R = ox_tensor_numel(ic), V = x->shape[x->ndim - 1];
    float *gv = ox_tensor_f32(g);
    const float *d = ox_tensor_f32(dy);
    const int32_t *iv = ox_tensor_i32(ic);
    int nt = ctx->n_threads > 1 && R >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* each row r of g is written by one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(guided)
    for (int64_t r = 0; r < R; r++)
        gv[r * V + iv[r]] += d[r];
    return OX_OK;
}

static const ox_ag_op take_op = { "take_last", take_backward };

ox_tensor *ox_ag_take_last(ox_ctx *ctx, ox_tensor *x, const ox_tensor *idx)
{
    if (ctx->status || !x || !idx)
        return NULL;
    if (ox_check_f32(ctx, "take_last", x) || ox_check_i32(ctx, "take_last", idx))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    int ok = x->ndim >= 1 && idx->ndim == x->ndim - 1;
    for (int d = 0; ok && d < idx->ndim; d++)
        ok = idx->shape[d] == x->shape[d];
    if (!ok) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "take_last: idx %s must have the shape of x %s without its last axis",
                    ox_shape_str(idx, b1), ox_shape_str(x, b2));
        return NULL;
    }
    int64_t V = x->shape[x->ndim - 1];
    ox_tensor *ic = checked_index(ctx, "take_last", idx, V, "x", x);
    if (!ic)
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, idx->ndim, idx->shape);
    if (!y)
        return NULL;
    int64_t R = ox_tensor_numel(ic), sv = x->stride[x->ndim - 1];
    float *yv = ox_tensor_f32(y);
    const float *xv = ox_tensor_f32(x);
    const int32_t *iv = ox_tensor_i32(ic);
    int nt = ctx->n_threads > 1 && R >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* each y[r] is written by one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(guided)
    for (int64_t r = 0; r < R; r++)
        yv[r] = xv[row_offset(x, r) + iv[r] * sv];
    ox_ag_node *n = ox_ag_record(ctx, &take_op, 2, (ox_tensor *[]){ x, (ox_tensor *)idx }, 1, &y);
    if (n)
        n->saved = ic;
    return ctx->status ? NULL : y;
}
