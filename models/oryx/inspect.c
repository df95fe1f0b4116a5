/* inspect.c - the attention probabilities of one head of one layer (see inspect.h). */
#include "models/oryx/inspect.h"

#include <math.h>
#include <stdio.h>

#include "autograd/tape.h"

/* The mode map of layer l as I32 [1, T] (a view), or NULL when the layer ignores the map. */
static const ox_tensor *layer_map(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *mode, int64_t T,
                                  int64_t l)
{
    if (m->cfg.kinds[l] != OX_ORYX_KIND_ORYX)
        return NULL;
    if (mode->ndim == 3)
        return ox_tensor_view_select(ctx, mode, 0, l);
    return mode->ndim == 1 ? ox_tensor_view_reshape(ctx, mode, OX_DIMS(1, T)) : mode;
}

static int check_args(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *mode,
                      int64_t layer, int64_t head)
{
    const ox_oryx_config *c = &m->cfg;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, "attention probs (tokens)", tokens))
        return -1;
    int64_t T = tokens->shape[tokens->ndim - 1];
    if (!((tokens->ndim == 1 || (tokens->ndim == 2 && tokens->shape[0] == 1)) && T >= 1)) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "attention probs: tokens %s must be I32 [T] or [1, T]",
                    ox_shape_str(tokens, b1));
        return -1;
    }
    if (layer < 0 || layer >= c->n_layers || head < 0 || head >= c->n_heads) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "attention probs: layer %lld / head %lld out of range (L = %lld, H = %lld)",
                    (long long)layer, (long long)head, (long long)c->n_layers, (long long)c->n_heads);
        return -1;
    }
    if (c->kinds[layer] == OX_ORYX_KIND_LIN) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "attention probs: layer %lld is a linear (%s) layer: it has no attention",
                    (long long)layer, ox_oryx_linear_name(c->linear));
        return -1;
    }
    int needs = 0;
    for (int64_t l = 0; l < c->n_layers; l++)
        needs |= c->kinds[l] == OX_ORYX_KIND_ORYX;
    if (!mode) {
        if (needs)
            ox_ctx_fail(ctx, OX_ERR_ARG, "attention probs: the model has oryx layers, so it needs a mode map");
        return needs ? -1 : 0;
    }
    if (ox_check_i32(ctx, "attention probs (mode map)", mode))
        return -1;
    int ok = (mode->ndim == 1 && mode->shape[0] == T) || (mode->ndim == 2 && mode->shape[0] == 1 && mode->shape[1] == T) ||
             (mode->ndim == 3 && mode->shape[0] == c->n_layers && mode->shape[1] == 1 && mode->shape[2] == T);
    if (!ok) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "attention probs: mode map %s must be [T], [1, T] or [L, 1, T] for tokens %s "
                    "(L = %lld)", ox_shape_str(mode, b1), ox_shape_str(tokens, b2), (long long)c->n_layers);
        return -1;
    }
    return 0;
}

/* P [T, T] from the rotated q, k [1, T, H*dk] of the layer (q NULL: no row was computed). */
static ox_tensor *probs(ox_ctx *ctx, const ox_oryx_config *c, ox_tensor *q, ox_tensor *k, const ox_tensor *map,
                        int64_t T, int64_t head, ox_tensor **rows_out)
{
    ox_tensor *P = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(T, T));
    ox_tensor *rows = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(T));
    double *s = ox_ctx_alloc(ctx, sizeof *s * (size_t)T);
    if (!P || !rows || !s)
        return NULL;
    if (q) {
        q = ox_tensor_contiguous(ctx, q);
        k = ox_tensor_contiguous(ctx, k);
        if (!q || !k)
            return NULL;
        int64_t dk = c->d_k, HK = c->n_heads * dk;
        const float *qf = ox_tensor_f32(q) + head * dk, *kf = ox_tensor_f32(k) + head * dk;
        double scale = 1.0 / sqrt((double)dk);
        for (int64_t t = 0; t < T; t++) {
            if (map && !ox_tensor_i32(map)[t * map->stride[1]])
                continue;
            ox_tensor_i32(rows)[t] = 1;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j <= t; j++) {
                double d = 0;
                for (int64_t e = 0; e < dk; e++)
                    d += (double)qf[t * HK + e] * (double)kf[j * HK + e];
                s[j] = d * scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int64_t j = 0; j <= t; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int64_t j = 0; j <= t; j++)
                ox_tensor_f32(P)[t * T + j] = (float)(s[j] / sum);
        }
    }
    if (rows_out)
        *rows_out = rows;
    return P;
}

ox_tensor *ox_oryx_attention_probs(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens,
                                   const ox_tensor *mode, int64_t layer, int64_t head, ox_tensor **rows)
{
    if (rows)
        *rows = NULL;
    if (ctx->status || !m || !tokens)
        return NULL;
    if (m->params.n == 0) {
        ox_ctx_fail(ctx, OX_ERR_STATE, "attention probs: the model has no parameters (not initialised or freed)");
        return NULL;
    }
    if (check_args(ctx, m, tokens, mode, layer, head))
        return NULL;
    const ox_oryx_config *c = &m->cfg;
    int64_t T = tokens->shape[tokens->ndim - 1];
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    const ox_tensor *tok = tokens->ndim == 1 ? ox_tensor_view_reshape(ctx, tokens, OX_DIMS(1, T)) : tokens;
    /* the layers before `layer`, exactly as ox_oryx_forward runs them (the block of nn/block.h) */
    ox_tensor *h = ox_nn_embedding_forward(ctx, &m->embed, tok);
    for (int64_t l = 0; l < layer && h; l++)
        h = ox_nn_block_forward(ctx, &m->layers[l], h, layer_map(ctx, m, mode, T, l), NULL);
    /* layer `layer`: the block's first half, RMSNorm then the mixer, traced for its own q and k */
    const ox_oryx_layer *L = &m->layers[layer];
    const ox_tensor *map = layer_map(ctx, m, mode, T, layer);
    ox_nn_mixer_trace tr;
    ox_tensor *y = ox_nn_mixer_forward(ctx, &L->mixer, ox_nn_rmsnorm_forward(ctx, &L->norm1, h), map, &tr);
    ox_tensor *P = y ? probs(ctx, c, tr.q_rot, tr.k_rot, map, T, head, rows) : NULL;
    ox_ag_set_grad_enabled(ctx, prev);
    if (ctx->status) {
        if (rows)
            *rows = NULL;
        return NULL;
    }
    return P;
}
