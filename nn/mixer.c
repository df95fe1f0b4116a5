/* mixer.c - the mixer layer: shared trunk + attention / GDN / Mamba-2 cores (see mixer.h): parameters, the
 * pieces both forms share (gate formulas, GDN's normalised query and key, Mamba-2's skip, the output), the
 * parallel form (every step a differentiable op, so the layer's backward is the tape's; with a decode state
 * it is the prefill) and the one-token step form with its decode state. */
#include "nn/mixer.h"
#include "autograd/ops.h"
#include "nn/attention.h"
#include "nn/gated_rmsnorm.h"
#include "nn/gdn.h"
#include "nn/l2norm.h"
#include "nn/linear.h"
#include "nn/linear_step.h"
#include "nn/rope.h"
#include "nn/ssd.h"
#include "nn/util.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int has(const ox_nn_mixer *m, ox_nn_core c) { return (m->cfg.cores & c) != 0; }
static int linear_core(unsigned cores) { return cores & (OX_NN_CORE_GDN | OX_NN_CORE_MAMBA2); }

static ox_status check_config(ox_ctx *ctx, const ox_nn_mixer_config *c)
{
    unsigned lin = linear_core(c->cores);
    if (c->cores == 0 || lin == (OX_NN_CORE_GDN | OX_NN_CORE_MAMBA2) || (c->cores & ~7u))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: cores must be one of attention, GDN, Mamba-2, or attention "
                                            "plus one linear core (got mask %u)", c->cores);
    if (c->d_model <= 0 || c->n_heads <= 0 || c->d_k <= 0 || c->d_v <= 0 || c->d_k % 2)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: sizes must be positive and d_k even (D=%lld H=%lld dk=%lld "
                           "dv=%lld)", (long long)c->d_model, (long long)c->n_heads, (long long)c->d_k,
                           (long long)c->d_v);
    if (c->n_layers < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: n_layers = %d must be >= 1 (it sets the output projection's "
                           "initial scale 0.02 / sqrt(2 n_layers))", c->n_layers);
    return OX_OK;
}

/* "<prefix>.<suffix>" looked up in ps (an error if it is missing) */
static ox_tensor *lookup(ox_ctx *ctx, const ox_nn_params *ps, const char *prefix, const char *suffix)
{
    char name[OX_NN_NAME_MAX];
    int len = snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    if (len < 0 || len >= (int)sizeof name) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: parameter name '%s.%s' is too long", prefix, suffix);
        return NULL;
    }
    ox_tensor *t = ox_nn_params_get(ps, name);
    if (!t && !ctx->status)
        ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: parameter '%s' is missing", name);
    return t;
}

/* The parameter table: one row per tensor, so init and bind cannot drift apart. */
struct row {
    const char *suffix;
    unsigned cores;         /* present if the layer has any of these cores (0 = always) */
    int rows, cols;         /* symbolic sizes, see dim() */
    ox_nn_decay decay;
    size_t field;           /* offset of the tensor pointer in ox_nn_mixer */
};

enum { S_D = 1, S_HK, S_HV, S_H, S_4, S_NONE };

static int64_t dim(const ox_nn_mixer_config *c, int s)
{
    switch (s) {
    case S_D: return c->d_model;
    case S_HK: return c->n_heads * c->d_k;
    case S_HV: return c->n_heads * c->d_v;
    case S_H: return c->n_heads;
    case S_4: return 4;
    }
    return 0;
}

