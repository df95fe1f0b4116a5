/* block.c - the pre-norm residual layer (see block.h): init, the parallel form, the step form. */
#include "nn/block.h"

#include "autograd/ops.h"
#include "nn/util.h"

#include <stdio.h>

ox_status ox_nn_block_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_block *b, const char *prefix,
                           const ox_nn_mixer_config *mc, int64_t mlp_hidden, ox_rng *rng)
{
    if (!b || !mc)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "block init: block or mixer config is NULL");
    *b = (ox_nn_block){ 0 };
    if (ctx->status)
        return ctx->status;
    char name[4][OX_NN_NAME_MAX];
    const char *sub[4] = { "norm1", "mixer", "norm2", "mlp" };
    for (int i = 0; i < 4; i++) {
        int len = snprintf(name[i], sizeof name[i], "%s.%s", prefix, sub[i]);
        if (len < 0 || len >= (int)sizeof name[i])
            return ox_ctx_fail(ctx, OX_ERR_ARG, "block init: prefix '%s' is too long", prefix);
    }
    ox_nn_rmsnorm_init(ctx, ps, &b->norm1, name[0], mc->d_model);
    ox_nn_mixer_init(ctx, ps, &b->mixer, name[1], mc, rng);
    ox_nn_rmsnorm_init(ctx, ps, &b->norm2, name[2], mc->d_model);
    ox_nn_swiglu_init(ctx, ps, &b->mlp, name[3], mc->d_model, mlp_hidden, mc->n_layers, rng);
    return ctx->status;
}

ox_tensor *ox_nn_block_forward(ox_ctx *ctx, const ox_nn_block *b, ox_tensor *h, const ox_tensor *mode,
                               ox_nn_mixer_state *st)
{
    if (ctx->status || !b || !h)
        return NULL;
    ox_tensor *x = ox_nn_rmsnorm_forward(ctx, &b->norm1, h);
    h = ox_ag_add(ctx, h, st ? ox_nn_mixer_prefill(ctx, &b->mixer, x, mode, st)
                             : ox_nn_mixer_forward(ctx, &b->mixer, x, mode, NULL));
    return ox_ag_add(ctx, h, ox_nn_swiglu_forward(ctx, &b->mlp, ox_nn_rmsnorm_forward(ctx, &b->norm2, h)));
}

ox_tensor *ox_nn_block_step(ox_ctx *ctx, const ox_nn_block *b, ox_nn_mixer_state *st, ox_tensor *h,
                            const int32_t *md, int64_t pos)
{
    if (ctx->status || !b || !h)
        return NULL;
    h = ox_ag_add(ctx, h, ox_nn_mixer_step(ctx, &b->mixer, st, ox_nn_rmsnorm_forward(ctx, &b->norm1, h), md, pos));
    return ox_ag_add(ctx, h, ox_nn_swiglu_step(ctx, &b->mlp, ox_nn_rmsnorm_forward(ctx, &b->norm2, h)));
}
