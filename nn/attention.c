/* attention.c - the fast attention op, causal or masked (blocked, flash-style forward; FlashAttention-2
 * backward), its tape glue, and the argument checks shared with the reference (attention_ref.c); the KV
 * cache and the decode step are in attention_cache.c. See attention.h for the math, the work count and
 * the threading.
 *
 * Layout of the work: the computed query rows of batch b (those rows selects, all when rows == NULL, that
 * see at least one key) are listed in order, pos[off[b] .. off[b] + cnt[b]), with lim[] the last key each
 * sees (its position when causal without lengths); query block qb of batch b is rows qb*64 .. qb*64+63 of
 * that list. lim is nondecreasing along the list, so everything below reads as in the causal case with lim
 * for the position. Key block j0 (a multiple of 64) of a query block whose last row has lim = pmax holds
 * keys [j0, min(j0 + 64, pmax + 1)); the rows that take part in it are those with lim >= j0, a suffix of
 * the block, starting at row r0; inside the tile key j0 + s is hidden from the prefix of rows with
 * lim < j0 + s. Every product is a single-threaded ox_sgemm
 * on per-thread scratch (gathered Q and dO rows, 64 x 64 score tiles kept key-major, see "forward") or
 * directly on the strided rows of k, v and the gradient buffers; threads split (b, h, block) items, and
 * each item writes only its own output rows. */
#include "nn/attention.h"
#include "autograd/lanes.h"
#include "tensor/gemm.h"
#include "tensor/iter.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* The clamps and selects of exp_ps and of the running max are float comparisons; with gcc's default
 * -ftrapping-math it will not if-convert them, and the softmax loops stay scalar. This file never reads
 * the floating-point exception flags, so it is compiled without trapping math (results are unchanged). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define NB OX_ATTN_BLOCK

/* ------------------------------------------------------------------------------ argument checks */

int ox_nn_attention_check(ox_ctx *ctx, const char *op, const ox_tensor *q, const ox_tensor *k,
                          const ox_tensor *v, const ox_tensor *rows)
{
    if (ox_check_f32(ctx, op, q) || ox_check_f32(ctx, op, k) || ox_check_f32(ctx, op, v))
        return -1;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    int ok = q->ndim == 4 && k->ndim == 4 && v->ndim == 4;
    for (int d = 0; ok && d < 3; d++)
        ok = q->shape[d] == k->shape[d] && q->shape[d] == v->shape[d];
    ok = ok && q->shape[3] == k->shape[3] && q->shape[3] >= 1 && v->shape[3] >= 1;
    if (!ok) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: q %s, k %s, v %s do not fit [B, T, H, dk], [B, T, H, dk], "
                    "[B, T, H, dv]", op, ox_shape_str(q, b1), ox_shape_str(k, b2), ox_shape_str(v, b3));
        return -1;
    }
    if (!rows)
        return 0;
    if (ox_check_i32(ctx, op, rows))
        return -1;
    if (rows->ndim != 2 || rows->shape[0] != q->shape[0] || rows->shape[1] != q->shape[1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: rows %s must be [B, T] = [%lld, %lld] (q is %s)", op,
                    ox_shape_str(rows, b1), (long long)q->shape[0], (long long)q->shape[1],
                    ox_shape_str(q, b2));
        return -1;
    }
    const int32_t *r = ox_tensor_i32(rows);
    for (int64_t b = 0; b < rows->shape[0]; b++)
        for (int64_t t = 0; t < rows->shape[1]; t++) {
            int32_t x = r[b * rows->stride[0] + t * rows->stride[1]];
            if (x != 0 && x != 1) {
                ox_ctx_fail(ctx, OX_ERR_ARG, "%s: rows[%lld, %lld] = %d; rows must be 0 (skip) or 1 "
                            "(compute)", op, (long long)b, (long long)t, (int)x);
                return -1;
            }
        }
    return 0;
}

