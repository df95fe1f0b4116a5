/* ssd.c - the public Mamba-2 SSD ops (MODELS.md section 6): the chunked fast path (6.4/6.5) of nn/chunk.c
 * with Tm = I, W = 0 and dt in beta's role, the sequential reference (6.2/6.3) of nn/chunk_ref.c, and
 * the one-token decode step. */
#include "nn/ssd.h"

#include <math.h>

#include "nn/chunk.h"

static const ox_chunk_impl ssd_impl = {
    { "ssd", ox_chunk_node_backward }, OX_CHUNK_SSD, ox_chunk_forward_all, ox_chunk_backward_all,
    OX_CHUNK_SSD_NAMES
};

/* The value preconditions of ssd.h, one pass over dt and a (O(B T H)), before anything runs. A violation is
 * recorded in ctx, so the run or step that follows returns it at once without output (errors are sticky). */
static void ssd_check_values(ox_ctx *ctx, const char *op, const ox_tensor *dt, const ox_tensor *a)
{
    if (!ox_chunk_check_range(ctx, op, "dt", dt, 0.0f, INFINITY, "dt >= 0, finite (dt is a step size)"))
        ox_chunk_check_range(ctx, op, "a", a, -INFINITY, 0.0f, "a <= 0, finite (a is the log-decay)");
}

ox_status ox_nn_ssd(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt, ox_tensor *a,
                    ox_tensor *h0, ox_tensor **y, ox_tensor **h_final)
{
    ssd_check_values(ctx, ssd_impl.op.name, dt, a);
    return ox_chunk_run(ctx, &ssd_impl, c, b, x, dt, a, h0, y, h_final);
}

ox_status ox_nn_ssd_reference(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt,
                              ox_tensor *a, ox_tensor *h0, ox_tensor **y, ox_tensor **h_final)
{
    ssd_check_values(ctx, ox_chunk_ssd_reference_impl.op.name, dt, a);
    return ox_chunk_run(ctx, &ox_chunk_ssd_reference_impl, c, b, x, dt, a, h0, y, h_final);
}

ox_status ox_nn_ssd_step(ox_ctx *ctx, const ox_tensor *c, const ox_tensor *b, const ox_tensor *x,
                         const ox_tensor *dt, const ox_tensor *a, ox_tensor *state, ox_tensor *y)
{
    static const char *const names[7] = { "c", "b", "x", "dt", "a", "state", "y" };
    ssd_check_values(ctx, "ssd_step", dt, a);
    return ox_chunk_step(ctx, "ssd_step", names, &ox_chunk_ssd_token, c, b, x, dt, a, state, y);
}
