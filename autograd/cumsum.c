/* cumsum.c - cumulative sum along one axis: forward, backward, tape glue.
 *
 * Math (x viewed as [outer, n, inner] with the scanned axis in the middle; y has x's shape):
 *     y_0 = x_0,  y_r = y_{r-1} + x_r                      (along the axis, in float, in this order)
 *     dx_r += sum_{s >= r} dy_s                           (the reverse cumulative sum of dy)
 *
 * Kernels: a scan is sequential along its axis, so the work is split over independent lines. For the
 * last axis (inner == 1) a task scans RBLOCK rows side by side, one element of each row per step, so
 * that RBLOCK independent add chains hide the add latency (one row alone runs at one add latency per
 * element). Otherwise a task scans a block of up to KBLOCK adjacent lines together, row by row, the
 * inner axis being the vectorised loop. Every line uses
 * the same additions in the same order whatever the layout or thread count, so results are
 * bit-identical for any number of threads. Threads (OpenMP) are used when x has at least
 * OX_PARALLEL_MIN elements. A non-contiguous input is copied first (scratch). */
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <string.h>

#define KBLOCK 256      /* lines scanned together: the backward accumulator row lives on the stack */
#define RBLOCK 4        /* last-axis rows scanned side by side (not 8: rows of a power-of-two length
                         * share L1 sets, and 8 rows x 2 arrays overflow an 8-way L1: backward 5x slower) */

struct scan {
    int64_t outer, n, inner;
    int64_t nk, tasks;      /* inner blocks (inner > 1); tasks: row blocks (inner == 1) or outer * nk */
    const float *src;       /* forward: x; backward: dy */
    float *dst;             /* forward: y; backward: the gradient of x (accumulated) */
};

static void scan_forward(const struct scan *s, int64_t t)
{
    int64_t n = s->n, inner = s->inner;
    if (inner == 1) {
        int64_t o0 = t * RBLOCK, nr = s->outer - o0 < RBLOCK ? s->outer - o0 : RBLOCK;
        const float *x = s->src + o0 * n;
        float *y = s->dst + o0 * n;
        float acc[RBLOCK];
        for (int64_t b = 0; b < nr; b++)
            y[b * n] = acc[b] = x[b * n];
        if (nr == RBLOCK) {
            for (int64_t r = 1; r < n; r++)
                for (int b = 0; b < RBLOCK; b++) {
                    acc[b] += x[b * n + r];
                    y[b * n + r] = acc[b];
                }
        } else {
            for (int64_t b = 0; b < nr; b++)
                for (int64_t r = 1; r < n; r++) {
                    acc[b] += x[b * n + r];
                    y[b * n + r] = acc[b];
                }
        }
        return;
    }
    int64_t o = t / s->nk, k0 = t % s->nk * KBLOCK;
    int64_t kl = inner - k0 < KBLOCK ? inner - k0 : KBLOCK;
    const float *x = s->src + o * n * inner + k0;
    float *y = s->dst + o * n * inner + k0;
    memcpy(y, x, sizeof(float) * (size_t)kl);
    for (int64_t r = 1; r < n; r++) {
        const float *xr = x + r * inner;
        const float *yp = y + (r - 1) * inner;
        float *yr = y + r * inner;
        for (int64_t k = 0; k < kl; k++)
            yr[k] = yp[k] + xr[k];
    }
}

/* g_r += dy_{n-1} + ... + dy_r, the running sum kept apart from g (which holds earlier gradients) */
static void scan_backward(const struct scan *s, int64_t t)
{
    int64_t n = s->n, inner = s->inner;
    if (inner == 1) {
        int64_t o0 = t * RBLOCK, nr = s->outer - o0 < RBLOCK ? s->outer - o0 : RBLOCK;
        const float *dy = s->src + o0 * n;
        float *g = s->dst + o0 * n;
        float acc[RBLOCK];
        for (int64_t b = 0; b < nr; b++) {
            acc[b] = dy[b * n + n - 1];
            g[b * n + n - 1] += acc[b];
        }
        if (nr == RBLOCK) {
            for (int64_t r = n - 2; r >= 0; r--)
                for (int b = 0; b < RBLOCK; b++) {
                    acc[b] += dy[b * n + r];
                    g[b * n + r] += acc[b];
                }
        } else {
            for (int64_t b = 0; b < nr; b++)
                for (int64_t r = n - 2; r >= 0; r--) {
                    acc[b] += dy[b * n + r];
                    g[b * n + r] += acc[b];
                }
        }
        return;
    }
    int64_t o = t / s->nk, k0 = t % s->nk * KBLOCK;
    int64_t kl = inner - k0 < KBLOCK ? inner - k0 : KBLOCK;
    const float *dy = s->src + o * n * inner + k0;
    float *g = s->dst + o * n * inner + k0;
    float acc[KBLOCK];
    memcpy(acc, dy + (n - 1) * inner, sizeof(float) * (size_t)kl);
    for (int64_t k = 0; k < kl; k++)
        g[(n - 1) * inner + k] += acc[k];
    for (int64_t r = n - 2; r >= 0; r--) {
        const float *dr = dy + r * inner;
        float *gr = g + r * inner;
        for (int64_t k = 0; k < kl; k++) {
            acc[k] += dr[k];
            gr[k] += acc[k];
        }
    }
}

static void run(const struct scan *s, int backward, int n_threads)
{
    int64_t tasks = s->tasks;
    if (n_threads > 1 && tasks > 1 && s->outer * s->n * s->inner >= OX_PARALLEL_MIN) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            if (backward)
                scan_backward(s, t);
            else
                scan_forward(s, t);
        }
    } else {
        for (int64_t t = 0; t < tasks; t++) {
            if (backward)
                scan_backward(s, t);
            else
                scan_forward(s, t);
        }
    }
}

static struct scan make_scan(const ox_tensor *x, int axis, const float *src, float *dst)
{
    struct scan s = { 1, x->shape[axis], 1, 1, 0, src, dst };
    for (int d = 0; d < axis; d++)
        s.outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        s.inner *= x->shape[d];
    s.nk = s.inner == 1 ? 1 : (s.inner + KBLOCK - 1) / KBLOCK;
    s.tasks = s.inner == 1 ? (s.outer + RBLOCK - 1) / RBLOCK : s.outer * s.nk;
    return s;
}

static ox_status cumsum_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, node->in[0]);
    if (!g || !y->grad)
        return ctx->status;
    if (ox_tensor_numel(y) == 0)
        return OX_OK;
    struct scan s = make_scan(y, (int)node->i[0], ox_tensor_f32(y->grad), ox_tensor_f32(g));
    run(&s, 1, ctx->n_threads);
    return OX_OK;
}

static const ox_ag_op cumsum_op = { "cumsum", cumsum_backward };

ox_tensor *ox_ag_cumsum(ox_ctx *ctx, ox_tensor *x, int axis)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "cumsum", x))
        return NULL;
    int a = ox_check_axis(ctx, "cumsum", x, axis);
    if (a < 0)
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y)
        return NULL;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);    /* the contiguous copy is scratch */
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    if (xc && ox_tensor_numel(x) > 0) {
        struct scan s = make_scan(x, a, ox_tensor_f32(xc), ox_tensor_f32(y));
        run(&s, 0, ctx->n_threads);
    }
    ox_arena_rewind(&ctx->arena, mark);
    if (ctx->status)
        return NULL;
    ox_ag_node *node = ox_ag_record(ctx, &cumsum_op, 1, &x, 1, &y);
    if (node)
        node->i[0] = a;
    return ctx->status ? NULL : y;
}
