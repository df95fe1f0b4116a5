/* l2norm.c - L2 normalisation over the last axis: forward, backward and tape glue (see nn/l2norm.h). */
#include "nn/l2norm.h"

#include <math.h>
#include <string.h>

#include "tensor/iter.h"

/* Rows are independent: the parallel loops below split rows between threads, each row is computed by
 * one thread in a fixed order. */

static ox_status l2norm_backward(ox_ctx *ctx, ox_ag_node *node)
{
    int fresh = 0;     /* a gradient created here is zeroed row by row (cache-hot) instead of up front */
    ox_tensor *gx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    const ox_tensor *y = node->out[0], *gy = node->out[0]->grad;
    if (!gx || !gy)
        return ctx->status;
    const float *nrm = node->saved, *yd = ox_tensor_f32(y), *dy = ox_tensor_f32(gy);
    float *dx = ox_tensor_f32(gx);
    const int64_t d = y->shape[y->ndim - 1], rows = d ? ox_tensor_numel(y) / d : 0;
    const int nt = rows * d >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(guided)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = yd + r * d, *dyr = dy + r * d;
        float *dxr = dx + r * d;
        float s = 0;
        for (int64_t j = 0; j < d; j++)
            s += yr[j] * dyr[j];
        const float inv = 1.0f / nrm[r];
        if (fresh)
            memset(dxr, 0, sizeof(float) * (size_t)d);
        for (int64_t j = 0; j < d; j++)
            dxr[j] += (dyr[j] - yr[j] * s) * inv;
    }
    return OX_OK;
}

static const ox_ag_op l2norm_op = { "l2norm", l2norm_backward };

ox_tensor *ox_nn_l2norm(ox_ctx *ctx, ox_tensor *x)
{
    if (ctx->status || !x || ox_check_f32(ctx, "l2norm", x))
        return NULL;
    if (x->ndim < 1) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "l2norm: x must have at least one axis, got a scalar");
        return NULL;
    }
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    ox_tensor *y = xc ? ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape) : NULL;
    const int64_t d = x->shape[x->ndim - 1], rows = d ? ox_tensor_numel(x) / d : 0;
    const int needs = ox_ag_needs_grad(ctx, 1, &x);
    float *nrm = needs ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows ? rows : 1)) : NULL;
    if (!y || ctx->status)
        return NULL;
    const float *xd = ox_tensor_f32(xc);
    float *yd = ox_tensor_f32(y);
    const int nt = rows * d >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(guided)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xd + r * d;
        float *yr = yd + r * d;
        float s = 0;
        for (int64_t j = 0; j < d; j++)
            s += xr[j] * xr[j];
        const float n = sqrtf(s + OX_NN_L2NORM_EPS), inv = 1.0f / n;
        for (int64_t j = 0; j < d; j++)
            yr[j] = xr[j] * inv;
        if (nrm)
            nrm[r] = n;
    }
    if (needs) {
        ox_ag_node *node = ox_ag_record(ctx, &l2norm_op, 1, &x, 1, &y);
        if (node)
            node->saved = nrm;
    }
    return ctx->status ? NULL : y;
}