#define F(x) offsetof(ox_nn_mixer, x)
static const struct row table[] = {
    { "k_proj.weight", 0, S_HK, S_D, OX_NN_DECAY, F(k_proj) },
    { "v_proj.weight", 0, S_HV, S_D, OX_NN_DECAY, F(v_proj) },
    { "g_proj.weight", 0, S_HV, S_D, OX_NN_DECAY, F(g_proj) },
    { "o_proj.weight", 0, S_D, S_HV, OX_NN_DECAY, F(o_proj) },
    { "k_conv.weight", 0, S_HK, S_4, OX_NN_DECAY, F(k_conv) },
    { "v_conv.weight", 0, S_HV, S_4, OX_NN_DECAY, F(v_conv) },
    { "norm.weight", 0, S_HV, S_NONE, OX_NN_NO_DECAY, F(norm) },
    { "attn.q_proj.weight", OX_NN_CORE_ATTN, S_HK, S_D, OX_NN_DECAY, F(attn_q) },
    { "gdn.q_proj.weight", OX_NN_CORE_GDN, S_HK, S_D, OX_NN_DECAY, F(lin_q) },
    { "gdn.q_conv.weight", OX_NN_CORE_GDN, S_HK, S_4, OX_NN_DECAY, F(lin_q_conv) },
    { "gdn.beta_proj.weight", OX_NN_CORE_GDN, S_H, S_D, OX_NN_DECAY, F(gdn_beta) },
    { "gdn.alpha_proj.weight", OX_NN_CORE_GDN, S_H, S_D, OX_NN_DECAY, F(gdn_alpha) },
    { "gdn.A_log", OX_NN_CORE_GDN, S_H, S_NONE, OX_NN_NO_DECAY, F(A_log) },
    { "gdn.dt_bias", OX_NN_CORE_GDN, S_H, S_NONE, OX_NN_NO_DECAY, F(dt_bias) },
    { "mamba2.q_proj.weight", OX_NN_CORE_MAMBA2, S_HK, S_D, OX_NN_DECAY, F(lin_q) },
    { "mamba2.q_conv.weight", OX_NN_CORE_MAMBA2, S_HK, S_4, OX_NN_DECAY, F(lin_q_conv) },
    { "mamba2.dt_proj.weight", OX_NN_CORE_MAMBA2, S_H, S_D, OX_NN_DECAY, F(m2_dt) },
    { "mamba2.A_log", OX_NN_CORE_MAMBA2, S_H, S_NONE, OX_NN_NO_DECAY, F(A_log) },
    { "mamba2.dt_bias", OX_NN_CORE_MAMBA2, S_H, S_NONE, OX_NN_NO_DECAY, F(dt_bias) },
    { "mamba2.D", OX_NN_CORE_MAMBA2, S_H, S_NONE, OX_NN_NO_DECAY, F(m2_D) },
};
#undef F

static ox_tensor **slot(ox_nn_mixer *m, const struct row *r) { return (ox_tensor **)((char *)m + r->field); }

static ox_status init_values(ox_ctx *ctx, ox_nn_mixer *m, ox_rng *rng)
{
    const ox_nn_mixer_config *c = &m->cfg;
    double std = 0.02, std_out = 0.02 / sqrt(2.0 * c->n_layers);
    ox_tensor *normal[] = { m->k_proj, m->v_proj, m->g_proj, m->attn_q, m->lin_q, m->gdn_beta, m->gdn_alpha, m->m2_dt };
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++)
        if (normal[i])
            ox_tensor_fill_normal(ctx, normal[i], rng, 0.0, std);
    ox_tensor_fill_normal(ctx, m->o_proj, rng, 0.0, std_out);
    ox_tensor *conv[] = { m->k_conv, m->v_conv, m->lin_q_conv };
    for (size_t i = 0; i < 3; i++)
        if (conv[i])
            ox_tensor_fill_uniform(ctx, conv[i], rng, -0.5, 0.5);
    ox_tensor_fill(ctx, m->norm, 1.0);
    if (m->A_log) {     /* A_log = log(U[1, 16]); dt_bias = softplus^-1(dt), log dt ~ U[log 1e-3, log 1e-1] */
        for (int64_t h = 0; h < c->n_heads; h++) {
            ox_tensor_f32(m->A_log)[h] = (float)log(1.0 + 15.0 * ox_rng_uniform(rng));
            double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * ox_rng_uniform(rng));
            ox_tensor_f32(m->dt_bias)[h] = (float)(dt + log(-expm1(-dt)));
        }
    }
    if (m->m2_D)
        ox_tensor_fill(ctx, m->m2_D, 1.0);
    return ctx->status;
}

static ox_status setup(ox_ctx *ctx, ox_nn_params *ps_add, const ox_nn_params *ps_get, ox_nn_mixer *m,
                       const char *prefix, const ox_nn_mixer_config *cfg)
{
    if (ctx->status)
        return ctx->status;
    if (check_config(ctx, cfg))
        return ctx->status;
    *m = (ox_nn_mixer){ 0 };
    m->cfg = *cfg;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct row *r = &table[i];
        if (r->cores && !(r->cores & cfg->cores))
            continue;
        int64_t shape[2] = { dim(cfg, r->rows), dim(cfg, r->cols) };
        int nd = r->cols == S_NONE ? 1 : 2;
        ox_tensor *t = ps_add ? ox_nn_param_new(ctx, ps_add, prefix, r->suffix, nd, shape, r->decay)
                              : lookup(ctx, ps_get, prefix, r->suffix);
        if (!t)
            return ctx->status;
        if (t->ndim != nd || t->shape[0] != shape[0] || (nd == 2 && t->shape[1] != shape[1])) {
            char b[OX_SHAPE_BUF];
            return ox_ctx_fail(ctx, OX_ERR_SHAPE, "mixer: parameter %s.%s has shape %s, expected [%lld%s%lld]",
                               prefix, r->suffix, ox_shape_str(t, b), (long long)shape[0], nd == 2 ? ", " : "",
                               nd == 2 ? (long long)shape[1] : 0LL);
        }
        *slot(m, r) = t;
    }
    return OX_OK;
}

