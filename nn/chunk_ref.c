/* chunk_ref.c - the sequential references of the chunked linear mixers, kept beside the fast path of
 * nn/chunk.c as nn/attention_ref.c is kept beside nn/attention.c: one token of the Gated DeltaNet
 * recurrence (MODELS.md 5.2, backward 5.3) and of the Mamba-2 SSD recurrence (6.2, backward 6.3), the
 * token-by-token drivers over all (batch, head) pairs with chunk-boundary checkpoints, and the reference
 * ops built from them (ox_nn_gdn_reference, ox_nn_ssd_reference). The one-token functions are also the
 * decode step (ox_chunk_step). */
#include "nn/chunk.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define L OX_CHUNK_LC

/* ---- Gated DeltaNet, one token ------------------------------------------------------------------------ */

/* Sb = alpha S;  u = beta (v - Sb k);  S := Sb + u k^T;  o = S q.  Row i of S only meets v_i. */
static void gdn_token_fwd(float *S, const float *q, const float *k, const float *v, float beta, float a,
                          float *o, int64_t dk, int64_t dv)
{
    const float alpha = expf(a);
    for (int64_t i = 0; i < dv; i++) {
        float *Si = S + i * dk;
        float sk = 0;
        for (int64_t j = 0; j < dk; j++)
            sk += Si[j] * k[j];
        const float u = beta * (v[i] - alpha * sk);
        float acc = 0;
        for (int64_t j = 0; j < dk; j++) {
            Si[j] = alpha * Si[j] + u * k[j];
            acc += Si[j] * q[j];
        }
        o[i] = acc;
    }
}

/* MODELS.md 5.3, one token; dS = gradient w.r.t. S_t on entry, w.r.t. S_{t-1} on exit:
 *   dS += do q^T;  dq = S_t^T do;  du = dS k;  dk = dS^T u - beta Sb^T du;  dbeta = du . e;  dv = beta du;
 *   dSb = dS - beta du k^T;  da = <dSb, Sb>;  dS = alpha dSb            (e = v - Sb k, u = beta e) */
static void gdn_token_bwd(float *dS, const float *Sprev, const float *St, const float *q, const float *k,
                          const float *v, float beta, float a, const float *dO, float *gq, float *gk, float *gv,
                          float *gbeta, float *ga, float *scratch, int64_t dk, int64_t dv)
{
    const float alpha = expf(a);
    float *e = scratch, *du = scratch + dv;
    for (int64_t j = 0; j < dk; j++) {
        gq[j] = 0;
        gk[j] = 0;
    }
    float sb = 0;
    for (int64_t i = 0; i < dv; i++) {
        float *dSi = dS + i * dk;
        const float *Sti = St + i * dk, *Spi = Sprev + i * dk;
        const float doi = dO ? dO[i] : 0.0f;
        float sk = 0, dsk = 0;
        for (int64_t j = 0; j < dk; j++) {
            dSi[j] += doi * q[j];
            gq[j] += Sti[j] * doi;
            sk += Spi[j] * k[j];
            dsk += dSi[j] * k[j];
        }
        e[i] = v[i] - alpha * sk;
        du[i] = dsk;
        sb += dsk * e[i];
        gv[i] = beta * dsk;
    }
    float sa = 0;
    for (int64_t i = 0; i < dv; i++) {
        float *dSi = dS + i * dk;
        const float *Spi = Sprev + i * dk;
        const float ui = beta * e[i], bdu = beta * du[i];
        float acc = 0;
        for (int64_t j = 0; j < dk; j++) {
            gk[j] += dSi[j] * ui - alpha * Spi[j] * bdu;
            const float dsb = dSi[j] - bdu * k[j];
            acc += dsb * Spi[j];
            dSi[j] = alpha * dsb;
        }
        sa += alpha * acc;
    }
    *gbeta = sb;
    *ga = sa;
}

const ox_chunk_token ox_chunk_gdn_token = { gdn_token_fwd, gdn_token_bwd };

/* ---- Mamba-2 SSD, one token ----------------------------------------------------------------------------- */

/* h := exp(a) h + dt x b^T;  y = h c.  (q = c, k = b, v = x, beta = dt) */
static void ssd_token_fwd(float *S, const float *c, const float *b, const float *x, float dt, float a,
                          float *y, int64_t dk, int64_t dv)
{
    const float decay = expf(a);
    for (int64_t i = 0; i < dv; i++) {
        float *Si = S + i * dk;
        const float u = dt * x[i];
        float acc = 0;
        for (int64_t j = 0; j < dk; j++) {
            Si[j] = decay * Si[j] + u * b[j];
            acc += Si[j] * c[j];
        }
        y[i] = acc;
    }
}