int ox_nn_attention_check_mask(ox_ctx *ctx, const char *op, const ox_tensor *q, const ox_nn_attn_mask *mask)
{
    const ox_tensor *len = mask ? mask->key_len : NULL;
    if (!len)
        return 0;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, op, len))
        return -1;
    if (len->ndim != 1 || len->shape[0] != q->shape[0]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: key_len %s must be [B] = [%lld] (q is %s)", op, ox_shape_str(len, b1),
                    (long long)q->shape[0], ox_shape_str(q, b2));
        return -1;
    }
    for (int64_t b = 0; b < len->shape[0]; b++) {
        int32_t x = ox_tensor_i32(len)[b * len->stride[0]];
        if (x < 0 || x > q->shape[1]) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "%s: key_len[%lld] = %d is outside [0, T = %lld]", op, (long long)b,
                        (int)x, (long long)q->shape[1]);
            return -1;
        }
    }
    return 0;
}

int64_t ox_nn_attention_key_len(const ox_nn_attn_mask *mask, int64_t b, int64_t T)
{
    const ox_tensor *len = mask ? mask->key_len : NULL;
    return len ? ox_tensor_i32(len)[b * len->stride[0]] : T;
}

/* ------------------------------------------------------------------------------ shared state */

/* A strided [B, T, H, n] operand whose last axis is contiguous: element (b, t, h, i) is
 * p[b * sb + t * st + h * sh + i]. */
typedef struct opnd {
    float *p;
    int64_t sb, st, sh;
} opnd;

static opnd opnd_of(const ox_tensor *t)
{
    opnd o = { ox_tensor_f32(t), t->stride[0], t->stride[1], t->stride[2] };
    return o;
}

/* What the forward saves and both passes read. */
typedef struct attn_state {
    int64_t B, T, H, dk, dv;
    float scale;                 /* 1 / sqrt(dk) */
    ox_tensor *q, *k, *v;        /* the operands used (copies when the input's last axis was strided) */
    ox_tensor *o;                /* [B, T, H, dv] contiguous */
    ox_tensor *lse;              /* [B, H, T] */
    int32_t *pos;                /* selected positions, batch by batch */
    int32_t *lim;                /* for each of them, the last key it sees (pos when causal, no lengths) */
    int64_t *off, *cnt;          /* [B]: where batch b's list starts, and its length */
} attn_state;

/* A unit of parallel work: batch, head and a query or key block index. */
typedef struct item {
    int32_t b, h, blk;
} item;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* e^x for the softmax weights, written so that gcc vectorises the loops that call it (libm's expf is
 * not vectorised without -ffast-math): Cephes' expf, x = n ln2 + r with |r| <= ln2/2 (ln2 split in two
 * parts so r is exact), e^r by its degree-7 Taylor-minimax polynomial, 2^n put into the exponent bits.
 * Relative error <= 2 ulp for x in [-87.3, 88] (larger x is clamped to 88; here x <= ~0 always);
 * returns 0 below -87.3, where e^x < FLT_MIN: every weight here is divided by a sum >= 1, so those are
 * below 1e-38 of the result. NaN propagates. */
static inline float exp_ps(float x)
{
    float xc = x < 88.0f ? x : 88.0f;            /* also maps NaN to a finite value: no UB below */
    xc = xc > -87.3f ? xc : -87.3f;
    float n = floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } e = { ((int32_t)n + 127) << 23 };
    float y = x < -87.3f ? 0.0f : p * e.f;
    return x == x ? y : x;                      /* NaN in, NaN out */
}

static inline int64_t n_qblocks(const attn_state *a, int64_t b) { return (a->cnt[b] + NB - 1) / NB; }

/* Rows of query block qb of batch b: their positions and count. */
static inline const int32_t *qblock_rows(const attn_state *a, int64_t b, int64_t qb, int64_t *nr)
{
    *nr = min64(NB, a->cnt[b] - qb * NB);
    return a->pos + a->off[b] + qb * NB;
}

