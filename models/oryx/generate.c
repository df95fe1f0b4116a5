/* generate.c - Oryx decoding (see generate.h): decode state, one-token step with per-(layer, sequence)
 * modes (dot-product projections, arena temporaries rewound per step), parallel prefill from the empty state
 * (stepping when a sequence continues), KV-cache dropping, sampling and the generate loop (MODELS.md 7.4). */
#include "models/oryx/generate.h"

#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "nn/gated_rmsnorm.h"
#include "nn/gdn.h"
#include "nn/mixer.h"
#include "nn/l2norm.h"
#include "nn/linear.h"
#include "nn/rope.h"
#include "nn/ssd.h"
#include "nn/swiglu.h"
#include "tensor/iter.h"

#include <math.h>
#include <string.h>

static uint64_t tensor_bytes(const ox_tensor *t) { return t ? (uint64_t)ox_tensor_numel(t) * 4u : 0u; }

void ox_oryx_decoder_free(ox_oryx_decoder *d)
{
    if (!d)
        return;
    for (int l = 0; l < OX_ORYX_MAX_LAYERS; l++) {
        ox_oryx_decoder_layer *L = &d->layers[l];
        ox_tensor_free(L->ring_k);
        ox_tensor_free(L->ring_v);
        ox_tensor_free(L->ring_q);
        ox_tensor_free(L->state);
        ox_nn_kv_cache_free(&L->kv);
    }
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
    const int64_t H = c->n_heads, dk = c->d_k, dv = c->d_v;
    d->model = m;
    d->B = B;
    d->cap = cap;
    d->logits = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, c->vocab));
    for (int64_t l = 0; l < c->n_layers && !ctx->status; l++) {
        ox_oryx_decoder_layer *L = &d->layers[l];
        unsigned cores = ox_oryx_layer_cores(c, l);
        L->has_attn = (cores & OX_NN_CORE_ATTN) != 0;
        L->has_lin = (cores & (OX_NN_CORE_GDN | OX_NN_CORE_MAMBA2)) != 0;
        L->ring_k = ox_nn_shortconv_state_new(ctx, B, H * dk);
        L->ring_v = ox_nn_shortconv_state_new(ctx, B, H * dv);
        if (L->has_lin) {
            L->ring_q = ox_nn_shortconv_state_new(ctx, B, H * dk);
            L->state = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, H, dv, dk));
        }
        if (L->has_attn && !(L->has_lin && (flags & OX_ORYX_DECODE_NO_KV)))
            ox_nn_kv_cache_init(ctx, &L->kv, B, H, cap, dk, dv);
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
    for (int64_t l = 0; l < d->model->cfg.n_layers; l++) {
        ox_oryx_decoder_layer *L = &d->layers[l];
        ox_tensor *z[4] = { L->ring_k, L->ring_v, L->ring_q, L->state };
        for (int i = 0; i < 4; i++)
            if (z[i])
                memset(ox_tensor_f32(z[i]), 0, (size_t)tensor_bytes(z[i]));
        if (L->kv.k)
            ox_nn_kv_cache_clear(&L->kv);
    }
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
    for (int64_t l = 0; l < d->model->cfg.n_layers; l++) {
        const ox_oryx_decoder_layer *L = &d->layers[l];
        n += tensor_bytes(L->ring_k) + tensor_bytes(L->ring_v) + tensor_bytes(L->ring_q) + tensor_bytes(L->state);
        n += tensor_bytes(L->kv.k) + tensor_bytes(L->kv.v) + tensor_bytes(L->kv.scores);
    }
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

/* ---- the step's projections ------------------------------------------------------------------------- */

/* y = x W^T for the few rows of a decode step: x [B, 1, in], W [out, in] -> [B, 1, out] (arena). One dot
 * product per output (a GEMM call with one row spends most of its time packing W); outputs are split over
 * threads only when the product is large, each written by one thread. Falls back to ox_nn_linear for
 * strided operands. */
