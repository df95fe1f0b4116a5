/* gdn.c - the public Gated DeltaNet ops (MODELS.md section 5): the chunked WY/UT fast path (5.4/5.5) of
 * nn/chunk.c, the sequential reference (5.2/5.3) of nn/chunk_ref.c, and the one-token decode step. */
#include "nn/gdn.h"

#include <math.h>

#include "nn/chunk.h"

static const ox_chunk_impl gdn_impl = {
    { "gdn", ox_chunk_node_backward }, OX_CHUNK_GDN, ox_chunk_forward_all, ox_chunk_backward_all,
    OX_CHUNK_GDN_NAMES
};

/* The value preconditions of gdn.h, one pass over beta and a (O(B T H)), before anything runs. A violation is
 * recorded in ctx, so the run or step that follows returns it at once without output (errors are sticky). */
static void gdn_check_values(ox_ctx *ctx, const char *op, const ox_tensor *beta, const ox_tensor *a)
{
    if (!ox_chunk_check_range(ctx, op, "beta", beta, 0.0f, 1.0f, "0 <= beta <= 1"))
        ox_chunk_check_range(ctx, op, "a", a, -INFINITY, 0.0f, "a <= 0, finite (a is the log-decay)");
}

ox_status ox_nn_gdn(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta, ox_tensor *a,
                    ox_tensor *s0, ox_tensor **o, ox_tensor **s_final)
{
    gdn_check_values(ctx, gdn_impl.op.name, beta, a);
    return ox_chunk_run(ctx, &gdn_impl, q, k, v, beta, a, s0, o, s_final);
}

ox_status ox_nn_gdn_reference(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta,
                              ox_tensor *a, ox_tensor *s0, ox_tensor **o, ox_tensor **s_final)
{
    gdn_check_values(ctx, ox_chunk_gdn_reference_impl.op.name, beta, a);
    return ox_chunk_run(ctx, &ox_chunk_gdn_reference_impl, q, k, v, beta, a, s0, o, s_final);
}

ox_status ox_nn_gdn_step(ox_ctx *ctx, const ox_tensor *q, const ox_tensor *k, const ox_tensor *v,
                         const ox_tensor *beta, const ox_tensor *a, ox_tensor *state, ox_tensor *o)
{
    static const char *const names[7] = { "q", "k", "v", "beta", "a", "state", "o" };
    gdn_check_values(ctx, "gdn_step", beta, a);
    return ox_chunk_step(ctx, "gdn_step", names, &ox_chunk_gdn_token, q, k, v, beta, a, state, o);
}