/* MODELS.md 6.3, one token, dh = gradient w.r.t. h_t on entry, w.r.t. h_{t-1} on exit:
 *   dh += dy c^T;  dc = h_t^T dy;  dx = dt dh b;  db = dt dh^T x;  ddt = x . (dh b);
 *   da = <dh, exp(a) h_{t-1}>;  dh = exp(a) dh */
static void ssd_token_bwd(float *dS, const float *Sprev, const float *St, const float *c, const float *b,
                          const float *x, float dt, float a, const float *dy, float *gc, float *gb, float *gx,
                          float *gdt, float *ga, float *scratch, int64_t dk, int64_t dv)
{
    (void)scratch;
    const float decay = expf(a);
    for (int64_t j = 0; j < dk; j++) {
        gc[j] = 0;
        gb[j] = 0;
    }
    float sdt = 0, sa = 0;
    for (int64_t i = 0; i < dv; i++) {
        float *dSi = dS + i * dk;
        const float *Sti = St + i * dk, *Spi = Sprev + i * dk;
        const float dyi = dy ? dy[i] : 0.0f;
        float dhb = 0, dsp = 0;
        for (int64_t j = 0; j < dk; j++) {
            dSi[j] += dyi * c[j];
            gc[j] += Sti[j] * dyi;
            gb[j] += dt * dSi[j] * x[i];
            dhb += dSi[j] * b[j];
            dsp += dSi[j] * Spi[j];
        }
        gx[i] = dt * dhb;
        sdt += x[i] * dhb;
        sa += decay * dsp;
        for (int64_t j = 0; j < dk; j++)
            dSi[j] *= decay;
    }
    *gdt = sdt;
    *ga = sa;
}

const ox_chunk_token ox_chunk_ssd_token = { ssd_token_fwd, ssd_token_bwd };

/* ---- token-by-token drivers ------------------------------------------------------------------------------ */

/* Row r of pair (b, h) of a [B, T, H, d] / [B, T, H] operand. */
static const float *row_at(const ox_tensor *t, int64_t b, int64_t tt, int64_t h)
{
    return ox_tensor_f32(t) + b * t->stride[0] + tt * t->stride[1] + h * t->stride[2];
}