ox_status ox_nn_mixer_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_mixer *m, const char *prefix,
                           const ox_nn_mixer_config *cfg, ox_rng *rng)
{
    if (setup(ctx, ps, NULL, m, prefix, cfg))
        return ctx->status;
    return init_values(ctx, m, rng);
}

ox_status ox_nn_mixer_bind(ox_ctx *ctx, const ox_nn_params *ps, ox_nn_mixer *m, const char *prefix,
                           const ox_nn_mixer_config *cfg)
{
    return setup(ctx, NULL, ps, m, prefix, cfg);
}

/* ---- the pieces both forms share: gate formulas, normalised GDN query/key, Mamba-2 skip, output ---------- */

/* GDN gates (MODELS 5.1), [..., H]: beta = sigmoid(x Wbeta^T), a = -exp(A_log) * softplus(x Walpha^T + dt_bias)
 * (A_log, dt_bias [H] broadcast) */
static void gdn_gates(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_proj_fn proj, ox_tensor *x, ox_tensor **beta,
                      ox_tensor **a)
{
    *beta = ox_ag_sigmoid(ctx, proj(ctx, x, m->gdn_beta));
    ox_tensor *za = ox_ag_add(ctx, proj(ctx, x, m->gdn_alpha), m->dt_bias);
    *a = ox_ag_mul(ctx, ox_ag_neg(ctx, ox_ag_exp(ctx, m->A_log)), ox_ag_softplus(ctx, za));
}

/* GDN's query and key (MODELS 5.1), q, k [..., H, dk]: q / |q| / sqrt(dk), k / |k| */
static void gdn_qk(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *q, ox_tensor *k, ox_tensor **qh, ox_tensor **kh)
{
    *qh = ox_ag_scale(ctx, ox_nn_l2norm(ctx, q), 1.0 / sqrt((double)m->cfg.d_k));
    *kh = ox_nn_l2norm(ctx, k);
}

/* Mamba-2 gates (MODELS 6.1), [..., H]: dt = softplus(x Wdt^T + dt_bias), a = dt * A with A = -exp(A_log) */
static void m2_gates(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_proj_fn proj, ox_tensor *x, ox_tensor **dt,
                     ox_tensor **a)
{
    *dt = ox_ag_softplus(ctx, ox_ag_add(ctx, proj(ctx, x, m->m2_dt), m->dt_bias));
    *a = ox_ag_mul(ctx, *dt, ox_ag_neg(ctx, ox_ag_exp(ctx, m->A_log)));
}

/* Mamba-2's output with the D skip (MODELS 6.1): y + v * D, y, v [..., H, dv], D [H] as [H, 1] */
static ox_tensor *m2_skip(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *y, ox_tensor *v)
{
    return ox_ag_add(ctx, y, ox_ag_mul(ctx, v, ox_ag_reshape(ctx, m->m2_D, OX_DIMS(m->cfg.n_heads, 1))));
}

/* The linear query's conv activation: SiLU for GDN, none for Mamba-2 (MODELS 5.1, 6.1) */
static ox_nn_act lin_q_act(const ox_nn_mixer *m) { return has(m, OX_NN_CORE_GDN) ? OX_NN_ACT_SILU : OX_NN_ACT_NONE; }

/* y = GatedRMSNorm(o, g) Wo^T (MODELS 3.1): o, g [..., H*dv] -> [..., D] */
static ox_tensor *mixer_out(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_proj_fn proj, ox_tensor *o, ox_tensor *g)
{
    return proj(ctx, ox_nn_gated_rmsnorm(ctx, o, g, m->norm, m->cfg.d_v), m->o_proj);
}

/* ---- parallel form ----------------------------------------------------------------------------------- */

