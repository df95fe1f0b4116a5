/* gated_rmsnorm.c - GatedRMSNorm per head: forward kernel (saves r per row and head), backward kernel,
 * tape glue, module (see gated_rmsnorm.h). */
#include "nn/gated_rmsnorm.h"
#include "autograd/ops.h"
#include "nn/rmsnorm.h"
#include "nn/util.h"

#include <string.h>

typedef struct gnorm_saved {
    ox_tensor *o, *g;       /* the rows used (inputs or their copies) */
    int64_t rso, rsg;       /* their row strides */
    float *r;               /* [rows, H] */
    int64_t dv;
} gnorm_saved;

/* One head's elementwise part of the backward (restrict lets the compiler vectorise it):
 * dn = dy ⊙ w ⊙ silu(g);  dg += dy ⊙ n ⊙ w ⊙ silu'(g);  dw_partial += dy ⊙ n ⊙ silu(g),  n = o r */
static inline void head_grads(int64_t dv, float rh, const float *restrict g, const float *restrict sg,
                              const float *restrict o, const float *restrict dy, const float *restrict w,
                              float *restrict dn, float *restrict dg, float *restrict pw)
{
    for (int64_t j = 0; j < dv; j++) {
        float z = g[j], sz = sg[j], nj = o[j] * rh;
        dn[j] = dy[j] * w[j] * z * sz;
        dg[j] += dy[j] * nj * w[j] * sz * (1.0f + z * (1.0f - sz));
        pw[j] += dy[j] * nj * z * sz;
    }
}

