/* rmsnorm.c - RMSNorm: forward kernel (saves r per row), backward kernel, tape glue, module
 * (see rmsnorm.h). */
#include "nn/rmsnorm.h"
#include "autograd/ops.h"
#include "nn/util.h"

#include <string.h>

typedef struct rmsnorm_saved {
    ox_tensor *x;           /* the rows that were normalised (input or its copy); row r at x + r * rs */
    int64_t rs;
    float *rstd;            /* [rows] */
} rmsnorm_saved;

static ox_status rmsnorm_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const rmsnorm_saved *s = node->saved;
    ox_tensor *w = node->in[1], *y = node->out[0];
    int fresh = 0;     /* a gradient created here is zeroed row by row (cache-hot) instead of up front */
    ox_tensor *gx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    ox_tensor *gw = ox_ag_grad(ctx, w);
    if (ctx->status)
        return ctx->status;
    int64_t n = w->shape[0], rows = ox_tensor_numel(y) / (n ? n : 1), rs = s->rs;
    if (n == 0 || rows == 0)
        return OX_OK;
    int64_t nb = (rows + OX_NN_ROW_BLOCK - 1) / OX_NN_ROW_BLOCK;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *part = gw ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nb * n)) : NULL;
    if (gw && !part)
        return ctx->status;
    const float *xp = ox_tensor_f32(s->x), *wp = ox_tensor_f32(w), *dyp = ox_tensor_f32(y->grad);
    const float *rstd = s->rstd;
    float *gxp = gx ? ox_tensor_f32(gx) : NULL;
    float inv_n = 1.0f / (float)n;
    int nt = ox_nn_threads(ctx, rows * n);
    /* blocks of rows are independent: each writes its own rows of dx and its own partial of dw */
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t b = 0; b < nb; b++) {
        float *pw = part ? part + b * n : NULL;
        if (pw)
            memset(pw, 0, sizeof(float) * (size_t)n);
        int64_t r1 = (b + 1) * OX_NN_ROW_BLOCK < rows ? (b + 1) * OX_NN_ROW_BLOCK : rows;
        for (int64_t r = b * OX_NN_ROW_BLOCK; r < r1; r++) {
            const float *x = xp + r * rs, *dy = dyp + r * n;
            float rr = rstd[r];
            if (gxp) {
                float *dx = gxp + r * n;
                float c = rr * rr * rr * ox_nn_dot3(dy, wp, x, n) * inv_n;
                if (fresh)
                    memset(dx, 0, sizeof(float) * (size_t)n);
                for (int64_t j = 0; j < n; j++)
                    dx[j] += rr * dy[j] * wp[j] - x[j] * c;
            }
            if (pw)
                for (int64_t j = 0; j < n; j++)
                    pw[j] += dy[j] * x[j] * rr;
        }
    }
    if (gw) {
        float *g = ox_tensor_f32(gw);
        for (int64_t b = 0; b < nb; b++)
            for (int64_t j = 0; j < n; j++)
                g[j] += part[b * n + j];
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op rmsnorm_op = { "rmsnorm", rmsnorm_backward };

ox_tensor *ox_nn_rmsnorm(ox_ctx *ctx, ox_tensor *x, ox_tensor *w)
{
    if (ctx->status || !x || !w)
        return NULL;
    if (ox_check_f32(ctx, "rmsnorm", x) || ox_check_f32(ctx, "rmsnorm", w))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (x->ndim < 1 || w->ndim != 1 || w->shape[0] != x->shape[x->ndim - 1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "rmsnorm: input %s does not fit weight %s (want x [..., n], w [n])",
                    ox_shape_str(x, b1), ox_shape_str(w, b2));
        return NULL;
    }
    int64_t n = w->shape[0], rows, rs;
    ox_tensor *wc = ox_ag_contiguous(ctx, w);
    ox_tensor *xr = ox_nn_unit_rows(ctx, x, &rows, &rs);
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    float *rstd = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows ? rows : 1));
    if (!wc || !xr || !y || !rstd)
        return NULL;
    const float *xp = ox_tensor_f32(xr), *wp = ox_tensor_f32(wc);
    float *yp = ox_tensor_f32(y);
    float inv_n = n ? 1.0f / (float)n : 0.0f;
    int nt = ox_nn_threads(ctx, rows * n);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xv = xp + r * rs;
        float *yv = yp + r * n;
        float rr = 1.0f / sqrtf(ox_nn_dot(xv, xv, n) * inv_n + OX_NN_NORM_EPS);
        rstd[r] = rr;
        for (int64_t j = 0; j < n; j++)
            yv[j] = xv[j] * rr * wp[j];
    }
    ox_tensor *ins[2] = { x, wc };
    if (ox_ag_needs_grad(ctx, 2, ins)) {
        rmsnorm_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (rmsnorm_saved){ xr, rs, rstd };
        ox_ag_node *node = ox_ag_record(ctx, &rmsnorm_op, 2, ins, 1, &y);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : y;
}

ox_status ox_nn_rmsnorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_rmsnorm_t *m, const char *prefix, int64_t n)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(n), OX_NN_NO_DECAY);
    if (!w || ox_tensor_fill(ctx, w, 1.0))
        return ctx->status;
    m->weight = w;
    m->n = n;
    return OX_OK;
}

ox_tensor *ox_nn_rmsnorm_forward(ox_ctx *ctx, const ox_nn_rmsnorm_t *m, ox_tensor *x)
{
    return ox_nn_rmsnorm(ctx, x, m->weight);
}
