/* shortconv.c - causal depthwise conv, kernel 4: forward kernel, backward kernel, tape glue, streaming
 * step and module (see shortconv.h). */
#include "nn/shortconv.h"
#include "nn/util.h"

#include <string.h>

/* The weights transposed to taps-major wt[j * C + c] = w[c, j], so the per-channel loops are unit
 * stride. */
static void transpose_taps(const ox_tensor *w, float *wt)
{
    int64_t C = w->shape[0];
    const float *wp = ox_tensor_f32(w);
    for (int64_t j = 0; j < OX_NN_CONV_K; j++)
        for (int64_t c = 0; c < C; c++)
            wt[j * C + c] = wp[c * w->stride[0] + j * w->stride[1]];
}

/* y[b, t, :] = act(sum_j wt[j] ⊙ x[b, t - 3 + j, :]) for every row (b, t); x has unit channel stride and
 * strides sb, st; y is contiguous [B, T, C]. Accumulation order: tap 3 first, then taps 2, 1, 0 (the step
 * uses the same order). */
/* One row before the activation: yr = sum_j wt[j] ⊙ x[t - 3 + j] (xt = x at row t, rows st apart). */
static inline void conv_row(const float *xt, int64_t st, int64_t t, int64_t C, const float *wt, float *yr)
{
    const float *w3 = wt + 3 * C;
    for (int64_t c = 0; c < C; c++)
        yr[c] = w3[c] * xt[c];
    for (int64_t k = 1; k <= 3 && k <= t; k++) {
        const float *xs = xt - k * st, *wk = wt + (3 - k) * C;
        for (int64_t c = 0; c < C; c++)
            yr[c] += wk[c] * xs[c];
    }
}

static void conv_forward(int nt, const float *x, int64_t sb, int64_t st, int64_t B, int64_t T, int64_t C,
                         const float *wt, ox_nn_act act, float *y)
{
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        float *yr = y + bt * C;
        conv_row(x + b * sb + t * st, st, t, C, wt, yr);
        if (act == OX_NN_ACT_SILU)
            for (int64_t c = 0; c < C; c++)
                yr[c] = yr[c] * ox_nn_sigmoidf(yr[c]);
    }
}

typedef struct conv_saved {
    ox_tensor *x;           /* [B, T, C] with unit channel stride (the input or its copy) */
    ox_nn_act act;
} conv_saved;