static ox_status gnorm_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const gnorm_saved *s = node->saved;
    ox_tensor *w = node->in[2], *y = node->out[0];
    int fo = 0, fg = 0;     /* gradients created here: zeroed row by row (cache-hot) instead of up front */
    ox_tensor *go = ox_ag_grad_fresh(ctx, node->in[0], &fo);
    ox_tensor *gg = ox_ag_grad_fresh(ctx, node->in[1], &fg);
    ox_tensor *gw = ox_ag_grad(ctx, w);
    if (ctx->status)
        return ctx->status;
    int64_t n = w->shape[0], dv = s->dv, H = n / dv, rows = ox_tensor_numel(y) / (n ? n : 1);
    if (n == 0 || rows == 0)
        return OX_OK;
    int64_t nb = (rows + OX_NN_ROW_BLOCK - 1) / OX_NN_ROW_BLOCK;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    /* per block: scratch rows σ(g), dn, a dw partial, and a dg row used when g needs no gradient (so the
     * inner loop has no branches) */
    int64_t per_block = 4 * n;
    float *scratch = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nb * per_block));
    if (!scratch)
        return ctx->status;
    const float *op = ox_tensor_f32(s->o), *gp = ox_tensor_f32(s->g), *wp = ox_tensor_f32(w);
    const float *dyp = ox_tensor_f32(y->grad), *rp = s->r;
    float *gop = go ? ox_tensor_f32(go) : NULL, *ggp = gg ? ox_tensor_f32(gg) : NULL;
    float inv_dv = 1.0f / (float)dv;
    int nt = ox_nn_threads(ctx, rows * n);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t b = 0; b < nb; b++) {
        float *sg = scratch + b * per_block, *dn = sg + n, *pw = dn + n, *dg_dummy = pw + n;
        memset(pw, 0, sizeof(float) * (size_t)n);
        int64_t r1 = (b + 1) * OX_NN_ROW_BLOCK < rows ? (b + 1) * OX_NN_ROW_BLOCK : rows;
        for (int64_t r = b * OX_NN_ROW_BLOCK; r < r1; r++) {
            const float *o = op + r * s->rso, *g = gp + r * s->rsg, *dy = dyp + r * n;
            const float *rr = rp + r * H;
            float *dg = ggp ? ggp + r * n : dg_dummy;
            if (fo)
                memset(gop + r * n, 0, sizeof(float) * (size_t)n);
            if (fg)
                memset(dg, 0, sizeof(float) * (size_t)n);
            for (int64_t j = 0; j < n; j++)
                sg[j] = ox_nn_sigmoidf(g[j]);
            for (int64_t h = 0; h < H; h++) {
                int64_t j0 = h * dv;
                float rh = rr[h];
                head_grads(dv, rh, g + j0, sg + j0, o + j0, dy + j0, wp + j0, dn + j0, dg + j0, pw + j0);
                if (gop) {
                    /* do = r dn - n r (dn . n) / dv = r dn - o r^3 (dn . o) / dv */
                    float c = rh * rh * rh * ox_nn_dot(dn + j0, o + j0, dv) * inv_dv;
                    float *d = gop + r * n;
                    for (int64_t j = j0; j < j0 + dv; j++)
                        d[j] += rh * dn[j] - o[j] * c;
                }
            }
        }
    }
    if (gw) {
        float *gwp = ox_tensor_f32(gw);
        for (int64_t b = 0; b < nb; b++) {
            const float *pw = scratch + b * per_block + 2 * n;
            for (int64_t j = 0; j < n; j++)
                gwp[j] += pw[j];
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op gnorm_op = { "gated_rmsnorm", gnorm_backward };

ox_tensor *ox_nn_gated_rmsnorm(ox_ctx *ctx, ox_tensor *o, ox_tensor *g, ox_tensor *w, int64_t dv)
{
    if (ctx->status || !o || !g || !w)
        return NULL;
    if (ox_check_f32(ctx, "gated_rmsnorm", o) || ox_check_f32(ctx, "gated_rmsnorm", g) ||
        ox_check_f32(ctx, "gated_rmsnorm", w))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    if (o->ndim < 1 || !ox_tensor_same_shape(o, g) || w->ndim != 1 || w->shape[0] != o->shape[o->ndim - 1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE,
                    "gated_rmsnorm: o %s, gate %s and weight %s do not fit (want o, g [..., H*dv], w [H*dv])",
                    ox_shape_str(o, b1), ox_shape_str(g, b2), ox_shape_str(w, b3));
        return NULL;
    }
    int64_t n = w->shape[0];
    if (dv < 1 || n % dv != 0) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "gated_rmsnorm: feature size %lld is not a multiple of head size dv = %lld",
                    (long long)n, (long long)dv);
        return NULL;
    }
    int64_t H = n / dv, rows, rso, rsg;
    ox_tensor *wc = ox_ag_contiguous(ctx, w);
    ox_tensor *orow = ox_nn_unit_rows(ctx, o, &rows, &rso);
    ox_tensor *grow = ox_nn_unit_rows(ctx, g, &rows, &rsg);
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, o->ndim, o->shape);
    float *rsave = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows * H > 0 ? rows * H : 1));
    if (!wc || !orow || !grow || !y || !rsave)
        return NULL;
    const float *op = ox_tensor_f32(orow), *gp = ox_tensor_f32(grow), *wp = ox_tensor_f32(wc);
    float *yp = ox_tensor_f32(y);
    float inv_dv = 1.0f / (float)dv;
    int nt = ox_nn_threads(ctx, rows * n);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *ov = op + r * rso, *gv = gp + r * rsg;
        float *yv = yp + r * n;
        for (int64_t h = 0; h < H; h++) {
            const float *oh = ov + h * dv;
            float rh = 1.0f / sqrtf(ox_nn_dot(oh, oh, dv) * inv_dv + OX_NN_NORM_EPS);
            rsave[r * H + h] = rh;
            for (int64_t j = h * dv; j < (h + 1) * dv; j++) {
                float z = gv[j];
                yv[j] = ov[j] * rh * wp[j] * (z * ox_nn_sigmoidf(z));
            }
        }
    }
    ox_tensor *ins[3] = { o, g, wc };
    if (ox_ag_needs_grad(ctx, 3, ins)) {
        gnorm_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (gnorm_saved){ orow, grow, rso, rsg, rsave, dv };
        ox_ag_node *node = ox_ag_record(ctx, &gnorm_op, 3, ins, 1, &y);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : y;
}

ox_status ox_nn_gated_rmsnorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_gated_rmsnorm_t *m, const char *prefix,
                                   int64_t heads, int64_t dv)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(heads * dv), OX_NN_NO_DECAY);
    if (!w || ox_tensor_fill(ctx, w, 1.0))
        return ctx->status;
    m->weight = w;
    m->heads = heads;
    m->dv = dv;
    return OX_OK;
}

ox_tensor *ox_nn_gated_rmsnorm_forward(ox_ctx *ctx, const ox_nn_gated_rmsnorm_t *m, ox_tensor *o, ox_tensor *g)
{
    return ox_nn_gated_rmsnorm(ctx, o, g, m->weight, m->dv);
}
