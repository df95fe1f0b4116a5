/* moments.c - variance and standard deviation over one axis (torch.var / torch.std with a correction).
 *
 * Math (x viewed as [outer, n, inner], the reduced axis in the middle; y is [outer, inner], with the axis
 * kept as size 1 when keepdim), with d = max(n - correction, 0):
 *     m   = (1/n) sum_i x_i
 *     var = sum_i (x_i - m)^2 / d              dx_i += dy 2 (x_i - m) / d
 *     std = sqrt(var)                          dx_i += dy (x_i - m) / (d std), 0 where std = 0
 * The mean's own dependence on x drops out of both gradients (sum_i (x_i - m) = 0). correction 0 is the
 * population variance, 1 the sample (Bessel-corrected) one. d = 0 gives inf (or NaN for a zero sum of
 * squares) as in PyTorch; an empty axis gives NaN. The std gradient is taken as 0 on a constant row
 * (std = 0), where PyTorch gives NaN: a constant row then passes no gradient instead of poisoning the step.
 *
 * Kernels: two passes over a contiguous copy of x (the mean, then the squared deviations from it), which
 * is accurate where the one-pass E[x^2] - m^2 cancels. Over the last axis (inner == 1) each row is summed
 * with the 16-lane fixed-order kernels of lanes.h; over a middle axis the inner axis is the vectorised
 * loop and the rows are walked in order. Row blocks o run in parallel (OpenMP, static schedule) when x has
 * at least OX_PARALLEL_MIN elements; each output is computed by one thread in a fixed order, so results
 * are bit-identical for any number of threads.
 *
 * Saved for backward: the contiguous input and the mean [outer, inner]; the output y is the node's. */
#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <math.h>
#include <omp.h>
#include <string.h>

enum mom { MOM_VAR, MOM_STD };

static const char *const mom_names[2] = { "var", "std" };

struct mom_saved {
    ox_tensor *xc;          /* the input, contiguous [outer, n, inner] */
    float *mean;            /* [outer, inner] */
};

/* sum_i (x[i] - m)^2 in 16 lanes, combined in a fixed order (as lanes_sum) */
static float sum_sq_dev(const float *x, int64_t n, float m)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++) {
            float e = x[i + j] - m;
            acc[j] += e * e;
        }
    for (int j = 0; i < n; i++, j++) {
        float e = x[i] - m;
        acc[j] += e * e;
    }
    return lanes_combine(acc);
}

/* ---------------------------------------------------------------- forward */

/* Row block o: mean[o, :] and y[o, :] (the sum of squares divided by d, square-rooted for std). */
static void forward_block(enum mom kind, const float *x, float *mean, float *y, int64_t o, int64_t n,
                          int64_t inner, float inv_n, float inv_d)
{
    const float *xo = x + o * n * inner;
    float *mo = mean + o * inner, *yo = y + o * inner;
    if (inner == 1) {
        float m = lanes_sum(xo, n) * inv_n;
        float v = sum_sq_dev(xo, n, m) * inv_d;
        mo[0] = m;
        yo[0] = kind == MOM_STD ? sqrtf(v) : v;
        return;
    }
    memcpy(mo, xo, sizeof(float) * (size_t)inner);
    for (int64_t r = 1; r < n; r++)
        for (int64_t k = 0; k < inner; k++)
            mo[k] += xo[r * inner + k];
    for (int64_t k = 0; k < inner; k++) {
        mo[k] *= inv_n;
        float e = xo[k] - mo[k];
        yo[k] = e * e;
    }
    for (int64_t r = 1; r < n; r++)
        for (int64_t k = 0; k < inner; k++) {
            float e = xo[r * inner + k] - mo[k];
            yo[k] += e * e;
        }
    if (kind == MOM_STD)
        for (int64_t k = 0; k < inner; k++)
            yo[k] = sqrtf(yo[k] * inv_d);
    else
        for (int64_t k = 0; k < inner; k++)
            yo[k] *= inv_d;
}

/* ---------------------------------------------------------------- backward */

/* Row block o: g[o, r, k] (+)= coef[k] (x[o, r, k] - mean[o, k]), coef = 2 dy / d (var) or
 * dy / (d std) (std; 0 where std = 0). coef: scratch of `inner` floats. */
static void backward_block(enum mom kind, const float *x, const float *mean, const float *y, const float *dy,
                           float *g, float *coef, int fresh, int64_t o, int64_t n, int64_t inner, float inv_d)
{
    const float *xo = x + o * n * inner, *mo = mean + o * inner, *yo = y + o * inner, *dyo = dy + o * inner;
    float *go = g + o * n * inner;
    for (int64_t k = 0; k < inner; k++)
        coef[k] = kind == MOM_VAR ? 2.0f * dyo[k] * inv_d : yo[k] == 0.0f ? 0.0f : dyo[k] * inv_d / yo[k];
    for (int64_t r = 0; r < n; r++) {
        const float *xr = xo + r * inner;
        float *gr = go + r * inner;
        if (fresh)
            for (int64_t k = 0; k < inner; k++)
                gr[k] = coef[k] * (xr[k] - mo[k]);
        else
            for (int64_t k = 0; k < inner; k++)
                gr[k] += coef[k] * (xr[k] - mo[k]);
    }
}