/* The last key each row of query block qb of batch b sees (nondecreasing along the block). */
static inline const int32_t *qblock_lims(const attn_state *a, int64_t b, int64_t qb)
{
    return a->lim + a->off[b] + qb * NB;
}

/* The last axis is usable in place by the gemms (stride 1), else the operand is copied. */
static ox_tensor *lastdim_contiguous(ox_ctx *ctx, ox_tensor *t)
{
    if (t->shape[3] == 1 || t->stride[3] == 1)
        return t;
    return ox_tensor_contiguous(ctx, t);
}

/* The computed positions per batch and the last key each sees: a row is computed when rows selects it
 * (all rows when rows == NULL) and it sees at least one key. lim = min(t, len - 1) causal, len - 1 not;
 * both nondecreasing in t, so within a block the rows that see a key form a suffix, as in the causal case. */
static int build_rows(ox_ctx *ctx, attn_state *a, const ox_tensor *rows, const ox_nn_attn_mask *mask)
{
    a->pos = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(a->B * a->T));
    a->lim = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(a->B * a->T));
    a->off = ox_ctx_alloc(ctx, sizeof(int64_t) * (size_t)a->B);
    a->cnt = ox_ctx_alloc(ctx, sizeof(int64_t) * (size_t)a->B);
    if (!a->pos || !a->lim || !a->off || !a->cnt)
        return -1;
    int64_t n = 0;
    for (int64_t b = 0; b < a->B; b++) {
        int64_t last = ox_nn_attention_key_len(mask, b, a->T) - 1;
        a->off[b] = n;
        for (int64_t t = 0; t < a->T; t++) {
            int64_t lim = mask->causal && t < last ? t : last;
            if (lim >= 0 && (!rows || ox_tensor_i32(rows)[b * rows->stride[0] + t * rows->stride[1]])) {
                a->lim[n] = (int32_t)lim;
                a->pos[n++] = (int32_t)t;
            }
        }
        a->cnt[b] = n - a->off[b];
    }
    return 0;
}

/* Threads for a job of about `madds` multiply-adds: one when waking threads costs more than the work. */
static int job_threads(const ox_ctx *ctx, const attn_state *a)
{
    double work = 0;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t i = 0; i < a->cnt[b]; i++)
            work += (double)(a->lim[a->off[b] + i] + 1);
    work *= (double)(a->H * (a->dk + a->dv));
    return work >= 4.0 * OX_PARALLEL_MIN ? ctx->n_threads : 1;
}

/* ------------------------------------------------------------------------------ forward */

/* The key-major tile layout: scores are kept as S^T [keys, rows] (row pitch 64), so that
 *  - S^T = K_J Q^T takes K_J as it lies in memory and Q^T gathered once per query block: both operands
 *    are row-major for BLIS (a transposed right operand is packed ~1.5x slower at these sizes);
 *  - every softmax loop runs over the rows r of one key, contiguous, and vectorises;
 *  - P, dS enter the other products as transposed left operands (swapped strides), which BLIS packs
 *    at full speed.
 * Inside a tile, key j0 + s is hidden from the rows with lim_r < j0 + s: a prefix r0 .. rs(s)-1 of the
 * rows, since lim is nondecreasing. */

/* Row vectors and tiles of one thread's scratch (scratch_floats(dk, dv) floats). */
typedef struct tile_scratch {
    float *q;         /* [64, dk] gathered query rows (backward: right operand of dK) */
    float *qt;        /* [dk, 64] the same rows transposed (right operand of S^T = K_J Q^T) */
    float *acc;       /* [64, dv] forward: unnormalised output rows */
    float *dO;        /* [64, dv] backward: gathered dO rows */
    float *dOt;       /* [dv, 64] backward: dO transposed (right operand of dP^T = V_J dO^T) */
    float *dq;        /* [64, dk] backward: the block's dQ */
    float *st;        /* [64 keys, 64 rows] S^T, then P^T */
    float *dpt;       /* [64 keys, 64 rows] dP^T, then dS^T */
    float *m, *l;     /* [64] forward: running max and sum;  backward: LSE and Delta */
    float *m_new, *l_blk;   /* [64] forward: the max after this key block, this block's sum */
} tile_scratch;

