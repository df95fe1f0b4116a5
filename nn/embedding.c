/* embedding.c - embedding lookup (forward gather, backward scatter-add, tape glue), the tied head and
 * the module (see embedding.h). */
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/util.h"

#include <string.h>

/* A private copy of the ids, contiguous. */
typedef struct lookup_saved {
    const int32_t *ids;
    int64_t n;
} lookup_saved;

static ox_status lookup_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const lookup_saved *s = node->saved;
    ox_tensor *table = node->in[0];
    ox_tensor *dt = ox_ag_grad(ctx, table);
    if (!dt)
        return ctx->status;
    int64_t D = table->shape[1], n = s->n;
    const float *dh = ox_tensor_f32(node->out[0]->grad);
    float *g = ox_tensor_f32(dt);
    const int32_t *ids = s->ids;
    /* Threads own column ranges of dE; each walks the ids in order (fixed summation order). */
    int nt = ox_nn_threads(ctx, n * D);
    if (nt > D / 16)
        nt = D / 16 > 1 ? (int)(D / 16) : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int p = 0; p < nt; p++) {
        int64_t c0 = D * p / nt, c1 = D * (p + 1) / nt;
        for (int64_t m = 0; m < n; m++) {
            float *dst = g + (int64_t)ids[m] * D;
            const float *src = dh + m * D;
            for (int64_t c = c0; c < c1; c++)
                dst[c] += src[c];
        }
    }
    return OX_OK;
}

static const ox_ag_op lookup_op = { "embedding lookup", lookup_backward };

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
    int64_t V = table->shape[0], D = table->shape[1];
    ox_tensor *ic = ox_tensor_contiguous(ctx, (ox_tensor *)idx);
    if (!ic)
        return NULL;
    const int32_t *ids = ox_tensor_i32(ic);
    int64_t n = ox_tensor_numel(ic);
    for (int64_t m = 0; m < n; m++)
        if (ids[m] < 0 || ids[m] >= V) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "embedding: id %d at flat position %lld is outside [0, %lld)",
                        (int)ids[m], (long long)m, (long long)V);
            return NULL;
        }
    int64_t shape[OX_MAX_DIMS];
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = D;
    ox_tensor *h = ox_tensor_empty(ctx, OX_F32, idx->ndim + 1, shape);
    if (!h)
        return NULL;
    const float *tp = ox_tensor_f32(table);
    float *hp = ox_tensor_f32(h);
    int64_t rs = table->stride[0], cs = table->stride[1];
    int nt = ox_nn_threads(ctx, n * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t m = 0; m < n; m++) {
        const float *src = tp + (int64_t)ids[m] * rs;
        float *dst = hp + m * D;
        if (cs == 1)
            memcpy(dst, src, sizeof(float) * (size_t)D);
        else
            for (int64_t c = 0; c < D; c++)
                dst[c] = src[c * cs];
    }
    if (ox_ag_needs_grad(ctx, 1, &table)) {
        /* keep a copy of the ids: the caller may reuse its buffer before backward runs */
        lookup_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        int32_t *keep = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(n ? n : 1));
        if (!s || !keep)
            return NULL;
        memcpy(keep, ids, sizeof(int32_t) * (size_t)n);
        *s = (lookup_saved){ keep, n };
        ox_ag_node *node = ox_ag_record(ctx, &lookup_op, 1, &table, 1, &h);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : h;
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
