/* generate.c - Oryx decoding (see generate.h): decode state (one nn/mixer.h state per layer), the one-token
 * step with per-(layer, sequence) modes (nn/block.h step form, arena temporaries rewound per step), prefill
 * from the empty state by the parallel forward (model.h; stepping when a sequence continues), KV-cache
 * dropping, sampling and the generate loop (MODELS.md 7.4). */
#include "models/oryx/generate.h"

#include "autograd/ops.h"
#include "nn/block.h"

#include <string.h>

static uint64_t tensor_bytes(const ox_tensor *t) { return t ? (uint64_t)ox_tensor_numel(t) * 4u : 0u; }

void ox_oryx_decoder_free(ox_oryx_decoder *d)
{
    if (!d)
        return;
    for (int l = 0; l < OX_ORYX_MAX_LAYERS; l++)
        ox_nn_mixer_state_free(&d->layers[l]);
    ox_tensor_free(d->logits);
    memset(d, 0, sizeof *d);
}

ox_status ox_oryx_decoder_init(ox_ctx *ctx, ox_oryx_decoder *d, const ox_oryx_model *m, int64_t B, int64_t cap,
                               unsigned flags)
{
    if (!d)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder init: decoder is NULL");
    memset(d, 0, sizeof *d);
    if (ctx->status)
        return ctx->status;
    if (!m || m->params.n == 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder init: the model is missing or has no parameters");
    if (B < 1 || cap < 1 || (flags & ~OX_ORYX_DECODE_NO_KV))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder init: need B >= 1, cap >= 1 and known flags (got B=%lld "
                           "cap=%lld flags=%u)", (long long)B, (long long)cap, flags);
    const ox_oryx_config *c = &m->cfg;
    d->model = m;
    d->B = B;
    d->cap = cap;
    d->logits = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, c->vocab));
    for (int64_t l = 0; l < c->n_layers && !ctx->status; l++) {     /* NO_KV: no cache beside a linear core */
        int lin = (ox_oryx_layer_cores(c, l) & (OX_NN_CORE_GDN | OX_NN_CORE_MAMBA2)) != 0;
        int kv = !(lin && (flags & OX_ORYX_DECODE_NO_KV));
        ox_nn_mixer_state_init(ctx, &d->layers[l], &m->layers[l].mixer, B, cap, kv);
    }
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_oryx_decoder_free(d);
        return s;
    }
    return OX_OK;
}

void ox_oryx_decoder_reset(ox_oryx_decoder *d)
{
    if (!d || !d->model)
        return;
    for (int64_t l = 0; l < d->model->cfg.n_layers; l++)
        ox_nn_mixer_state_reset(&d->layers[l]);
    memset(ox_tensor_f32(d->logits), 0, (size_t)tensor_bytes(d->logits));
    d->pos = 0;
}

ox_status ox_oryx_decoder_drop_kv(ox_ctx *ctx, ox_oryx_decoder *d, int64_t layer)
{
    if (ctx->status)
        return ctx->status;
    if (!d || !d->model)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder drop_kv: decoder is not initialised");
    int64_t L = d->model->cfg.n_layers;
    if (layer >= L)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder drop_kv: layer %lld out of range [0, %lld)",
                           (long long)layer, (long long)L);
    if (layer >= 0 && !d->layers[layer].has_lin)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder drop_kv: layer %lld is attention-only; its KV cache "
                           "cannot be dropped", (long long)layer);
    for (int64_t l = layer < 0 ? 0 : layer; l < (layer < 0 ? L : layer + 1); l++)
        if (d->layers[l].has_lin)
            ox_nn_kv_cache_free(&d->layers[l].kv);
    return OX_OK;
}

uint64_t ox_oryx_decoder_bytes(const ox_oryx_decoder *d)
{
    if (!d || !d->model)
        return 0;
    uint64_t n = tensor_bytes(d->logits);
    for (int64_t l = 0; l < d->model->cfg.n_layers; l++)
        n += ox_nn_mixer_state_bytes(&d->layers[l]);
    return n;
}

