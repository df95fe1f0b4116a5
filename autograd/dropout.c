/* dropout.c - inverted dropout (Srivastava et al. 2014; torch.nn.functional.dropout): forward kernel,
 * backward kernel, tape glue.
 *
 * Math, with keep_i in {0, 1} and s = 1 / (1 - p):
 *     y_i = x_i keep_i s            dx_i += dy_i keep_i s
 * The randomness is explicit and reproducible: element i of x (row-major over its shape, whatever its
 * strides) is kept when the i-th number u_i of ox_tensor_fill_uniform(rng, 0, 1) (as a float) is >= p,
 * so the rng advances by numel(x) and the mask does not depend on the thread count. The scaled mask
 * m_i = keep_i s is materialised once ([x's shape] floats), saved for backward, and applied there with the
 * same iterator: backward uses exactly the forward's mask. Dropped elements are x_i * 0 (a NaN or inf
 * input stays NaN there, as in PyTorch). */
#include "autograd/ops.h"
#include "tensor/iter.h"
#include "tensor/rng.h"

#include <math.h>

struct drop_args {
    float *y;               /* forward: y; backward: the gradient g */
    const float *x;         /* forward: x; backward: dy */
    float *m;               /* forward: uniforms in, scaled mask out; backward: the mask */
    float p, scale;
    int fresh;              /* backward: g was just created, write '=' */
};

/* m = u >= p ? s : 0, y = x m (operands y, x, m) */
static void drop_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct drop_args *e = arg;
    float *y = e->y + off[0], *m = e->m + off[2];
    const float *x = e->x + off[1];
    int64_t sy = st[0], sx = st[1], sm = st[2];
    float p = e->p, s = e->scale;
    for (int64_t i = 0; i < n; i++) {
        float mi = m[i * sm] >= p ? s : 0.0f;
        m[i * sm] = mi;
        y[i * sy] = x[i * sx] * mi;
    }
}

/* g (+)= dy m (operands g, dy, m) */
static void drop_grad_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct drop_args *e = arg;
    float *g = e->y + off[0];
    const float *dy = e->x + off[1], *m = e->m + off[2];
    int64_t sg = st[0], sd = st[1], sm = st[2];
    if (e->fresh)
        for (int64_t i = 0; i < n; i++)
            g[i * sg] = dy[i * sd] * m[i * sm];
    else
        for (int64_t i = 0; i < n; i++)
            g[i * sg] += dy[i * sd] * m[i * sm];
}

static ox_status dropout_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0], *mask = node->saved;
    int fresh = 0;
    ox_tensor *g = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    if (!g || !y->grad)
        return ctx->status;
    struct drop_args e = { ox_tensor_f32(g), ox_tensor_f32(y->grad), ox_tensor_f32(mask), 0, 0, fresh };
    ox_iter it;
    ox_iter_init(&it, 3, (const ox_tensor *[]){ g, y->grad, mask });
    ox_iter_run(&it, ctx->n_threads, drop_grad_seg, &e);
    return OX_OK;
}

static const ox_ag_op dropout_op = { "dropout", dropout_backward };

ox_tensor *ox_ag_dropout(ox_ctx *ctx, ox_tensor *x, double p, ox_rng *rng, int training)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "dropout", x))
        return NULL;
    if (!(p >= 0.0 && p < 1.0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "dropout: p %g is outside [0, 1) (the probability of zeroing an element)", p);
        return NULL;
    }
    if (!training || p == 0.0)
        return x;
    if (!rng) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "dropout: training with p %g needs an rng (got NULL)", p);
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    ox_tensor *mask = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y || !mask || ox_tensor_fill_uniform(ctx, mask, rng, 0.0, 1.0))
        return NULL;
    struct drop_args e = { ox_tensor_f32(y), ox_tensor_f32(x), ox_tensor_f32(mask), (float)p,
                           (float)(1.0 / (1.0 - p)), 0 };
    ox_iter it;
    ox_iter_init(&it, 3, (const ox_tensor *[]){ y, x, mask });
    ox_iter_run(&it, ctx->n_threads, drop_seg, &e);
    ox_ag_node *n = ox_ag_record(ctx, &dropout_op, 1, &x, 1, &y);
    if (n)
        n->saved = mask;
    return ctx->status ? NULL : y;
}
