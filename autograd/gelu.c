/* gelu.c - GELU, the Gaussian error linear unit (Hendrycks & Gimpel 2016, torch.nn.functional.gelu), in its
 * exact form and its tanh approximation: one fused op (forward kernel, backward kernel, tape glue).
 *
 * Math (Phi the standard normal CDF, phi its density, k0 = sqrt(2/pi), k1 = 0.044715):
 *   exact (approximate='none'):  y = x Phi(x) = x erfc(-x/sqrt 2) / 2
 *                                y' = Phi(x) + x phi(x),            phi(x) = exp(-x^2/2) / sqrt(2 pi)
 *   tanh  (approximate='tanh'):  y = x (1 + tanh(u)) / 2 = x s,     u = k0 (x + k1 x^3),  s = sigmoid(2u)
 *                                y' = s + 2 x s (1 - s) k0 (1 + 3 k1 x^2)
 * Both are written with functions that have vector variants in glibc's libmvec, so the loops vectorise:
 * erfc (declared `simd` below, as tensor/vmath.h does for exp) and exp (tensor/vmath.h). erfc(-x/sqrt 2)
 * instead of PyTorch's 1 + erf(x/sqrt 2) keeps Phi accurate to a few ulp in the left tail (where 1 + erf
 * cancels), and (1 + tanh u) / 2 = 1 / (1 + e^-2u) is the same number without the cancellation of
 * 1 + tanh near u = -inf. Nothing is saved: backward recomputes Phi or s from the input (the node's).
 * Forward and backward run through ox_iter (tensor/iter.h): a contiguous input is one segment (split
 * between threads when large), a strided one any view. Each value depends only on the input element (see
 * GELU_BLOCK below), so results are bit-identical at any thread count and for any layout. */
#include "autograd/ops.h"
#include "tensor/iter.h"
#include "tensor/vmath.h"

#include <math.h>

/* glibc >= 2.35 has vector variants of erfcf in libmvec (linked by -lm): declaring it simd lets gcc
 * vectorise the exact form's loops, as vmath.h does for expf (same guard; older glibc: scalar calls). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
float erfcf(float) __attribute__((simd("notinbranch")));
#endif
#endif

#define GELU_K0 0.7978845608028654f     /* sqrt(2 / pi) */
#define GELU_K1 0.044715f
#define GELU_SQRT1_2 0.7071067811865476f  /* 1 / sqrt(2) */
#define GELU_INV_SQRT_2PI 0.3989422804014327f

static const char *const gelu_names[2] = { "gelu", "gelu(tanh)" };

struct gelu_args {
    ox_ag_gelu_approx approx;
    float *y;               /* forward: y; backward: the gradient g */
    const float *x, *dy;    /* dy: backward only */
    int fresh;              /* backward: g was just created, write '=' */
};

/* Elements are computed in blocks of GELU_BLOCK through one fixed-length loop that gcc vectorises whole
 * (no scalar remainder; a short last block is padded), so every element goes through the same libmvec
 * variant wherever it sits: the vector and scalar erfcf / expf differ in the last bit for ~20% / ~50% of
 * inputs, and a plain loop's scalar tail would move with the segment and thread boundaries. */
#define GELU_BLOCK 16

/* y[j] = gelu(x[j]) for j < GELU_BLOCK */
static inline void gelu_block(ox_ag_gelu_approx approx, const float *x, float *y)
{
    if (approx == OX_AG_GELU_TANH) {
#pragma omp simd
        for (int j = 0; j < GELU_BLOCK; j++) {
            float z = x[j];
            y[j] = z / (1.0f + expf(-2.0f * GELU_K0 * (z + GELU_K1 * z * z * z)));
        }
    } else {
#pragma omp simd
        for (int j = 0; j < GELU_BLOCK; j++)
            y[j] = 0.5f * x[j] * erfcf(-x[j] * GELU_SQRT1_2);
    }
}