static ox_status conv_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const conv_saved *s = node->saved;
    ox_tensor *w = node->in[1], *y = node->out[0];
    int fresh = 0;     /* gx created by this call: its rows are written (=), not accumulated */
    ox_tensor *gx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    ox_tensor *gw = ox_ag_grad(ctx, w);
    if (ctx->status)
        return ctx->status;
    int64_t B = y->shape[0], T = y->shape[1], C = y->shape[2], N = B * T * C;
    int64_t sb = s->x->stride[0], st = s->x->stride[1];
    const float *x = ox_tensor_f32(s->x), *dy = ox_tensor_f32(y->grad);
    int nt = ox_nn_threads(ctx, N);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wt = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(OX_NN_CONV_K * C + 1));
    float *dpre = s->act == OX_NN_ACT_SILU ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(N + 1)) : NULL;
    if (!wt || (s->act == OX_NN_ACT_SILU && !dpre))
        return ctx->status;
    transpose_taps(w, wt);
    if (dpre) {
        /* dpre = dy ⊙ silu'(pre), pre recomputed row by row (the forward's sums) and used while in cache:
         * silu'(z) = σ(z) (1 + z (1 - σ(z))) */
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
        for (int64_t bt = 0; bt < B * T; bt++) {
            int64_t t = bt % T;
            float *d = dpre + bt * C;
            const float *g = dy + bt * C;
            conv_row(x + (bt / T) * sb + t * st, st, t, C, wt, d);
            for (int64_t c = 0; c < C; c++) {
                float z = d[c], sz = ox_nn_sigmoidf(z);
                d[c] = g[c] * sz * (1.0f + z * (1.0f - sz));
            }
        }
    }
    const float *dp = dpre ? dpre : dy;     /* contiguous [B, T, C] */
    if (gx) {
        /* dx[s] += sum_k wt[3 - k] ⊙ dpre[s + k], k = 0..3 with s + k < T; each row by one thread; a fresh
         * gx takes its k = 0 term with '=' (same sums: 0 + a = a) */
        float *g = ox_tensor_f32(gx);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
        for (int64_t bt = 0; bt < B * T; bt++) {
            int64_t t = bt % T;
            float *dx = g + bt * C;
            const float *d0 = dp + bt * C, *w3 = wt + 3 * C;
            if (fresh)
                for (int64_t c = 0; c < C; c++)
                    dx[c] = w3[c] * d0[c];
            else
                for (int64_t c = 0; c < C; c++)
                    dx[c] += w3[c] * d0[c];
            for (int64_t k = 1; k <= 3 && t + k < T; k++) {
                const float *d = dp + (bt + k) * C, *wk = wt + (3 - k) * C;
                for (int64_t c = 0; c < C; c++)
                    dx[c] += wk[c] * d[c];
            }
        }
    }
    if (gw) {
        /* dw[c, j] += sum_{b,t} dpre[b, t, c] x[b, t - 3 + j, c]: threads own channel ranges and walk
         * the rows in order, into acc[j * C + c] (wt's storage, no longer needed) */
        float *acc = wt;
        memset(acc, 0, sizeof(float) * (size_t)(OX_NN_CONV_K * C));
        int parts = nt < C / 16 ? nt : (C / 16 > 1 ? (int)(C / 16) : 1);
#pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
        for (int p = 0; p < parts; p++) {
            int64_t c0 = C * p / parts, c1 = C * (p + 1) / parts;
            for (int64_t b = 0; b < B; b++)
                for (int64_t t = 0; t < T; t++) {
                    const float *d = dp + (b * T + t) * C, *xt = x + b * sb + t * st;
                    for (int64_t j = 0; j < OX_NN_CONV_K; j++) {
                        int64_t k = 3 - j;          /* x[t - k] meets tap j */
                        if (k > t)
                            continue;
                        const float *xs = xt - k * st;
                        float *a = acc + j * C;
                        for (int64_t c = c0; c < c1; c++)
                            a[c] += d[c] * xs[c];
                    }
                }
        }
        float *g = ox_tensor_f32(gw);
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < OX_NN_CONV_K; j++)
                g[c * OX_NN_CONV_K + j] += acc[j * C + c];
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op conv_op = { "shortconv", conv_backward };

static int check_args(ox_ctx *ctx, const char *op, const ox_tensor *x, int x_ndim, const ox_tensor *w,
                      ox_nn_act act)
{
    if (ox_check_f32(ctx, op, x) || ox_check_f32(ctx, op, w))
        return 1;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (x->ndim != x_ndim || w->ndim != 2 || w->shape[1] != OX_NN_CONV_K ||
        w->shape[0] != x->shape[x->ndim - 1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: input %s does not fit weight %s (want x %s, w [C, 4])", op,
                    ox_shape_str(x, b1), ox_shape_str(w, b2), x_ndim == 3 ? "[B, T, C]" : "[B, C]");
        return 1;
    }
    if (act != OX_NN_ACT_NONE && act != OX_NN_ACT_SILU) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: unknown activation %d", op, (int)act);
        return 1;
    }
    return 0;
}

ox_tensor *ox_nn_shortconv(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_nn_act act)
{
    if (ctx->status || !x || !w)
        return NULL;
    if (check_args(ctx, "shortconv", x, 3, w, act))
        return NULL;
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    ox_tensor *xr = x;
    if (C > 1 && x->stride[2] != 1) {
        xr = ox_tensor_empty_like(ctx, x);
        if (!xr || ox_tensor_copy(ctx, xr, x))
            return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, 3, x->shape);
    if (!y)
        return NULL;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wt = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(OX_NN_CONV_K * C + 1));
    if (!wt)
        return NULL;
    transpose_taps(w, wt);
    conv_forward(ox_nn_threads(ctx, B * T * C), ox_tensor_f32(xr), xr->stride[0], xr->stride[1], B, T, C, wt,
                 act, ox_tensor_f32(y));
    ox_arena_rewind(&ctx->arena, mark);
    ox_tensor *ins[2] = { x, w };
    if (ox_ag_needs_grad(ctx, 2, ins)) {
        conv_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (conv_saved){ xr, act };
        ox_ag_node *node = ox_ag_record(ctx, &conv_op, 2, ins, 1, &y);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_nn_shortconv_state_new(ox_ctx *ctx, int64_t batch, int64_t channels)
{
    return ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(batch, OX_NN_CONV_K - 1, channels));
}