static ox_tensor *proj(ox_ctx *ctx, ox_tensor *x, ox_tensor *w)
{
    if (!x || !w || ctx->status)
        return NULL;
    if (w->ndim != 2 || w->stride[1] != 1 || x->ndim != 3 || !ox_tensor_is_contiguous(x) ||
        x->shape[2] != w->shape[1] || x->dtype != OX_F32)
        return ox_nn_linear(ctx, x, w);
    const int64_t B = x->shape[0] * x->shape[1], in = w->shape[1], out = w->shape[0], ws = w->stride[0];
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, OX_DIMS(x->shape[0], x->shape[1], out));
    if (!y)
        return NULL;
    const float *xd = ox_tensor_f32(x), *wd = ox_tensor_f32(w);
    float *yd = ox_tensor_f32(y);
    int nt = B * out * in >= 16 * OX_PARALLEL_MIN ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t o = 0; o < out; o++)
        for (int64_t b = 0; b < B; b++)
            yd[b * out + o] = lanes_dot(xd + b * in, wd + o * ws, in);
    return y;
}

/* [n0, n1] view of a contiguous tensor */
static ox_tensor *as2(ox_ctx *ctx, ox_tensor *t, int64_t n0, int64_t n1)
{
    return t ? ox_tensor_view_reshape(ctx, t, OX_DIMS(n0, n1)) : NULL;
}

static ox_tensor *as3(ox_ctx *ctx, ox_tensor *t, int64_t n0, int64_t n1, int64_t n2)
{
    return t ? ox_tensor_view_reshape(ctx, t, OX_DIMS(n0, n1, n2)) : NULL;
}

/* one conv step: xp [B, 1, C] -> act(conv) [B, C] through ring */
static ox_tensor *conv_step(ox_ctx *ctx, ox_tensor *xp, ox_tensor *w, ox_nn_act act, ox_tensor *ring)
{
    if (!xp)
        return NULL;
    int64_t B = xp->shape[0], C = xp->shape[2];
    ox_tensor *out = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, C));
    if (!out || ox_nn_shortconv_step(ctx, as2(ctx, xp, B, C), w, act, ring, out))
        return NULL;
    return out;
}

/* The linear core's output o_lin [B, H, dv] after advancing the state with this token (MODELS 5.1-5.2 for
 * GDN, 6.1-6.2 for Mamba-2, with the Dskip term). Same ops as the parallel mixer, one row. */
static ox_tensor *lin_step(ox_ctx *ctx, const ox_nn_mixer *mx, ox_oryx_decoder_layer *L, ox_tensor *x,
                           ox_tensor *k, ox_tensor *v)
{
    const ox_nn_mixer_config *c = &mx->cfg;
    const int64_t B = x->shape[0], H = c->n_heads, dk = c->d_k, dv = c->d_v;
    int gdn = (c->cores & OX_NN_CORE_GDN) != 0;
    ox_tensor *ql = conv_step(ctx, proj(ctx, x, mx->lin_q), mx->lin_q_conv,
                              gdn ? OX_NN_ACT_SILU : OX_NN_ACT_NONE, L->ring_q);
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dv));
    if (!ql || !o)
        return NULL;
    if (gdn) {
        ox_tensor *qh = ox_ag_scale(ctx, ox_nn_l2norm(ctx, as3(ctx, ql, B, H, dk)), 1.0 / sqrt((double)dk));
        ox_tensor *kh = ox_nn_l2norm(ctx, as3(ctx, k, B, H, dk));
        ox_tensor *beta = ox_ag_sigmoid(ctx, proj(ctx, x, mx->gdn_beta));
        ox_tensor *za = ox_ag_add(ctx, proj(ctx, x, mx->gdn_alpha), mx->dt_bias);
        ox_tensor *a = ox_ag_mul(ctx, ox_ag_neg(ctx, ox_ag_exp(ctx, mx->A_log)), ox_ag_softplus(ctx, za));
        if (!qh || !kh || !beta || !a ||
            ox_nn_gdn_step(ctx, qh, kh, as3(ctx, v, B, H, dv), as2(ctx, beta, B, H), as2(ctx, a, B, H), L->state, o))
            return NULL;
        return o;
    }
    ox_tensor *dt = ox_ag_softplus(ctx, ox_ag_add(ctx, proj(ctx, x, mx->m2_dt), mx->dt_bias));
    ox_tensor *a = ox_ag_mul(ctx, dt, ox_ag_neg(ctx, ox_ag_exp(ctx, mx->A_log)));
    if (!dt || !a ||
        ox_nn_ssd_step(ctx, as3(ctx, ql, B, H, dk), as3(ctx, k, B, H, dk), as3(ctx, v, B, H, dv), as2(ctx, dt, B, H),
                       as2(ctx, a, B, H), L->state, o))
        return NULL;
    /* o = h Cq + Dskip v, as the parallel mixer: y + v * D */
    float *od = ox_tensor_f32(o);
    const float *vd = ox_tensor_f32(v), *Dd = ox_tensor_f32(mx->m2_D);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            float dh = Dd[h * mx->m2_D->stride[0]];
            float *orow = od + (b * H + h) * dv;
            const float *vrow = vd + (b * H + h) * dv;
            for (int64_t i = 0; i < dv; i++)
                orow[i] = orow[i] + vrow[i] * dh;
        }
    return o;
}

