/* chunk.c - the chunked fast path shared by SSD and Gated DeltaNet: one chunk's forward (F1-F9) and
 * backward (B9-B1) of MODELS.md 5.4/5.5 (6.4/6.5 for SSD), and the drivers that walk the chunks of every
 * (batch, head) pair in parallel. See nn/chunk.h for the equations. */
#include "nn/chunk.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "autograd/lanes.h"
#include "tensor/gemm.h"
#include "tensor/iter.h"

#define L OX_CHUNK_LC

/* One chunk of one (batch, head): n rows starting at the chunk's first token. Rows of q, k, v are
 * contiguous (column stride 1) with the given row strides. */
typedef struct chunk_in {
    int64_t n, dk, dv;
    const float *q, *k, *v;
    int64_t rq, rk, rv;
    const float *beta, *a;   /* beta (GDN) or dt (SSD), and the log-decay; strides rb, ra */
    int64_t rb, ra;
} chunk_in;

/* Scratch for one chunk on one thread (floats carved from one arena block). */
typedef struct chunk_ws {
    float *g, *gam, *eta;          /* [Lc] F1 */
    float *Gam, *QK, *P;           /* [Lc, Lc] F2, Q K^T, F7 */
    float *KK, *A;                 /* [Lc, Lc] K K^T and F3's A (GDN) */
    float *Bk;                     /* [Lc, dk] diag(beta ⊙ gam) K (GDN) */
    float *U;                      /* [Lc, dv] F6 */
    float *Kd;                     /* [Lc, dk] diag(eta) K */
    float *S, *S2;                 /* [dv, dk] running state (forward) / dS1, dS0 (backward) */
    float *Kt, *S0t;               /* [dk, Lc] K^T and [dk, dv] S0^T (see transpose()) */
    /* backward only */
    float *dOg, *tmp;              /* [Lc, dv] diag(gam) dO, [Lc, dk] dO S0 */
    float *dP, *dGam, *dA;         /* [Lc, Lc] */
    float *dU, *dV;                /* [Lc, dv] */
    float *dKd, *dQ, *dK;          /* [Lc, dk] */
    float *dBk;                    /* [Lc, dk] */
    float *dS1t, *Ut;              /* [dk, dv] dS1^T, [dv, Lc] U^T */
    float *dg, *dbeta, *da;        /* [Lc] */
} chunk_ws;

static size_t ws_floats(int64_t dk, int64_t dv, int backward)
{
    size_t n = 3 * L + 5 * L * L + (size_t)L * dk + (size_t)L * dv + (size_t)L * dk + 2 * (size_t)dv * dk
               + (size_t)dk * L + (size_t)dk * dv;
    if (backward)
        n += (size_t)L * dv + (size_t)L * dk + 3 * L * L + 2 * (size_t)L * dv + 3 * (size_t)L * dk
             + (size_t)L * dk + 3 * L + (size_t)dk * dv + (size_t)dv * L;
    return (n + 15) & ~(size_t)15;   /* keep every thread's block 64-byte aligned */
}

static void ws_carve(chunk_ws *w, float *p, int64_t dk, int64_t dv, int backward)
{
#define TAKE(field, count) do { w->field = p; p += (count); } while (0)
    TAKE(g, L); TAKE(gam, L); TAKE(eta, L);
    TAKE(Gam, L * L); TAKE(QK, L * L); TAKE(P, L * L); TAKE(KK, L * L); TAKE(A, L * L);
    TAKE(Bk, L * dk); TAKE(U, L * dv); TAKE(Kd, L * dk);
    TAKE(S, dv * dk); TAKE(S2, dv * dk);
    TAKE(Kt, dk * L); TAKE(S0t, dk * dv);
    if (backward) {
        TAKE(dOg, L * dv); TAKE(tmp, L * dk);
        TAKE(dP, L * L); TAKE(dGam, L * L); TAKE(dA, L * L);
        TAKE(dU, L * dv); TAKE(dV, L * dv);
        TAKE(dKd, L * dk); TAKE(dQ, L * dk); TAKE(dK, L * dk);
        TAKE(dBk, L * dk);
        TAKE(dS1t, dk * dv); TAKE(Ut, dv * L);
        TAKE(dg, L); TAKE(dbeta, L); TAKE(da, L);
    }
#undef TAKE
}