static int64_t scratch_floats(int64_t dk, int64_t dv) { return NB * (3 * dk + 3 * dv + 2 * NB + 4); }

static tile_scratch carve(float *s, int64_t dk, int64_t dv)
{
    tile_scratch w;
    w.q = s;
    w.qt = w.q + NB * dk;
    w.acc = w.qt + NB * dk;
    w.dO = w.acc + NB * dv;
    w.dOt = w.dO + NB * dv;
    w.dq = w.dOt + NB * dv;
    w.st = w.dq + NB * dk;
    w.dpt = w.st + NB * NB;
    w.m = w.dpt + NB * NB;
    w.l = w.m + NB;
    w.m_new = w.l + NB;
    w.l_blk = w.m_new + NB;
    return w;
}

/* One query block: online softmax over its key blocks; writes o and LSE of its rows. Returns the
 * multiply-adds done (the rule in attention.h). */
static uint64_t fwd_block(const attn_state *a, int64_t b, int64_t h, int64_t qb, float *mem)
{
    const int64_t dk = a->dk, dv = a->dv, H = a->H;
    tile_scratch w = carve(mem, dk, dv);
    int64_t nr;
    const int32_t *p = qblock_rows(a, b, qb, &nr), *lm = qblock_lims(a, b, qb);
    const int64_t pmax = lm[nr - 1];
    opnd q = opnd_of(a->q), k = opnd_of(a->k), v = opnd_of(a->v);

    for (int64_t r = 0; r < nr; r++) {       /* gather the block's query rows, transposed */
        const float *src = q.p + b * q.sb + p[r] * q.st + h * q.sh;
        for (int64_t i = 0; i < dk; i++)
            w.qt[i * NB + r] = src[i];
        memset(w.acc + r * dv, 0, sizeof(float) * (size_t)dv);
        w.m[r] = -INFINITY;
        w.l[r] = 0.0f;
    }
    uint64_t madds = 0;
    int64_t r0 = 0;
    for (int64_t j0 = 0; j0 <= pmax; j0 += NB) {
        int64_t nj = min64(NB, pmax + 1 - j0);
        while (lm[r0] < j0)                  /* rows before r0 see no key of this block */
            r0++;
        int64_t nq = nr - r0;
        const float *kj = k.p + b * k.sb + j0 * k.st + h * k.sh;
        const float *vj = v.p + b * v.sb + j0 * v.st + h * v.sh;
        /* S^T = K_J Q^T / sqrt(dk), columns r0 .. nr-1 */
        ox_sgemm(1, nj, nq, dk, a->scale, kj, k.st, 1, w.qt + r0, NB, 1, 0.0f, w.st + r0, NB, 1);
        /* mask (keys after a row's last key), then m' = max(m, max_s S), P^T = exp(S^T - m'), row sums */
        for (int64_t s = 0, rs = r0; s < nj; s++) {
            while (rs < nr && lm[rs] < j0 + s)
                rs++;
            for (int64_t r = r0; r < rs; r++)
                w.st[s * NB + r] = -INFINITY;
        }
        for (int64_t r = r0; r < nr; r++) {
            w.m_new[r] = w.m[r];
            w.l_blk[r] = 0.0f;
        }
        for (int64_t s = 0; s < nj; s++) {
            const float *row = w.st + s * NB;
            for (int64_t r = r0; r < nr; r++)
                w.m_new[r] = row[r] > w.m_new[r] ? row[r] : w.m_new[r];
        }
        for (int64_t s = 0; s < nj; s++) {
            float *row = w.st + s * NB;
            for (int64_t r = r0; r < nr; r++) {
                float e = exp_ps(row[r] - w.m_new[r]);     /* masked: exp(-inf) = 0 */
                row[r] = e;
                w.l_blk[r] += e;
            }
        }
        /* l = l e^(m - m') + sum_s P ;  acc = acc e^(m - m') (0 on the first block, m = -inf) */
        for (int64_t r = r0; r < nr; r++) {
            if (w.m_new[r] != w.m[r]) {
                float corr = w.m[r] == -INFINITY ? 0.0f : expf(w.m[r] - w.m_new[r]);
                float *ar = w.acc + r * dv;
                for (int64_t i = 0; i < dv; i++)
                    ar[i] *= corr;
                w.l[r] *= corr;
            }
            w.l[r] += w.l_blk[r];
            w.m[r] = w.m_new[r];
        }
        /* acc += P V_J, with P = (P^T)^T given by swapped strides */
        ox_sgemm(1, nq, dv, nj, 1.0f, w.st + r0, 1, NB, vj, v.st, 1, 1.0f, w.acc + r0 * dv, dv, 1);
        madds += (uint64_t)(nq * nj * (dk + dv));
    }
    float *o = ox_tensor_f32(a->o), *lse = ox_tensor_f32(a->lse);
    for (int64_t r = 0; r < nr; r++) {
        float inv = 1.0f / w.l[r];
        float *orow = o + ((b * a->T + p[r]) * H + h) * dv;
        for (int64_t i = 0; i < dv; i++)
            orow[i] = w.acc[r * dv + i] * inv;
        lse[(b * H + h) * a->T + p[r]] = w.m[r] + logf(w.l[r]);
    }
    return madds;
}