/* The attention part of one layer's step: appends (RoPE(k, pos), v) to the cache (when kept) and returns the
 * attention output [B, H, dv] of the sequences whose mode is ATTN (other rows unspecified), or a non-NULL
 * dummy when no sequence uses ATTN. */
static ox_tensor *attn_step(ox_ctx *ctx, const ox_nn_mixer *mx, ox_oryx_decoder_layer *L, ox_tensor *x,
                            ox_tensor *k, ox_tensor *v, const int *md, int64_t pos)
{
    const ox_nn_mixer_config *c = &mx->cfg;
    const int64_t B = x->shape[0], H = c->n_heads, dk = c->d_k, dv = c->d_v;
    int64_t n_attn = 0;
    for (int64_t b = 0; b < B; b++)
        n_attn += md[b] == OX_NN_ATTN;
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dv));
    if (!o || !L->kv.k)        /* dropped cache: check_step made sure no sequence asks for ATTN */
        return o;
    ox_tensor *kr = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dk));
    ox_tensor *v3 = as3(ctx, v, B, H, dv);
    if (!kr || !v3)
        return NULL;
    memcpy(ox_tensor_f32(kr), ox_tensor_f32(k), (size_t)(B * H * dk) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        ox_nn_rope_rows(ox_tensor_f32(kr) + b * H * dk, H, dk, pos);
    if (n_attn == 0)
        return ox_nn_attention_step(ctx, &L->kv, NULL, kr, v3, NULL) ? NULL : o;
    ox_tensor *q = as3(ctx, proj(ctx, x, mx->attn_q), B, H, dk);    /* contiguous, rotated in place */
    if (!q)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        ox_nn_rope_rows(ox_tensor_f32(q) + b * H * dk, H, dk, pos);
    if (n_attn == B)
        return ox_nn_attention_step(ctx, &L->kv, q, kr, v3, o) ? NULL : o;
    /* mixed batch: per sequence, a one-row view of the cache; attend only where ATTN */
    const int64_t t = L->kv.len;
    for (int64_t b = 0; b < B; b++) {
        ox_nn_kv_cache sub = L->kv;
        sub.B = 1;
        sub.len = t;
        sub.k = ox_tensor_view_narrow(ctx, L->kv.k, 0, b, 1);
        sub.v = ox_tensor_view_narrow(ctx, L->kv.v, 0, b, 1);
        sub.scores = ox_tensor_view_narrow(ctx, L->kv.scores, 0, b, 1);
        int a = md[b] == OX_NN_ATTN;
        if (!sub.k || !sub.v || !sub.scores ||
            ox_nn_attention_step(ctx, &sub, a ? ox_tensor_view_narrow(ctx, q, 0, b, 1) : NULL,
                                 ox_tensor_view_narrow(ctx, kr, 0, b, 1), ox_tensor_view_narrow(ctx, v3, 0, b, 1),
                                 a ? ox_tensor_view_narrow(ctx, o, 0, b, 1) : NULL))
            return NULL;
    }
    L->kv.len = t + 1;
    return o;
}