/* d[j] = gelu'(x[j]) for j < GELU_BLOCK */
static inline void dgelu_block(ox_ag_gelu_approx approx, const float *x, float *d)
{
    if (approx == OX_AG_GELU_TANH) {
#pragma omp simd
        for (int j = 0; j < GELU_BLOCK; j++) {
            /* 1 - s = e s, taken so where s is near 1 (e < 1): 1 - s would cancel there */
            float z = x[j], z2 = z * z;
            float e = expf(-2.0f * GELU_K0 * (z + GELU_K1 * z2 * z)), s = 1.0f / (1.0f + e);
            float one_minus_s = e < 1.0f ? e * s : 1.0f - s;
            d[j] = s + 2.0f * z * s * one_minus_s * GELU_K0 * (1.0f + 3.0f * GELU_K1 * z2);
        }
    } else {
#pragma omp simd
        for (int j = 0; j < GELU_BLOCK; j++) {
            float z = x[j];
            d[j] = 0.5f * erfcf(-z * GELU_SQRT1_2) + z * GELU_INV_SQRT_2PI * expf(-0.5f * z * z);
        }
    }
}

/* y = gelu(x) over one segment (operands y, x) */
static void gelu_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct gelu_args *e = arg;
    float *y = e->y + off[0];
    const float *x = e->x + off[1];
    int64_t sy = st[0], sx = st[1];
    for (int64_t i = 0; i < n; i += GELU_BLOCK) {
        int m = n - i < GELU_BLOCK ? (int)(n - i) : GELU_BLOCK;
        float xb[GELU_BLOCK] = { 0 }, yb[GELU_BLOCK];
        for (int j = 0; j < m; j++)
            xb[j] = x[(i + j) * sx];
        gelu_block(e->approx, xb, yb);
        for (int j = 0; j < m; j++)
            y[(i + j) * sy] = yb[j];
    }
}

/* g (+)= dy * gelu'(x) over one segment (operands g, dy, x) */
static void gelu_grad_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct gelu_args *e = arg;
    float *g = e->y + off[0];
    const float *dy = e->dy + off[1], *x = e->x + off[2];
    int64_t sg = st[0], sd = st[1], sx = st[2];
    for (int64_t i = 0; i < n; i += GELU_BLOCK) {
        int m = n - i < GELU_BLOCK ? (int)(n - i) : GELU_BLOCK;
        float xb[GELU_BLOCK] = { 0 }, db[GELU_BLOCK];
        for (int j = 0; j < m; j++)
            xb[j] = x[(i + j) * sx];
        dgelu_block(e->approx, xb, db);
        if (e->fresh)
            for (int j = 0; j < m; j++)
                g[(i + j) * sg] = dy[(i + j) * sd] * db[j];
        else
            for (int j = 0; j < m; j++)
                g[(i + j) * sg] += dy[(i + j) * sd] * db[j];
    }
}

static ox_status gelu_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *x = node->in[0], *y = node->out[0];
    int fresh = 0;
    ox_tensor *g = ox_ag_grad_fresh(ctx, x, &fresh);
    if (!g || !y->grad)
        return ctx->status;
    struct gelu_args e = { (ox_ag_gelu_approx)node->i[0], ox_tensor_f32(g), ox_tensor_f32(x),
                           ox_tensor_f32(y->grad), fresh };
    ox_iter it;
    ox_iter_init(&it, 3, (const ox_tensor *[]){ g, y->grad, x });
    ox_iter_run(&it, ctx->n_threads, gelu_grad_seg, &e);
    return OX_OK;
}

static const ox_ag_op gelu_op = { "gelu", gelu_backward };

ox_tensor *ox_ag_gelu(ox_ctx *ctx, ox_tensor *x, ox_ag_gelu_approx approx)
{
    if (ctx->status || !x)
        return NULL;
    if (approx != OX_AG_GELU_ERF && approx != OX_AG_GELU_TANH) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "gelu: approx %d is neither OX_AG_GELU_ERF (0) nor OX_AG_GELU_TANH (1)",
                    (int)approx);
        return NULL;
    }
    if (ox_check_f32(ctx, gelu_names[approx], x))
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y)
        return NULL;
    struct gelu_args e = { approx, ox_tensor_f32(y), ox_tensor_f32(x), NULL, 0 };
    ox_iter it;
    ox_iter_init(&it, 2, (const ox_tensor *[]){ y, x });
    ox_iter_run(&it, ctx->n_threads, gelu_seg, &e);
    ox_ag_node *n = ox_ag_record(ctx, &gelu_op, 1, &x, 1, &y);
    if (n)
        n->i[0] = approx;
    return ctx->status ? NULL : y;
}
