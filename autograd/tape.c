/* tape.c - recording nodes and walking them backwards (see tape.h). */
#include "autograd/tape.h"

#include <string.h>

#include "tensor/profile.h"

int ox_ag_needs_grad(const ox_ctx *ctx, int n_in, ox_tensor *const *in)
{
    if (!ctx->grad_enabled)
        return 0;
    for (int k = 0; k < n_in; k++)
        if (in[k] && in[k]->requires_grad)
            return 1;
    return 0;
}

ox_ag_node *ox_ag_record(ox_ctx *ctx, const ox_ag_op *op, int n_in, ox_tensor *const *in,
                         int n_out, ox_tensor *const *out)
{
    if (ctx->status || !ox_ag_needs_grad(ctx, n_in, in))
        return NULL;
    if (n_in > OX_AG_MAX_IO || n_out > OX_AG_MAX_IO) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: an op has at most %d inputs and outputs", op->name, OX_AG_MAX_IO);
        return NULL;
    }
    ox_ag_node *n = ox_ctx_alloc(ctx, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    n->n_out = n_out;
    for (int k = 0; k < n_in; k++)
        n->in[k] = in[k];
    for (int k = 0; k < n_out; k++) {
        n->out[k] = out[k];
        if (out[k] && out[k]->dtype == OX_F32)
            out[k]->requires_grad = 1;
    }
    n->prev = ctx->tape;
    ctx->tape = n;
    ctx->tape_len++;
    OX_PROFILE_MARK(ctx, op->name, OX_PROF_FORWARD);   /* the op's forward ran since the previous mark */
    return n;
}

ox_tensor *ox_ag_grad(ox_ctx *ctx, ox_tensor *t)
{
    if (!t || !t->requires_grad)
        return NULL;
    if (!t->grad)
        t->grad = ox_tensor_zeros(ctx, OX_F32, t->ndim, t->shape);
    return t->grad;
}

ox_tensor *ox_ag_grad_fresh(ox_ctx *ctx, ox_tensor *t, int *fresh)
{
    *fresh = 0;
    if (!t || !t->requires_grad)
        return NULL;
    if (!t->grad) {
        t->grad = ox_tensor_empty(ctx, OX_F32, t->ndim, t->shape);
        *fresh = t->grad != NULL;
    }
    return t->grad;
}

static ox_status walk(ox_ctx *ctx)
{
    OX_PROFILE_MARK(ctx, "backward.seed", OX_PROF_OTHER);
    for (ox_ag_node *n = ctx->tape; n; n = n->prev) {
        int reached = 0;
        for (int k = 0; k < n->n_out; k++)
            reached |= n->out[k] && n->out[k]->grad != NULL;
        if (!reached)
            continue;
        if (n->op->backward(ctx, n) != OX_OK || ctx->status)
            return ctx->status ? ctx->status
                               : ox_ctx_fail(ctx, OX_ERR_STATE, "backward of %s failed", n->op->name);
        OX_PROFILE_MARK(ctx, n->op->name, OX_PROF_BACKWARD);
    }
    ctx->tape = NULL;
    ctx->tape_len = 0;
    return OX_OK;
}

ox_status ox_ag_backward_seeded(ox_ctx *ctx, ox_tensor *out, const ox_tensor *seed)
{
    if (ctx->status)
        return ctx->status;
    if (!out)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "backward: no output tensor");
    if (!out->requires_grad || !ctx->tape)
        return ox_ctx_fail(ctx, OX_ERR_STATE,
                           "backward: the output does not depend on any tensor that requires a gradient "
                           "(or backward already ran on this tape)");
    if (!ox_tensor_same_shape(out, seed)) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "backward: seed %s does not match output %s",
                           ox_shape_str(seed, b1), ox_shape_str(out, b2));
    }
    ox_tensor *g = ox_ag_grad(ctx, out);
    if (!g || ox_tensor_add_into(ctx, g, seed))
        return ctx->status;
    return walk(ctx);
}

ox_status ox_ag_backward(ox_ctx *ctx, ox_tensor *loss)
{
    if (ctx->status)
        return ctx->status;
    if (!loss || ox_tensor_numel(loss) != 1) {
        char b[OX_SHAPE_BUF];
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "backward: the loss must have one element, not shape %s",
                           loss ? ox_shape_str(loss, b) : "(null)");
    }
    ox_tensor *one = ox_tensor_full(ctx, OX_F32, loss->ndim, loss->shape, 1.0);
    if (!one)
        return ctx->status;
    return ox_ag_backward_seeded(ctx, loss, one);
}

void ox_ag_zero_grad(ox_tensor *const *leaves, int n)
{
    for (int k = 0; k < n; k++) {
        ox_tensor *g = leaves[k] ? leaves[k]->grad : NULL;
        if (g)
            memset(ox_tensor_f32(g), 0, sizeof(float) * (size_t)ox_tensor_numel(g));
    }
}

int ox_ag_set_grad_enabled(ox_ctx *ctx, int enabled)
{
    int prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled != 0;
    return prev;
}

ox_tensor *ox_ag_detach(ox_ctx *ctx, ox_tensor *t)
{
    if (ctx->status || !t)
        return NULL;
    ox_tensor *v = ox_ctx_alloc(ctx, sizeof *v);
    if (!v)
        return NULL;
    *v = *t;
    v->requires_grad = 0;
    v->grad = NULL;
    v->owned = 0;
    v->name = NULL;
    return v;
}