/* [B, T, H*d] -> [B, T, H, d] */
static ox_tensor *heads(ox_ctx *ctx, ox_tensor *x, int64_t h, int64_t d)
{
    if (!x)
        return NULL;
    return ox_ag_reshape(ctx, x, OX_DIMS(x->shape[0], x->shape[1], h, d));
}

static ox_tensor *flat(ox_ctx *ctx, ox_tensor *x)
{
    if (!x)
        return NULL;
    return ox_ag_reshape(ctx, ox_ag_contiguous(ctx, x), OX_DIMS(x->shape[0], x->shape[1], x->shape[2] * x->shape[3]));
}

/* act(conv(xp)); with a ring (prefill) the ring also receives xp's last three rows */
static ox_tensor *conv(ox_ctx *ctx, ox_tensor *xp, ox_tensor *w, ox_nn_act act, ox_tensor *ring)
{
    return ring ? ox_nn_shortconv_prefill(ctx, xp, w, act, ring) : ox_nn_shortconv(ctx, xp, w, act);
}

/* The GDN core's output o [B, T, H, dv] (MODELS 5.1); with st, fills its ring_q and linear state */
static ox_tensor *gdn_core(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, ox_tensor *k4, ox_tensor *v4,
                           ox_nn_mixer_trace *tr, ox_nn_mixer_state *st)
{
    const ox_nn_mixer_config *c = &m->cfg;
    ox_tensor *ql = conv(ctx, ox_nn_linear(ctx, x, m->lin_q), m->lin_q_conv, lin_q_act(m), st ? st->ring_q : NULL);
    ox_tensor *qh, *kh, *beta, *a, *o = NULL, *sT = NULL;
    gdn_qk(ctx, m, heads(ctx, ql, c->n_heads, c->d_k), k4, &qh, &kh);
    gdn_gates(ctx, m, ox_nn_linear, x, &beta, &a);
    if (ox_nn_gdn(ctx, qh, kh, v4, beta, a, NULL, &o, st ? &sT : NULL) || (st && ox_tensor_copy(ctx, st->state, sT)))
        return NULL;
    if (tr) {
        tr->q_lin = flat(ctx, qh);
        tr->k_norm = flat(ctx, kh);
        tr->beta = beta;
        tr->log_alpha = a;
    }
    return o;
}

/* The Mamba-2 core's output, D skip included (MODELS 6.1); with st, fills its ring_q and linear state */
static ox_tensor *mamba2_core(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, ox_tensor *k4, ox_tensor *v4,
                              ox_nn_mixer_trace *tr, ox_nn_mixer_state *st)
{
    const ox_nn_mixer_config *c = &m->cfg;
    ox_tensor *cq = conv(ctx, ox_nn_linear(ctx, x, m->lin_q), m->lin_q_conv, lin_q_act(m), st ? st->ring_q : NULL);
    ox_tensor *dt, *a, *y = NULL, *sT = NULL;
    m2_gates(ctx, m, ox_nn_linear, x, &dt, &a);
    if (ox_nn_ssd(ctx, heads(ctx, cq, c->n_heads, c->d_k), k4, v4, dt, a, NULL, &y, st ? &sT : NULL) ||
        (st && ox_tensor_copy(ctx, st->state, sT)))
        return NULL;
    if (tr) {
        tr->q_lin = cq;
        tr->dt = dt;
    }
    return m2_skip(ctx, m, y, v4);
}

/* q = x Wq^T [B, T, H*dk] computed only at the n_attn rows where rows is 1 (MODELS 4.2: exact, q has no
 * conv), zero elsewhere: gather those rows of x, project them, scatter the results into a zero tensor. */
static ox_tensor *attn_query_subset(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *rows,
                                    int64_t n_attn)
{
    int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2], HK = m->cfg.n_heads * m->cfg.d_k;
    ox_tensor *idx = ox_tensor_empty(ctx, OX_I32, OX_DIMS(n_attn));
    if (!idx)
        return NULL;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            if (ox_tensor_i32(rows)[b * rows->stride[0] + t * rows->stride[1]])
                ox_tensor_i32(idx)[n++] = (int32_t)(b * T + t);
    ox_tensor *x2 = ox_ag_reshape(ctx, ox_ag_contiguous(ctx, x), OX_DIMS(B * T, D));
    ox_tensor *qa = ox_nn_linear(ctx, ox_ag_gather_rows(ctx, x2, idx), m->attn_q);           /* [n_attn, H*dk] */
    ox_tensor *q = ox_ag_scatter_add_rows(ctx, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(B * T, HK)), idx, qa);
    return ox_ag_reshape(ctx, q, OX_DIMS(B, T, HK));
}

