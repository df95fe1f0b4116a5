/* ssd.h - the Mamba-2 SSD mixer core (MODELS.md section 6): chunked fast path, sequential reference, step.
 *
 * Per (batch b, head h) the state h_t is a dv x dk matrix; for t = 1..T
 *     h_t = exp(a_t) h_{t-1} + dt_t x_t b_t^T        y_t = h_t c_t
 * (the D skip term is not included: the mixer layer adds Dskip * x). c, b are the SSM's C and B ("q" and
 * "k"), a_t = dt_t * A_h <= 0 is the log-decay the caller computes.
 *
 * Shapes: c, b [B, T, H, dk]; x [B, T, H, dv]; dt, a [B, T, H]; h0 and the final state [B, H, dv, dk]
 * (rows index v features). Inputs may have any strides (an input whose last axis is strided is copied to
 * contiguous rows); outputs are contiguous arena tensors (valid until ox_ctx_reset).
 *
 * Checked preconditions (every op below, before anything runs; one O(B T H) pass over dt and a): every dt
 * finite and >= 0 (a step size, softplus(..) in the model) and every a finite and <= 0 (with a > 0 the state
 * can grow exponentially; the model's a = dt * (-exp(A_log)) satisfies it). A NaN or Inf fails with
 * OX_ERR_NUMERIC, a finite value outside its range with OX_ERR_ARG; the message names the op, the tensor,
 * the first offending index (row-major, [b, t, h] or [b, h]) and its value, and the allowed range, e.g.
 * "ssd: a[0, 5, 1] = 0.5 violates a <= 0, finite (a is the log-decay)". Nothing is computed: no outputs (the
 * step leaves state and y untouched), no tape node. c, b, x and h0 are not scanned (that would cost a pass
 * over the big tensors); a NaN there propagates to the outputs.
 *
 * Cost (fast path, per (batch, head) and token, Lc = 64): about 2 (Lc (dk + dv) + 2 dk dv) flops forward,
 * roughly 3x that backward. Saved for backward: the state at every chunk start, [B, H, ceil(T/64), dv, dk]
 * floats, plus references to the inputs; everything else is recomputed chunk by chunk.
 *
 *   ox_tensor *y, *hT;
 *   if (ox_nn_ssd(ctx, c, b, x, dt, a, NULL, &y, &hT)) return ox_ctx_status(ctx);
 *   ... loss ... ox_ag_backward(ctx, loss);     // gradients reach c, b, x, dt, a (and h0)
 */
#ifndef OX_NN_SSD_H
#define OX_NN_SSD_H

#include "autograd/tape.h"

/* Chunked SSD (MODELS.md 6.4 forward, 6.5 backward), Lc = 64, every product through ox_sgemm.
 * h0 may be NULL (zero initial state); h_final may be NULL if the final state is not wanted. Differentiable
 * in c, b, x, dt, a and h0; a gradient reaching the final state flows back too. On error *y (and *h_final)
 * are NULL and the status is returned (and recorded in ctx). */
ox_status ox_nn_ssd(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt, ox_tensor *a,
                    ox_tensor *h0, ox_tensor **y, ox_tensor **h_final);

/* The same op computed token by token (MODELS.md 6.2) with the sequential backward of 6.3 (states kept at
 * chunk boundaries, recomputed inside a chunk). For tests and teaching; the fast path never calls it. */
ox_status ox_nn_ssd_reference(ox_ctx *ctx, ox_tensor *c, ox_tensor *b, ox_tensor *x, ox_tensor *dt,
                              ox_tensor *a, ox_tensor *h0, ox_tensor **y, ox_tensor **h_final);

/* One decoding step, one token per sequence (not differentiable, allocates nothing): c, b [B, H, dk];
 * x, y [B, H, dv]; dt, a [B, H]; state [B, H, dv, dk] updated in place (h := exp(a) h + dt x b^T), then
 * y = h c. Any strides, except that the last axis of every operand must have stride 1. */
ox_status ox_nn_ssd_step(ox_ctx *ctx, const ox_tensor *c, const ox_tensor *b, const ox_tensor *x,
                         const ox_tensor *dt, const ox_tensor *a, ox_tensor *state, ox_tensor *y);

#endif
