/* where.c - selection by a mask: ox_ag_where (pick a or b) and ox_ag_masked_fill (replace by a constant).
 *
 * Math, elementwise over the broadcast shape of the operands (numpy rules):
 *     where:        y = c != 0 ? a : b        da += dy [c != 0],   db += dy [c == 0]
 *     masked_fill:  y = m != 0 ? v : x        dx += dy [m == 0]
 * where [.] is 1 when true, else 0. Each input's gradient is summed over the axes along which that input
 * was broadcast. The mask (c, m) is a constant: it never receives a gradient, even if it requires one.
 * Any nonzero mask value selects, NaN included (NaN != 0); comparisons (compare.c) give exact 0/1 masks.
 *
 * Forward: one pass with ox_iter (tensor/iter.h); each inner loop is a compare-and-select the compiler
 * vectorises. Backward, as in elementwise.c: each input's gradient g is expanded to y's shape and updated
 * in place; where an input was broadcast the expanded g has stride-0 axes and that update runs on one
 * thread, in order, so results never depend on thread timing. An input of y's shape whose gradient does
 * not exist yet gets it uninitialised and written with '=' (ox_ag_grad_fresh).
 *
 * Saved for backward: the mask tensor itself (node->saved); it must stay valid until backward, like
 * every input of a recorded op. */
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <string.h>

enum sel { SEL_WHERE, SEL_FILL };

/* ---------------------------------------------------------------- forward */

struct sel_args {
    float *y;
    const float *c, *a, *b;     /* masked_fill: a unused (the constant v), b = x */
    float v;
};

static void where_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct sel_args *e = arg;
    float *y = e->y + off[0];
    const float *c = e->c + off[1], *a = e->a + off[2], *b = e->b + off[3];
    int64_t sy = st[0], sc = st[1], sa = st[2], sb = st[3];
    for (int64_t i = 0; i < n; i++)
        y[i * sy] = c[i * sc] != 0.0f ? a[i * sa] : b[i * sb];
}

static void fill_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct sel_args *e = arg;
    float *y = e->y + off[0];
    const float *c = e->c + off[1], *x = e->b + off[2];
    int64_t sy = st[0], sc = st[1], sx = st[2];
    float v = e->v;
    for (int64_t i = 0; i < n; i++)
        y[i * sy] = c[i * sc] != 0.0f ? v : x[i * sx];
}

/* ---------------------------------------------------------------- backward */

struct sel_grad_args {
    float *g;               /* expanded to y's shape */
    const float *dy, *c;
    int take_nonzero;       /* 1: g gets dy where c != 0 (where's a); 0: where c == 0 */
    int fresh;              /* g was just created: write '=' instead of '+=' */
};

static void sel_grad_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct sel_grad_args *e = arg;
    float *g = e->g + off[0];
    const float *dy = e->dy + off[1], *c = e->c + off[2];
    int64_t sg = st[0], sd = st[1], sc = st[2];
    if (e->take_nonzero) {
        if (e->fresh)
            for (int64_t i = 0; i < n; i++) g[i * sg] = c[i * sc] != 0.0f ? dy[i * sd] : 0.0f;
        else
            for (int64_t i = 0; i < n; i++) g[i * sg] += c[i * sc] != 0.0f ? dy[i * sd] : 0.0f;
    } else {
        if (e->fresh)
            for (int64_t i = 0; i < n; i++) g[i * sg] = c[i * sc] != 0.0f ? 0.0f : dy[i * sd];
        else
            for (int64_t i = 0; i < n; i++) g[i * sg] += c[i * sc] != 0.0f ? 0.0f : dy[i * sd];
    }
}

static int has_broadcast(const ox_tensor *g)
{
    for (int d = 0; d < g->ndim; d++)
        if (g->stride[d] == 0 && g->shape[d] > 1)
            return 1;
    return 0;
}

/* node->i[0]: enum sel; node->saved: the mask. Inputs: where {a, b}, masked_fill {x}. */
static ox_status sel_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0], *dy = y->grad;
    ox_tensor *c = ox_tensor_view_expand(ctx, node->saved, y->ndim, y->shape);
    if (!c)
        return ctx->status;
    int where = node->i[0] == SEL_WHERE;
    for (int k = 0; k < node->n_in; k++) {
        int fresh = 0;
        ox_tensor *g = ox_tensor_same_shape(node->in[k], y) ? ox_ag_grad_fresh(ctx, node->in[k], &fresh)
                                                            : ox_ag_grad(ctx, node->in[k]);
        if (!g)
            continue;
        ox_tensor *ge = ox_tensor_view_expand(ctx, g, y->ndim, y->shape);
        if (!ge)
            return ctx->status;
        struct sel_grad_args e = { ox_tensor_f32(ge), ox_tensor_f32(dy), ox_tensor_f32(c), where && k == 0, fresh };
        ox_iter it;
        ox_iter_init(&it, 3, (const ox_tensor *[]){ ge, dy, c });
        ox_iter_run(&it, has_broadcast(ge) ? 1 : ctx->n_threads, sel_grad_seg, &e);
    }
    return ctx->status;
}