/* The attention core's output o [B, T, H, dv] over the rows selected by `rows` (NULL = all; MODELS 4);
 * n_attn = the number of selected rows; *kr receives the rotated keys [B, T, H, dk] */
static ox_tensor *attn_core(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, ox_tensor *k4, ox_tensor *v4,
                            const ox_tensor *rows, int64_t n_attn, ox_nn_mixer_trace *tr, ox_tensor **kr)
{
    const ox_nn_mixer_config *c = &m->cfg;
    ox_tensor *q = rows ? attn_query_subset(ctx, m, x, rows, n_attn) : ox_nn_linear(ctx, x, m->attn_q);
    ox_tensor *qr = ox_nn_rope(ctx, heads(ctx, q, c->n_heads, c->d_k), 0);
    *kr = ox_nn_rope(ctx, k4, 0);
    ox_tensor *o = ox_nn_attention(ctx, qr, *kr, v4, rows);
    if (tr) {
        tr->q_attn = q;
        tr->q_rot = flat(ctx, qr);
        tr->k_rot = flat(ctx, *kr);
    }
    return o;
}

/* F32 [B, T, 1, 1]: 1 where mode is LIN; counts the ATTN rows into *n_attn */
static ox_tensor *lin_mask(ox_ctx *ctx, const ox_tensor *mode, int64_t *n_attn)
{
    ox_tensor *mk = ox_tensor_empty(ctx, OX_F32, OX_DIMS(mode->shape[0], mode->shape[1], 1, 1));
    if (!mk)
        return NULL;
    int64_t n = 0;
    for (int64_t b = 0; b < mode->shape[0]; b++)
        for (int64_t t = 0; t < mode->shape[1]; t++) {
            int32_t v = ox_tensor_i32(mode)[b * mode->stride[0] + t * mode->stride[1]];
            if (v != OX_NN_LIN && v != OX_NN_ATTN) {
                ox_ctx_fail(ctx, OX_ERR_ARG, "mixer: mode[%lld, %lld] = %d; a mode is 0 (LIN) or 1 (ATTN)",
                            (long long)b, (long long)t, (int)v);
                return NULL;
            }
            n += v == OX_NN_ATTN;
            ox_tensor_f32(mk)[b * mode->shape[1] + t] = v == OX_NN_LIN ? 1.0f : 0.0f;
        }
    *n_attn = n;
    return mk;
}

