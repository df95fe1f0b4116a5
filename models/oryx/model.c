/* model.c - the Oryx-family model: parameter registration and initialisation, forward, loss (see model.h).
 * Every step is a differentiable op or module, so the backward pass is the tape's. */
#include "models/oryx/model.h"

#include "autograd/ops.h"
#include "nn/cross_entropy.h"
#include "nn/linear_step.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

unsigned ox_oryx_layer_cores(const ox_oryx_config *cfg, int64_t l)
{
    unsigned lin = cfg->linear == OX_ORYX_LINEAR_GDN      ? OX_NN_CORE_GDN
                 : cfg->linear == OX_ORYX_LINEAR_MAMBA2   ? OX_NN_CORE_MAMBA2
                                                          : 0;
    switch (cfg->kinds[l]) {
    case OX_ORYX_KIND_ORYX: return OX_NN_CORE_ATTN | lin;
    case OX_ORYX_KIND_ATTN: return OX_NN_CORE_ATTN;
    case OX_ORYX_KIND_LIN: return lin;
    }
    return 0;
}

ox_status ox_oryx_model_init(ox_ctx *ctx, ox_oryx_model *m, const ox_oryx_config *cfg, ox_rng *rng)
{
    if (!m)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx model init: model is NULL");
    memset(m, 0, sizeof *m);
    ox_nn_params_init(&m->params);
    if (ox_oryx_config_validate(ctx, cfg))
        return ctx->status;
    if (!rng)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx model init: rng is NULL");
    m->cfg = *cfg;
    const ox_oryx_config *c = &m->cfg;
    ox_nn_embedding_init(ctx, &m->params, &m->embed, "embed", c->vocab, c->d_model, 0.02, rng);
    for (int64_t l = 0; l < c->n_layers && !ctx->status; l++) {
        ox_nn_mixer_config mc = {
            .d_model = c->d_model, .n_heads = c->n_heads, .d_k = c->d_k, .d_v = c->d_v,
            .cores = ox_oryx_layer_cores(c, l), .conv_act = c->conv_act, .n_layers = (int)c->n_layers,
        };
        char prefix[64];
        snprintf(prefix, sizeof prefix, "layers.%lld", (long long)l);
        ox_nn_block_init(ctx, &m->params, &m->layers[l], prefix, &mc, c->mlp_hidden, rng);
    }
    ox_nn_rmsnorm_init(ctx, &m->params, &m->norm_f, "norm_f", c->d_model);
    if (c->logit_bias_scale > 0 && !ctx->status)      /* zero-filled, no weight decay (a bias) */
        m->logit_bias = ox_nn_params_add(ctx, &m->params, "lm_head.bias", OX_DIMS(c->vocab), OX_NN_NO_DECAY);
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_oryx_model_free(m);
        return s;
    }
    return OX_OK;
}

void ox_oryx_model_free(ox_oryx_model *m)
{
    if (!m)
        return;
    ox_nn_params_free(&m->params);
    ox_oryx_config cfg = m->cfg;
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    ox_nn_params_init(&m->params);
}

/* mode shape check: [B, T] or [L, B, T] of I32 matching tokens [B, T]; NULL only without oryx layers */
static int check_mode(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *mode)
{
    const ox_oryx_config *c = &m->cfg;
    int needs = 0;
    for (int64_t l = 0; l < c->n_layers; l++)
        needs |= c->kinds[l] == OX_ORYX_KIND_ORYX;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (!mode) {
        if (needs)
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx forward: the model has oryx layers, so it needs a mode map "
                        "I32 [B, T] or [L, B, T] (tokens %s)", ox_shape_str(tokens, b1));
        return needs ? -1 : 0;
    }
    if (ox_check_i32(ctx, "oryx forward (mode map)", mode))
        return -1;
    int ok = (mode->ndim == 2 && mode->shape[0] == tokens->shape[0] && mode->shape[1] == tokens->shape[1]) ||
             (mode->ndim == 3 && mode->shape[0] == c->n_layers && mode->shape[1] == tokens->shape[0] &&
              mode->shape[2] == tokens->shape[1]);
    if (!ok) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx forward: mode map %s must be [B, T] or [L, B, T] = [%lld, %lld, %lld] "
                    "for tokens %s", ox_shape_str(mode, b1), (long long)c->n_layers, (long long)tokens->shape[0],
                    (long long)tokens->shape[1], ox_shape_str(tokens, b2));
        return -1;
    }
    return 0;
}

