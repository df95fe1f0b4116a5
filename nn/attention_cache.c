/* attention_cache.c - the attention KV cache and the one-token decode step (attention.h: ox_nn_kv_cache_*,
 * ox_nn_attention_step): keys and values appended row by row into a preallocated [B, H, cap, d] cache, and
 * for each new query the scores against every cached key, their softmax and the weighted sum of values,
 * computed directly (one row, no blocking). The parallel op it must agree with is in attention.c
 * (MODELS 11 item 14: step decoding == parallel forward, tested in tests/test_oryx_decode.c and
 * tests/test_attention.c). */
#include "nn/attention.h"
#include "autograd/lanes.h"
#include "tensor/iter.h"
#include "tensor/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

ox_status ox_nn_kv_cache_init(ox_ctx *ctx, ox_nn_kv_cache *c, int64_t B, int64_t H, int64_t cap,
                              int64_t dk, int64_t dv)
{
    memset(c, 0, sizeof *c);
    if (ctx->status)
        return ctx->status;
    if (B < 1 || H < 1 || cap < 1 || dk < 1 || dv < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "kv_cache_init: B = %lld, H = %lld, capacity = %lld, dk = %lld, "
                           "dv = %lld must all be >= 1", (long long)B, (long long)H, (long long)cap,
                           (long long)dk, (long long)dv);
    c->k = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, H, cap, dk));
    c->v = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, H, cap, dv));
    c->scores = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(B, H, cap));
    if (!c->k || !c->v || !c->scores) {
        ox_nn_kv_cache_free(c);
        return ctx->status ? ctx->status : ox_ctx_fail(ctx, OX_ERR_NOMEM, "kv_cache_init: out of memory");
    }
    c->B = B;
    c->H = H;
    c->cap = cap;
    c->dk = dk;
    c->dv = dv;
    return OX_OK;
}

void ox_nn_kv_cache_free(ox_nn_kv_cache *c)
{
    if (!c)
        return;
    ox_tensor_free(c->k);
    ox_tensor_free(c->v);
    ox_tensor_free(c->scores);
    memset(c, 0, sizeof *c);
}

void ox_nn_kv_cache_clear(ox_nn_kv_cache *c)
{
    if (c)
        c->len = 0;
}

/* 1 if t is F32 with shape (d0, d1, d2[, d3]) (nd entries of want). */
static int shape_is(const ox_tensor *t, int nd, const int64_t *want)
{
    if (!t || t->dtype != OX_F32 || t->ndim != nd)
        return 0;
    for (int d = 0; d < nd; d++)
        if (t->shape[d] != want[d])
            return 0;
    return 1;
}

static ox_status cache_shape_error(ox_ctx *ctx, const ox_nn_kv_cache *c, const char *op, const char *name,
                                   const ox_tensor *t, const char *want)
{
    char buf[OX_SHAPE_BUF];
    if (t && t->dtype != OX_F32)
        return ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: %s must be F32", op, name);
    return ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s is %s, expected %s with B = %lld, H = %lld, dk = %lld, "
                       "dv = %lld", op, name, t ? ox_shape_str(t, buf) : "NULL", want, (long long)c->B,
                       (long long)c->H, (long long)c->dk, (long long)c->dv);
}

/* Copies row (b, h) of a strided tensor whose last axis has n elements into dst. */
static void copy_row(float *dst, const float *src, int64_t n, int64_t stride)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i * stride];
}

ox_status ox_nn_kv_cache_append(ox_ctx *ctx, ox_nn_kv_cache *c, const ox_tensor *k, const ox_tensor *v)
{
    if (ctx->status)
        return ctx->status;
    if (!c || !c->k)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "kv_cache_append: the cache is not initialised");
    int64_t T = k && k->ndim == 4 ? k->shape[1] : -1;
    if (!shape_is(k, 4, (const int64_t[]){ c->B, T, c->H, c->dk }))
        return cache_shape_error(ctx, c, "kv_cache_append", "k", k, "[B, T, H, dk]");
    if (!shape_is(v, 4, (const int64_t[]){ c->B, T, c->H, c->dv }))
        return cache_shape_error(ctx, c, "kv_cache_append", "v", v, "[B, T, H, dv] (T of k)");
    if (c->len + T > c->cap)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "kv_cache_append: %lld tokens do not fit: the cache holds %lld "
                           "of %lld positions", (long long)T, (long long)c->len, (long long)c->cap);
    const float *kd = ox_tensor_f32(k), *vd = ox_tensor_f32(v);
    float *ck = ox_tensor_f32(c->k), *cv = ox_tensor_f32(c->v);
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t t = 0; t < T; t++) {
                int64_t slot = (b * c->H + h) * c->cap + c->len + t;
                copy_row(ck + slot * c->dk, kd + b * k->stride[0] + t * k->stride[1] + h * k->stride[2],
                         c->dk, k->stride[3]);
                copy_row(cv + slot * c->dv, vd + b * v->stride[0] + t * v->stride[1] + h * v->stride[2],
                         c->dv, v->stride[3]);
            }
    c->len += T;
    return OX_OK;
}