/* the mode layer l uses for sequence b (kinds ATTN / LIN have a fixed one) */
static int mode_of(const ox_oryx_decoder *d, int64_t l, int64_t b, const int32_t *modes, int64_t n_modes)
{
    ox_oryx_kind k = d->model->cfg.kinds[l];
    if (k == OX_ORYX_KIND_ATTN)
        return OX_NN_ATTN;
    if (k == OX_ORYX_KIND_LIN)
        return OX_NN_LIN;
    return modes[n_modes == d->B ? b : l * d->B + b];
}

/* every check of a step, before anything changes */
static ox_status check_step(ox_ctx *ctx, const ox_oryx_decoder *d, const int32_t *tokens, const int32_t *modes,
                            int64_t n_modes)
{
    const ox_oryx_config *c = &d->model->cfg;
    const int64_t B = d->B, L = c->n_layers;
    if (!tokens)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder step: tokens is NULL");
    for (int64_t b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= c->vocab)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder step: token %d of sequence %lld is outside [0, %lld)",
                               (int)tokens[b], (long long)b, (long long)c->vocab);
    int needs = 0;
    for (int64_t l = 0; l < L; l++)
        needs |= c->kinds[l] == OX_ORYX_KIND_ORYX;
    if (needs && (!modes || (n_modes != B && n_modes != L * B)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder step: the model has oryx layers, so modes must hold B = "
                           "%lld or L * B = %lld entries (got %lld%s)", (long long)B, (long long)(L * B),
                           (long long)n_modes, modes ? "" : ", NULL");
    for (int64_t l = 0; l < L; l++) {
        const ox_oryx_decoder_layer *Ly = &d->layers[l];
        for (int64_t b = 0; b < B; b++) {
            int md = mode_of(d, l, b, modes, n_modes);
            if (md != OX_NN_LIN && md != OX_NN_ATTN)
                return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder step: mode %d (layer %lld, sequence %lld); a mode "
                                   "is 0 (LIN) or 1 (ATTN)", md, (long long)l, (long long)b);
            if (md == OX_NN_ATTN && !Ly->kv.k)
                return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx decoder step: layer %lld, sequence %lld asks for ATTN at "
                                   "position %lld, but that layer's KV cache was dropped (or never allocated)",
                                   (long long)l, (long long)b, (long long)d->pos);
        }
        if (Ly->kv.k && Ly->kv.len >= Ly->kv.cap)
            return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx decoder step: the KV cache of layer %lld is full (%lld "
                               "positions)", (long long)l, (long long)Ly->kv.cap);
    }
    return OX_OK;
}

ox_status ox_oryx_decoder_step(ox_ctx *ctx, ox_oryx_decoder *d, const int32_t *tokens, const int32_t *modes,
                               int64_t n_modes)
{
    if (ctx->status)
        return ctx->status;
    if (!d || !d->model)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder step: decoder is not initialised");
    if (check_step(ctx, d, tokens, modes, n_modes))
        return ctx->status;
    const ox_oryx_model *m = d->model;
    const int64_t B = d->B, V = m->cfg.vocab;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    int32_t *md = ox_ctx_alloc(ctx, (size_t)B * sizeof(int32_t));
    ox_tensor *tok = ox_tensor_from_buffer(ctx, OX_I32, OX_DIMS(B, 1), (void *)tokens);
    ox_tensor *h = md && tok ? ox_nn_embedding_forward(ctx, &m->embed, tok) : NULL;     /* [B, 1, D] */
    for (int64_t l = 0; l < m->cfg.n_layers && h; l++) {
        for (int64_t b = 0; b < B; b++)
            md[b] = mode_of(d, l, b, modes, n_modes);
        h = ox_nn_block_step(ctx, &m->layers[l], &d->layers[l], h, md, d->pos);
    }
    ox_tensor *logits = ox_oryx_head_step(ctx, m, h);
    if (logits && !ctx->status) {
        memcpy(ox_tensor_f32(d->logits), ox_tensor_f32(logits), (size_t)(B * V) * sizeof(float));
        d->pos++;
    }
    ox_ag_set_grad_enabled(ctx, prev);
    ox_arena_rewind(&ctx->arena, mark);
    return ctx->status;
}

