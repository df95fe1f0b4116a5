/* gdn.h - the Gated DeltaNet mixer core (MODELS.md section 5): chunked WY/UT fast path, sequential
 * reference, step.
 *
 * Per (batch b, head h) the state S_t is a dv x dk matrix; for t = 1..T, with alpha_t = exp(a_t):
 *     S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T        o_t = S_t q_t
 * computed as Sb = alpha_t S_{t-1}; u_t = beta_t (v_t - Sb k_t); S_t = Sb + u_t k_t^T.
 *
 * Shapes: q, k [B, T, H, dk] (q L2-normalised and scaled by 1/sqrt(dk), k L2-normalised: see l2norm.h);
 * v [B, T, H, dv]; beta [B, T, H] in [0, 1]; a [B, T, H] log-decay <= 0; s0 and the final state
 * [B, H, dv, dk]. Inputs may have any strides (an input whose last axis is strided is copied to contiguous
 * rows); outputs are contiguous arena tensors (valid until ox_ctx_reset).
 *
 * Checked preconditions (every op below, before anything runs; one O(B T H) pass over beta and a): every
 * beta in [0, 1] and every a finite and <= 0, the ranges of MODELS.md 5.1 (beta is a gate, a a log-decay: with
 * a > 0 the state can grow exponentially, and beta < 0 or > 2 can make the delta rule diverge); the model's
 * beta = sigmoid(..) and a = -exp(A_log) softplus(..) always satisfy them. A NaN or Inf fails with
 * OX_ERR_NUMERIC, a finite value outside its range with OX_ERR_ARG; the message names the op, the tensor,
 * the first offending index (row-major, [b, t, h] or [b, h]) and its value, and the allowed range, e.g.
 * "gdn: beta[0, 3, 1] = 1.5 violates 0 <= beta <= 1". Nothing is computed: no outputs (the step leaves state
 * and o untouched), no tape node. q, k, v and s0 are not scanned (that would cost a pass over the big
 * tensors); a NaN there propagates to the outputs.
 *
 * Cost (fast path, per (batch, head) and token, Lc = 64): about 2 (Lc (2 dk + 2 dv) + 3 dk dv) flops
 * forward (K K^T, Q K^T, the in-chunk solve, P U, W S0^T, Q S0^T, U^T K), roughly 3x that backward. Saved
 * for backward: the state at every chunk start, [B, H, ceil(T/64), dv, dk] floats, plus references to the
 * inputs; everything else (Gam, A, U, P) is recomputed chunk by chunk.
 *
 *   ox_tensor *o, *sT;
 *   if (ox_nn_gdn(ctx, q, k, v, beta, a, NULL, &o, &sT)) return ox_ctx_status(ctx);
 */
#ifndef OX_NN_GDN_H
#define OX_NN_GDN_H

#include "autograd/tape.h"

/* Chunked GDN (MODELS.md 5.4 forward, 5.5 backward), Lc = 64, products through ox_sgemm and the in-chunk
 * triangular solve through ox_strsm_unit_lower. s0 may be NULL (zero state); s_final may be NULL if not
 * wanted. Differentiable in q, k, v, beta, a and s0; a gradient reaching the final state flows back too.
 * On error *o (and *s_final) are NULL and the status is returned (and recorded in ctx). */
ox_status ox_nn_gdn(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta, ox_tensor *a,
                    ox_tensor *s0, ox_tensor **o, ox_tensor **s_final);

/* The same op computed token by token (MODELS.md 5.2) with the sequential backward of 5.3 (states kept at
 * chunk boundaries, recomputed inside a chunk). For tests and teaching; the fast path never calls it. */
ox_status ox_nn_gdn_reference(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta,
                              ox_tensor *a, ox_tensor *s0, ox_tensor **o, ox_tensor **s_final);

/* One decoding step, one token per sequence (not differentiable, allocates nothing): q, k [B, H, dk];
 * v, o [B, H, dv]; beta, a [B, H]; state [B, H, dv, dk] updated in place, then o = S q. Any strides,
 * except that the last axis of every operand must have stride 1. */
ox_status ox_nn_gdn_step(ox_ctx *ctx, const ox_tensor *q, const ox_tensor *k, const ox_tensor *v,
                         const ox_tensor *beta, const ox_tensor *a, ox_tensor *state, ox_tensor *o);

#endif
