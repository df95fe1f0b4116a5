/* inspect.h - looking inside a trained Oryx-family model: the attention probabilities of one head of one
 * layer for a token sequence (what `oryx attention` draws). Computed with the model's own trunk: the
 * layers before l run exactly as ox_oryx_forward runs them, and in layer l the queries and keys are the
 * mixer's own RoPE-rotated q and k (nn/mixer.h trace: x = RMSNorm(h; norm1), q = x Wq^T, k = conv(x Wk^T),
 * both rotated at positions 0..T-1, MODELS 4 and 7.2).
 *
 *   ox_tensor *rows;
 *   ox_tensor *P = ox_oryx_attention_probs(ctx, &m, tokens, mode, 1, 0, &rows);   // P [T, T]
 */
#ifndef OX_ORYX_INSPECT_H
#define OX_ORYX_INSPECT_H

#include "models/oryx/model.h"

/* Attention probabilities of head `head` (0 .. H-1) in layer `layer` (0 .. L-1) for one sequence:
 *     P[t, s] = exp(S_ts) / sum_{j <= t} exp(S_tj),  S_ts = q_t . k_s / sqrt(dk),  for s <= t,
 *     P[t, s] = 0 for s > t (causal),
 * at every query row t the layer's attention computes: every row in an attention-only layer, the ATTN
 * rows of the mode map in an Oryx layer. Rows it does not compute (LIN rows) are all 0: they attend
 * nowhere. tokens: I32 [T] or [1, T]; mode: as ox_oryx_forward takes it for B = 1 ([T], [1, T] or
 * [L, 1, T]; may be NULL when the model has no Oryx layer). Returns P F32 [T, T] (arena, contiguous) and,
 * if rows is not NULL, *rows = I32 [T] (arena): 1 where row t was computed. The softmax is taken in
 * double precision from the float q, k. Gradients are off during the call (nothing is recorded).
 * Errors (NULL + message): shapes/dtypes, layer or head out of range, a layer with no attention (LIN
 * kind), and whatever ox_oryx_forward would reject. */
ox_tensor *ox_oryx_attention_probs(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens,
                                   const ox_tensor *mode, int64_t layer, int64_t head, ox_tensor **rows);

#endif
