/* clip.c - global gradient norm, finiteness check, clipping and scaling (see clip.h). */
#include "optim/clip.h"
#include "tensor/iter.h"

#include <math.h>

#define CHUNK 16384   /* elements per partial sum: fixed, so the sum does not depend on threads */
#define BATCH 256     /* chunks per parallel loop (their pointers and partial sums live on the stack) */

/* Sum of squares of n floats in double: eight interleaved sums (vectorisable: no reassociation of one
 * accumulator), combined in a fixed tree. */
static double chunk_sumsq(const float *restrict x, int64_t n)
{
    double acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < n; i++, k++)
        acc[k] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* A batch of chunks of the concatenated gradients, in order: where each starts, its length, its tensor;
 * and the running sums the finished chunks are folded into. */
struct sumsq {
    int n;                 /* chunks in the batch */
    int64_t elems;         /* their elements */
    const float *ptr[BATCH];
    int64_t len[BATCH];
    int param[BATCH];
    double part[BATCH];
    int cur;               /* tensor whose sum is being accumulated */
    double tsum, total;    /* its sum so far; the sum of the finished tensors */
    int first_bad;         /* first tensor whose sum is not finite, or -1 */
};

/* Sums the batch's chunks (independent outputs, so in parallel when the batch is large; each is
 * computed the same way whichever thread does it), then adds them in chunk order into their tensor's
 * sum, and each finished tensor's sum, in list order, into the total. */
static void flush(struct sumsq *q, int n_threads)
{
    int nt = q->elems >= OX_PARALLEL_MIN && n_threads > 1 ? n_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
    for (int j = 0; j < q->n; j++)
        q->part[j] = chunk_sumsq(q->ptr[j], q->len[j]);
    for (int j = 0; j < q->n; j++) {
        if (q->param[j] != q->cur) {
            if (!isfinite(q->tsum) && q->first_bad < 0)
                q->first_bad = q->cur;
            q->total += q->tsum;
            q->tsum = 0;
            q->cur = q->param[j];
        }
        q->tsum += q->part[j];
    }
    q->n = 0;
    q->elems = 0;
}

/* The norm, or OX_ERR_NUMERIC naming the first parameter (list order) with a NaN/Inf gradient element. */
static ox_status norm_impl(ox_ctx *ctx, const char *op, const ox_nn_params *ps, double *norm)
{
    if (norm)
        *norm = NAN;
    if (ox_optim_check_params(ctx, op, ps, NULL))
        return ctx->status;
    struct sumsq q;
    q.n = q.cur = 0;
    q.elems = 0;
    q.tsum = q.total = 0;
    q.first_bad = -1;
    for (int i = 0; i < ps->n; i++) {
        const ox_tensor *g = ps->items[i].t->grad;
        int64_t n = ox_tensor_numel(g);
        for (int64_t s = 0; s < n; s += CHUNK) {
            q.ptr[q.n] = ox_tensor_f32(g) + s;
            q.len[q.n] = n - s < CHUNK ? n - s : CHUNK;
            q.param[q.n] = i;
            q.elems += q.len[q.n];
            if (++q.n == BATCH)
                flush(&q, ctx->n_threads);
        }
    }
    flush(&q, ctx->n_threads);
    if (!isfinite(q.tsum) && q.first_bad < 0)   /* the last tensor */
        q.first_bad = q.cur;
    double total = q.total + q.tsum;
    int first_bad = q.first_bad;
    if (norm)
        *norm = sqrt(total);
    if (first_bad < 0 && isfinite(total))
        return OX_OK;
    if (first_bad < 0)   /* finite squares of floats cannot overflow a double sum of any practical size */
        return ox_ctx_fail(ctx, OX_ERR_NUMERIC, "%s: the sum of squared gradients overflowed (%g)", op, total);
    const ox_tensor *g = ps->items[first_bad].t->grad;
    const float *x = ox_tensor_f32(g);
    int64_t n = ox_tensor_numel(g), at = 0;
    while (at < n - 1 && isfinite(x[at]))
        at++;
    char buf[OX_SHAPE_BUF];
    return ox_ctx_fail(ctx, OX_ERR_NUMERIC, "%s: gradient of parameter '%s' %s is not finite (%g at element %lld)",
                       op, ps->items[first_bad].name, ox_shape_str(g, buf), x[at], (long long)at);
}

ox_status ox_optim_grad_norm(ox_ctx *ctx, const ox_nn_params *ps, double *norm)
{
    return norm_impl(ctx, "grad_norm", ps, norm);
}

ox_status ox_optim_grad_check_finite(ox_ctx *ctx, const ox_nn_params *ps)
{
    return norm_impl(ctx, "grad_check_finite", ps, NULL);
}

struct scale_args {
    const ox_nn_params *ps;
    float s;
};

static void scale_seg(void *arg, int i, int64_t b, int64_t e)
{
    const struct scale_args *a = arg;
    float *restrict g = ox_tensor_f32(a->ps->items[i].t->grad) + b;
    float s = a->s;
    for (int64_t k = 0; k < e - b; k++)
        g[k] *= s;
}

ox_status ox_optim_grad_scale(ox_ctx *ctx, ox_nn_params *ps, float s)
{
    if (ctx->status)
        return ctx->status;
    if (!isfinite(s))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "grad_scale: scale %g must be finite", s);
    if (ox_optim_check_params(ctx, "grad_scale", ps, NULL))
        return ctx->status;
    struct scale_args a = { ps, s };
    ox_optim_run_segments(ps, ctx->n_threads, scale_seg, &a);
    return OX_OK;
}

ox_status ox_optim_clip_grad_norm(ox_ctx *ctx, ox_nn_params *ps, double max_norm, double *norm)
{
    if (norm)
        *norm = NAN;
    if (ctx->status)
        return ctx->status;
    if (!(max_norm > 0))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "clip_grad_norm: max_norm %g must be > 0", max_norm);
    double n;
    if (norm_impl(ctx, "clip_grad_norm", ps, &n))
        return ctx->status;
    if (norm)
        *norm = n;
    if (n > max_norm) {
        struct scale_args a = { ps, (float)(max_norm / (n + 1e-6)) };
        ox_optim_run_segments(ps, ctx->n_threads, scale_seg, &a);
    }
    return OX_OK;
}
