/* cross_entropy.h - fused log-softmax + negative log-likelihood over the vocabulary, with ignored targets,
 * and (ox_nn_cross_entropy_ex) label smoothing and a choice of reduction.
 *
 * Math (MODELS.md 2), per row z (logits of one token) with target y:
 *     loss = (1 / count) * sum over rows with y != ignore_index of ( logsumexp(z) - z[y] )
 *     dz   = g * (softmax(z) - onehot(y)) / count    for counted rows, 0 for ignored rows
 * where count = number of non-ignored rows and g the loss's incoming gradient. With every target ignored
 * (count = 0) the loss is 0 and the gradient is 0 (no division by zero).
 * logsumexp is computed as max + log(sum exp(z - max)) (every exponent <= 0, the sum in [1, V]), so
 * logits of size 1e3 stay finite. The forward saves logsumexp per row ([rows] floats); backward recomputes
 * softmax and writes straight into the logits' gradient (nothing larger than the logits is materialised).
 * Shapes: logits [..., V] (e.g. [B, T, V] or [N, V]), targets I32 [...] (the logits' shape without the
 * last axis), result a 0-d tensor. Rows are processed in parallel, each by one thread; the loss adds the
 * per-row terms in row order (double), so results are bit-identical at any thread count.
 * Cost: ~3 passes over the logits forward (max, exp-sum, pick), 1 backward (exp, write).
 *
 *   ox_tensor *loss = ox_nn_cross_entropy(ctx, logits, targets, -1);    // [] ; -1 marks padding
 *   ox_ag_backward(ctx, loss);
 *
 * Label smoothing and reductions (torch.nn.functional.cross_entropy's label_smoothing and reduction), per
 * counted row with eps in [0, 1), V classes and lse = logsumexp(z):
 *     l   = (1 - eps) (lse - z[y]) + eps (1/V) sum_v (lse - z[v])     (PyTorch's definition)
 *     dz  = dl * (softmax(z) - (1 - eps) onehot(y) - eps / V)
 * MEAN: sum of l over counted rows / count (0 when count = 0, as above); SUM: the sum; NONE: l per row,
 * shaped like the targets, 0 at ignored targets (their rows get no gradient), dl = the incoming dy[row].
 * The smoothing term sums the row's logits in 16 lanes (fixed order); eps = 0 computes exactly what
 * ox_nn_cross_entropy does.
 *   ox_nn_ce_opts o = ox_nn_ce_defaults();                              // ignore -100, eps 0, mean
 *   o.label_smoothing = 0.1; o.reduction = OX_NN_REDUCE_NONE;
 *   ox_tensor *per_token = ox_nn_cross_entropy_ex(ctx, logits, targets, &o);    // [B, T]
 */
#ifndef OX_NN_CROSS_ENTROPY_H
#define OX_NN_CROSS_ENTROPY_H

#include "autograd/tape.h"

/* Mean cross entropy of logits [..., V] against targets [...] (I32, any strides), skipping targets equal
 * to ignore_index. Returns a 0-d arena tensor; differentiable in logits. Errors: dtypes, shapes, a target
 * outside [0, V) that is not ignore_index (OX_ERR_ARG naming the value and its position). */
ox_tensor *ox_nn_cross_entropy(ox_ctx *ctx, ox_tensor *logits, const ox_tensor *targets, int32_t ignore_index);

/* How the per-row losses are combined. */
typedef enum ox_nn_reduction {
    OX_NN_REDUCE_MEAN = 0,  /* over the counted (non-ignored) rows: a 0-d tensor */
    OX_NN_REDUCE_SUM = 1,   /* a 0-d tensor */
    OX_NN_REDUCE_NONE = 2   /* one loss per target: the targets' shape */
} ox_nn_reduction;

typedef struct ox_nn_ce_opts {
    int32_t ignore_index;       /* targets equal to it: loss 0, no gradient, not counted */
    double label_smoothing;     /* eps in [0, 1); 0 = none */
    ox_nn_reduction reduction;
} ox_nn_ce_opts;

/* ignore_index -100, label_smoothing 0, reduction MEAN: PyTorch's defaults. */
ox_nn_ce_opts ox_nn_ce_defaults(void);

/* Cross entropy of logits [..., V] against targets [...] (I32) with the options above (NULL: defaults).
 * Returns an arena tensor, 0-d or the targets' shape (NONE); differentiable in logits. Errors: those of
 * ox_nn_cross_entropy, label_smoothing outside [0, 1) or NaN, an unknown reduction (OX_ERR_ARG). */
ox_tensor *ox_nn_cross_entropy_ex(ox_ctx *ctx, ox_tensor *logits, const ox_tensor *targets, const ox_nn_ce_opts *opts);

#endif
