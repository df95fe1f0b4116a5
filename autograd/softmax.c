/* softmax.c - softmax and log-softmax over the last axis: forward, backward, tape glue.
 *
 * Math, per row x of length C (any leading axes; y has x's shape):
 *     softmax:      y_i = exp(x_i - m) / sum_j exp(x_j - m)        dx_i += y_i (dy_i - sum_j dy_j y_j)
 *     log_softmax:  y_i = x_i - m - log sum_j exp(x_j - m)         dx_i += dy_i - exp(y_i) sum_j dy_j
 * with m = max_j x_j (0 if it is infinite): no overflow for large inputs, and -inf entries (a causal
 * mask made by ox_ag_tril) get probability exactly 0 (log-probability -inf). A row that is entirely
 * -inf has no defined distribution and gives NaN, as in PyTorch.
 *
 * Kernels: rows are independent; each row is reduced with the fixed-order 16-lane kernels of lanes.h,
 * and rows are split between threads (OpenMP) when x has at least OX_PARALLEL_MIN elements, so the
 * results are bit-identical for any thread count. Backward needs only the output y (saved as the
 * node's output). */
#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <math.h>

/* y = softmax(x) (or log_softmax) of one row of c elements */
static void row_forward(const float *x, float *y, int64_t c, int log_form)
{
    float m = lanes_max(x, c);
    float sh = isfinite(m) ? m : 0.0f;
    if (log_form) {
        float lse = logf(lanes_sum_exp(x, c, sh));
        for (int64_t i = 0; i < c; i++)
            y[i] = (x[i] - sh) - lse;
    } else {
        for (int64_t i = 0; i < c; i++)
            y[i] = expf(x[i] - sh);
        float inv = 1.0f / lanes_sum(y, c);
        for (int64_t i = 0; i < c; i++)
            y[i] *= inv;
    }
}

/* g += d x for one row, from y and dy */
static void row_backward(const float *y, const float *dy, float *g, int64_t c, int log_form)
{
    if (log_form) {
        float s = lanes_sum(dy, c);
        for (int64_t i = 0; i < c; i++)
            g[i] += dy[i] - expf(y[i]) * s;
    } else {
        float s = lanes_dot(dy, y, c);
        for (int64_t i = 0; i < c; i++)
            g[i] += y[i] * (dy[i] - s);
    }
}

static int parallel(const ox_ctx *ctx, int64_t rows, int64_t c)
{
    return ctx->n_threads > 1 && rows > 1 && rows * c >= OX_PARALLEL_MIN;
}

static ox_status softmax_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, node->in[0]);
    if (!g || !y->grad)
        return ctx->status;
    int log_form = (int)node->i[0];
    int64_t c = y->shape[y->ndim - 1], rows = c ? ox_tensor_numel(y) / c : 0;
    const float *yv = ox_tensor_f32(y), *dy = ox_tensor_f32(y->grad);
    float *gv = ox_tensor_f32(g);
    if (parallel(ctx, rows, c)) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(guided)
        for (int64_t r = 0; r < rows; r++)
            row_backward(yv + r * c, dy + r * c, gv + r * c, c, log_form);
    } else {
        for (int64_t r = 0; r < rows; r++)
            row_backward(yv + r * c, dy + r * c, gv + r * c, c, log_form);
    }
    return OX_OK;
}

static const ox_ag_op softmax_op = { "softmax", softmax_backward };

static ox_tensor *softmax(ox_ctx *ctx, ox_tensor *x, int log_form)
{
    if (ctx->status || !x)
        return NULL;
    const char *name = log_form ? "log_softmax" : "softmax";
    if (ox_check_f32(ctx, name, x) || ox_check_axis(ctx, name, x, -1) < 0)
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y)
        return NULL;
    /* a contiguous copy of a strided x is scratch: backward needs only y */
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    if (xc) {
        int64_t c = x->shape[x->ndim - 1], rows = c ? ox_tensor_numel(x) / c : 0;
        const float *xv = ox_tensor_f32(xc);
        float *yv = ox_tensor_f32(y);
        if (parallel(ctx, rows, c)) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(guided)
            for (int64_t r = 0; r < rows; r++)
                row_forward(xv + r * c, yv + r * c, c, log_form);
        } else {
            for (int64_t r = 0; r < rows; r++)
                row_forward(xv + r * c, yv + r * c, c, log_form);
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    if (ctx->status)
        return NULL;
    ox_ag_node *node = ox_ag_record(ctx, &softmax_op, 1, &x, 1, &y);
    if (node)
        node->i[0] = log_form;
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_softmax(ox_ctx *ctx, ox_tensor *x) { return softmax(ctx, x, 0); }
ox_tensor *ox_ag_log_softmax(ox_ctx *ctx, ox_tensor *x) { return softmax(ctx, x, 1); }