/* dst [cols, rows] (row stride ldd) = src [rows, cols] (row stride rs, column stride 1) transposed.
 * BLIS runs a product A B^T of row-major operands (B column-stored) about 2x slower than A B at these
 * sizes (measured 64^3: ~35 us vs ~18 us), and the copy costs ~1 us: every B^T operand is transposed
 * once into scratch and the products are then plain A B. */
static void transpose(const float *src, int64_t rows, int64_t cols, int64_t rs, float *dst, int64_t ldd)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * ldd + r] = src[r * rs + c];
}

/* ---- one chunk, forward pieces ---------------------------------------------------------------------- */

/* F1-F7 and U: everything that depends on the chunk's inputs and S0 but not on the outputs. */
static void chunk_prepare(const chunk_in *c, ox_chunk_kind kind, const float *S0, chunk_ws *w)
{
    const int64_t n = c->n, dk = c->dk, dv = c->dv;
    /* F1: chunk-local cumulative log-decay (restarts every chunk, so |g| error stays small) */
    float acc = 0;
    for (int64_t r = 0; r < n; r++) {
        acc += c->a[r * c->ra];
        w->g[r] = acc;
        w->gam[r] = expf(acc);
    }
    for (int64_t r = 0; r < n; r++)
        w->eta[r] = expf(w->g[n - 1] - w->g[r]);
    /* F2: exponents of differences only (never gam_r / gam_i: gam may underflow to 0) */
    for (int64_t r = 0; r < n; r++) {
        float *row = w->Gam + r * L;
        for (int64_t i = 0; i <= r; i++)
            row[i] = expf(w->g[r] - w->g[i]);
        for (int64_t i = r + 1; i < n; i++)
            row[i] = 0;
    }
    /* F7: P = (Q K^T) ⊙ Gam, lower triangular including the diagonal */
    transpose(c->k, n, dk, c->rk, w->Kt, L);
    transpose(S0, c->dv, dk, dk, w->S0t, dv);
    ox_sgemm(1, n, n, dk, 1.0f, c->q, c->rq, 1, w->Kt, L, 1, 0.0f, w->QK, L, 1);
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < n; i++)
            w->P[r * L + i] = w->QK[r * L + i] * w->Gam[r * L + i];
    if (kind == OX_CHUNK_SSD) {
        /* SSD: U = diag(dt) X */
        for (int64_t r = 0; r < n; r++) {
            const float bt = c->beta[r * c->rb], *vr = c->v + r * c->rv;
            float *ur = w->U + r * dv;
            for (int64_t j = 0; j < dv; j++)
                ur[j] = bt * vr[j];
        }
        return;
    }
    /* F3: A[r,i] = beta_r (k_r . k_i) Gam[r,i], i < r (only the strict lower part is read by the solve) */
    ox_sgemm(1, n, n, dk, 1.0f, c->k, c->rk, 1, w->Kt, L, 1, 0.0f, w->KK, L, 1);
    for (int64_t r = 0; r < n; r++) {
        const float br = c->beta[r * c->rb];
        for (int64_t i = 0; i < r; i++)
            w->A[r * L + i] = br * w->KK[r * L + i] * w->Gam[r * L + i];
    }
    /* F4-F6: U = Ut - W S0^T with [Ut | W] = Tm [Bv | Bk], Bv = diag(beta) V, Bk = diag(beta ⊙ gam) K.
     * Tm is linear, so U = Tm (Bv - Bk S0^T): one unit lower solve of (I + A) U = Bv - Bk S0^T with dv
     * right-hand sides instead of dv + dk (same result, half the solve; Tm is never formed). */
    for (int64_t r = 0; r < n; r++) {
        const float br = c->beta[r * c->rb], bg = br * w->gam[r];
        const float *vr = c->v + r * c->rv, *kr = c->k + r * c->rk;
        float *ur = w->U + r * dv, *bkr = w->Bk + r * dk;
        for (int64_t j = 0; j < dv; j++)
            ur[j] = br * vr[j];
        for (int64_t j = 0; j < dk; j++)
            bkr[j] = bg * kr[j];
    }
    ox_sgemm(1, n, dv, dk, -1.0f, w->Bk, dk, 1, w->S0t, dv, 1, 1.0f, w->U, dv, 1);
    ox_strsm_unit_lower(1, 0, n, dv, w->A, L, 1, w->U, dv, 1);
}