/* The parallel form; with st (prefill) it also fills st as stepping would have */
static ox_tensor *forward(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *mode,
                          ox_nn_mixer_trace *tr, ox_nn_mixer_state *st)
{
    if (ctx->status || !x || !m)
        return NULL;
    const ox_nn_mixer_config *c = &m->cfg;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (x->ndim != 3 || x->shape[2] != c->d_model || x->dtype != OX_F32) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "mixer: input %s is not F32 [B, T, %lld]", ox_shape_str(x, b1),
                    (long long)c->d_model);
        return NULL;
    }
    int two = has(m, OX_NN_CORE_ATTN) && linear_core(c->cores);
    if (two && (!mode || mode->dtype != OX_I32 || mode->ndim != 2 || mode->shape[0] != x->shape[0] ||
                mode->shape[1] != x->shape[1])) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "mixer: a two-core layer needs an I32 mode map [B, T] matching x %s, got %s",
                    ox_shape_str(x, b1), mode ? ox_shape_str(mode, b2) : "none");
        return NULL;
    }
    int64_t H = c->n_heads, dk = c->d_k, dv = c->d_v, rows = x->shape[0] * x->shape[1];
    if (tr)
        *tr = (ox_nn_mixer_trace){ 0 };
    /* which cores some row reads: a core no row reads is skipped (its output would be multiplied by 0, and
     * its gradient is exactly 0 then), unless a prefill wants the linear state it advances */
    int use_attn = has(m, OX_NN_CORE_ATTN), use_lin = linear_core(c->cores) != 0;
    ox_tensor *mask = NULL;
    int64_t n_attn = use_attn ? rows : 0;
    if (two) {
        mask = lin_mask(ctx, mode, &n_attn);
        if (!mask)
            return NULL;
        use_attn = n_attn > 0;
        use_lin = n_attn < rows || st;
    }
    if (st && use_attn && !st->kv.k) {
        ox_ctx_fail(ctx, OX_ERR_STATE, "mixer prefill: %lld rows ask for ATTN but the state has no KV cache",
                    (long long)n_attn);
        return NULL;
    }
    /* trunk: k, v, g for every row */
    ox_tensor *k = conv(ctx, ox_nn_linear(ctx, x, m->k_proj), m->k_conv, c->conv_act, st ? st->ring_k : NULL);
    ox_tensor *v = conv(ctx, ox_nn_linear(ctx, x, m->v_proj), m->v_conv, c->conv_act, st ? st->ring_v : NULL);
    ox_tensor *g = ox_nn_linear(ctx, x, m->g_proj);
    ox_tensor *k4 = heads(ctx, k, H, dk), *v4 = heads(ctx, v, H, dv);

    ox_tensor *o_attn = NULL, *o_lin = NULL, *kr = NULL;
    if (use_attn)   /* all rows of a mixed map go to attention, which computes only the ATTN ones */
        o_attn = attn_core(ctx, m, x, k4, v4, n_attn < rows ? mode : NULL, n_attn, tr, &kr);
    if (st && st->kv.k) /* the cache takes attention's rotated keys (rotated here when attention did not run) */
        ox_nn_kv_cache_append(ctx, &st->kv, kr ? kr : ox_nn_rope(ctx, k4, 0), v4);
    if (use_lin && has(m, OX_NN_CORE_GDN))
        o_lin = gdn_core(ctx, m, x, k4, v4, tr, st);
    else if (use_lin && has(m, OX_NN_CORE_MAMBA2))
        o_lin = mamba2_core(ctx, m, x, k4, v4, tr, st);

    /* per-token choice (MODELS 7.2): attention rows are 0 where not computed, so o = o_attn + mask * o_lin */
    ox_tensor *o4 = !use_lin ? o_attn : !use_attn ? o_lin : ox_ag_add(ctx, o_attn, ox_ag_mul(ctx, o_lin, mask));
    ox_tensor *o = flat(ctx, o4);
    ox_tensor *y = mixer_out(ctx, m, ox_nn_linear, o, g);
    if (tr && y) {
        tr->k = k;
        tr->v = v;
        tr->g = g;
        tr->o = o;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_nn_mixer_forward(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *mode,
                               ox_nn_mixer_trace *tr)
{
    return forward(ctx, m, x, mode, tr, NULL);
}

ox_tensor *ox_nn_mixer_prefill(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *mode,
                               ox_nn_mixer_state *st)
{
    if (ctx->status)
        return NULL;
    if (!st || !st->ring_k) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "mixer prefill: the decode state is missing or not initialised");
        return NULL;
    }
    if (st->kv.k && st->kv.len) {
        ox_ctx_fail(ctx, OX_ERR_STATE, "mixer prefill: the state already holds %lld positions; a prefill starts "
                    "from the empty state (reset it, or step to continue)", (long long)st->kv.len);
        return NULL;
    }
    return forward(ctx, m, x, mode, NULL, st);
}

/* ---- step form ----------------------------------------------------------------------------------------- */

static uint64_t tensor_bytes(const ox_tensor *t) { return t ? (uint64_t)ox_tensor_numel(t) * 4u : 0u; }

void ox_nn_mixer_state_free(ox_nn_mixer_state *st)
{
    if (!st)
        return;
    ox_tensor_free(st->ring_k);
    ox_tensor_free(st->ring_v);
    ox_tensor_free(st->ring_q);
    ox_tensor_free(st->state);
    ox_nn_kv_cache_free(&st->kv);
    *st = (ox_nn_mixer_state){ 0 };
}

ox_status ox_nn_mixer_state_init(ox_ctx *ctx, ox_nn_mixer_state *st, const ox_nn_mixer *m, int64_t B, int64_t cap,
                                 int kv)
{
    if (!st)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mixer state init: state is NULL");
    *st = (ox_nn_mixer_state){ 0 };
    if (ctx->status)
        return ctx->status;
    if (!m || B < 1 || cap < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mixer state init: need a mixer, B >= 1 and cap >= 1 (got B=%lld "
                           "cap=%lld)", (long long)B, (long long)cap);
    const ox_nn_mixer_config *c = &m->cfg;
    const int64_t H = c->n_heads, dk = c->d_k, dv = c->d_v;
    st->has_attn = has(m, OX_NN_CORE_ATTN);
    st->has_lin = linear_core(c->cores) != 0;
    st->ring_k = ox_nn_shortconv_state_new(ctx, B, H * dk);
    st->ring_v = ox_nn_shortconv_state_new(ctx, B, H * dv);
    if (st->has_lin) {
        st->ring_q = ox_nn_shortconv_state_new(ctx, B, H * dk);
        st->state = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, H, dv, dk));
    }
    if (st->has_attn && kv)
        ox_nn_kv_cache_init(ctx, &st->kv, B, H, cap, dk, dv);
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_nn_mixer_state_free(st);
        return s;
    }
    return OX_OK;
}

