/* concat.c - joining and splitting along an axis: ox_ag_concat (forward copy, backward slice-add),
 * ox_ag_stack (the same along a new axis) and ox_ag_split (differentiable narrow views).
 *
 * concat: y = [x_0 | x_1 | ... | x_{n-1}] along `axis`; y is contiguous and each input (any strides) is
 * copied into its slice of y. Backward: x_k's gradient += the same slice of dy. A tape node holds at most
 * OX_AG_MAX_IO inputs, so a recorded concat of more inputs is done in groups (concat of concats); the
 * unrecorded one is always a single pass.
 * stack: y = [x_0, x_1, ..., x_{n-1}] along a new axis `axis` of y; x_k is copied into select(y, axis, k)
 * and its gradient += select(dy, axis, k) (written with '=' when the gradient is fresh). More than
 * OX_AG_MAX_IO recorded inputs: stacks of groups, concatenated along the new axis.
 * split: n consecutive narrow views of x (autograd/views.c), so each piece backpropagates on its own. */
#include "autograd/ops.h"

#include <stdio.h>

/* ---------------------------------------------------------------- concat */

/* node->i[0]: the (non-negative) axis */
static ox_status concat_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *dy = node->out[0]->grad;
    int axis = (int)node->i[0];
    int64_t off = 0;
    for (int k = 0; k < node->n_in; k++) {
        ox_tensor *x = node->in[k];
        int64_t len = x->shape[axis];
        ox_tensor *g = ox_ag_grad(ctx, x);
        if (g) {
            ox_tensor *slice = ox_tensor_view_narrow(ctx, dy, axis, off, len);
            if (!slice || ox_tensor_add_into(ctx, g, slice))
                return ctx->status;
        }
        off += len;
    }
    return ctx->status;
}

static const ox_ag_op concat_op = { "concat", concat_backward };

/* Checks xs against xs[0] (F32, rank, every size but the axis); returns the normalised axis or -1. */
static int concat_check(ox_ctx *ctx, int n, ox_tensor *const *xs, int axis, int64_t *total)
{
    const ox_tensor *x0 = xs[0];
    if (ox_check_f32(ctx, "concat", x0))
        return -1;
    int a = ox_check_axis(ctx, "concat", x0, axis);
    if (a < 0)
        return -1;
    *total = 0;
    for (int k = 0; k < n; k++) {
        const ox_tensor *x = xs[k];
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        if (x->dtype != OX_F32) {
            ox_ctx_fail(ctx, OX_ERR_DTYPE, "concat: input %d %s is I32; concat joins F32 tensors", k,
                        ox_shape_str(x, b1));
            return -1;
        }
        int ok = x->ndim == x0->ndim;
        for (int d = 0; ok && d < x->ndim; d++)
            ok = d == a || x->shape[d] == x0->shape[d];
        if (!ok) {
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "concat: input %d %s does not match input 0 %s outside axis %d", k,
                        ox_shape_str(x, b1), ox_shape_str(x0, b2), a);
            return -1;
        }
        *total += x->shape[a];
    }
    return a;
}

ox_tensor *ox_ag_concat(ox_ctx *ctx, int n, ox_tensor *const *xs, int axis)
{
    if (ctx->status)
        return NULL;
    if (n < 1 || !xs) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "concat: needs at least one tensor, got n = %d", n);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k])
            return NULL;
    int64_t total;
    int a = concat_check(ctx, n, xs, axis, &total);
    if (a < 0)
        return NULL;

    if (n > OX_AG_MAX_IO && ox_ag_needs_grad(ctx, n, xs)) {
        /* too many inputs for one tape node: concatenate groups, then the groups */
        int groups = (n + OX_AG_MAX_IO - 1) / OX_AG_MAX_IO;
        ox_tensor **parts = ox_ctx_alloc(ctx, sizeof(ox_tensor *) * (size_t)groups);
        if (!parts)
            return NULL;
        for (int g = 0; g < groups; g++) {
            int first = g * OX_AG_MAX_IO, cnt = n - first < OX_AG_MAX_IO ? n - first : OX_AG_MAX_IO;
            parts[g] = ox_ag_concat(ctx, cnt, xs + first, a);
            if (!parts[g])
                return NULL;
        }
        return ox_ag_concat(ctx, groups, parts, a);
    }

    int64_t shape[OX_MAX_DIMS];
    for (int d = 0; d < xs[0]->ndim; d++)
        shape[d] = xs[0]->shape[d];
    shape[a] = total;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, xs[0]->ndim, shape);
    if (!y)
        return NULL;
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        /* strided copy into y's slice; ox_iter merges the axes both sides keep contiguous */
        ox_tensor *slice = ox_tensor_view_narrow(ctx, y, a, off, xs[k]->shape[a]);
        if (!slice || ox_tensor_copy(ctx, slice, xs[k]))
            return NULL;
        off += xs[k]->shape[a];
    }
    if (n <= OX_AG_MAX_IO) {
        ox_ag_node *node = ox_ag_record(ctx, &concat_op, n, xs, 1, &y);
        if (node)
            node->i[0] = a;
    }
    return ctx->status ? NULL : y;
}