/* ---- parallel prefill ----------------------------------------------------------------------------------- */

/* checks of a parallel prefill that the forward does not make: ATTN where a cache was dropped, capacity */
static ox_status check_prefill(ox_ctx *ctx, const ox_oryx_decoder *d, const ox_tensor *mode, int64_t T)
{
    const ox_oryx_config *c = &d->model->cfg;
    for (int64_t l = 0; l < c->n_layers; l++) {
        const ox_oryx_decoder_layer *L = &d->layers[l];
        if (L->kv.k && T > L->kv.cap)
            return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx decoder prefill: %lld tokens do not fit the KV cache of layer "
                               "%lld (%lld positions)", (long long)T, (long long)l, (long long)L->kv.cap);
        if (L->kv.k || !L->has_attn || c->kinds[l] != OX_ORYX_KIND_ORYX)
            continue;
        for (int64_t b = 0; b < d->B; b++)
            for (int64_t t = 0; t < T; t++) {
                int64_t off = mode->ndim == 2 ? b * mode->stride[0] + t * mode->stride[1]
                                              : l * mode->stride[0] + b * mode->stride[1] + t * mode->stride[2];
                if (ox_tensor_i32(mode)[off] == OX_NN_ATTN)
                    return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx decoder prefill: layer %lld, sequence %lld asks for "
                                       "ATTN at position %lld, but that layer's KV cache was dropped (or never "
                                       "allocated)", (long long)l, (long long)b, (long long)t);
            }
    }
    return OX_OK;
}

