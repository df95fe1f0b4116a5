/* compare.c - elementwise comparisons with broadcasting: eq, ne, lt, le, gt, ge -> an F32 0/1 mask.
 *
 * y = (a OP b) ? 1.0f : 0.0f, with a and b broadcast to a common shape (numpy rules, as ox_ag_add).
 * IEEE semantics, as PyTorch: a comparison with a NaN is false, except ne, which is true.
 * The result is a mask, not a differentiable function: it is never recorded on the tape and never
 * requires a gradient, whatever its inputs (their gradients get nothing through it). It is the cond of
 * ox_ag_where and the mask of ox_ag_masked_fill (autograd/where.c), and a float mask can be multiplied in.
 *
 * Forward: walked in segments by ox_iter (tensor/iter.h), the switch on the op outside the inner loops,
 * each inner loop a compare-and-select the compiler vectorises. */
#include "autograd/ops.h"
#include "tensor/iter.h"

enum cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

static const char *const cmp_names[] = { "eq", "ne", "lt", "le", "gt", "ge" };

struct cmp_args {
    enum cmp op;
    float *y;
    const float *a, *b;
};

static void cmp_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct cmp_args *e = arg;
    float *y = e->y + off[0];
    const float *a = e->a + off[1], *b = e->b + off[2];
    int64_t sy = st[0], sa = st[1], sb = st[2];
    switch (e->op) {
    case CMP_EQ: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] == b[i * sb] ? 1.0f : 0.0f; break;
    case CMP_NE: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] != b[i * sb] ? 1.0f : 0.0f; break;
    case CMP_LT: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] < b[i * sb] ? 1.0f : 0.0f; break;
    case CMP_LE: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] <= b[i * sb] ? 1.0f : 0.0f; break;
    case CMP_GT: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] > b[i * sb] ? 1.0f : 0.0f; break;
    case CMP_GE: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] >= b[i * sb] ? 1.0f : 0.0f; break;
    }
}

static ox_tensor *compare(ox_ctx *ctx, enum cmp op, ox_tensor *a, ox_tensor *b)
{
    if (ctx->status || !a || !b)
        return NULL;
    const char *name = cmp_names[op];
    if (ox_check_f32(ctx, name, a) || ox_check_f32(ctx, name, b))
        return NULL;
    int64_t shape[OX_MAX_DIMS] = { 0 };
    int nd = ox_broadcast_shape(a, b, shape);
    if (nd < 0) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name, ox_shape_str(a, b1),
                    ox_shape_str(b, b2));
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    ox_tensor *ae = ox_tensor_view_expand(ctx, a, nd, shape);
    ox_tensor *be = ox_tensor_view_expand(ctx, b, nd, shape);
    if (!y || !ae || !be)
        return NULL;
    struct cmp_args e = { op, ox_tensor_f32(y), ox_tensor_f32(ae), ox_tensor_f32(be) };
    ox_iter it;
    ox_iter_init(&it, 3, (const ox_tensor *[]){ y, ae, be });
    ox_iter_run(&it, ctx->n_threads, cmp_seg, &e);
    return y;      /* not recorded: y->requires_grad stays 0 */
}

ox_tensor *ox_ag_eq(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_EQ, a, b); }
ox_tensor *ox_ag_ne(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_NE, a, b); }
ox_tensor *ox_ag_lt(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_LT, a, b); }
ox_tensor *ox_ag_le(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_LE, a, b); }
ox_tensor *ox_ag_gt(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_GT, a, b); }
ox_tensor *ox_ag_ge(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return compare(ctx, CMP_GE, a, b); }
