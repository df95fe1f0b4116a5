/* ssd.c - the Mamba-2 SSD mixer core: the recurrence of MODELS.md 6.2 token by token (forward and the
 * sequential backward 6.3, used by the reference op and the step), and the public ops. The chunked fast
 * path (6.4/6.5) is the shared chunk machinery of nn/chunk.c with Tm = I, W = 0 and dt in beta's role. */
#include "nn/ssd.h"

#include <math.h>

#include "nn/chunk.h"

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

static const ox_chunk_token ssd_token = { ssd_token_fwd, ssd_token_bwd };

static ox_status ssd_ref_fwd(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved)
{
    return ox_chunk_reference_forward(ctx, p, &ssd_token, y, s_final, saved);
}

static ox_status ssd_ref_bwd(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                             const float *ds_final, const ox_chunk_grads *g)
{
    return ox_chunk_reference_backward(ctx, p, &ssd_token, saved, dy, ds_final, g);
}

#define SSD_NAMES { "c", "b", "x", "dt", "a", "h0" }

static const ox_chunk_impl ssd_impl = {
    { "ssd", ox_chunk_node_backward }, OX_CHUNK_SSD, ox_chunk_forward_all, ox_chunk_backward_all, SSD_NAMES
};
static const ox_chunk_impl ssd_ref_impl = {
    { "ssd_reference", ox_chunk_node_backward }, OX_CHUNK_SSD, ssd_ref_fwd, ssd_ref_bwd, SSD_NAMES
};

ox_status ox_nn_ssd(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt, ox_tensor *a,
                    ox_tensor *h0, ox_tensor **y, ox_tensor **h_final)
{
    return ox_chunk_run(ctx, &ssd_impl, c, b, x, dt, a, h0, y, h_final);
}

ox_status ox_nn_ssd_reference(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt,
                              ox_tensor *a, ox_tensor *h0, ox_tensor **y, ox_tensor **h_final)
{
    return ox_chunk_run(ctx, &ssd_ref_impl, c, b, x, dt, a, h0, y, h_final);
}

ox_status ox_nn_ssd_step(ox_ctx *ctx, const ox_tensor *c, const ox_tensor *b, const ox_tensor *x,
                         const ox_tensor *dt, const ox_tensor *a, ox_tensor *state, ox_tensor *y)
{
    static const char *const names[7] = { "c", "b", "x", "dt", "a", "state", "y" };
    return ox_chunk_step(ctx, "ssd_step", names, &ssd_token, c, b, x, dt, a, state, y);
}
