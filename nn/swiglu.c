/* swiglu.c - fused silu(a) ⊙ b (forward kernel, backward kernel, tape glue), the SwiGLU MLP and its
 * module (see swiglu.h). */
#include "nn/swiglu.h"
#include "autograd/ops.h"
#include "nn/linear_step.h"
#include "nn/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Elements per parallel chunk of the flat loops. */
#define CHUNK 4096

typedef struct silu_mul_saved {
    ox_tensor *a, *b;       /* contiguous (the inputs or their copies) */
} silu_mul_saved;

static ox_status silu_mul_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const silu_mul_saved *s = node->saved;
    int fa = 0, fb = 0;     /* fresh gradients: zeroed chunk by chunk (cache-hot) instead of up front */
    ox_tensor *ga = ox_ag_grad_fresh(ctx, node->in[0], &fa);
    ox_tensor *gb = ox_ag_grad_fresh(ctx, node->in[1], &fb);
    if (ctx->status)
        return ctx->status;
    int64_t n = ox_tensor_numel(s->a), nc = (n + CHUNK - 1) / CHUNK;
    const float *ap = ox_tensor_f32(s->a), *bp = ox_tensor_f32(s->b), *du = ox_tensor_f32(node->out[0]->grad);
    float *gap = ga ? ox_tensor_f32(ga) : NULL, *gbp = gb ? ox_tensor_f32(gb) : NULL;
    int nt = ox_nn_threads(ctx, n);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t k = 0; k < nc; k++) {
        int64_t i0 = k * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        if (fa)
            memset(gap + i0, 0, sizeof(float) * (size_t)(i1 - i0));
        if (fb)
            memset(gbp + i0, 0, sizeof(float) * (size_t)(i1 - i0));
        /* da = du ⊙ b ⊙ σ(a) (1 + a (1 - σ(a))),  db = du ⊙ a σ(a); branch-free inner loops */
        if (gap && gbp)
            for (int64_t i = i0; i < i1; i++) {
                float z = ap[i], sz = ox_nn_sigmoidf(z);
                gap[i] += du[i] * bp[i] * sz * (1.0f + z * (1.0f - sz));
                gbp[i] += du[i] * z * sz;
            }
        else if (gap)
            for (int64_t i = i0; i < i1; i++) {
                float z = ap[i], sz = ox_nn_sigmoidf(z);
                gap[i] += du[i] * bp[i] * sz * (1.0f + z * (1.0f - sz));
            }
        else
            for (int64_t i = i0; i < i1; i++) {
                float z = ap[i];
                gbp[i] += du[i] * z * ox_nn_sigmoidf(z);
            }
    }
    return OX_OK;
}

static const ox_ag_op silu_mul_op = { "silu_mul", silu_mul_backward };

ox_tensor *ox_nn_silu_mul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b)
{
    if (ctx->status || !a || !b)
        return NULL;
    if (ox_check_f32(ctx, "silu_mul", a) || ox_check_f32(ctx, "silu_mul", b))
        return NULL;
    if (!ox_tensor_same_shape(a, b)) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "silu_mul: shapes %s and %s differ", ox_shape_str(a, b1),
                    ox_shape_str(b, b2));
        return NULL;
    }
    ox_tensor *ac = ox_tensor_contiguous(ctx, a), *bc = ox_tensor_contiguous(ctx, b);
    ox_tensor *u = ox_tensor_empty(ctx, OX_F32, a->ndim, a->shape);
    if (!ac || !bc || !u)
        return NULL;
    int64_t n = ox_tensor_numel(u), nc = (n + CHUNK - 1) / CHUNK;
    const float *ap = ox_tensor_f32(ac), *bp = ox_tensor_f32(bc);
    float *up = ox_tensor_f32(u);
    int nt = ox_nn_threads(ctx, n);
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t k = 0; k < nc; k++) {
        int64_t i0 = k * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        for (int64_t i = i0; i < i1; i++) {
            float z = ap[i];
            up[i] = z * ox_nn_sigmoidf(z) * bp[i];
        }
    }
    ox_tensor *ins[2] = { a, b };
    if (ox_ag_needs_grad(ctx, 2, ins)) {
        silu_mul_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (silu_mul_saved){ ac, bc };
        ox_ag_node *node = ox_ag_record(ctx, &silu_mul_op, 2, ins, 1, &u);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : u;
}

/* y = (silu(x Wgate^T) ⊙ (x Wup^T)) Wdown^T with the products by proj: the MLP's one definition, run by the
 * parallel form (ox_nn_linear) and the step form (ox_nn_linear_step) */
static ox_tensor *swiglu_by(ox_ctx *ctx, ox_nn_proj_fn proj, ox_tensor *x, ox_tensor *wgate, ox_tensor *wup,
                            ox_tensor *wdown)
{
    ox_tensor *a = proj(ctx, x, wgate);
    ox_tensor *b = proj(ctx, x, wup);
    return proj(ctx, ox_nn_silu_mul(ctx, a, b), wdown);
}

ox_tensor *ox_nn_swiglu(ox_ctx *ctx, ox_tensor *x, ox_tensor *wgate, ox_tensor *wup, ox_tensor *wdown)
{
    if (ctx->status || !x || !wgate || !wup || !wdown)
        return NULL;
    if (wgate->ndim != 2 || !ox_tensor_same_shape(wgate, wup) || wdown->ndim != 2 ||
        wdown->shape[0] != wgate->shape[1] || wdown->shape[1] != wgate->shape[0]) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE,
                    "swiglu: weights gate %s, up %s, down %s do not fit (want [F, D], [F, D], [D, F])",
                    ox_shape_str(wgate, b1), ox_shape_str(wup, b2), ox_shape_str(wdown, b3));
        return NULL;
    }
    return swiglu_by(ctx, ox_nn_linear, x, wgate, wup, wdown);
}

ox_status ox_nn_swiglu_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_swiglu_t *m, const char *prefix, int64_t dim,
                            int64_t hidden, int n_layers, ox_rng *rng)
{
    memset(m, 0, sizeof *m);
    if (ctx->status)
        return ctx->status;
    if (n_layers < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "swiglu_init: n_layers must be >= 1, not %d", n_layers);
    char name[OX_NN_NAME_MAX];
    const char *sub[3] = { "gate_proj", "up_proj", "down_proj" };
    ox_nn_linear_t *lin[3] = { &m->gate, &m->up, &m->down };
    for (int k = 0; k < 3; k++) {
        int len = snprintf(name, sizeof name, "%s.%s", prefix, sub[k]);
        if (len < 0 || len >= (int)sizeof name)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "swiglu_init: prefix '%s' is too long", prefix);
        double std = k < 2 ? 0.02 : 0.02 / sqrt(2.0 * n_layers);
        if (ox_nn_linear_init(ctx, ps, lin[k], name, k < 2 ? dim : hidden, k < 2 ? hidden : dim, std, rng))
            return ctx->status;
    }
    m->dim = dim;
    m->hidden = hidden;
    return OX_OK;
}

ox_tensor *ox_nn_swiglu_forward(ox_ctx *ctx, const ox_nn_swiglu_t *m, ox_tensor *x)
{
    return ox_nn_swiglu(ctx, x, m->gate.weight, m->up.weight, m->down.weight);
}

ox_tensor *ox_nn_swiglu_step(ox_ctx *ctx, const ox_nn_swiglu_t *m, ox_tensor *x)
{
    if (ctx->status || !m || !x)
        return NULL;
    return swiglu_by(ctx, ox_nn_linear_step, x, m->gate.weight, m->up.weight, m->down.weight);
}