ox_status ox_chunk_reference_forward(ox_ctx *ctx, const ox_chunk_args *p, const ox_chunk_token *tok, float *y,
                                     float *s_final, float *saved)
{
    if (ctx->status)
        return ctx->status;
    const int64_t B = p->B, H = p->H, T = p->T, dk = p->dk, dv = p->dv, nc = ox_chunk_count(T);
    const int nt = ox_chunk_threads(ctx, B * H, B * H * T * 3 * dk * dv);
    const size_t wsz = ((size_t)(dv * dk) + 15) & ~(size_t)15;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wsall = ox_ctx_alloc(ctx, sizeof(float) * wsz * (size_t)nt);
    if (!wsall)
        return ctx->status;
    /* Parallel over (batch, head) pairs; each pair walks its tokens in order on one thread. */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        float *S = wsall + wsz * (size_t)omp_get_thread_num();
        const int64_t b = bh / H, h = bh % H;
        ox_chunk_load_state(p->s0, b, h, dv, dk, S);
        for (int64_t t = 0; t < T; t++) {
            if (saved && t % L == 0)
                memcpy(saved + (bh * nc + t / L) * dv * dk, S, sizeof(float) * (size_t)(dv * dk));
            tok->fwd(S, row_at(p->q, b, t, h), row_at(p->k, b, t, h), row_at(p->v, b, t, h),
                     *row_at(p->beta, b, t, h), *row_at(p->a, b, t, h), y + ((b * T + t) * H + h) * dv, dk, dv);
        }
        if (s_final)
            memcpy(s_final + bh * dv * dk, S, sizeof(float) * (size_t)(dv * dk));
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

ox_status ox_chunk_reference_backward(ox_ctx *ctx, const ox_chunk_args *p, const ox_chunk_token *tok,
                                      const float *saved, const float *dy, const float *ds_final,
                                      const ox_chunk_grads *g)
{
    if (ctx->status)
        return ctx->status;
    const int64_t B = p->B, H = p->H, T = p->T, dk = p->dk, dv = p->dv, nc = ox_chunk_count(T);
    const int nt = ox_chunk_threads(ctx, B * H, B * H * T * 8 * dk * dv);
    /* per thread: the chunk's L + 1 states, dS, one token's gq, gk, gv and the token scratch */
    const size_t wsz = ((size_t)((L + 2) * dv * dk + 2 * dk + dv + 3 * dv + dk) + 15) & ~(size_t)15;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wsall = ox_ctx_alloc(ctx, sizeof(float) * wsz * (size_t)nt);
    if (!wsall)
        return ctx->status;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        float *st = wsall + wsz * (size_t)omp_get_thread_num();
        float *dS = st + (L + 1) * dv * dk, *gq = dS + dv * dk, *gk = gq + dk, *gv = gk + dk, *scr = gv + dv;
        const int64_t b = bh / H, h = bh % H;
        if (ds_final)
            memcpy(dS, ds_final + bh * dv * dk, sizeof(float) * (size_t)(dv * dk));
        else
            memset(dS, 0, sizeof(float) * (size_t)(dv * dk));
        for (int64_t c = nc - 1; c >= 0; c--) {
            const int64_t t0 = c * L, n = T - t0 < L ? T - t0 : L;
            /* recompute the chunk's states forward from its checkpoint (never invert the recurrence) */
            memcpy(st, saved + (bh * nc + c) * dv * dk, sizeof(float) * (size_t)(dv * dk));
            for (int64_t r = 0; r < n; r++) {
                float *Sr = st + (r + 1) * dv * dk;
                memcpy(Sr, Sr - dv * dk, sizeof(float) * (size_t)(dv * dk));
                tok->fwd(Sr, row_at(p->q, b, t0 + r, h), row_at(p->k, b, t0 + r, h), row_at(p->v, b, t0 + r, h),
                         *row_at(p->beta, b, t0 + r, h), *row_at(p->a, b, t0 + r, h), scr, dk, dv);
            }
            for (int64_t r = n - 1; r >= 0; r--) {
                const int64_t t = t0 + r, row = (b * T + t) * H + h;
                float gb, ga;
                tok->bwd(dS, st + r * dv * dk, st + (r + 1) * dv * dk, row_at(p->q, b, t, h),
                         row_at(p->k, b, t, h), row_at(p->v, b, t, h), *row_at(p->beta, b, t, h),
                         *row_at(p->a, b, t, h), dy ? dy + row * dv : NULL, gq, gk, gv, &gb, &ga, scr, dk, dv);
                if (g->q)
                    ox_chunk_add_rows(g->q + row * dk, dk, gq, 1, dk);
                if (g->k)
                    ox_chunk_add_rows(g->k + row * dk, dk, gk, 1, dk);
                if (g->v)
                    ox_chunk_add_rows(g->v + row * dv, dv, gv, 1, dv);
                if (g->beta)
                    g->beta[row] += gb;
                if (g->a)
                    g->a[row] += ga;
            }
        }
        if (g->s0)
            ox_chunk_add_rows(g->s0 + bh * dv * dk, dk, dS, dv, dk);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

/* ---- the reference ops ----------------------------------------------------------------------------------- */

static ox_status gdn_ref_fwd(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved)
{
    return ox_chunk_reference_forward(ctx, p, &ox_chunk_gdn_token, y, s_final, saved);
}

static ox_status gdn_ref_bwd(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                             const float *ds_final, const ox_chunk_grads *g)
{
    return ox_chunk_reference_backward(ctx, p, &ox_chunk_gdn_token, saved, dy, ds_final, g);
}

static ox_status ssd_ref_fwd(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved)
{
    return ox_chunk_reference_forward(ctx, p, &ox_chunk_ssd_token, y, s_final, saved);
}

static ox_status ssd_ref_bwd(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                             const float *ds_final, const ox_chunk_grads *g)
{
    return ox_chunk_reference_backward(ctx, p, &ox_chunk_ssd_token, saved, dy, ds_final, g);
}

const ox_chunk_impl ox_chunk_gdn_reference_impl = {
    { "gdn_reference", ox_chunk_node_backward }, OX_CHUNK_GDN, gdn_ref_fwd, gdn_ref_bwd, OX_CHUNK_GDN_NAMES
};
const ox_chunk_impl ox_chunk_ssd_reference_impl = {
    { "ssd_reference", ox_chunk_node_backward }, OX_CHUNK_SSD, ssd_ref_fwd, ssd_ref_bwd, OX_CHUNK_SSD_NAMES
};