/* node->i: kind, outer, n, inner; node->f[0]: 1/d */
static ox_status moments_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    int fresh = 0;
    ox_tensor *g = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    if (!g || !y->grad)
        return ctx->status;
    enum mom kind = (enum mom)node->i[0];
    int64_t outer = node->i[1], n = node->i[2], inner = node->i[3];
    if (outer * n * inner == 0)
        return OX_OK;
    const struct mom_saved *sv = node->saved;
    float inv_d = (float)node->f[0];
    int nt = ctx->n_threads > 1 && outer > 1 && outer * n * inner >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    float *coef = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(inner * nt));
    if (!coef)
        return ctx->status;
    const float *x = ox_tensor_f32(sv->xc), *yv = ox_tensor_f32(y), *dy = ox_tensor_f32(y->grad);
    float *gv = ox_tensor_f32(g);
    if (nt > 1) {
        /* each block writes its own rows of g, with its own scratch */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            backward_block(kind, x, sv->mean, yv, dy, gv, coef + inner * omp_get_thread_num(), fresh, o, n,
                           inner, inv_d);
    } else {
        for (int64_t o = 0; o < outer; o++)
            backward_block(kind, x, sv->mean, yv, dy, gv, coef, fresh, o, n, inner, inv_d);
    }
    return OX_OK;
}

static const ox_ag_op moments_op = { "var/std", moments_backward };

static ox_tensor *moments(ox_ctx *ctx, enum mom kind, ox_tensor *x, int axis, int64_t correction, int keepdim)
{
    if (ctx->status || !x)
        return NULL;
    const char *name = mom_names[kind];
    if (ox_check_f32(ctx, name, x))
        return NULL;
    int a = ox_check_axis(ctx, name, x, axis);
    if (a < 0)
        return NULL;
    if (correction < 0) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: correction %lld is negative (0: population, 1: sample; axis %d of %s)",
                    name, (long long)correction, axis, ox_shape_str(x, b));
        return NULL;
    }
    int64_t outer = 1, n = x->shape[a], inner = 1, shape[OX_MAX_DIMS] = { 0 };
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d < a)
            outer *= x->shape[d];
        else if (d > a)
            inner *= x->shape[d];
        if (d != a || keepdim)
            shape[nd++] = d == a ? 1 : x->shape[d];
    }
    int64_t m = outer * inner;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    if (!y)
        return NULL;
    /* what backward needs is allocated before the mark; scratch after it is released at the end */
    struct mom_saved *sv = NULL;
    if (ox_ag_needs_grad(ctx, 1, &x)) {
        sv = ox_ctx_alloc(ctx, sizeof *sv);
        if (!sv)
            return NULL;
        sv->xc = ox_tensor_contiguous(ctx, x);
        sv->mean = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(m > 0 ? m : 1));
        if (ctx->status)
            return NULL;
    }
    float inv_d = n - correction > 0 ? (float)(1.0 / (double)(n - correction)) : INFINITY;   /* 1/d */
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *yv = ox_tensor_f32(y);
    if (m > 0 && n == 0) {
        for (int64_t i = 0; i < m; i++)
            yv[i] = NAN;
    } else if (m > 0) {
        ox_tensor *xc = sv ? sv->xc : ox_tensor_contiguous(ctx, x);
        float *mean = sv ? sv->mean : ox_ctx_alloc(ctx, sizeof(float) * (size_t)m);
        if (xc && mean) {
            const float *xv = ox_tensor_f32(xc);
            float inv_n = (float)(1.0 / (double)n);
            if (ctx->n_threads > 1 && outer > 1 && outer * n * inner >= OX_PARALLEL_MIN) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static)
                for (int64_t o = 0; o < outer; o++)
                    forward_block(kind, xv, mean, yv, o, n, inner, inv_n, inv_d);
            } else {
                for (int64_t o = 0; o < outer; o++)
                    forward_block(kind, xv, mean, yv, o, n, inner, inv_n, inv_d);
            }
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    if (ctx->status)
        return NULL;
    ox_ag_node *node = ox_ag_record(ctx, &moments_op, 1, &x, 1, &y);
    if (node) {
        node->saved = sv;
        node->i[0] = kind;
        node->i[1] = outer;
        node->i[2] = n;
        node->i[3] = inner;
        node->f[0] = inv_d;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_var(ox_ctx *ctx, ox_tensor *x, int axis, int64_t correction, int keepdim)
{
    return moments(ctx, MOM_VAR, x, axis, correction, keepdim);
}

ox_tensor *ox_ag_std(ox_ctx *ctx, ox_tensor *x, int axis, int64_t correction, int keepdim)
{
    return moments(ctx, MOM_STD, x, axis, correction, keepdim);
}
