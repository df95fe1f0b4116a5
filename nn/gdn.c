/* gdn.c - the Gated DeltaNet mixer core: the recurrence of MODELS.md 5.2 token by token (forward and the
 * sequential backward 5.3, used by the reference op and the step), and the public ops. The chunked WY/UT
 * fast path (5.4/5.5) is the shared chunk machinery of nn/chunk.c. */
#include "nn/gdn.h"

#include <math.h>

#include "nn/chunk.h"

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

static const ox_chunk_token gdn_token = { gdn_token_fwd, gdn_token_bwd };

static ox_status gdn_ref_fwd(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved)
{
    return ox_chunk_reference_forward(ctx, p, &gdn_token, y, s_final, saved);
}

static ox_status gdn_ref_bwd(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                             const float *ds_final, const ox_chunk_grads *g)
{
    return ox_chunk_reference_backward(ctx, p, &gdn_token, saved, dy, ds_final, g);
}

#define GDN_NAMES { "q", "k", "v", "beta", "a", "s0" }

static const ox_chunk_impl gdn_impl = {
    { "gdn", ox_chunk_node_backward }, OX_CHUNK_GDN, ox_chunk_forward_all, ox_chunk_backward_all, GDN_NAMES
};
static const ox_chunk_impl gdn_ref_impl = {
    { "gdn_reference", ox_chunk_node_backward }, OX_CHUNK_GDN, gdn_ref_fwd, gdn_ref_bwd, GDN_NAMES
};

ox_status ox_nn_gdn(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta, ox_tensor *a,
                    ox_tensor *s0, ox_tensor **o, ox_tensor **s_final)
{
    return ox_chunk_run(ctx, &gdn_impl, q, k, v, beta, a, s0, o, s_final);
}

ox_status ox_nn_gdn_reference(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta,
                              ox_tensor *a, ox_tensor *s0, ox_tensor **o, ox_tensor **s_final)
{
    return ox_chunk_run(ctx, &gdn_ref_impl, q, k, v, beta, a, s0, o, s_final);
}

ox_status ox_nn_gdn_step(ox_ctx *ctx, const ox_tensor *q, const ox_tensor *k, const ox_tensor *v,
                         const ox_tensor *beta, const ox_tensor *a, ox_tensor *state, ox_tensor *o)
{
    static const char *const names[7] = { "q", "k", "v", "beta", "a", "state", "o" };
    return ox_chunk_step(ctx, "gdn_step", names, &gdn_token, q, k, v, beta, a, state, o);
}