ox_status ox_nn_attention_step(ox_ctx *ctx, ox_nn_kv_cache *c, const ox_tensor *q, const ox_tensor *k,
                               const ox_tensor *v, ox_tensor *out)
{
    if (ctx->status)
        return ctx->status;
    if (!c || !c->k)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "attention_step: the cache is not initialised");
    const int64_t B = c->B, H = c->H, dk = c->dk, dv = c->dv, cap = c->cap;
    if (!shape_is(k, 3, (const int64_t[]){ B, H, dk }))
        return cache_shape_error(ctx, c, "attention_step", "k", k, "[B, H, dk]");
    if (!shape_is(v, 3, (const int64_t[]){ B, H, dv }))
        return cache_shape_error(ctx, c, "attention_step", "v", v, "[B, H, dv]");
    if (q && !shape_is(q, 3, (const int64_t[]){ B, H, dk }))
        return cache_shape_error(ctx, c, "attention_step", "q", q, "[B, H, dk]");
    if (q && !shape_is(out, 3, (const int64_t[]){ B, H, dv }))
        return cache_shape_error(ctx, c, "attention_step", "out", out, "[B, H, dv]");
    if (c->len >= cap)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "attention_step: the KV cache is full (%lld positions)",
                           (long long)cap);
    const int64_t t = c->len;
    float *ck = ox_tensor_f32(c->k), *cv = ox_tensor_f32(c->v);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t slot = (b * H + h) * cap + t;
            const float *kr = ox_tensor_f32(k) + b * k->stride[0] + h * k->stride[1];
            const float *vr = ox_tensor_f32(v) + b * v->stride[0] + h * v->stride[1];
            copy_row(ck + slot * dk, kr, dk, k->stride[2]);
            copy_row(cv + slot * dv, vr, dv, v->stride[2]);
        }
    c->len = t + 1;
    if (!q)
        return OX_OK;

    const float scale = (float)(1.0 / sqrt((double)dk));
    const float *qd = ox_tensor_f32(q);
    float *od = ox_tensor_f32(out), *sc = ox_tensor_f32(c->scores);
    int nt = B * H * (t + 1) * (dk + dv) >= 4 * OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* (b, h) pairs are independent: each writes its own out row and score scratch */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *qv = qd + b * q->stride[0] + h * q->stride[1];
        const float *kc = ck + bh * cap * dk, *vc = cv + bh * cap * dv;
        float *s = sc + bh * cap, *ov = od + b * out->stride[0] + h * out->stride[1];
        int64_t qs = q->stride[2], os = out->stride[2];
        float mx = -INFINITY;
        for (int64_t j = 0; j <= t; j++) {           /* s_j = q . k_j / sqrt(dk) */
            float d = 0.0f;
            if (qs == 1) {
                d = lanes_dot(qv, kc + j * dk, dk);
            } else {
                for (int64_t i = 0; i < dk; i++)
                    d += qv[i * qs] * kc[j * dk + i];
            }
            s[j] = d * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        float l = 0.0f;
        for (int64_t j = 0; j <= t; j++) {
            s[j] = expf(s[j] - mx);
            l += s[j];
        }
        for (int64_t i = 0; i < dv; i++)
            ov[i * os] = 0.0f;
        for (int64_t j = 0; j <= t; j++) {           /* out = sum_j p_j v_j / l */
            float pj = s[j];
            for (int64_t i = 0; i < dv; i++)
                ov[i * os] += pj * vc[j * dv + i];
        }
        float inv = 1.0f / l;
        for (int64_t i = 0; i < dv; i++)
            ov[i * os] *= inv;
    }
    ctx->attn_madds += (uint64_t)(B * H * (t + 1) * (dk + dv));
    return OX_OK;
}