void ox_nn_mixer_state_reset(ox_nn_mixer_state *st)
{
    if (!st)
        return;
    ox_tensor *z[4] = { st->ring_k, st->ring_v, st->ring_q, st->state };
    for (int i = 0; i < 4; i++)
        if (z[i])
            memset(ox_tensor_f32(z[i]), 0, (size_t)tensor_bytes(z[i]));
    if (st->kv.k)
        ox_nn_kv_cache_clear(&st->kv);
}

uint64_t ox_nn_mixer_state_bytes(const ox_nn_mixer_state *st)
{
    if (!st)
        return 0;
    return tensor_bytes(st->ring_k) + tensor_bytes(st->ring_v) + tensor_bytes(st->ring_q) + tensor_bytes(st->state) +
           tensor_bytes(st->kv.k) + tensor_bytes(st->kv.v) + tensor_bytes(st->kv.scores);
}

/* [n0, n1] and [n0, n1, n2] views of a contiguous tensor */
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

/* the mode sequence b reads (a one-core mixer has a fixed one) */
static int step_mode(const ox_nn_mixer_state *st, const int32_t *md, int64_t b)
{
    return !st->has_lin ? OX_NN_ATTN : !st->has_attn ? OX_NN_LIN : md[b];
}

/* The linear core's output [B, H, dv] after advancing the state with this token (MODELS 5.2, 6.2): the
 * parallel form's gates, query and key, and skip, one row, with the recurrence's step form */
static ox_tensor *lin_step(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_mixer_state *st, ox_tensor *x, ox_tensor *k,
                           ox_tensor *v)
{
    const ox_nn_mixer_config *c = &m->cfg;
    const int64_t B = x->shape[0], H = c->n_heads, dk = c->d_k, dv = c->d_v;
    ox_tensor *ql = conv_step(ctx, ox_nn_linear_step(ctx, x, m->lin_q), m->lin_q_conv, lin_q_act(m), st->ring_q);
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dv)), *k3 = as3(ctx, k, B, H, dk);
    ox_tensor *v3 = as3(ctx, v, B, H, dv), *a;
    if (!ql || !o || !k3 || !v3)
        return NULL;
    if (has(m, OX_NN_CORE_GDN)) {
        ox_tensor *qh, *kh, *beta;
        gdn_qk(ctx, m, as3(ctx, ql, B, H, dk), k3, &qh, &kh);
        gdn_gates(ctx, m, ox_nn_linear_step, x, &beta, &a);
        if (!qh || !kh || !beta || !a ||
            ox_nn_gdn_step(ctx, qh, kh, v3, as2(ctx, beta, B, H), as2(ctx, a, B, H), st->state, o))
            return NULL;
        return o;
    }
    ox_tensor *dt;
    m2_gates(ctx, m, ox_nn_linear_step, x, &dt, &a);
    if (!dt || !a ||
        ox_nn_ssd_step(ctx, as3(ctx, ql, B, H, dk), k3, v3, as2(ctx, dt, B, H), as2(ctx, a, B, H), st->state, o))
        return NULL;
    return m2_skip(ctx, m, o, v3);
}

/* The attention part of a step: appends (RoPE(k, pos), v) to the cache (when kept) and returns the attention
 * output [B, H, dv] of the sequences whose mode is ATTN (other rows unspecified) */
