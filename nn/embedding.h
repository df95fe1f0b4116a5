/* embedding.h - token embedding lookup (ox_ag_gather_rows with embedding argument checks) and the tied LM
 * head, plus a thin module.
 *
 * Math (MODELS.md 2):
 *     lookup:  h[m, :] = E[idx[m], :]                 backward  dE[idx[m], :] += dh[m, :]
 *     head:    z = h E^T  (= ox_nn_linear(h, E))       backward  dE += dz^T h,  dh += dz E
 * The embedding receives both gradients (they accumulate into the same E->grad).
 * Shapes: E [V, D], idx I32 of any shape (e.g. [B, T]), h [idx..., D], z [..., V].
 * Cost: lookup moves idx.numel * D floats each way; the head is 2 * rows * D * V flops (a GEMM).
 *
 * The lookup is autograd/index.c's gather_rows; its backward is deterministic: every row of dE sums the
 * rows of dh in index order, so repeated ids sum in a fixed order whatever the thread count.
 *
 *   ox_nn_embedding_t emb;
 *   ox_nn_embedding_init(ctx, &ps, &emb, "embed", V, D, 0.02, &rng);     // "embed.weight"
 *   ox_tensor *h = ox_nn_embedding_forward(ctx, &emb, tokens);           // [B, T, D]
 *   ox_tensor *z = ox_nn_embedding_logits(ctx, &emb, hf);                // [B, T, V]
 */
#ifndef OX_NN_EMBEDDING_H
#define OX_NN_EMBEDDING_H

#include "autograd/tape.h"
#include "nn/param.h"
#include "tensor/rng.h"

/* Rows of table [V, D] picked by idx (I32, any shape, any strides): result [idx..., D], contiguous,
 * arena-owned. Differentiable in table. Errors: table not 2-D F32, idx not I32, an id outside [0, V)
 * (OX_ERR_ARG naming the id and its position; nothing is written). */
ox_tensor *ox_nn_embedding_lookup(ox_ctx *ctx, ox_tensor *table, const ox_tensor *idx);

/* Module: the table is the parameter "<prefix>.weight" [V, D] (MODELS.md 12.2: "embed.weight"), owned by
 * the parameter list. */
typedef struct ox_nn_embedding_t {
    ox_tensor *weight;      /* [V, D], borrowed from the parameter list */
    int64_t vocab, dim;
} ox_nn_embedding_t;

/* Registers "<prefix>.weight" [V, D] (weight decay on) filled N(0, std^2) from rng (MODELS.md 13: 0.02). */
ox_status ox_nn_embedding_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_embedding_t *m, const char *prefix,
                               int64_t vocab, int64_t dim, double std, ox_rng *rng);
/* h = E[tokens]: tokens I32 [...] -> [..., D]. */
ox_tensor *ox_nn_embedding_forward(ox_ctx *ctx, const ox_nn_embedding_t *m, const ox_tensor *tokens);
/* Tied head: logits = h E^T, h [..., D] -> [..., V]. */
ox_tensor *ox_nn_embedding_logits(ox_ctx *ctx, const ox_nn_embedding_t *m, ox_tensor *h);

#endif