/* h [B, 1, D] -> h + Mixer_l(RMSNorm(h)) for one token (MODELS 7.4) */
static ox_tensor *mixer_step(ox_ctx *ctx, ox_oryx_decoder *d, int64_t l, ox_tensor *x, const int *md)
{
    const ox_nn_mixer *mx = &d->model->layers[l].mixer;
    ox_oryx_decoder_layer *L = &d->layers[l];
    const ox_nn_mixer_config *c = &mx->cfg;
    const int64_t B = d->B, H = c->n_heads, dv = c->d_v;
    ox_tensor *k = conv_step(ctx, proj(ctx, x, mx->k_proj), mx->k_conv, c->conv_act, L->ring_k);
    ox_tensor *v = conv_step(ctx, proj(ctx, x, mx->v_proj), mx->v_conv, c->conv_act, L->ring_v);
    ox_tensor *g = proj(ctx, x, mx->g_proj);
    if (!k || !v || !g)
        return NULL;
    ox_tensor *o_attn = L->has_attn ? attn_step(ctx, mx, L, x, k, v, md, d->pos) : NULL;
    ox_tensor *o_lin = L->has_lin ? lin_step(ctx, mx, L, x, k, v) : NULL;
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, 1, H * dv));
    if (ctx->status || !o)
        return NULL;
    for (int64_t b = 0; b < B; b++) {       /* per-sequence readout (MODELS 7.2) */
        const ox_tensor *src = md[b] == OX_NN_ATTN ? o_attn : o_lin;
        memcpy(ox_tensor_f32(o) + b * H * dv, ox_tensor_f32(src) + b * H * dv, (size_t)(H * dv) * sizeof(float));
    }
    return proj(ctx, ox_nn_gated_rmsnorm(ctx, o, g, mx->norm, dv), mx->o_proj);
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
    int *md = ox_ctx_alloc(ctx, (size_t)B * sizeof(int));
    ox_tensor *tok = ox_tensor_from_buffer(ctx, OX_I32, OX_DIMS(B, 1), (void *)tokens);
    ox_tensor *h = md && tok ? ox_nn_embedding_forward(ctx, &m->embed, tok) : NULL;     /* [B, 1, D] */
    for (int64_t l = 0; l < m->cfg.n_layers && h; l++) {
        const ox_oryx_layer *Ly = &m->layers[l];
        for (int64_t b = 0; b < B; b++)
            md[b] = mode_of(d, l, b, modes, n_modes);
        h = ox_ag_add(ctx, h, mixer_step(ctx, d, l, ox_nn_rmsnorm_forward(ctx, &Ly->norm1, h), md));
        ox_tensor *xn = ox_nn_rmsnorm_forward(ctx, &Ly->norm2, h);        /* SwiGLU (MODELS 2) */
        ox_tensor *u = ox_nn_silu_mul(ctx, proj(ctx, xn, Ly->mlp.gate.weight), proj(ctx, xn, Ly->mlp.up.weight));
        h = ox_ag_add(ctx, h, proj(ctx, u, Ly->mlp.down.weight));
    }
    ox_tensor *logits = proj(ctx, ox_nn_rmsnorm_forward(ctx, &m->norm_f, h), m->embed.weight);   /* tied head */
    if (m->logit_bias)                                                  /* + s * lm_head.bias (model.h) */
        logits = ox_ag_add(ctx, logits, ox_ag_scale(ctx, m->logit_bias, m->cfg.logit_bias_scale));
    if (logits && !ctx->status) {
        memcpy(ox_tensor_f32(d->logits), ox_tensor_f32(logits), (size_t)(B * V) * sizeof(float));
        d->pos++;
    }
    ox_ag_set_grad_enabled(ctx, prev);
    ox_arena_rewind(&ctx->arena, mark);
    return ctx->status;
}

/* ---- parallel prefill ----------------------------------------------------------------------------------- */