/* the head with E^T by proj (ox_nn_linear or its step form) */
static ox_tensor *head_by(ox_ctx *ctx, const ox_oryx_model *m, ox_nn_proj_fn proj, ox_tensor *h)
{
    if (ctx->status || !m || !h)
        return NULL;
    ox_tensor *z = proj(ctx, ox_nn_rmsnorm_forward(ctx, &m->norm_f, h), m->embed.weight);     /* tied head */
    if (m->logit_bias)
        z = ox_ag_add(ctx, z, ox_ag_scale(ctx, m->logit_bias, m->cfg.logit_bias_scale));
    return z;
}

ox_tensor *ox_oryx_head(ox_ctx *ctx, const ox_oryx_model *m, ox_tensor *h) { return head_by(ctx, m, ox_nn_linear, h); }

ox_tensor *ox_oryx_head_step(ox_ctx *ctx, const ox_oryx_model *m, ox_tensor *h)
{
    return head_by(ctx, m, ox_nn_linear_step, h);
}

/* the forward; with states, also the prefill (see model.h) */
static ox_tensor *forward(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *mode,
                          ox_nn_mixer_state *states)
{
    if (ctx->status || !m || !tokens)
        return NULL;
    char b1[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, "oryx forward (tokens)", tokens))
        return NULL;
    if (tokens->ndim != 2 || tokens->shape[0] < 1 || tokens->shape[1] < 1) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx forward: tokens %s must be I32 [B, T] with B, T >= 1",
                    ox_shape_str(tokens, b1));
        return NULL;
    }
    if (m->params.n == 0) {
        ox_ctx_fail(ctx, OX_ERR_STATE, "oryx forward: the model has no parameters (not initialised or freed)");
        return NULL;
    }
    if (check_mode(ctx, m, tokens, mode))
        return NULL;
    const ox_oryx_config *c = &m->cfg;
    ox_tensor *h = ox_nn_embedding_forward(ctx, &m->embed, tokens);               /* [B, T, D] */
    for (int64_t l = 0; l < c->n_layers && h; l++) {
        const ox_tensor *ml = NULL;
        if (c->kinds[l] == OX_ORYX_KIND_ORYX)
            ml = mode->ndim == 3 ? ox_tensor_view_select(ctx, mode, 0, l) : mode;
        h = ox_nn_block_forward(ctx, &m->layers[l], h, ml, states ? &states[l] : NULL);
    }
    ox_tensor *logits = ox_oryx_head(ctx, m, h);
    return ctx->status ? NULL : logits;
}

ox_tensor *ox_oryx_forward(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *mode)
{
    return forward(ctx, m, tokens, mode, NULL);
}

ox_tensor *ox_oryx_forward_prefill(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens,
                                   const ox_tensor *mode, ox_nn_mixer_state *states)
{
    if (!states && !ctx->status) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx forward prefill: states is NULL");
        return NULL;
    }
    return forward(ctx, m, tokens, mode, states);
}

ox_tensor *ox_oryx_loss_targets(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *inputs,
                                const ox_tensor *targets, const ox_tensor *mode, int32_t ignore_index,
                                ox_tensor **logits_out)
{
    if (logits_out)
        *logits_out = NULL;
    if (ctx->status || !inputs || !targets)
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, "oryx loss (targets)", targets))
        return NULL;
    if (!ox_tensor_same_shape(inputs, targets)) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx loss: targets %s must have the shape of inputs %s",
                    ox_shape_str(targets, b1), ox_shape_str(inputs, b2));
        return NULL;
    }
    ox_tensor *logits = ox_oryx_forward(ctx, m, inputs, mode);
    ox_tensor *loss = ox_nn_cross_entropy(ctx, logits, targets, ignore_index);
    if (logits_out && loss)
        *logits_out = logits;
    return loss;
}

ox_tensor *ox_oryx_loss(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *rows, const ox_tensor *mode,
                        ox_tensor **logits_out)
{
    if (logits_out)
        *logits_out = NULL;
    if (ctx->status || !rows)
        return NULL;
    char b1[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, "oryx loss (rows)", rows))
        return NULL;
    if (rows->ndim != 2 || rows->shape[1] < 2) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx loss: rows %s must be I32 [B, T+1] with T >= 1", ox_shape_str(rows, b1));
        return NULL;
    }
    int64_t T = rows->shape[1] - 1;
    ox_tensor *inputs = ox_tensor_view_narrow(ctx, rows, 1, 0, T);
    ox_tensor *targets = ox_tensor_view_narrow(ctx, rows, 1, 1, T);
    const ox_tensor *ml = mode;
    if (mode && mode->ndim >= 2 && mode->shape[mode->ndim - 1] == T + 1)    /* a map over the whole row */
        ml = ox_tensor_view_narrow(ctx, mode, mode->ndim - 1, 0, T);
    /* no target is ignored: INT32_MIN is never a valid id, so every out-of-range target is an error */
    return ox_oryx_loss_targets(ctx, m, inputs, targets, ml, INT32_MIN, logits_out);
}
