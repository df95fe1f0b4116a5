/* linear_step.c - y = x W^T for the few rows of a decode step by dot products (see linear_step.h). */
#include "nn/linear_step.h"

#include "autograd/lanes.h"
#include "tensor/iter.h"

ox_tensor *ox_nn_linear_step(ox_ctx *ctx, ox_tensor *x, ox_tensor *w)
{
    if (!x || !w || ctx->status)
        return NULL;
    if (w->ndim != 2 || w->stride[1] != 1 || x->ndim < 1 || !ox_tensor_is_contiguous(x) ||
        x->shape[x->ndim - 1] != w->shape[1] || x->dtype != OX_F32 || w->dtype != OX_F32)
        return ox_nn_linear(ctx, x, w);
    const int64_t in = w->shape[1], out = w->shape[0], ws = w->stride[0], rows = ox_tensor_numel(x) / in;
    int64_t shape[OX_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++)
        shape[d] = x->shape[d];
    shape[x->ndim - 1] = out;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, shape);
    if (!y)
        return NULL;
    const float *xd = ox_tensor_f32(x), *wd = ox_tensor_f32(w);
    float *yd = ox_tensor_f32(y);
    int nt = rows * out * in >= 16 * OX_PARALLEL_MIN ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t o = 0; o < out; o++)
        for (int64_t r = 0; r < rows; r++)
            yd[r * out + o] = lanes_dot(xd + r * in, wd + o * ws, in);
    return y;
}