/* Fills layer L's decode state from the prompt's normalised input x [B, T, D], the trunk's k, v [B, T, H*dk],
 * [B, T, H*dv] (after conv and activation) and the linear core's final state sT (NULL without a linear core),
 * all from the parallel forward: the last three pre-conv rows of k, v and the linear query, the rotated keys
 * and values, and the state. */
static ox_status fill_layer_state(ox_ctx *ctx, const ox_nn_mixer *mx, ox_oryx_decoder_layer *L, ox_tensor *x,
                                  ox_tensor *k, ox_tensor *v, ox_tensor *sT)
{
    const ox_nn_mixer_config *c = &mx->cfg;
    const int64_t B = x->shape[0], T = x->shape[1], H = c->n_heads, dk = c->d_k, dv = c->d_v;
    int64_t n3 = T < OX_NN_CONV_K - 1 ? T : OX_NN_CONV_K - 1;
    ox_tensor *xl = ox_tensor_view_narrow(ctx, x, 1, T - n3, n3);           /* the last rows of the prompt */
    ox_nn_shortconv_prefill(ctx, ox_nn_linear(ctx, xl, mx->k_proj), mx->k_conv, c->conv_act, L->ring_k);
    ox_nn_shortconv_prefill(ctx, ox_nn_linear(ctx, xl, mx->v_proj), mx->v_conv, c->conv_act, L->ring_v);
    ox_tensor *k4 = ox_tensor_view_reshape(ctx, k, OX_DIMS(B, T, H, dk));
    ox_tensor *v4 = ox_tensor_view_reshape(ctx, v, OX_DIMS(B, T, H, dv));
    if (L->kv.k && !ctx->status)
        ox_nn_kv_cache_append(ctx, &L->kv, ox_nn_rope(ctx, k4, 0), v4);
    if (!L->has_lin || ctx->status)
        return ctx->status;
    int gdn = (c->cores & OX_NN_CORE_GDN) != 0;
    ox_nn_shortconv_prefill(ctx, ox_nn_linear(ctx, xl, mx->lin_q), mx->lin_q_conv,
                            gdn ? OX_NN_ACT_SILU : OX_NN_ACT_NONE, L->ring_q);
    if (!sT)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx decoder prefill: the mixer handed back no linear state");
    return ox_tensor_copy(ctx, L->state, sT);
}

/* The parallel forward of the model on a prompt from the empty state (MODELS 7.4 prefill), filling every
 * layer's state; logits [B, T, V] (arena) */
static ox_tensor *parallel_prefill(ox_ctx *ctx, ox_oryx_decoder *d, const ox_tensor *tokens, const ox_tensor *mode)
{
    const ox_oryx_model *m = d->model;
    const ox_oryx_config *c = &m->cfg;
    ox_tensor *h = ox_nn_embedding_forward(ctx, &m->embed, tokens);               /* [B, T, D] */
    for (int64_t l = 0; l < c->n_layers && h; l++) {
        const ox_oryx_layer *Ly = &m->layers[l];
        const ox_tensor *ml = NULL;
        if (c->kinds[l] == OX_ORYX_KIND_ORYX)
            ml = mode->ndim == 3 ? ox_tensor_view_select(ctx, mode, 0, l) : mode;
        ox_nn_mixer_trace tr;
        ox_tensor *x = ox_nn_rmsnorm_forward(ctx, &Ly->norm1, h), *sT = NULL;
        ox_tensor *y = ox_nn_mixer_forward_state(ctx, &Ly->mixer, x, ml, &tr, d->layers[l].has_lin ? &sT : NULL);
        if (!y || fill_layer_state(ctx, &Ly->mixer, &d->layers[l], x, tr.k, tr.v, sT))
            return NULL;
        h = ox_ag_add(ctx, h, y);
        h = ox_ag_add(ctx, h, ox_nn_swiglu_forward(ctx, &Ly->mlp, ox_nn_rmsnorm_forward(ctx, &Ly->norm2, h)));
    }
    ox_tensor *logits = ox_oryx_head(ctx, m, h);
    return ctx->status ? NULL : logits;
}

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
            z = parallel_prefill(ctx, d, tokens, mode);
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