/* ------------------------------------------------------------------------------ backward */

/* Gradient buffers (contiguous [B, T, H, d]; NULL = not needed) and the incoming dO. */
typedef struct attn_grads {
    float *gq, *gk, *gv;
    const float *dout;
} attn_grads;

/* Gathers query block qb's rows of Q and dO (both also transposed), their LSE (into w->m) and
 * Delta = dO . O (into w->l). */
static const int32_t *bwd_gather(const attn_state *a, const attn_grads *g, int64_t b, int64_t h,
                                 int64_t qb, const tile_scratch *w, int64_t *nr)
{
    const int64_t dk = a->dk, dv = a->dv, H = a->H, T = a->T;
    const int32_t *p = qblock_rows(a, b, qb, nr);
    opnd q = opnd_of(a->q);
    const float *o = ox_tensor_f32(a->o), *lse = ox_tensor_f32(a->lse);
    for (int64_t r = 0; r < *nr; r++) {
        const float *qr = q.p + b * q.sb + p[r] * q.st + h * q.sh;
        const float *dor = g->dout + ((b * T + p[r]) * H + h) * dv, *orow = o + ((b * T + p[r]) * H + h) * dv;
        for (int64_t i = 0; i < dk; i++) {
            w->q[r * dk + i] = qr[i];
            w->qt[i * NB + r] = qr[i];
        }
        for (int64_t i = 0; i < dv; i++) {
            w->dO[r * dv + i] = dor[i];
            w->dOt[i * NB + r] = dor[i];
        }
        w->l[r] = lanes_dot(dor, orow, dv);
        w->m[r] = lse[(b * H + h) * T + p[r]];
    }
    return p;
}

/* One (query block, key block) tile: recompute P, then accumulate dQ (into the block's dQ scratch,
 * when do_dq) and dK, dV (straight into the gradient rows of the key block, when do_dkv). */