static ox_tensor *attn_step(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_mixer_state *st, ox_tensor *x, ox_tensor *k,
                            ox_tensor *v, const int32_t *md, int64_t pos)
{
    const ox_nn_mixer_config *c = &m->cfg;
    const int64_t B = x->shape[0], H = c->n_heads, dk = c->d_k, dv = c->d_v;
    int64_t n_attn = 0;
    for (int64_t b = 0; b < B; b++)
        n_attn += step_mode(st, md, b) == OX_NN_ATTN;
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dv));
    if (!o || !st->kv.k)        /* a dropped cache: the caller made sure no sequence asks for ATTN */
        return o;
    ox_tensor *kr = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, dk));
    ox_tensor *v3 = as3(ctx, v, B, H, dv);
    if (!kr || !v3)
        return NULL;
    memcpy(ox_tensor_f32(kr), ox_tensor_f32(k), (size_t)(B * H * dk) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        ox_nn_rope_rows(ox_tensor_f32(kr) + b * H * dk, H, dk, pos);
    if (n_attn == 0)
        return ox_nn_attention_step(ctx, &st->kv, NULL, kr, v3, NULL) ? NULL : o;
    ox_tensor *q = as3(ctx, ox_nn_linear_step(ctx, x, m->attn_q), B, H, dk);    /* contiguous, rotated in place */
    if (!q)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        ox_nn_rope_rows(ox_tensor_f32(q) + b * H * dk, H, dk, pos);
    if (n_attn == B)
        return ox_nn_attention_step(ctx, &st->kv, q, kr, v3, o) ? NULL : o;
    /* mixed batch: per sequence, a one-row view of the cache; attend only where ATTN */
    const int64_t t = st->kv.len;
    for (int64_t b = 0; b < B; b++) {
        ox_nn_kv_cache sub = st->kv;
        sub.B = 1;
        sub.len = t;
        sub.k = ox_tensor_view_narrow(ctx, st->kv.k, 0, b, 1);
        sub.v = ox_tensor_view_narrow(ctx, st->kv.v, 0, b, 1);
        sub.scores = ox_tensor_view_narrow(ctx, st->kv.scores, 0, b, 1);
        int a = step_mode(st, md, b) == OX_NN_ATTN;
        if (!sub.k || !sub.v || !sub.scores ||
            ox_nn_attention_step(ctx, &sub, a ? ox_tensor_view_narrow(ctx, q, 0, b, 1) : NULL,
                                 ox_tensor_view_narrow(ctx, kr, 0, b, 1), ox_tensor_view_narrow(ctx, v3, 0, b, 1),
                                 a ? ox_tensor_view_narrow(ctx, o, 0, b, 1) : NULL))
            return NULL;
    }
    st->kv.len = t + 1;
    return o;
}

ox_tensor *ox_nn_mixer_step(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_mixer_state *st, ox_tensor *x,
                            const int32_t *md, int64_t pos)
{
    if (ctx->status || !m || !st || !x)
        return NULL;
    const ox_nn_mixer_config *c = &m->cfg;
    if (x->ndim != 3 || x->shape[1] != 1 || x->shape[2] != c->d_model || !ox_tensor_is_contiguous(x) ||
        x->shape[0] != st->ring_k->shape[0] || (st->has_attn && st->has_lin && !md)) {
        char b1[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "mixer step: input %s must be contiguous F32 [B = %lld, 1, %lld], with a mode "
                    "per sequence for a two-core layer", ox_shape_str(x, b1), (long long)st->ring_k->shape[0],
                    (long long)c->d_model);
        return NULL;
    }
    const int64_t B = x->shape[0], H = c->n_heads, dv = c->d_v;
    ox_tensor *k = conv_step(ctx, ox_nn_linear_step(ctx, x, m->k_proj), m->k_conv, c->conv_act, st->ring_k);
    ox_tensor *v = conv_step(ctx, ox_nn_linear_step(ctx, x, m->v_proj), m->v_conv, c->conv_act, st->ring_v);
    ox_tensor *g = ox_nn_linear_step(ctx, x, m->g_proj);
    if (!k || !v || !g)
        return NULL;
    ox_tensor *o_attn = st->has_attn ? attn_step(ctx, m, st, x, k, v, md, pos) : NULL;
    ox_tensor *o_lin = st->has_lin ? lin_step(ctx, m, st, x, k, v) : NULL;
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, 1, H * dv));
    if (ctx->status || !o)
        return NULL;
    for (int64_t b = 0; b < B; b++) {       /* per-sequence readout (MODELS 7.2) */
        const ox_tensor *src = step_mode(st, md, b) == OX_NN_ATTN ? o_attn : o_lin;
        memcpy(ox_tensor_f32(o) + b * H * dv, ox_tensor_f32(src) + b * H * dv, (size_t)(H * dv) * sizeof(float));
    }
    return mixer_out(ctx, m, ox_nn_linear_step, o, g);
}