/* F8: O = diag(gam) Q S0^T + P U, written to rows of o (row stride ro). Uses S0^T from chunk_prepare. */
static void chunk_output(const chunk_in *c, const chunk_ws *w, float *o, int64_t ro)
{
    const int64_t n = c->n, dk = c->dk, dv = c->dv;
    ox_sgemm(1, n, dv, dk, 1.0f, c->q, c->rq, 1, w->S0t, dv, 1, 0.0f, o, ro, 1);
    for (int64_t r = 0; r < n; r++) {
        const float gr = w->gam[r];
        float *orow = o + r * ro;
        for (int64_t j = 0; j < dv; j++)
            orow[j] *= gr;
    }
    ox_sgemm(1, n, dv, n, 1.0f, w->P, L, 1, w->U, dv, 1, 1.0f, o, ro, 1);
}

/* F9 in place: S := gam_n S + U^T diag(eta) K. */
static void chunk_state(const chunk_in *c, chunk_ws *w, float *S)
{
    const int64_t n = c->n, dk = c->dk, dv = c->dv;
    for (int64_t r = 0; r < n; r++) {
        const float e = w->eta[r], *kr = c->k + r * c->rk;
        float *kd = w->Kd + r * dk;
        for (int64_t j = 0; j < dk; j++)
            kd[j] = e * kr[j];
    }
    ox_sgemm(1, dv, dk, n, 1.0f, w->U, 1, dv, w->Kd, dk, 1, w->gam[n - 1], S, dk, 1);
}

/* ---- one chunk, backward ------------------------------------------------------------------------------ */

/* Given dS1 (w->S on entry: gradient w.r.t. the state after the chunk) and dO (rows of do with stride rdo,
 * or NULL), computes the chunk's dQ, dK (w->dQ, w->dK [n, dk]), dV (w->dV [n, dv]), dbeta (dt for SSD) and
 * da (w->dbeta, w->da [n]), and leaves dS0 in w->S2. Equations: MODELS.md 5.5 (6.5 for SSD). */
