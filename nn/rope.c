/* rope.c - RoPE forward (rotation by +angle), backward (rotation by -angle) and tape glue, plus the
 * in-place single-token helper used by decoding. See rope.h for the math.
 *
 * Every path gets its cos/sin from rope_theta and rope_angles (theta_i = 10000^(-2i/d) and p * theta_i
 * in double, one rounding to float each) and rotates with the same float expressions, so the batched op
 * and the decode helper agree bit for bit. */
#include "nn/rope.h"
#include "tensor/iter.h"

#include <math.h>

/* theta[j] = 10000^(-2 (i0 + j) / d), in double. */
static void rope_theta(int64_t d, int64_t i0, int64_t n, double *theta)
{
    for (int64_t j = 0; j < n; j++)
        theta[j] = pow(10000.0, -2.0 * (double)(i0 + j) / (double)d);
}

/* c[j] = cos(p theta[j]), s[j] = sin(p theta[j]): the angle in double, one rounding to float each. */
static void rope_angles(int64_t p, const double *theta, int64_t n, float *c, float *s)
{
    for (int64_t j = 0; j < n; j++) {
        double a = (double)p * theta[j];
        c[j] = (float)cos(a);
        s[j] = (float)sin(a);
    }
}

/* (a, b) -> (a c - b s, a s + b c) for the n pairs (x[i], x[half + i]); x strided by sx, y contiguous
 * (y may be x when sx = 1). With acc the result is added to y. s is already signed (backward: -sin). */
static inline void rotate(float *y, const float *x, int64_t sx, int64_t half, const float *c, const float *s,
                          int64_t n, int acc)
{
    for (int64_t i = 0; i < n; i++) {
        float a = x[i * sx], b = x[(i + half) * sx];
        float ya = a * c[i] - b * s[i], yb = a * s[i] + b * c[i];
        y[i] = acc ? y[i] + ya : ya;
        y[i + half] = acc ? y[i + half] + yb : yb;
    }
}

#define CHUNK 256     /* frequencies per stack table in the decode helper */

void ox_nn_rope_rows(float *x, int64_t n_heads, int64_t d, int64_t pos)
{
    float c[CHUNK], s[CHUNK];
    double theta[CHUNK];
    int64_t half = d / 2;
    for (int64_t i0 = 0; i0 < half; i0 += CHUNK) {
        int64_t n = half - i0 < CHUNK ? half - i0 : CHUNK;
        rope_theta(d, i0, n, theta);
        rope_angles(pos, theta, n, c, s);
        for (int64_t h = 0; h < n_heads; h++)
            rotate(x + h * d + i0, x + h * d + i0, 1, half, c, s, n, 0);
    }
}

/* Rotates every head vector of x [B, T, H, d] by sign * angle(pos0 + t) into y (contiguous, the same
 * shape), overwriting (forward) or accumulating (backward). The cos/sin tables [T, d/2] are arena
 * scratch, released before returning. */
static ox_status rope_apply(ox_ctx *ctx, float *y, const ox_tensor *x, int64_t pos0, float sign, int acc)
{
    const int64_t B = x->shape[0], T = x->shape[1], H = x->shape[2], d = x->shape[3], half = d / 2;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *c = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(T * half + 1));
    float *s = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(T * half + 1));
    double *theta = ox_ctx_alloc(ctx, sizeof(double) * (size_t)(half + 1));
    if (!c || !s || !theta)
        return ctx->status;
    rope_theta(d, 0, half, theta);
    int nt = T * half >= OX_PARALLEL_MIN / 8 ? ctx->n_threads : 1;
    /* each position's table row is written by one thread */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < T; t++) {
        rope_angles(pos0 + t, theta, half, c + t * half, s + t * half);
        for (int64_t i = 0; i < half; i++)
            s[t * half + i] *= sign;
    }
    const float *xd = ox_tensor_f32(x);
    nt = B * T * H * d >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* rows (b, t) are independent: each output row is written by one thread */
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        for (int64_t h = 0; h < H; h++)
            rotate(y + (bt * H + h) * d, xd + b * x->stride[0] + t * x->stride[1] + h * x->stride[2],
                   x->stride[3], half, c + t * half, s + t * half, half, acc);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

/* dx += R^T dy (rotation by -angle); node->i[0] = pos0. */
static ox_status rope_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *dy = node->out[0]->grad;
    int fresh = 0;     /* a gradient created here is written (=) instead of zeroed and accumulated into */
    ox_tensor *gx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    if (!gx || !dy)
        return ctx->status;
    return rope_apply(ctx, ox_tensor_f32(gx), dy, node->i[0], -1.0f, !fresh);
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
    if (!y || rope_apply(ctx, ox_tensor_f32(y), x, pos0, 1.0f, 0))
        return NULL;
    ox_ag_node *n = ox_ag_record(ctx, &rope_op, 1, &x, 1, &y);
    if (n)
        n->i[0] = pos0;
    return ctx->status ? NULL : y;
}
