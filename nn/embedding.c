/* embedding.c - embedding lookup (argument checks, then autograd/index.c's gather_rows), the tied head
 * and the module (see embedding.h). */
#include "nn/embedding.h"
#include "autograd/ops.h"
#include "nn/linear.h"
#include "nn/util.h"

#include <string.h>

/* The embedding's own argument checks (its error messages name "embedding", the id and its flat
 * position), then ox_ag_gather_rows on a private contiguous copy of the ids: the gather saves its index
 * tensor for backward, and the caller may reuse its id buffer before backward runs. */
ox_tensor *ox_nn_embedding_lookup(ox_ctx *ctx, ox_tensor *table, const ox_tensor *idx)
{
    if (ctx->status || !table || !idx)
        return NULL;
    if (ox_check_f32(ctx, "embedding", table) || ox_check_i32(ctx, "embedding", idx))
        return NULL;
    char b1[OX_SHAPE_BUF];
    if (table->ndim != 2) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "embedding: table must be [V, D], not %s", ox_shape_str(table, b1));
        return NULL;
    }
    if (idx->ndim + 1 > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "embedding: ids %s have too many axes for a result with one more",
                    ox_shape_str(idx, b1));
        return NULL;
    }
    ox_tensor *ic = ox_tensor_empty(ctx, OX_I32, idx->ndim, idx->shape);
    if (!ic || ox_tensor_copy(ctx, ic, idx))
        return NULL;
    const int32_t *ids = ox_tensor_i32(ic);
    int64_t V = table->shape[0], n = ox_tensor_numel(ic);
    for (int64_t m = 0; m < n; m++)
        if (ids[m] < 0 || ids[m] >= V) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "embedding: id %d at flat position %lld is outside [0, %lld)",
                        (int)ids[m], (long long)m, (long long)V);
            return NULL;
        }
    return ox_ag_gather_rows(ctx, table, ic);
}

ox_status ox_nn_embedding_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_embedding_t *m, const char *prefix,
                               int64_t vocab, int64_t dim, double std, ox_rng *rng)
{
    memset(m, 0, sizeof *m);
    ox_tensor *w = ox_nn_param_new(ctx, ps, prefix, "weight", OX_DIMS(vocab, dim), OX_NN_DECAY);
    if (!w || ox_tensor_fill_normal(ctx, w, rng, 0.0, std))
        return ctx->status;
    m->weight = w;
    m->vocab = vocab;
    m->dim = dim;
    return OX_OK;
}

ox_tensor *ox_nn_embedding_forward(ox_ctx *ctx, const ox_nn_embedding_t *m, const ox_tensor *tokens)
{
    return ox_nn_embedding_lookup(ctx, m->weight, tokens);
}

ox_tensor *ox_nn_embedding_logits(ox_ctx *ctx, const ox_nn_embedding_t *m, ox_tensor *h)
{
    return ox_nn_linear(ctx, h, m->weight);
}
