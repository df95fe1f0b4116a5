/* cross_entropy.h - fused log-softmax + negative log-likelihood over the vocabulary, with ignored targets.
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
 */
#ifndef OX_NN_CROSS_ENTROPY_H
#define OX_NN_CROSS_ENTROPY_H

#include "autograd/tape.h"

/* Mean cross entropy of logits [..., V] against targets [...] (I32, any strides), skipping targets equal
 * to ignore_index. Returns a 0-d arena tensor; differentiable in logits. Errors: dtypes, shapes, a target
 * outside [0, V) that is not ignore_index (OX_ERR_ARG naming the value and its position). */
ox_tensor *ox_nn_cross_entropy(ox_ctx *ctx, ox_tensor *logits, const ox_tensor *targets, int32_t ignore_index);

#endif