static void bwd_tile(const attn_state *a, const attn_grads *g, int64_t b, int64_t h, const int32_t *lm,
                     int64_t nr, int64_t j0, const tile_scratch *w, int do_dq, int do_dkv)
{
    const int64_t dk = a->dk, dv = a->dv, H = a->H, T = a->T;
    const float *lse = w->m, *delta = w->l;
    opnd k = opnd_of(a->k), v = opnd_of(a->v);
    int64_t nj = min64(NB, lm[nr - 1] + 1 - j0), r0 = 0;
    while (lm[r0] < j0)
        r0++;
    int64_t nq = nr - r0;
    const float *kj = k.p + b * k.sb + j0 * k.st + h * k.sh;
    const float *vj = v.p + b * v.sb + j0 * v.st + h * v.sh;

    /* P^T = exp(K_J Q^T / sqrt(dk) - LSE), 0 where key j0 + s > lim_r (as in the forward) */
    ox_sgemm(1, nj, nq, dk, a->scale, kj, k.st, 1, w->qt + r0, NB, 1, 0.0f, w->st + r0, NB, 1);
    for (int64_t s = 0, rs = r0; s < nj; s++) {
        float *row = w->st + s * NB;
        for (int64_t r = r0; r < nr; r++)
            row[r] = exp_ps(row[r] - lse[r]);
        while (rs < nr && lm[rs] < j0 + s)
            rs++;
        for (int64_t r = r0; r < rs; r++)
            row[r] = 0.0f;
    }
    int need_ds = (do_dq && g->gq) || (do_dkv && g->gk);
    float *gk = g->gk ? g->gk + ((b * T + j0) * H + h) * dk : NULL;
    float *gv = g->gv ? g->gv + ((b * T + j0) * H + h) * dv : NULL;
    /* dV_J += P^T dO */
    if (do_dkv && gv)
        ox_sgemm(1, nj, dv, nq, 1.0f, w->st + r0, NB, 1, w->dO + r0 * dv, dv, 1, 1.0f, gv, H * dv, 1);
    if (!need_ds)
        return;
    /* dP^T = V_J dO^T ;  dS^T = P^T (dP^T - Delta) */
    ox_sgemm(1, nj, nq, dv, 1.0f, vj, v.st, 1, w->dOt + r0, NB, 1, 0.0f, w->dpt + r0, NB, 1);
    for (int64_t s = 0; s < nj; s++) {
        float *dpr = w->dpt + s * NB;
        const float *pr = w->st + s * NB;
        for (int64_t r = r0; r < nr; r++)
            dpr[r] = pr[r] * (dpr[r] - delta[r]);
    }
    /* dQ += dS K_J / sqrt(dk)  (dS = (dS^T)^T by swapped strides) ;  dK_J += dS^T Q / sqrt(dk) */
    if (do_dq && g->gq)
        ox_sgemm(1, nq, dk, nj, a->scale, w->dpt + r0, 1, NB, kj, k.st, 1, 1.0f, w->dq + r0 * dk, dk, 1);
    if (do_dkv && gk)
        ox_sgemm(1, nj, dk, nq, a->scale, w->dpt + r0, NB, 1, w->q + r0 * dk, dk, 1, 1.0f, gk, H * dk, 1);
}

/* Adds query block qb's dQ scratch into the gradient rows of q. */
static void bwd_scatter_dq(const attn_state *a, const attn_grads *g, int64_t b, int64_t h,
                           const int32_t *p, int64_t nr, const tile_scratch *w)
{
    const int64_t dk = a->dk;
    for (int64_t r = 0; r < nr; r++) {
        float *gr = g->gq + ((b * a->T + p[r]) * a->H + h) * dk;
        for (int64_t i = 0; i < dk; i++)
            gr[i] += w->dq[r * dk + i];
    }
}

/* Every tile of query block qb, key blocks in increasing order. */
static void bwd_qblock(const attn_state *a, const attn_grads *g, int64_t b, int64_t h, int64_t qb,
                       float *mem, int do_dq, int do_dkv)
{
    tile_scratch w = carve(mem, a->dk, a->dv);
    int64_t nr;
    const int32_t *p = bwd_gather(a, g, b, h, qb, &w, &nr), *lm = qblock_lims(a, b, qb);
    if (do_dq)
        memset(w.dq, 0, sizeof(float) * (size_t)(NB * a->dk));
    for (int64_t j0 = 0; j0 <= lm[nr - 1]; j0 += NB)
        bwd_tile(a, g, b, h, lm, nr, j0, &w, do_dq, do_dkv);
    if (do_dq && g->gq)
        bwd_scatter_dq(a, g, b, h, p, nr, &w);
}