static void chunk_backward(const chunk_in *c, ox_chunk_kind kind, const float *S0, const float *dO,
                           int64_t rdo, chunk_ws *w)
{
    const int64_t n = c->n, dk = c->dk, dv = c->dv;
    const float *dS1 = w->S;
    float *dS0 = w->S2, *dg = w->dg;
    chunk_prepare(c, kind, S0, w);
    memset(w->dQ, 0, sizeof(float) * (size_t)(n * dk));
    memset(w->dK, 0, sizeof(float) * (size_t)(n * dk));
    memset(w->dV, 0, sizeof(float) * (size_t)(n * dv));
    memset(w->dbeta, 0, sizeof(float) * (size_t)n);
    memset(dg, 0, sizeof(float) * (size_t)n);
    for (int64_t r = 0; r < n; r++)
        memset(w->dGam + r * L, 0, sizeof(float) * (size_t)n);

    /* B9 (state out): dS0 = gam_n dS1; dg_n += gam_n <dS1, S0>; dU = Kd dS1^T; dKd = U dS1 */
    const float gn = w->gam[n - 1];
    float sdot = 0;
    for (int64_t j = 0; j < dv * dk; j++) {
        dS0[j] = gn * dS1[j];
        sdot += dS1[j] * S0[j];
    }
    dg[n - 1] += gn * sdot;
    for (int64_t r = 0; r < n; r++) {
        const float e = w->eta[r], *kr = c->k + r * c->rk;
        float *kd = w->Kd + r * dk;
        for (int64_t j = 0; j < dk; j++)
            kd[j] = e * kr[j];
    }
    transpose(dS1, dv, dk, dk, w->dS1t, dv);
    ox_sgemm(1, n, dv, dk, 1.0f, w->Kd, dk, 1, w->dS1t, dv, 1, 0.0f, w->dU, dv, 1);
    ox_sgemm(1, n, dk, dv, 1.0f, w->U, dv, 1, dS1, dk, 1, 0.0f, w->dKd, dk, 1);
    for (int64_t r = 0; r < n; r++) {
        const float e = w->eta[r], *kr = c->k + r * c->rk, *dkd = w->dKd + r * dk;
        float *dkr = w->dK + r * dk;
        for (int64_t j = 0; j < dk; j++)
            dkr[j] += e * dkd[j];
        const float t = e * lanes_dot(dkd, kr, dk);
        dg[n - 1] += t;
        dg[r] -= t;
    }

    transpose(w->U, n, dv, dv, w->Ut, L);   /* U^T for dP (B8) and dA (B4) */
    if (dO) {
        /* B8 (outputs): dQ += diag(gam) dO S0; dS0 += (diag(gam) dO)^T Q; dg_r += gam_r dO_r . (S0 q_r);
         * dP = (dO U^T) on i <= r; dU += P^T dO */
        ox_sgemm(1, n, dk, dv, 1.0f, dO, rdo, 1, S0, dk, 1, 0.0f, w->tmp, dk, 1);
        for (int64_t r = 0; r < n; r++) {
            const float gr = w->gam[r], *tr = w->tmp + r * dk, *qr = c->q + r * c->rq, *dor = dO + r * rdo;
            float *dqr = w->dQ + r * dk, *dog = w->dOg + r * dv;
            for (int64_t j = 0; j < dk; j++)
                dqr[j] += gr * tr[j];
            dg[r] += gr * lanes_dot(tr, qr, dk);
            for (int64_t j = 0; j < dv; j++)
                dog[j] = gr * dor[j];
        }
        ox_sgemm(1, dv, dk, n, 1.0f, w->dOg, 1, dv, c->q, c->rq, 1, 1.0f, dS0, dk, 1);
        ox_sgemm(1, n, n, dv, 1.0f, dO, rdo, 1, w->Ut, L, 1, 0.0f, w->dP, L, 1);
        ox_sgemm(1, n, dv, n, 1.0f, w->P, 1, L, dO, rdo, 1, 1.0f, w->dU, dv, 1);
        /* B7: dGam = dP ⊙ (Q K^T); dP ⊙ Gam -> dQ += (.) K, dK += (.)^T Q (upper part zeroed = the mask) */
        for (int64_t r = 0; r < n; r++) {
            float *dpr = w->dP + r * L, *dgr = w->dGam + r * L;
            const float *qkr = w->QK + r * L, *gamr = w->Gam + r * L;
            for (int64_t i = 0; i < n; i++) {
                const float keep = i <= r ? dpr[i] : 0.0f;
                dgr[i] = keep * qkr[i];
                dpr[i] = keep * gamr[i];
            }
        }
        ox_sgemm(1, n, dk, n, 1.0f, w->dP, L, 1, c->k, c->rk, 1, 1.0f, w->dQ, dk, 1);
        ox_sgemm(1, n, dk, n, 1.0f, w->dP, 1, L, c->q, c->rq, 1, 1.0f, w->dK, dk, 1);
    }

    if (kind == OX_CHUNK_SSD) {
        /* 6.5: dX += diag(dt) dU; ddt_r += dU_r . X_r */
        for (int64_t r = 0; r < n; r++) {
            const float bt = c->beta[r * c->rb], *dur = w->dU + r * dv, *vr = c->v + r * c->rv;
            float *dvr = w->dV + r * dv;
            for (int64_t j = 0; j < dv; j++)
                dvr[j] += bt * dur[j];
            w->dbeta[r] += lanes_dot(dur, vr, dv);
        }
    } else {
        /* B6-B4 for U = Tm R, R = Bv - Bk S0^T (chunk_prepare). With dR = Tm^T dU (the transposed solve):
         *   B6/B5: [dBv | dBk] = Tm^T [dU | -dU S0] = [dR | -dR S0];  dS0 -= dU^T W = dR^T Bk
         *   B4:    dA = strictly_lower(-[dBv | dBk] [Ut | W]^T) = strictly_lower(-dR U^T)
         * (the same values as MODELS.md 5.5's B6-B4, with half the solve). dR overwrites dU. */
        float *dR = w->dU;
        ox_strsm_unit_lower(1, 1, n, dv, w->A, L, 1, dR, dv, 1);
        ox_sgemm(1, n, n, dv, -1.0f, dR, dv, 1, w->Ut, L, 1, 0.0f, w->dA, L, 1);
        ox_sgemm(1, n, dk, dv, -1.0f, dR, dv, 1, S0, dk, 1, 0.0f, w->dBk, dk, 1);
        ox_sgemm(1, dv, dk, n, -1.0f, dR, 1, dv, w->Bk, dk, 1, 1.0f, dS0, dk, 1);
        /* B5: dV += diag(beta) dBv; dbeta_r += dBv_r . V_r + gam_r (dBk_r . K_r); dK += diag(beta ⊙ gam) dBk;
         * dg_r += beta_r gam_r (dBk_r . K_r) */
        for (int64_t r = 0; r < n; r++) {
            const float br = c->beta[r * c->rb], gr = w->gam[r];
            const float *dbv = dR + r * dv, *dbk = w->dBk + r * dk;
            const float *vr = c->v + r * c->rv, *kr = c->k + r * c->rk;
            float *dvr = w->dV + r * dv, *dkr = w->dK + r * dk;
            for (int64_t j = 0; j < dv; j++)
                dvr[j] += br * dbv[j];
            for (int64_t j = 0; j < dk; j++)
                dkr[j] += br * gr * dbk[j];
            const float kb = lanes_dot(dbk, kr, dk);
            w->dbeta[r] += lanes_dot(dbv, vr, dv) + gr * kb;
            dg[r] += br * gr * kb;
        }
        /* B3: G = K K^T; dbeta_r += sum_i dA G Gam; dG = diag(beta)(dA ⊙ Gam); dGam += dA ⊙ diag(beta) G;
         * dK += (dG + dG^T) K.  dG overwrites dA (strictly lower, zero elsewhere). */
        for (int64_t r = 0; r < n; r++) {
            const float br = c->beta[r * c->rb];
            float *dar = w->dA + r * L, *dgr = w->dGam + r * L;
            const float *gr = w->KK + r * L, *gamr = w->Gam + r * L;
            float sb = 0;
            for (int64_t i = 0; i < n; i++) {
                const float da = i < r ? dar[i] : 0.0f;
                sb += da * gr[i] * gamr[i];
                dgr[i] += da * br * gr[i];
                dar[i] = br * da * gamr[i];
            }
            w->dbeta[r] += sb;
        }
        ox_sgemm(1, n, dk, n, 1.0f, w->dA, L, 1, c->k, c->rk, 1, 1.0f, w->dK, dk, 1);
        ox_sgemm(1, n, dk, n, 1.0f, w->dA, 1, L, c->k, c->rk, 1, 1.0f, w->dK, dk, 1);
    }

    /* B2 (decay mask): E = dGam ⊙ Gam; dg_r += sum_i E[r,i] - sum_j E[j,r] */
    for (int64_t r = 0; r < n; r++) {
        float *er = w->dGam + r * L;
        const float *gamr = w->Gam + r * L;
        float s = 0;
        for (int64_t i = 0; i <= r; i++) {
            er[i] *= gamr[i];
            s += er[i];
        }
        dg[r] += s;
    }
    for (int64_t j = 0; j < n; j++) {
        float s = 0;
        for (int64_t r = j; r < n; r++)
            s += w->dGam[r * L + j];
        dg[j] -= s;
    }
    /* B1: da_r = sum_{s >= r} dg_s */
    float acc = 0;
    for (int64_t r = n - 1; r >= 0; r--) {
        acc += dg[r];
        w->da[r] = acc;
    }
}

