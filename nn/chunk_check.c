/* chunk_check.c - the argument checks of the chunked GDN / SSD ops (nn/chunk.h): shapes and dtypes of the
 * operands (ox_chunk_check), the value preconditions of the gates (ox_chunk_check_range), and the row-major
 * view the kernels read (ox_chunk_rows). The kernels themselves are in chunk.c. */
#include "nn/chunk.h"

#include <math.h>
#include <stdio.h>

/* ---- argument checks ---------------------------------------------------------------------------------- */

int ox_chunk_check_range(ox_ctx *ctx, const char *op, const char *name, const ox_tensor *t, float lo, float hi,
                         const char *allowed)
{
    if (ctx->status || !t || t->dtype != OX_F32)
        return 0;
    const float *x = ox_tensor_f32(t);
    const int64_t n = ox_tensor_numel(t);
    int64_t idx[OX_MAX_DIMS] = { 0 };
    for (int64_t e = 0; e < n; e++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->stride[d];
        const float v = x[off];
        if (!isfinite(v) || v < lo || v > hi) {
            char at[OX_SHAPE_BUF];
            int len = snprintf(at, sizeof at, "[");
            for (int d = 0; d < t->ndim && len < (int)sizeof at; d++)
                len += snprintf(at + len, sizeof at - (size_t)len, "%s%lld", d ? ", " : "", (long long)idx[d]);
            if (len < (int)sizeof at)
                snprintf(at + len, sizeof at - (size_t)len, "]");
            ox_ctx_fail(ctx, isfinite(v) ? OX_ERR_ARG : OX_ERR_NUMERIC, "%s: %s%s = %.9g violates %s", op, name,
                        at, (double)v, allowed);
            return 1;
        }
        for (int d = t->ndim - 1; d >= 0; d--) {    /* next index, row-major */
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
    return 0;
}

ox_tensor *ox_chunk_rows(ox_ctx *ctx, ox_tensor *t)
{
    if (t->ndim == 0 || t->shape[t->ndim - 1] <= 1 || t->stride[t->ndim - 1] == 1)
        return t;
    return ox_tensor_contiguous(ctx, t);
}

int ox_chunk_check(ox_ctx *ctx, const char *op, const char *const names[6], ox_chunk_kind kind,
                   ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta, ox_tensor *a, ox_tensor *s0,
                   ox_chunk_args *p)
{
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    ox_tensor *all[6] = { q, k, v, beta, a, s0 };
    for (int i = 0; i < 6; i++)
        if (all[i] && ox_check_f32(ctx, op, all[i]))
            return 1;
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s, %s %s and %s %s must be 4-d [B, T, H, d]", op, names[0],
                    ox_shape_str(q, b1), names[1], ox_shape_str(k, b2), names[2], ox_shape_str(v, b3));
        return 1;
    }
    const int64_t B = q->shape[0], T = q->shape[1], H = q->shape[2], dk = q->shape[3], dv = v->shape[3];
    if (!ox_tensor_same_shape(q, k) || v->shape[0] != B || v->shape[1] != T || v->shape[2] != H) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s, %s %s and %s %s must be [B, T, H, dk], [B, T, H, dk], "
                    "[B, T, H, dv]", op, names[0], ox_shape_str(q, b1), names[1], ox_shape_str(k, b2),
                    names[2], ox_shape_str(v, b3));
        return 1;
    }
    if (B < 1 || T < 1 || H < 1 || dk < 1 || dv < 1) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: empty %s %s or %s %s", op, names[0], ox_shape_str(q, b1),
                    names[2], ox_shape_str(v, b2));
        return 1;
    }
    for (int i = 3; i <= 4; i++) {
        const ox_tensor *t = all[i];
        if (t->ndim != 3 || t->shape[0] != B || t->shape[1] != T || t->shape[2] != H) {
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s must be [B, T, H] = [%lld, %lld, %lld] (%s %s)", op,
                        names[i], ox_shape_str(t, b1), (long long)B, (long long)T, (long long)H, names[0],
                        ox_shape_str(q, b2));
            return 1;
        }
    }
    if (s0 && (s0->ndim != 4 || s0->shape[0] != B || s0->shape[1] != H || s0->shape[2] != dv
               || s0->shape[3] != dk)) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s must be [B, H, dv, dk] = [%lld, %lld, %lld, %lld]", op,
                    names[5], ox_shape_str(s0, b1), (long long)B, (long long)H, (long long)dv, (long long)dk);
        return 1;
    }
    p->kind = kind;
    p->B = B;
    p->T = T;
    p->H = H;
    p->dk = dk;
    p->dv = dv;
    p->q = q;
    p->k = k;
    p->v = v;
    p->beta = beta;
    p->a = a;
    p->s0 = s0;
    return 0;
}
