/* views.c - differentiable views: reshape, permute, transpose, narrow, select, expand, contiguous.
 *
 * Forward makes a new header over the same storage (tensor.h). Backward applies the SAME view to the
 * input's gradient buffer (contiguous, the input's shape) and adds the view's gradient into it:
 *     gx_view = view(gx);  gx_view += dy
 * For expand the view of gx has stride-0 axes, so add_into sums the broadcast copies (in order). A
 * reshape or permute whose input has no gradient buffer yet creates it uninitialised and copies
 * (ox_ag_grad_fresh). */
#include "autograd/ops.h"

#include <string.h>

enum view_kind { V_RESHAPE, V_PERMUTE, V_NARROW, V_SELECT, V_EXPAND };

/* node->i: [0] kind, then the parameters; the target shape of reshape/expand is the output's shape */
static ox_tensor *apply_view(ox_ctx *ctx, const ox_ag_node *n, ox_tensor *t)
{
    const ox_tensor *y = n->out[0];
    switch ((enum view_kind)n->i[0]) {
    case V_RESHAPE: return ox_tensor_view_reshape(ctx, t, y->ndim, y->shape);
    case V_PERMUTE: {
        int perm[OX_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++)
            perm[d] = (int)n->i[1 + d];
        return ox_tensor_view_permute(ctx, t, perm);
    }
    case V_NARROW: return ox_tensor_view_narrow(ctx, t, (int)n->i[1], n->i[2], n->i[3]);
    case V_SELECT: return ox_tensor_view_select(ctx, t, (int)n->i[1], n->i[2]);
    case V_EXPAND: return ox_tensor_view_expand(ctx, t, y->ndim, y->shape);
    }
    return NULL;
}

static ox_status view_backward(ox_ctx *ctx, ox_ag_node *n)
{
    /* reshape and permute cover every element of x once: a gradient created here is copied into (no zero
     * fill, same values as 0 + dy); narrow, select and expand keep the zero fill and the adds */
    enum view_kind kind = (enum view_kind)n->i[0];
    int fresh = 0;
    ox_tensor *gx = kind == V_RESHAPE || kind == V_PERMUTE ? ox_ag_grad_fresh(ctx, n->in[0], &fresh)
                                                           : ox_ag_grad(ctx, n->in[0]);
    if (!gx)
        return ctx->status;
    ox_tensor *gv = apply_view(ctx, n, gx);
    if (!gv)
        return ctx->status;
    return fresh ? ox_tensor_copy(ctx, gv, n->out[0]->grad) : ox_tensor_add_into(ctx, gv, n->out[0]->grad);
}

static const ox_ag_op view_op = { "view", view_backward };

static ox_tensor *record_view(ox_ctx *ctx, ox_tensor *x, ox_tensor *y, enum view_kind kind,
                              int64_t p1, int64_t p2, int64_t p3)
{
    if (!y)
        return NULL;
    y->requires_grad = 0;       /* the header was copied from x; the tape decides */
    ox_ag_node *n = ox_ag_record(ctx, &view_op, 1, &x, 1, &y);
    if (n) {
        n->i[0] = kind;
        n->i[1] = p1;
        n->i[2] = p2;
        n->i[3] = p3;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_reshape(ox_ctx *ctx, ox_tensor *x, int ndim, const int64_t *shape)
{
    return record_view(ctx, x, ox_tensor_view_reshape(ctx, x, ndim, shape), V_RESHAPE, 0, 0, 0);
}

ox_tensor *ox_ag_permute(ox_ctx *ctx, ox_tensor *x, const int *perm)
{
    ox_tensor *y = ox_tensor_view_permute(ctx, x, perm);
    if (!y)
        return NULL;
    y->requires_grad = 0;
    ox_ag_node *n = ox_ag_record(ctx, &view_op, 1, &x, 1, &y);
    if (n) {
        n->i[0] = V_PERMUTE;
        for (int d = 0; d < x->ndim; d++)
            n->i[1 + d] = perm[d];
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_transpose(ox_ctx *ctx, ox_tensor *x, int d0, int d1)
{
    if (ctx->status || !x)
        return NULL;
    int a = ox_check_axis(ctx, "transpose", x, d0), b = ox_check_axis(ctx, "transpose", x, d1);
    if (a < 0 || b < 0)
        return NULL;
    int perm[OX_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return ox_ag_permute(ctx, x, perm);
}

ox_tensor *ox_ag_narrow(ox_ctx *ctx, ox_tensor *x, int axis, int64_t start, int64_t len)
{
    ox_tensor *y = ox_tensor_view_narrow(ctx, x, axis, start, len);
    return record_view(ctx, x, y, V_NARROW, axis < 0 && x ? axis + x->ndim : axis, start, len);
}

ox_tensor *ox_ag_select(ox_ctx *ctx, ox_tensor *x, int axis, int64_t index)
{
    ox_tensor *y = ox_tensor_view_select(ctx, x, axis, index);
    return record_view(ctx, x, y, V_SELECT, axis < 0 && x ? axis + x->ndim : axis, index, 0);
}

ox_tensor *ox_ag_expand(ox_ctx *ctx, ox_tensor *x, int ndim, const int64_t *shape)
{
    return record_view(ctx, x, ox_tensor_view_expand(ctx, x, ndim, shape), V_EXPAND, 0, 0, 0);
}

static ox_status contiguous_backward(ox_ctx *ctx, ox_ag_node *n)
{
    ox_tensor *gx = ox_ag_grad(ctx, n->in[0]);
    return gx ? ox_tensor_add_into(ctx, gx, n->out[0]->grad) : ctx->status;
}

static const ox_ag_op contiguous_op = { "contiguous", contiguous_backward };

ox_tensor *ox_ag_contiguous(ox_ctx *ctx, ox_tensor *x)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_tensor_is_contiguous(x))
        return x;
    ox_tensor *y = ox_tensor_empty_like(ctx, x);
    if (!y || ox_tensor_copy(ctx, y, x))
        return NULL;
    ox_ag_record(ctx, &contiguous_op, 1, &x, 1, &y);
    return ctx->status ? NULL : y;
}