/* Key block kb: dK, dV from every query block that reaches it, query blocks in increasing order
 * (the same order as bwd_qblock's one-pass schedule, so both give the same bits). */
static void bwd_kblock(const attn_state *a, const attn_grads *g, int64_t b, int64_t h, int64_t kb,
                       float *mem)
{
    tile_scratch w = carve(mem, a->dk, a->dv);
    int64_t j0 = kb * NB;
    for (int64_t qb = 0; qb < n_qblocks(a, b); qb++) {
        int64_t nr;
        const int32_t *lm = qblock_lims(a, b, qb);
        qblock_rows(a, b, qb, &nr);
        if (lm[nr - 1] < j0)
            continue;
        bwd_gather(a, g, b, h, qb, &w, &nr);
        bwd_tile(a, g, b, h, lm, nr, j0, &w, 0, 1);
    }
}

static ox_status attention_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const attn_state *a = node->saved;
    ox_tensor *dout = node->out[0]->grad;
    ox_tensor *tq = ox_ag_grad(ctx, node->in[0]), *tk = ox_ag_grad(ctx, node->in[1]);
    ox_tensor *tv = ox_ag_grad(ctx, node->in[2]);
    if (ctx->status)
        return ctx->status;
    if (!dout || (!tq && !tk && !tv))
        return OX_OK;
    attn_grads g = { tq ? ox_tensor_f32(tq) : NULL, tk ? ox_tensor_f32(tk) : NULL,
                     tv ? ox_tensor_f32(tv) : NULL, ox_tensor_f32(dout) };
    const int64_t B = a->B, H = a->H;
    int nt = job_threads(ctx, a);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *scr = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nt * scratch_floats(a->dk, a->dv)));
    /* room for the larger item list: query blocks, or key blocks up to each batch's last selected row */
    int64_t n_items = 0, n_key_items = 0;
    for (int64_t b = 0; b < B; b++) {
        n_items += n_qblocks(a, b) * H;
        n_key_items += (a->cnt[b] ? a->lim[a->off[b] + a->cnt[b] - 1] / NB + 1 : 0) * H;
    }
    int64_t n_max = n_items > n_key_items ? n_items : n_key_items;
    item *items = ox_ctx_alloc(ctx, sizeof(item) * (size_t)(n_max + 1));
    if (!scr || !items)
        return ctx->status;
    const int64_t sf = scratch_floats(a->dk, a->dv);

    if (B * H >= nt) {
        /* one pass per (b, h): its dQ rows and its dK, dV rows belong to it alone */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
        for (int64_t bh = 0; bh < B * H; bh++) {
            float *s = scr + (int64_t)omp_get_thread_num() * sf;
            for (int64_t qb = 0; qb < n_qblocks(a, bh / H); qb++)
                bwd_qblock(a, &g, bh / H, bh % H, qb, s, 1, 1);
        }
    } else {
        /* pass 1: dQ, parallel over query blocks (each writes only its own rows of dq) */
        n_items = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t qb = n_qblocks(a, b) - 1; qb >= 0; qb--)
                    items[n_items++] = (item){ (int32_t)b, (int32_t)h, (int32_t)qb };
        if (g.gq) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
            for (int64_t i = 0; i < n_items; i++)
                bwd_qblock(a, &g, items[i].b, items[i].h, items[i].blk,
                           scr + (int64_t)omp_get_thread_num() * sf, 1, 0);
        }
        /* pass 2: dK, dV, parallel over key blocks (each writes only its own rows of dk, dv) */
        n_items = 0;
        for (int64_t b = 0; b < B; b++) {
            int64_t last = a->cnt[b] ? a->lim[a->off[b] + a->cnt[b] - 1] : -1;
            for (int64_t h = 0; h < H; h++)
                for (int64_t kb = 0; kb * NB <= last; kb++)
                    items[n_items++] = (item){ (int32_t)b, (int32_t)h, (int32_t)kb };
        }
        if (g.gk || g.gv) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
            for (int64_t i = 0; i < n_items; i++)
                bwd_kblock(a, &g, items[i].b, items[i].h, items[i].blk,
                           scr + (int64_t)omp_get_thread_num() * sf);
        }
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op attention_op = { "attention", attention_backward };