static const ox_ag_op sel_op = { "where", sel_backward };

/* ---------------------------------------------------------------- glue */

/* The broadcast shape of n tensors into shape; the rank, or -1 (error recorded naming all shapes). */
static int broadcast_n(ox_ctx *ctx, const char *name, int n, const ox_tensor *const *ts, int64_t *shape)
{
    ox_tensor acc;
    memset(&acc, 0, sizeof acc);
    int nd = 0;
    for (int k = 0; k < n && nd >= 0; k++) {
        nd = ox_broadcast_shape(&acc, ts[k], shape);
        acc.ndim = nd;
        if (nd > 0)
            memcpy(acc.shape, shape, sizeof(int64_t) * (size_t)nd);
    }
    if (nd < 0) {
        char b[3][OX_SHAPE_BUF];
        if (n == 3)
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: shapes %s (cond), %s (a) and %s (b) do not broadcast", name,
                        ox_shape_str(ts[0], b[0]), ox_shape_str(ts[1], b[1]), ox_shape_str(ts[2], b[2]));
        else
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: shapes %s (x) and %s (mask) do not broadcast", name,
                        ox_shape_str(ts[1], b[1]), ox_shape_str(ts[0], b[0]));
    }
    return nd;
}

/* where: ops = { cond, a, b }; masked_fill: ops = { mask, x } and the constant v. */
static ox_tensor *select_op(ox_ctx *ctx, enum sel kind, int n, const ox_tensor *const *ops, double v)
{
    const char *name = kind == SEL_WHERE ? "where" : "masked_fill";
    for (int k = 0; k < n; k++)
        if (ox_check_f32(ctx, name, ops[k]))
            return NULL;
    int64_t shape[OX_MAX_DIMS] = { 0 };
    int nd = broadcast_n(ctx, name, n, ops, shape);
    if (nd < 0)
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    ox_tensor *e[3] = { NULL, NULL, NULL };
    for (int k = 0; k < n; k++)
        e[k] = ox_tensor_view_expand(ctx, ops[k], nd, shape);
    if (!y || ctx->status)
        return NULL;
    ox_iter it;
    if (kind == SEL_WHERE) {
        struct sel_args a = { ox_tensor_f32(y), ox_tensor_f32(e[0]), ox_tensor_f32(e[1]), ox_tensor_f32(e[2]), 0 };
        ox_iter_init(&it, 4, (const ox_tensor *[]){ y, e[0], e[1], e[2] });
        ox_iter_run(&it, ctx->n_threads, where_seg, &a);
    } else {
        struct sel_args a = { ox_tensor_f32(y), ox_tensor_f32(e[0]), NULL, ox_tensor_f32(e[1]), (float)v };
        ox_iter_init(&it, 3, (const ox_tensor *[]){ y, e[0], e[1] });
        ox_iter_run(&it, ctx->n_threads, fill_seg, &a);
    }
    /* the differentiable inputs only: the mask gets no gradient */
    ox_tensor *in[2] = { (ox_tensor *)ops[1], n == 3 ? (ox_tensor *)ops[2] : NULL };
    ox_ag_node *node = ox_ag_record(ctx, &sel_op, n - 1, in, 1, &y);
    if (node) {
        node->i[0] = kind;
        node->saved = (void *)ops[0];
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_where(ox_ctx *ctx, const ox_tensor *cond, ox_tensor *a, ox_tensor *b)
{
    if (ctx->status || !cond || !a || !b)
        return NULL;
    return select_op(ctx, SEL_WHERE, 3, (const ox_tensor *[]){ cond, a, b }, 0);
}

ox_tensor *ox_ag_masked_fill(ox_ctx *ctx, ox_tensor *x, const ox_tensor *mask, double value)
{
    if (ctx->status || !x || !mask)
        return NULL;
    return select_op(ctx, SEL_FILL, 2, (const ox_tensor *[]){ mask, x }, value);
}
