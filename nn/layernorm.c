/* layernorm.c - the LayerNorm module: parameters and forward (see layernorm.h; the op is
 * autograd/layernorm.c). */
#include "nn/layernorm.h"
#include "autograd/ops.h"
#include "nn/util.h"

ox_status ox_nn_layernorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_layernorm_t *m, const char *prefix,
                               int64_t dim, int bias)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(dim), OX_NN_NO_DECAY);
    if (!w || ox_tensor_fill(ctx, w, 1.0))
        return ctx->status;
    ox_tensor *b = NULL;
    if (bias) {     /* created zero-filled */
        b = ox_nn_param_new(ctx, ps, prefix, "bias", OX_DIMS(dim), OX_NN_NO_DECAY);
        if (!b)
            return ctx->status;
    }
    m->weight = w;
    m->bias = b;
    m->dim = dim;
    m->eps = OX_NN_LAYERNORM_EPS;
    return OX_OK;
}

ox_tensor *ox_nn_layernorm_forward(ox_ctx *ctx, const ox_nn_layernorm_t *m, ox_tensor *x)
{
    return ox_ag_layernorm(ctx, x, m->weight, m->bias, m->eps);
}