/* ---- drivers ------------------------------------------------------------------------------------------ */

int ox_chunk_threads(const ox_ctx *ctx, int64_t pairs, int64_t work)
{
    if (pairs < 2 || work < OX_PARALLEL_MIN || ctx->n_threads < 2)
        return 1;
    return (int)(pairs < ctx->n_threads ? pairs : ctx->n_threads);
}

void ox_chunk_load_state(const ox_tensor *s0, int64_t b, int64_t h, int64_t dv, int64_t dk, float *s)
{
    if (!s0) {
        memset(s, 0, sizeof(float) * (size_t)(dv * dk));
        return;
    }
    const float *p = ox_tensor_f32(s0) + b * s0->stride[0] + h * s0->stride[1];
    for (int64_t i = 0; i < dv; i++)
        for (int64_t j = 0; j < dk; j++)
            s[i * dk + j] = p[i * s0->stride[2] + j * s0->stride[3]];
}

/* The rows of chunk `c` of pair (b, h). */
static chunk_in chunk_at(const ox_chunk_args *p, int64_t b, int64_t h, int64_t c)
{
    const int64_t t0 = c * L;
    chunk_in ci;
    ci.n = p->T - t0 < L ? p->T - t0 : L;
    ci.dk = p->dk;
    ci.dv = p->dv;
    ci.q = ox_tensor_f32(p->q) + b * p->q->stride[0] + t0 * p->q->stride[1] + h * p->q->stride[2];
    ci.k = ox_tensor_f32(p->k) + b * p->k->stride[0] + t0 * p->k->stride[1] + h * p->k->stride[2];
    ci.v = ox_tensor_f32(p->v) + b * p->v->stride[0] + t0 * p->v->stride[1] + h * p->v->stride[2];
    ci.rq = p->q->stride[1];
    ci.rk = p->k->stride[1];
    ci.rv = p->v->stride[1];
    ci.beta = ox_tensor_f32(p->beta) + b * p->beta->stride[0] + t0 * p->beta->stride[1] + h * p->beta->stride[2];
    ci.a = ox_tensor_f32(p->a) + b * p->a->stride[0] + t0 * p->a->stride[1] + h * p->a->stride[2];
    ci.rb = p->beta->stride[1];
    ci.ra = p->a->stride[1];
    return ci;
}