/* ---------------------------------------------------------------- stack */

/* node->i[0]: the (non-negative) new axis of y */
static ox_status stack_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *dy = node->out[0]->grad;
    int axis = (int)node->i[0];
    for (int k = 0; k < node->n_in; k++) {
        int fresh = 0;
        ox_tensor *g = ox_ag_grad_fresh(ctx, node->in[k], &fresh);
        if (!g)
            continue;
        ox_tensor *slice = ox_tensor_view_select(ctx, dy, axis, k);
        if (!slice || (fresh ? ox_tensor_copy(ctx, g, slice) : ox_tensor_add_into(ctx, g, slice)))
            return ctx->status;
    }
    return ctx->status;
}

static const ox_ag_op stack_op = { "stack", stack_backward };

ox_tensor *ox_ag_stack(ox_ctx *ctx, int n, ox_tensor *const *xs, int axis)
{
    if (ctx->status)
        return NULL;
    if (n < 1 || !xs) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "stack: needs at least one tensor, got n = %d", n);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k])
            return NULL;
    const ox_tensor *x0 = xs[0];
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    int nd = x0->ndim + 1;
    if (nd > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "stack: inputs of shape %s would give a result of rank %d > %d",
                    ox_shape_str(x0, b1), nd, OX_MAX_DIMS);
        return NULL;
    }
    int a = axis < 0 ? axis + nd : axis;
    if (a < 0 || a >= nd) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "stack: axis %d out of range for stacking tensors of shape %s (valid: %d to %d)",
                    axis, ox_shape_str(x0, b1), -nd, nd - 1);
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        if (xs[k]->dtype != OX_F32) {
            ox_ctx_fail(ctx, OX_ERR_DTYPE, "stack: input %d %s is I32; stack joins F32 tensors", k,
                        ox_shape_str(xs[k], b1));
            return NULL;
        }
        if (!ox_tensor_same_shape(xs[k], x0)) {
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "stack: input %d %s does not have the shape of input 0 %s", k,
                        ox_shape_str(xs[k], b1), ox_shape_str(x0, b2));
            return NULL;
        }
    }

    if (n > OX_AG_MAX_IO && ox_ag_needs_grad(ctx, n, xs)) {
        /* too many inputs for one tape node: stack groups, then concatenate the groups on the new axis */
        int groups = (n + OX_AG_MAX_IO - 1) / OX_AG_MAX_IO;
        ox_tensor **parts = ox_ctx_alloc(ctx, sizeof(ox_tensor *) * (size_t)groups);
        if (!parts)
            return NULL;
        for (int g = 0; g < groups; g++) {
            int first = g * OX_AG_MAX_IO, cnt = n - first < OX_AG_MAX_IO ? n - first : OX_AG_MAX_IO;
            parts[g] = ox_ag_stack(ctx, cnt, xs + first, a);
            if (!parts[g])
                return NULL;
        }
        return ox_ag_concat(ctx, groups, parts, a);
    }

    int64_t shape[OX_MAX_DIMS] = { 0 };
    for (int d = 0, j = 0; d < nd; d++)
        shape[d] = d == a ? n : x0->shape[j++];
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    if (!y)
        return NULL;
    for (int k = 0; k < n; k++) {
        ox_tensor *slice = ox_tensor_view_select(ctx, y, a, k);
        if (!slice || ox_tensor_copy(ctx, slice, xs[k]))
            return NULL;
    }
    if (n <= OX_AG_MAX_IO) {
        ox_ag_node *node = ox_ag_record(ctx, &stack_op, n, xs, 1, &y);
        if (node)
            node->i[0] = a;
    }
    return ctx->status ? NULL : y;
}

/* ---------------------------------------------------------------- split */

ox_status ox_ag_split(ox_ctx *ctx, ox_tensor *x, int axis, int n, const int64_t *sizes, ox_tensor **outs)
{
    if (outs)
        for (int k = 0; k < n; k++)
            outs[k] = NULL;
    if (ctx->status)
        return ctx->status;
    if (!x)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "split: no input tensor");
    if (n < 1 || !sizes || !outs)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "split: needs n >= 1 pieces with sizes and outputs, got n = %d", n);
    int a = ox_check_axis(ctx, "split", x, axis);
    if (a < 0)
        return ctx->status;
    char b[OX_SHAPE_BUF];
    int64_t sum = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "split: size %d is negative (%lld) for axis %d of %s", k,
                               (long long)sizes[k], a, ox_shape_str(x, b));
        sum += sizes[k];
    }
    if (sum != x->shape[a])
        return ox_ctx_fail(ctx, OX_ERR_ARG, "split: the %d sizes add up to %lld, not to the length %lld of axis %d of %s",
                           n, (long long)sum, (long long)x->shape[a], a, ox_shape_str(x, b));
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        outs[k] = ox_ag_narrow(ctx, x, a, off, sizes[k]);
        if (!outs[k]) {
            for (int j = 0; j < k; j++)
                outs[j] = NULL;
            return ctx->status;
        }
        off += sizes[k];
    }
    return OX_OK;
}
