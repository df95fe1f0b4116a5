/* attention_ref.c - the materialised reference of (masked) attention, forward and backward side by side.
 *
 * Per (b, h) it forms the whole T x T score matrix S = Q K^T / sqrt(dk) with one ox_sgemm (hidden keys
 * included, then masked), turns each computed row t into a softmax P over its visible keys s <= lim_t
 * (attention.h; a skipped row, or one that sees no key, is all zeros), and multiplies o = P V. P is saved
 * for backward, as llm.c's attention saves `att`:
 *     dV += P^T dO ;  dP = dO V^T ;  dS_ts = P_ts (dP_ts - sum_s' P_ts' dP_ts')
 *     dQ += dS K / sqrt(dk) ;  dK += dS^T Q / sqrt(dk)
 * (rowsum(P dP) equals Delta = dO . O of the fast path.) The operands' strides go straight to the gemm,
 * so no input is copied. Memory O(B H T^2): for tests and teaching only. */
#include "nn/attention.h"
#include "tensor/gemm.h"
#include "tensor/iter.h"

#include <math.h>
#include <omp.h>

/* Pointer to element (b, 0, h, 0) of a [B, T, H, n] tensor. */
static float *head_base(const ox_tensor *t, int64_t b, int64_t h)
{
    return ox_tensor_f32(t) + b * t->stride[0] + h * t->stride[2];
}

static ox_status reference_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *q = node->in[0], *k = node->in[1], *v = node->in[2], *o = node->out[0];
    const ox_tensor *P = node->saved;
    ox_tensor *gq = ox_ag_grad(ctx, q), *gk = ox_ag_grad(ctx, k), *gv = ox_ag_grad(ctx, v);
    if (ctx->status)
        return ctx->status;
    if (!o->grad)
        return OX_OK;
    const int64_t B = q->shape[0], T = q->shape[1], H = q->shape[2], dk = q->shape[3], dv = v->shape[3];
    const float scale = (float)(1.0 / sqrt((double)dk));
    int nt = B * H * T * T * (dk + dv) >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *scratch = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nt * T * T));
    if (!scratch)
        return ctx->status;
    const float *dout = ox_tensor_f32(o->grad);
    /* (b, h) pairs are independent: each writes only its own rows of dq, dk, dv */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *p = ox_tensor_f32(P) + bh * T * T;
        const float *dob = dout + (b * T * H + h) * dv;
        float *dS = scratch + (int64_t)omp_get_thread_num() * T * T;
        if (gv)     /* dV += P^T dO */
            ox_sgemm(1, T, dv, T, 1.0f, p, 1, T, dob, H * dv, 1, 1.0f,
                     ox_tensor_f32(gv) + (b * T * H + h) * dv, H * dv, 1);
        if (!gq && !gk)
            continue;
        /* dP = dO V^T, then dS = P (dP - rowsum(P dP)) in place */
        ox_sgemm(1, T, T, dv, 1.0f, dob, H * dv, 1, head_base(v, b, h), v->stride[3], v->stride[1],
                 0.0f, dS, T, 1);
        for (int64_t t = 0; t < T; t++) {
            const float *pr = p + t * T;
            float *dr = dS + t * T;
            float rs = 0.0f;
            for (int64_t s = 0; s < T; s++)
                rs += pr[s] * dr[s];
            for (int64_t s = 0; s < T; s++)
                dr[s] = pr[s] * (dr[s] - rs);
        }
        if (gq)     /* dQ += dS K / sqrt(dk) */
            ox_sgemm(1, T, dk, T, scale, dS, T, 1, head_base(k, b, h), k->stride[1], k->stride[3], 1.0f,
                     ox_tensor_f32(gq) + (b * T * H + h) * dk, H * dk, 1);
        if (gk)     /* dK += dS^T Q / sqrt(dk) */
            ox_sgemm(1, T, dk, T, scale, dS, 1, T, head_base(q, b, h), q->stride[1], q->stride[3], 1.0f,
                     ox_tensor_f32(gk) + (b * T * H + h) * dk, H * dk, 1);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op reference_op = { "attention_reference", reference_backward };

ox_tensor *ox_nn_attention_reference(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                                     const ox_tensor *rows)
{
    return ox_nn_attention_reference_masked(ctx, q, k, v, rows, NULL);
}

ox_tensor *ox_nn_attention_reference_masked(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                                            const ox_tensor *rows, const ox_nn_attn_mask *mask)
{
    static const ox_nn_attn_mask causal = { 1, NULL };
    if (ctx->status || !q || !k || !v)
        return NULL;
    if (!mask)
        mask = &causal;
    if (ox_nn_attention_check(ctx, "attention_reference", q, k, v, rows) ||
        ox_nn_attention_check_mask(ctx, "attention_reference", q, mask))
        return NULL;
    const int64_t B = q->shape[0], T = q->shape[1], H = q->shape[2], dk = q->shape[3], dv = v->shape[3];
    const float scale = (float)(1.0 / sqrt((double)dk));
    ox_tensor *P = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, H, T, T));
    ox_tensor *o = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, T, H, dv));
    if (!P || !o)
        return NULL;
    const int32_t *rv = rows ? ox_tensor_i32(rows) : NULL;
    int nt = B * H * T * T * (dk + dv) >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* (b, h) pairs are independent: each writes its own P matrix and o rows */
#pragma omp parallel for num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        float *p = ox_tensor_f32(P) + bh * T * T;
        int64_t len = ox_nn_attention_key_len(mask, b, T);
        /* S = Q K^T / sqrt(dk), the full T x T matrix */
        ox_sgemm(1, T, T, dk, scale, head_base(q, b, h), q->stride[1], q->stride[3], head_base(k, b, h),
                 k->stride[3], k->stride[1], 0.0f, p, T, 1);
        for (int64_t t = 0; t < T; t++) {
            float *pr = p + t * T;
            int64_t lim = mask->causal && t < len - 1 ? t : len - 1;     /* the last visible key */
            if (lim < 0 || (rv && !rv[b * rows->stride[0] + t * rows->stride[1]])) {
                for (int64_t s = 0; s < T; s++)
                    pr[s] = 0.0f;
                continue;
            }
            float mx = -INFINITY, sum = 0.0f;
            for (int64_t s = 0; s <= lim; s++)
                mx = fmaxf(mx, pr[s]);
            for (int64_t s = 0; s <= lim; s++) {
                pr[s] = expf(pr[s] - mx);
                sum += pr[s];
            }
            float inv = 1.0f / sum;
            for (int64_t s = 0; s <= lim; s++)
                pr[s] *= inv;
            for (int64_t s = lim + 1; s < T; s++)   /* the mask */
                pr[s] = 0.0f;
        }
        /* o = P V */
        ox_sgemm(1, T, dv, T, 1.0f, p, T, 1, head_base(v, b, h), v->stride[1], v->stride[3], 0.0f,
                 ox_tensor_f32(o) + (b * T * H + h) * dv, H * dv, 1);
    }
    ox_ag_node *n = ox_ag_record(ctx, &reference_op, 3, (ox_tensor *[]){ q, k, v }, 1, &o);
    if (n)
        n->saved = P;
    return ctx->status ? NULL : o;
}
