/* mha.c - plain multi-head self-attention: parameters and forward (see mha.h; the attention kernel is
 * nn/attention.c). */
#include "nn/mha.h"
#include "autograd/ops.h"
#include "nn/util.h"

#include <stdio.h>

/* A Linear with an optional zero bias: N(0, std^2) weight, then the bias registered zero-filled. */
static ox_status proj_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *l, const char *prefix, const char *name,
                           int64_t in, int64_t out, int bias, double std, ox_rng *rng)
{
    char full[OX_NN_NAME_MAX];
    if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mha: parameter name '%s.%s' is too long", prefix, name);
    if (ox_nn_linear_init(ctx, ps, l, full, in, out, std, rng))
        return ctx->status;
    if (bias && !(l->bias = ox_nn_param_new(ctx, ps, full, "bias", OX_DIMS(out), OX_NN_NO_DECAY)))
        return ctx->status;
    return OX_OK;
}

ox_status ox_nn_mha_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_mha_t *m, const char *prefix,
                         const ox_nn_mha_config *cfg, ox_rng *rng)
{
    memset(m, 0, sizeof *m);
    if (ctx->status)
        return ctx->status;
    const int64_t C = cfg->dim, H = cfg->n_heads;
    if (C < 1 || H < 1 || C % H != 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mha '%s': dim %lld and n_heads %lld must be >= 1 with n_heads "
                           "dividing dim", prefix, (long long)C, (long long)H);
    if (!(cfg->std >= 0) || !(cfg->out_std >= 0))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mha '%s': std %g and out_std %g must be >= 0", prefix, cfg->std,
                           cfg->out_std);
    m->cfg = *cfg;
    m->head_dim = C / H;
    if (cfg->packed) {
        if (proj_init(ctx, ps, &m->c_attn, prefix, "c_attn", C, 3 * C, cfg->bias, cfg->std, rng) ||
            proj_init(ctx, ps, &m->out, prefix, "c_proj", C, C, cfg->bias, cfg->out_std, rng))
            return ctx->status;
    } else {
        if (proj_init(ctx, ps, &m->q_proj, prefix, "q_proj", C, C, cfg->bias, cfg->std, rng) ||
            proj_init(ctx, ps, &m->k_proj, prefix, "k_proj", C, C, cfg->bias, cfg->std, rng) ||
            proj_init(ctx, ps, &m->v_proj, prefix, "v_proj", C, C, cfg->bias, cfg->std, rng) ||
            proj_init(ctx, ps, &m->out, prefix, "o_proj", C, C, cfg->bias, cfg->out_std, rng))
            return ctx->status;
    }
    return OX_OK;
}

/* [B, T, C] -> [B, T, H, hd] (x contiguous, as ox_nn_linear returns it) */
static ox_tensor *heads(ox_ctx *ctx, const ox_nn_mha_t *m, ox_tensor *x)
{
    return ox_ag_reshape(ctx, x, OX_DIMS(x->shape[0], x->shape[1], m->cfg.n_heads, m->head_dim));
}

ox_tensor *ox_nn_mha_forward(ox_ctx *ctx, const ox_nn_mha_t *m, ox_tensor *x, const ox_nn_attn_mask *mask)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "mha", x))
        return NULL;
    const int64_t C = m->cfg.dim, H = m->cfg.n_heads, hd = m->head_dim;
    if (x->ndim != 3 || x->shape[2] != C) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "mha: x %s must be [B, T, %lld]", ox_shape_str(x, b), (long long)C);
        return NULL;
    }
    const int64_t B = x->shape[0], T = x->shape[1];
    ox_tensor *q, *k, *v;
    if (m->cfg.packed) {
        /* [B, T, 3C] = [B, T, 3, H, hd]: q, k, v are its slices 0, 1, 2 on axis 2 (views, last stride 1) */
        ox_tensor *qkv = ox_nn_linear_forward(ctx, &m->c_attn, x);
        ox_tensor *s = qkv ? ox_ag_reshape(ctx, qkv, 5, (const int64_t[]){ B, T, 3, H, hd }) : NULL;
        q = ox_ag_select(ctx, s, 2, 0);
        k = ox_ag_select(ctx, s, 2, 1);
        v = ox_ag_select(ctx, s, 2, 2);
    } else {
        q = heads(ctx, m, ox_nn_linear_forward(ctx, &m->q_proj, x));
        k = heads(ctx, m, ox_nn_linear_forward(ctx, &m->k_proj, x));
        v = heads(ctx, m, ox_nn_linear_forward(ctx, &m->v_proj, x));
    }
    ox_tensor *o = ox_nn_attention_masked(ctx, q, k, v, NULL, mask);     /* [B, T, H, hd] contiguous */
    if (!o)
        return NULL;
    return ox_nn_linear_forward(ctx, &m->out, ox_ag_reshape(ctx, o, OX_DIMS(B, T, C)));
}