ox_tensor *ox_nn_attention(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, const ox_tensor *rows)
{
    return ox_nn_attention_masked(ctx, q, k, v, rows, NULL);
}

ox_tensor *ox_nn_attention_masked(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, const ox_tensor *rows,
                                  const ox_nn_attn_mask *mask)
{
    static const ox_nn_attn_mask causal = { 1, NULL };
    if (ctx->status || !q || !k || !v)
        return NULL;
    if (!mask)
        mask = &causal;
    if (ox_nn_attention_check(ctx, "attention", q, k, v, rows) ||
        ox_nn_attention_check_mask(ctx, "attention", q, mask))
        return NULL;
    attn_state *a = ox_ctx_alloc(ctx, sizeof *a);
    if (!a)
        return NULL;
    a->B = q->shape[0];
    a->T = q->shape[1];
    a->H = q->shape[2];
    a->dk = q->shape[3];
    a->dv = v->shape[3];
    a->scale = (float)(1.0 / sqrt((double)a->dk));
    a->q = lastdim_contiguous(ctx, q);
    a->k = lastdim_contiguous(ctx, k);
    a->v = lastdim_contiguous(ctx, v);
    /* skipped rows (and rows that see no key) keep o = 0 and LSE = 0 */
    int some_skipped = rows || mask->key_len;
    a->o = some_skipped ? ox_tensor_zeros(ctx, OX_F32, OX_DIMS(a->B, a->T, a->H, a->dv))
                        : ox_tensor_empty(ctx, OX_F32, OX_DIMS(a->B, a->T, a->H, a->dv));
    a->lse = some_skipped ? ox_tensor_zeros(ctx, OX_F32, OX_DIMS(a->B, a->H, a->T))
                          : ox_tensor_empty(ctx, OX_F32, OX_DIMS(a->B, a->H, a->T));
    if (!a->q || !a->k || !a->v || !a->o || !a->lse || build_rows(ctx, a, rows, mask))
        return NULL;

    int nt = job_threads(ctx, a);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    const int64_t sf = scratch_floats(a->dk, a->dv);
    float *scr = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nt * sf));
    int64_t n_items = 0;
    for (int64_t b = 0; b < a->B; b++)
        n_items += n_qblocks(a, b) * a->H;
    item *items = ox_ctx_alloc(ctx, sizeof(item) * (size_t)(n_items + 1));
    uint64_t *madds = ox_ctx_alloc(ctx, sizeof(uint64_t) * (size_t)(n_items + 1));
    if (!scr || !items || !madds)
        return NULL;
    /* largest blocks (latest positions) first, so the dynamic schedule ends with small ones */
    n_items = 0;
    for (int64_t qb = (a->T + NB - 1) / NB - 1; qb >= 0; qb--)
        for (int64_t b = 0; b < a->B; b++)
            for (int64_t h = 0; qb < n_qblocks(a, b) && h < a->H; h++)
                items[n_items++] = (item){ (int32_t)b, (int32_t)h, (int32_t)qb };
    /* each item writes the o rows and LSE entries of its own query block only */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t i = 0; i < n_items; i++)
        madds[i] = fwd_block(a, items[i].b, items[i].h, items[i].blk,
                             scr + (int64_t)omp_get_thread_num() * sf);
    for (int64_t i = 0; i < n_items; i++)
        ctx->attn_madds += madds[i];
    ox_arena_rewind(&ctx->arena, mark);

    ox_ag_node *n = ox_ag_record(ctx, &attention_op, 3, (ox_tensor *[]){ q, k, v }, 1, &a->o);
    if (n)
        n->saved = a;
    return ctx->status ? NULL : a->o;
}