static int check_state(ox_ctx *ctx, const char *op, const ox_tensor *state, int64_t B, int64_t C)
{
    if (ox_check_f32(ctx, op, state))
        return 1;
    if (state->ndim != 3 || state->shape[0] != B || state->shape[1] != OX_NN_CONV_K - 1 ||
        state->shape[2] != C || !ox_tensor_is_contiguous(state)) {
        char b1[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: state %s must be contiguous [%lld, 3, %lld]", op,
                    ox_shape_str(state, b1), (long long)B, (long long)C);
        return 1;
    }
    return 0;
}

ox_tensor *ox_nn_shortconv_prefill(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_nn_act act, ox_tensor *state)
{
    if (ctx->status || !x || !w || !state)
        return NULL;
    if (check_args(ctx, "shortconv_prefill", x, 3, w, act) ||
        check_state(ctx, "shortconv_prefill", state, x->shape[0], x->shape[2]))
        return NULL;
    ox_tensor *y = ox_nn_shortconv(ctx, x, w, act);
    if (!y)
        return NULL;
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    const float *xp = ox_tensor_f32(x);
    float *sp = ox_tensor_f32(state);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < OX_NN_CONV_K - 1; i++) {
            int64_t t = T - (OX_NN_CONV_K - 1) + i;         /* row i holds x_{T-3+i} */
            float *dst = sp + (b * (OX_NN_CONV_K - 1) + i) * C;
            for (int64_t c = 0; c < C; c++)
                dst[c] = t >= 0 ? xp[b * x->stride[0] + t * x->stride[1] + c * x->stride[2]] : 0.0f;
        }
    return y;
}

ox_status ox_nn_shortconv_step(ox_ctx *ctx, const ox_tensor *x, const ox_tensor *w, ox_nn_act act,
                               ox_tensor *state, ox_tensor *out)
{
    if (ctx->status)
        return ctx->status;
    if (!x || !w || !state || !out)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "shortconv_step: NULL argument");
    if (check_args(ctx, "shortconv_step", x, 2, w, act) ||
        check_state(ctx, "shortconv_step", state, x->shape[0], x->shape[1]) ||
        ox_check_f32(ctx, "shortconv_step", out))
        return ctx->status;
    if (!ox_tensor_same_shape(x, out)) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "shortconv_step: output %s does not match input %s",
                           ox_shape_str(out, b1), ox_shape_str(x, b2));
    }
    int64_t B = x->shape[0], C = x->shape[1];
    const float *xp = ox_tensor_f32(x), *wp = ox_tensor_f32(w);
    float *sp = ox_tensor_f32(state), *op = ox_tensor_f32(out);
    int64_t xs0 = x->stride[0], xs1 = x->stride[1], os0 = out->stride[0], os1 = out->stride[1];
    int64_t w0 = w->stride[0], w1 = w->stride[1];
    for (int64_t b = 0; b < B; b++) {
        float *s = sp + b * (OX_NN_CONV_K - 1) * C;      /* rows: x_{t-3}, x_{t-2}, x_{t-1} */
        for (int64_t c = 0; c < C; c++) {
            float xc = xp[b * xs0 + c * xs1];
            /* same order as conv_forward: tap 3, then 2, 1, 0 */
            float p = wp[c * w0 + 3 * w1] * xc;
            p += wp[c * w0 + 2 * w1] * s[2 * C + c];
            p += wp[c * w0 + 1 * w1] * s[C + c];
            p += wp[c * w0] * s[c];
            op[b * os0 + c * os1] = act == OX_NN_ACT_SILU ? p * ox_nn_sigmoidf(p) : p;
            s[c] = s[C + c];
            s[C + c] = s[2 * C + c];
            s[2 * C + c] = xc;
        }
    }
    return OX_OK;
}

ox_status ox_nn_shortconv_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_shortconv_t *m, const char *prefix,
                               int64_t channels, ox_nn_act act, ox_rng *rng)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(channels, OX_NN_CONV_K), OX_NN_DECAY);
    if (!w || ox_tensor_fill_uniform(ctx, w, rng, -0.5, 0.5))
        return ctx->status;
    m->weight = w;
    m->channels = channels;
    m->act = act;
    return OX_OK;
}

ox_tensor *ox_nn_shortconv_forward(ox_ctx *ctx, const ox_nn_shortconv_t *m, ox_tensor *x)
{
    return ox_nn_shortconv(ctx, x, m->weight, m->act);
}