ox_status ox_oryx_decoder_prefill(ox_ctx *ctx, ox_oryx_decoder *d, const ox_tensor *tokens, const ox_tensor *mode,
                                  ox_tensor *all_logits)
{
    if (ctx->status)
        return ctx->status;
    if (!d || !d->model)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder prefill: decoder is not initialised");
    if (!tokens || ox_check_i32(ctx, "oryx decoder prefill (tokens)", tokens))
        return ctx->status ? ctx->status : ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder prefill: tokens is NULL");
    const int64_t B = d->B, L = d->model->cfg.n_layers, V = d->model->cfg.vocab;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (tokens->ndim != 2 || tokens->shape[0] != B || tokens->shape[1] < 1)
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx decoder prefill: tokens %s must be I32 [B = %lld, T >= 1]",
                           ox_shape_str(tokens, b1), (long long)B);
    const int64_t T = tokens->shape[1];
    if (mode && (ox_check_i32(ctx, "oryx decoder prefill (mode map)", mode) ||
                 !((mode->ndim == 2 && mode->shape[0] == B && mode->shape[1] == T) ||
                   (mode->ndim == 3 && mode->shape[0] == L && mode->shape[1] == B && mode->shape[2] == T))))
        return ctx->status ? ctx->status
                           : ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx decoder prefill: mode map %s must be [B, T] or "
                                         "[L, B, T] for tokens %s", ox_shape_str(mode, b1), ox_shape_str(tokens, b2));
    if (all_logits && (all_logits->dtype != OX_F32 || all_logits->ndim != 3 || all_logits->shape[0] != B ||
                       all_logits->shape[1] != T || all_logits->shape[2] != V))
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx decoder prefill: all_logits %s must be F32 [%lld, %lld, %lld]",
                           ox_shape_str(all_logits, b1), (long long)B, (long long)T, (long long)V);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    if (d->pos == 0) {      /* from the empty state: the parallel forward */
        int prev = ox_ag_set_grad_enabled(ctx, 0);
        ox_tensor *z = NULL;
        int needs = 0;
        for (int64_t l = 0; l < L; l++)
            needs |= d->model->cfg.kinds[l] == OX_ORYX_KIND_ORYX;
        if (needs && !mode)
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx decoder prefill: the model has oryx layers, so it needs a mode map");
        else if (!mode || !check_prefill(ctx, d, mode, T))
            z = ox_oryx_forward_prefill(ctx, d->model, tokens, mode, d->layers);
        if (z) {
            ox_tensor_copy(ctx, ox_tensor_view_reshape(ctx, d->logits, OX_DIMS(B, 1, V)),
                           ox_tensor_view_narrow(ctx, z, 1, T - 1, 1));
            if (all_logits)
                ox_tensor_copy(ctx, all_logits, z);
            d->pos = T;
        }
        ox_ag_set_grad_enabled(ctx, prev);
        ox_arena_rewind(&ctx->arena, mark);
        return ctx->status;
    }
    int64_t nm = mode ? (mode->ndim == 3 ? L * B : B) : 0;
    int32_t *tok = ox_ctx_alloc(ctx, (size_t)B * sizeof(int32_t));
    int32_t *md = ox_ctx_alloc(ctx, (size_t)(nm + 1) * sizeof(int32_t));
    for (int64_t t = 0; t < T && tok && md && !ctx->status; t++) {
        for (int64_t b = 0; b < B; b++)
            tok[b] = ox_tensor_i32(tokens)[b * tokens->stride[0] + t * tokens->stride[1]];
        for (int64_t i = 0; i < nm; i++) {
            const int32_t *mp = ox_tensor_i32(mode);
            md[i] = mode->ndim == 2 ? mp[i * mode->stride[0] + t * mode->stride[1]]
                                    : mp[(i / B) * mode->stride[0] + (i % B) * mode->stride[1] + t * mode->stride[2]];
        }
        if (ox_oryx_decoder_step(ctx, d, tok, mode ? md : NULL, nm))
            break;
        if (all_logits) {
            float *dst = ox_tensor_f32(all_logits);
            const float *src = ox_tensor_f32(d->logits);
            for (int64_t b = 0; b < B; b++)
                for (int64_t v = 0; v < V; v++)
                    dst[b * all_logits->stride[0] + t * all_logits->stride[1] + v * all_logits->stride[2]] =
                        src[b * V + v];
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    return ctx->status;
}

/* ---- sampling ------------------------------------------------------------------------------------- */


ox_status ox_oryx_sample_generate(ox_ctx *ctx, ox_oryx_decoder *d, const ox_tensor *prompt,
                                  const ox_tensor *prompt_mode, const int32_t *gen_modes, int64_t n_gen_modes,
                                  int64_t max_new, const ox_nn_sampler *s, ox_rng *rng,
                                  ox_oryx_sample_callback cb, void *user, int32_t *out, int64_t *n_out)
{
    if (n_out)
        *n_out = 0;
    if (ctx->status)
        return ctx->status;
    if (!d || !d->model || !s || max_new < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx generate: need an initialised decoder, a sampler and max_new >= 0");
    if (prompt && ox_oryx_decoder_prefill(ctx, d, prompt, prompt_mode, NULL))
        return ctx->status;
    if (d->pos == 0)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx generate: no prompt and an empty decoder: nothing to sample from");
    const int64_t B = d->B, V = d->model->cfg.vocab;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int32_t *tok = ox_ctx_alloc(ctx, (size_t)B * sizeof(int32_t));
    for (int64_t i = 0; i < max_new && tok && !ctx->status; i++) {
        for (int64_t b = 0; b < B; b++)
            tok[b] = ox_nn_sample(ctx, ox_tensor_f32(d->logits) + b * V, V, s, rng);
        if (ctx->status)
            break;
        if (out)
            memcpy(out + i * B, tok, (size_t)B * sizeof(int32_t));
        if (n_out)
            *n_out = i + 1;
        if ((cb && cb(user, i, tok, B)) || i == max_new - 1)
            break;
        ox_oryx_decoder_step(ctx, d, tok, gen_modes, n_gen_modes);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return ctx->status;
}