static int64_t chunk_work(const ox_chunk_args *p)
{
    return p->B * p->H * p->T * (L * (p->dk + p->dv) + 3 * p->dk * p->dv);
}

static uint64_t g_forward_calls;

uint64_t ox_chunk_forward_calls(void)
{
    return __atomic_load_n(&g_forward_calls, __ATOMIC_RELAXED);
}

ox_status ox_chunk_forward_all(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved)
{
    if (ctx->status)
        return ctx->status;
    __atomic_fetch_add(&g_forward_calls, 1, __ATOMIC_RELAXED);
    const int64_t B = p->B, H = p->H, T = p->T, dk = p->dk, dv = p->dv, nc = ox_chunk_count(T);
    const int nt = ox_chunk_threads(ctx, B * H, chunk_work(p));
    const size_t wsz = ws_floats(dk, dv, 0);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wsall = ox_ctx_alloc(ctx, sizeof(float) * wsz * (size_t)nt);
    if (!wsall)
        return ctx->status;
    /* Parallel over (batch, head) pairs: each pair's chunks, outputs and states are touched by one
     * thread only, in chunk order, so the split cannot change any result. */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        chunk_ws w;
        ws_carve(&w, wsall + wsz * (size_t)omp_get_thread_num(), dk, dv, 0);
        const int64_t b = bh / H, h = bh % H;
        ox_chunk_load_state(p->s0, b, h, dv, dk, w.S);
        for (int64_t c = 0; c < nc; c++) {
            if (saved)
                memcpy(saved + (bh * nc + c) * dv * dk, w.S, sizeof(float) * (size_t)(dv * dk));
            chunk_in ci = chunk_at(p, b, h, c);
            chunk_prepare(&ci, p->kind, w.S, &w);
            chunk_output(&ci, &w, y + ((b * T + c * L) * H + h) * dv, H * dv);
            chunk_state(&ci, &w, w.S);
        }
        if (s_final)
            memcpy(s_final + bh * dv * dk, w.S, sizeof(float) * (size_t)(dv * dk));
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

void ox_chunk_add_rows(float *dst, int64_t rd, const float *src, int64_t n, int64_t d)
{
    for (int64_t r = 0; r < n; r++) {
        float *dr = dst + r * rd;
        const float *sr = src + r * d;
        for (int64_t j = 0; j < d; j++)
            dr[j] += sr[j];
    }
}

ox_status ox_chunk_backward_all(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                                const float *ds_final, const ox_chunk_grads *g)
{
    if (ctx->status)
        return ctx->status;
    const int64_t B = p->B, H = p->H, T = p->T, dk = p->dk, dv = p->dv, nc = ox_chunk_count(T);
    const int nt = ox_chunk_threads(ctx, B * H, 3 * chunk_work(p));
    const size_t wsz = ws_floats(dk, dv, 1);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *wsall = ox_ctx_alloc(ctx, sizeof(float) * wsz * (size_t)nt);
    if (!wsall)
        return ctx->status;
    /* Parallel over (batch, head) pairs as in the forward: every gradient element belongs to one pair. */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        chunk_ws w;
        ws_carve(&w, wsall + wsz * (size_t)omp_get_thread_num(), dk, dv, 1);
        const int64_t b = bh / H, h = bh % H;
        if (ds_final)
            memcpy(w.S, ds_final + bh * dv * dk, sizeof(float) * (size_t)(dv * dk));
        else
            memset(w.S, 0, sizeof(float) * (size_t)(dv * dk));
        for (int64_t c = nc - 1; c >= 0; c--) {
            const int64_t t0 = c * L;
            chunk_in ci = chunk_at(p, b, h, c);
            const int64_t n = ci.n;
            chunk_backward(&ci, p->kind, saved + (bh * nc + c) * dv * dk,
                           dy ? dy + ((b * T + t0) * H + h) * dv : NULL, H * dv, &w);
            const int64_t row0 = (b * T + t0) * H + h;   /* row index of (b, t0, h) in [B, T, H, .] */
            if (g->q)
                ox_chunk_add_rows(g->q + row0 * dk, H * dk, w.dQ, n, dk);
            if (g->k)
                ox_chunk_add_rows(g->k + row0 * dk, H * dk, w.dK, n, dk);
            if (g->v)
                ox_chunk_add_rows(g->v + row0 * dv, H * dv, w.dV, n, dv);
            for (int64_t r = 0; r < n; r++) {
                if (g->beta)
                    g->beta[row0 + r * H] += w.dbeta[r];
                if (g->a)
                    g->a[row0 + r * H] += w.da[r];
            }
            float *t = w.S;   /* carry: dS1 of the previous chunk = this chunk's dS0 */
            w.S = w.S2;
            w.S2 = t;
        }
        if (g->s0)
            ox_chunk_add_rows(g->s0 + bh * dv * dk, dk, w.S, dv, dk);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

/* ---- op glue --------------------------------------------------------------------------------------------- */

/* What the backward needs: the operands (references, or contiguous copies made by the forward) and the
 * state at every chunk start, [B, H, nchunks, dv, dk]. Nothing else is kept. */
typedef struct chunk_saved {
    ox_chunk_args p;
    float *states;
} chunk_saved;

ox_status ox_chunk_node_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const ox_chunk_impl *impl = (const ox_chunk_impl *)node->op;
    const chunk_saved *sv = node->saved;
    ox_chunk_grads g;
    float **dst[6] = { &g.q, &g.k, &g.v, &g.beta, &g.a, &g.s0 };
    for (int i = 0; i < 6; i++) {
        ox_tensor *gt = ox_ag_grad(ctx, node->in[i]);
        if (ctx->status)
            return ctx->status;
        *dst[i] = gt ? ox_tensor_f32(gt) : NULL;
    }
    const ox_tensor *gy = node->out[0]->grad;
    const ox_tensor *gs = node->n_out > 1 ? node->out[1]->grad : NULL;
    return impl->bwd(ctx, &sv->p, sv->states, gy ? ox_tensor_f32(gy) : NULL, gs ? ox_tensor_f32(gs) : NULL, &g);
}

ox_status ox_chunk_run(ox_ctx *ctx, const ox_chunk_impl *impl, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                       ox_tensor *beta, ox_tensor *a, ox_tensor *s0, ox_tensor **y, ox_tensor **s_final)
{
    const char *op = impl->op.name;
    if (y)
        *y = NULL;
    if (s_final)
        *s_final = NULL;
    if (ctx->status)
        return ctx->status;
    if (!y)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: the output pointer y is NULL", op);
    ox_tensor *in[6] = { q, k, v, beta, a, s0 };
    for (int i = 0; i < 5; i++)
        if (!in[i])
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: %s is NULL", op, impl->names[i]);
    ox_chunk_args p;
    if (ox_chunk_check(ctx, op, impl->names, impl->kind, q, k, v, beta, a, s0, &p))
        return ctx->status;
    p.q = ox_chunk_rows(ctx, q);
    p.k = ox_chunk_rows(ctx, k);
    p.v = ox_chunk_rows(ctx, v);
    if (ctx->status)
        return ctx->status;
    const int needs = ox_ag_needs_grad(ctx, 6, in);
    const int64_t nc = ox_chunk_count(p.T);
    ox_tensor *yt = ox_tensor_empty(ctx, OX_F32, OX_DIMS(p.B, p.T, p.H, p.dv));
    ox_tensor *st = s_final ? ox_tensor_empty(ctx, OX_F32, OX_DIMS(p.B, p.H, p.dv, p.dk)) : NULL;
    float *states = needs ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(p.B * p.H * nc * p.dv * p.dk)) : NULL;
    if (ctx->status)
        return ctx->status;
    if (impl->fwd(ctx, &p, ox_tensor_f32(yt), st ? ox_tensor_f32(st) : NULL, states))
        return ctx->status;
    if (needs) {
        chunk_saved *sv = ox_ctx_alloc(ctx, sizeof *sv);
        if (!sv)
            return ctx->status;
        sv->p = p;
        sv->states = states;
        ox_tensor *outs[2] = { yt, st };
        ox_ag_node *node = ox_ag_record(ctx, &impl->op, 6, in, st ? 2 : 1, outs);
        if (!node)
            return ctx->status ? ctx->status : ox_ctx_fail(ctx, OX_ERR_STATE, "%s: node not recorded", op);
        node->saved = sv;
    }
    *y = yt;
    if (s_final)
        *s_final = st;
    return OX_OK;
}

