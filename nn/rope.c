/* rope.c - RoPE forward (rotation by +angle), backward (rotation by -angle) and tape glue, plus the
 * in-place single-token helper used by decoding. See rope.h for the math. */
#include "nn/rope.h"
#include "tensor/iter.h"

#include <math.h>

/* cos/sin of p * theta_i, angle in double, each rounded to float once. Shared by every path so the
 * batched op and the decode helper agree bit for bit. */
static void rope_angles(int64_t p, int64_t d, float *c, float *s)
{
    int64_t half = d / 2;
    for (int64_t i = 0; i < half; i++) {
        double theta = pow(10000.0, -2.0 * (double)i / (double)d);
        double a = (double)p * theta;
        c[i] = (float)cos(a);
        s[i] = (float)sin(a);
    }
}

/* y = R(sign * angle) x for one head vector; x and y have element strides sx, 1 (y contiguous). */
static inline void rotate(float *y, const float *x, int64_t sx, const float *c, const float *s,
                          int64_t half, float sign)
{
    for (int64_t i = 0; i < half; i++) {
        float a = x[i * sx], b = x[(i + half) * sx], si = sign * s[i];
        y[i] = a * c[i] - b * si;
        y[i + half] = a * si + b * c[i];
    }
}

void ox_nn_rope_rows(float *x, int64_t n_heads, int64_t d, int64_t pos)
{
    float c[512], s[512];                       /* half <= 512 per chunk: no allocation */
    int64_t half = d / 2;
    if (half <= 512) {
        rope_angles(pos, d, c, s);
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + h * d;
            for (int64_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = a * s[i] + b * c[i];
            }
        }
        return;
    }
    for (int64_t h = 0; h < n_heads; h++) {     /* very wide heads: angles one at a time */
        float *v = x + h * d;
        for (int64_t i = 0; i < half; i++) {
            double a = (double)pos * pow(10000.0, -2.0 * (double)i / (double)d);
            float ci = (float)cos(a), si = (float)sin(a), p = v[i], q = v[i + half];
            v[i] = p * ci - q * si;
            v[i + half] = p * si + q * ci;
        }
    }
}

/* cos and sin tables [T, d/2] for positions pos0 .. pos0+T-1 (arena). */
static int rope_tables(ox_ctx *ctx, int64_t T, int64_t d, int64_t pos0, float **c, float **s)
{
    int64_t half = d / 2;
    *c = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(T * half + 1));
    *s = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(T * half + 1));
    if (!*c || !*s)
        return -1;
    int nt = T * half >= OX_PARALLEL_MIN / 8 ? ctx->n_threads : 1;
    /* each position's row is written by one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < T; t++)
        rope_angles(pos0 + t, d, *c + t * half, *s + t * half);
    return 0;
}

/* y[b, t, h, :] = R(sign * angle(pos0 + t)) x[b, t, h, :]; y contiguous [B, T, H, d] and accumulated
 * into when acc (backward), else overwritten. */
static void rope_apply(ox_ctx *ctx, float *y, const ox_tensor *x, const float *c, const float *s,
                       float sign, int acc)
{
    int64_t B = x->shape[0], T = x->shape[1], H = x->shape[2], d = x->shape[3], half = d / 2;
    const float *xd = ox_tensor_f32(x);
    int64_t s0 = x->stride[0], s1 = x->stride[1], s2 = x->stride[2], s3 = x->stride[3];
    int nt = B * T * H * d >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* rows (b, t) are independent: each output row is written by one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        const float *ct = c + t * half, *st = s + t * half;
        float tmp[2 * 512];
        for (int64_t h = 0; h < H; h++) {
            const float *xv = xd + b * s0 + t * s1 + h * s2;
            float *yv = y + ((bt * H) + h) * d;
            if (!acc) {
                rotate(yv, xv, s3, ct, st, half, sign);
                continue;
            }
            for (int64_t i0 = 0; i0 < half; i0 += 512) {   /* rotate into tmp, then add */
                int64_t n = half - i0 < 512 ? half - i0 : 512;
                for (int64_t i = 0; i < n; i++) {
                    float a = xv[(i0 + i) * s3], bb = xv[(i0 + i + half) * s3], si = sign * st[i0 + i];
                    tmp[i] = a * ct[i0 + i] - bb * si;
                    tmp[512 + i] = a * si + bb * ct[i0 + i];
                }
                for (int64_t i = 0; i < n; i++) {
                    yv[i0 + i] += tmp[i];
                    yv[i0 + i + half] += tmp[512 + i];
                }
            }
        }
    }
}

/* dx += R^T dy (rotation by -angle); node->i[0] = pos0. */
static ox_status rope_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *x = node->in[0], *dy = node->out[0]->grad;
    ox_tensor *gx = ox_ag_grad(ctx, x);
    if (!gx || !dy)
        return ctx->status;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *c, *s;
    if (rope_tables(ctx, x->shape[1], x->shape[3], node->i[0], &c, &s))
        return ctx->status;
    rope_apply(ctx, ox_tensor_f32(gx), dy, c, s, -1.0f, 1);
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op rope_op = { "rope", rope_backward };

ox_tensor *ox_nn_rope(ox_ctx *ctx, ox_tensor *x, int64_t pos0)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "rope", x))
        return NULL;
    char buf[OX_SHAPE_BUF];
    if (x->ndim != 4 || x->shape[3] % 2 != 0) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "rope: x must be [B, T, H, d] with d even, got %s",
                    ox_shape_str(x, buf));
        return NULL;
    }
    if (pos0 < 0) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "rope: start position %lld is negative", (long long)pos0);
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, 4, x->shape);
    if (!y)
        return NULL;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *c, *s;
    if (rope_tables(ctx, x->shape[1], x->shape[3], pos0, &c, &s))
        return NULL;
    rope_apply(ctx, ox_tensor_f32(y), x, c, s, 1.0f, 0);
    ox_arena_rewind(&ctx->arena, mark);
    ox_ag_node *n = ox_ag_record(ctx, &rope_op, 1, &x, 1, &y);
    if (n)
        n->i[0] = pos0;
    return ctx->status ? NULL : y;
}
