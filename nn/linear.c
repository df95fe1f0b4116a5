/* linear.c - y = x W^T (+ b): forward GEMM, backward GEMMs and bias sum, tape glue, and the module (see
 * linear.h). */
#include "nn/linear.h"
#include "autograd/ops.h"
#include "nn/util.h"
#include "tensor/gemm.h"

#include <string.h>

/* What backward reads: the x actually multiplied (the input, or its contiguous copy) as rows. */
typedef struct linear_saved {
    ox_tensor *x;           /* [..., in]; row r, column i at x + r * rs + i * cs */
    int64_t rows, rs, cs;
} linear_saved;

static ox_status linear_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const linear_saved *s = node->saved;
    ox_tensor *w = node->in[1], *dy = node->out[0]->grad;
    int64_t rows = s->rows, in = w->shape[1], out = w->shape[0];
    const float *g = ox_tensor_f32(dy), *wp = ox_tensor_f32(w), *xp = ox_tensor_f32(s->x);
    int nt = ctx->n_threads;
    int fresh = 0;     /* dx created by this call: written with beta = 0, no zero fill */
    ox_tensor *dx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    ox_tensor *dw = ox_ag_grad(ctx, w);
    if (ctx->status)
        return ctx->status;
    /* dx [rows, in] (+)= dy [rows, out] W [out, in]; dx is contiguous (the input's shape); a fresh dx is
     * written whole (beta = 0 never reads it) */
    if (dx && rows > 0 && (out > 0 || !fresh))
        ox_sgemm(nt, rows, in, out, 1.0f, g, out, 1, wp, w->stride[0], w->stride[1], fresh ? 0.0f : 1.0f,
                 ox_tensor_f32(dx), in, 1);
    else if (dx && fresh)
        memset(ox_tensor_f32(dx), 0, sizeof(float) * (size_t)ox_tensor_numel(dx));
    /* dW [out, in] += dy^T [out, rows] x [rows, in] */
    if (dw && rows > 0)
        ox_sgemm(nt, out, in, rows, 1.0f, g, 1, out, xp, s->rs, s->cs, 1.0f, ox_tensor_f32(dw), in, 1);
    /* db [out] += sum over rows of dy, rows in order (one thread: a fixed order, O(rows * out) next to the
     * GEMMs' O(rows * in * out)) */
    ox_tensor *db = node->n_in > 2 ? ox_ag_grad(ctx, node->in[2]) : NULL;
    if (ctx->status)
        return ctx->status;
    if (db) {
        float *d = ox_tensor_f32(db);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++)
                d[o] += g[r * out + o];
    }
    return OX_OK;
}

static const ox_ag_op linear_op = { "linear", linear_backward };

/* y = x W^T (+ b when b != NULL); ox_nn_linear and ox_nn_linear_bias */
static ox_tensor *linear(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b)
{
    if (ctx->status || !x || !w)
        return NULL;
    if (ox_check_f32(ctx, "linear", x) || ox_check_f32(ctx, "linear", w) || (b && ox_check_f32(ctx, "linear", b)))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "linear: input %s does not fit weight %s (want x [..., in], w [out, in])",
                    ox_shape_str(x, b1), ox_shape_str(w, b2));
        return NULL;
    }
    int64_t in = w->shape[1], out = w->shape[0];
    if (b && (b->ndim != 1 || b->shape[0] != out)) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "linear: bias %s does not fit weight %s (want b [out], w [out, in])",
                    ox_shape_str(b, b3), ox_shape_str(w, b2));
        return NULL;
    }
    if (b)
        b = ox_ag_contiguous(ctx, b);
    if ((w->stride[0] == 0 && out > 1) || (w->stride[1] == 0 && in > 1))
        w = ox_ag_contiguous(ctx, w);       /* a broadcast weight: BLIS wants distinct elements */
    ox_tensor *xr = x;
    int64_t rows = 1, rs = 0, cs = 0;
    if (in == 0) {          /* nothing to read (an [R, 0] x may not fold: its row stride is 0) */
        for (int d = 0; d < x->ndim - 1; d++)
            rows *= x->shape[d];
    } else if (!ox_nn_fold_rows(x, &rows, &rs, &cs)) {
        xr = ox_tensor_empty_like(ctx, x);
        if (!xr || ox_tensor_copy(ctx, xr, x))
            return NULL;
        ox_nn_fold_rows(xr, &rows, &rs, &cs);
    }
    int64_t shape[OX_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = out;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, shape);
    if (!y || !w || ctx->status)
        return NULL;
    float *yp = ox_tensor_f32(y);
    if (b)      /* every row starts as b; the GEMM then adds x W^T with beta = 1 */
        for (int64_t r = 0; r < rows; r++)
            memcpy(yp + r * out, ox_tensor_f32(b), sizeof(float) * (size_t)out);
    if (in == 0) {
        if (!b)
            memset(yp, 0, sizeof(float) * (size_t)(rows * out));
    } else {    /* y [rows, out] (+)= x [rows, in] W^T [in, out] (W^T: W with its strides swapped) */
        ox_sgemm(ctx->n_threads, rows, out, in, 1.0f, ox_tensor_f32(xr), rs, cs, ox_tensor_f32(w),
                 w->stride[1], w->stride[0], b ? 1.0f : 0.0f, yp, out, 1);
    }
    ox_tensor *ins[3] = { x, w, b };
    int n_in = b ? 3 : 2;
    if (ox_ag_needs_grad(ctx, n_in, ins)) {
        linear_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (linear_saved){ xr, rows, rs, cs };
        ox_ag_node *n = ox_ag_record(ctx, &linear_op, n_in, ins, 1, &y);
        if (n)
            n->saved = s;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_nn_linear(ox_ctx *ctx, ox_tensor *x, ox_tensor *w) { return linear(ctx, x, w, NULL); }

ox_tensor *ox_nn_linear_bias(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b) { return linear(ctx, x, w, b); }

ox_status ox_nn_linear_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *m, const char *prefix,
                            int64_t in, int64_t out, double std, ox_rng *rng)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(out, in), OX_NN_DECAY);
    if (!w || ox_tensor_fill_normal(ctx, w, rng, 0.0, std))
        return ctx->status;
    m->weight = w;
    m->in = in;
    m->out = out;
    return OX_OK;
}

ox_status ox_nn_linear_init_bias(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *m, const char *prefix,
                                 int64_t in, int64_t out, double std, ox_rng *rng)
{
    if (ox_nn_linear_init(ctx, ps, m, prefix, in, out, std, rng))
        return ctx->status;
    double bound = in > 0 ? 1.0 / sqrt((double)in) : 0.0;
    ox_tensor *b = ox_nn_param_new(ctx, ps, prefix, "bias", OX_DIMS(out), OX_NN_NO_DECAY);
    if (!b || ox_tensor_fill_uniform(ctx, b, rng, -bound, bound))
        return ctx->status;
    m->bias = b;
    return OX_OK;
}

ox_tensor *ox_nn_linear_forward(ox_ctx *ctx, const ox_nn_linear_t *m, ox_tensor *x)
{
    return linear(ctx, x, m->weight, m->bias);
}