/* ---- step ------------------------------------------------------------------------------------------------ */

ox_status ox_chunk_step(ox_ctx *ctx, const char *op, const char *const names[7], const ox_chunk_token *tok,
                        const ox_tensor *q, const ox_tensor *k, const ox_tensor *v, const ox_tensor *beta,
                        const ox_tensor *a, ox_tensor *state, ox_tensor *o)
{
    if (ctx->status)
        return ctx->status;
    const ox_tensor *all[7] = { q, k, v, beta, a, state, o };
    for (int i = 0; i < 7; i++) {
        if (!all[i])
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: %s is NULL", op, names[i]);
        if (ox_check_f32(ctx, op, all[i]))
            return ctx->status;
    }
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    if (q->ndim != 3 || v->ndim != 3 || state->ndim != 4)
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s, %s %s must be [B, H, d] and %s %s [B, H, dv, dk]", op,
                           names[0], ox_shape_str(q, b1), names[2], ox_shape_str(v, b2), names[5],
                           ox_shape_str(state, b3));
    const int64_t B = q->shape[0], H = q->shape[1], dk = q->shape[2], dv = v->shape[2];
    const int64_t want[7][4] = { { B, H, dk }, { B, H, dk }, { B, H, dv }, { B, H }, { B, H },
                                 { B, H, dv, dk }, { B, H, dv } };
    const int nd[7] = { 3, 3, 3, 2, 2, 4, 3 };
    for (int i = 0; i < 7; i++) {
        int ok = all[i]->ndim == nd[i];
        for (int d = 0; ok && d < nd[i]; d++)
            ok = all[i]->shape[d] == want[i][d];
        if (!ok)
            return ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: %s %s does not fit %s %s and %s %s (B=%lld, H=%lld, "
                               "dk=%lld, dv=%lld)", op, names[i], ox_shape_str(all[i], b1), names[0],
                               ox_shape_str(q, b2), names[2], ox_shape_str(v, b3), (long long)B, (long long)H,
                               (long long)dk, (long long)dv);
        if (nd[i] >= 3 && all[i]->shape[nd[i] - 1] > 1 && all[i]->stride[nd[i] - 1] != 1)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: the last axis of %s %s must have stride 1", op, names[i],
                               ox_shape_str(all[i], b1));
    }
    if (dv > 1 && state->stride[2] != dk)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: %s %s must have contiguous [dv, dk] matrices", op, names[5],
                           ox_shape_str(state, b1));
    const int nt = ox_chunk_threads(ctx, B * H, B * H * 3 * dk * dv);
    /* parallel over (batch, head): each state matrix and output row belongs to one pair */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        tok->fwd(ox_tensor_f32(state) + b * state->stride[0] + h * state->stride[1],
                 ox_tensor_f32(q) + b * q->stride[0] + h * q->stride[1],
                 ox_tensor_f32(k) + b * k->stride[0] + h * k->stride[1],
                 ox_tensor_f32(v) + b * v->stride[0] + h * v->stride[1],
                 ox_tensor_f32(beta)[b * beta->stride[0] + h * beta->stride[1]],
                 ox_tensor_f32(a)[b * a->stride[0] + h * a->stride[1]],
                 ox_tensor_f32(o) + b * o->stride[0] + h * o->stride[1], dk, dv);
    }
    return OX_OK;
}
