/* tril.c - lower-triangular mask over the last two axes: forward, backward, tape glue.
 *
 * Math (x [..., R, C], y has x's shape, d = diagonal):
 *     y[.., r, c] = x[.., r, c]  if c <= r + d,   fill otherwise
 *     dx[.., r, c] += dy[.., r, c] where kept, nothing elsewhere (fill is a constant)
 * d = 0 keeps the main diagonal, d < 0 removes it and d - 1 diagonals below, d > 0 keeps d diagonals
 * above it. fill = -INFINITY makes a causal mask for softmax (softmax.c), fill = 0 a lower-triangular
 * matrix.
 *
 * Kernels: row r of every matrix keeps its first keep(r) = clamp(r + d + 1, 0, C) elements: a copy and a
 * fill per row, no per-element test. Rows are split between threads (OpenMP) when x has at least
 * OX_PARALLEL_MIN elements. A non-contiguous input is copied first (scratch). */
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <string.h>

struct mask {
    int64_t rows, r, c, diag;   /* rows = all rows of all matrices; r, c = one matrix; diag clamped */
};

/* elements kept at the start of row q */
static int64_t keep(const struct mask *m, int64_t q)
{
    int64_t k = q % m->r + m->diag + 1;
    return k < 0 ? 0 : k > m->c ? m->c : k;
}

static void row_forward(const struct mask *m, int64_t q, const float *x, float *y, float fill)
{
    int64_t k = keep(m, q);
    memcpy(y + q * m->c, x + q * m->c, sizeof(float) * (size_t)k);
    for (int64_t i = k; i < m->c; i++)
        y[q * m->c + i] = fill;
}

static void row_backward(const struct mask *m, int64_t q, const float *dy, float *g)
{
    int64_t k = keep(m, q);
    const float *d = dy + q * m->c;
    float *gr = g + q * m->c;
    for (int64_t i = 0; i < k; i++)
        gr[i] += d[i];
}

static struct mask make_mask(const ox_tensor *x, int64_t diagonal)
{
    struct mask m = { 0, x->shape[x->ndim - 2], x->shape[x->ndim - 1], diagonal };
    m.rows = m.c ? ox_tensor_numel(x) / m.c : 0;
    /* clamp so r + diag + 1 cannot overflow: beyond these bounds nothing changes */
    if (m.diag > m.c)
        m.diag = m.c;
    if (m.diag < -m.r - 1)
        m.diag = -m.r - 1;
    return m;
}

static int parallel(const ox_ctx *ctx, const struct mask *m)
{
    return ctx->n_threads > 1 && m->rows > 1 && m->rows * m->c >= OX_PARALLEL_MIN;
}

static ox_status tril_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, node->in[0]);
    if (!g || !y->grad)
        return ctx->status;
    struct mask m = make_mask(y, node->i[0]);
    const float *dy = ox_tensor_f32(y->grad);
    float *gv = ox_tensor_f32(g);
    if (parallel(ctx, &m)) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(guided)
        for (int64_t q = 0; q < m.rows; q++)
            row_backward(&m, q, dy, gv);
    } else {
        for (int64_t q = 0; q < m.rows; q++)
            row_backward(&m, q, dy, gv);
    }
    return OX_OK;
}

static const ox_ag_op tril_op = { "tril", tril_backward };

ox_tensor *ox_ag_tril(ox_ctx *ctx, ox_tensor *x, int64_t diagonal, double fill)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "tril", x))
        return NULL;
    if (x->ndim < 2) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "tril: needs a matrix or a batch of matrices [..., R, C], got shape %s",
                    ox_shape_str(x, b));
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y)
        return NULL;
    struct mask m = make_mask(x, diagonal);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);    /* the contiguous copy is scratch */
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    if (xc) {
        const float *xv = ox_tensor_f32(xc);
        float *yv = ox_tensor_f32(y), f = (float)fill;
        if (parallel(ctx, &m)) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(guided)
            for (int64_t q = 0; q < m.rows; q++)
                row_forward(&m, q, xv, yv, f);
        } else {
            for (int64_t q = 0; q < m.rows; q++)
                row_forward(&m, q, xv, yv, f);
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    if (ctx->status)
        return NULL;
    ox_ag_node *node = ox_ag_record(ctx, &tril_op, 1, &x, 1, &y);
    if (node)
        node->i[0] = m.diag;
    return ctx->status ? NULL : y;
}
