/* rope.h - rotary position embedding (RoPE), rotate-half pairing, base 10000 (MODELS.md 3.3).
 *
 * For a head vector x of even length d at absolute position p (0-based), with half = d / 2:
 *     theta_i = 10000^(-2i/d),  i = 0 .. half-1
 *     y_i        = x_i cos(p theta_i) - x_{i+half} sin(p theta_i)
 *     y_{i+half} = x_i sin(p theta_i) + x_{i+half} cos(p theta_i)
 * The angle p * theta_i is computed in double and cos/sin are rounded to float once per (p, i), so long
 * positions keep their angle. The rotation is orthogonal: backward is the rotation by -angle, dx = R^T dy.
 * (Su et al., "RoFormer", arXiv 2104.09864; the rotate-half layout of HF transformers' Llama.)
 *
 *   ox_tensor *qr = ox_nn_rope(ctx, q, 0);          // q [B, T, H, dk] -> rotated, positions 0..T-1
 *   ox_nn_rope_rows(q_tok, H, dk, pos);              // one decode token, in place
 */
#ifndef OX_NN_ROPE_H
#define OX_NN_ROPE_H

#include "autograd/tape.h"

/* x [B, T, H, d] (any strides, d even) -> y [B, T, H, d] contiguous, token t at position pos0 + t
 * (pos0 >= 0). Differentiable (gradient into x). Cost: B*T*H*d multiply-adds plus T*d/2 cos/sin pairs.
 * Returns an arena tensor (valid until ox_ctx_reset), or NULL with an error in ctx. */
ox_tensor *ox_nn_rope(ox_ctx *ctx, ox_tensor *x, int64_t pos0);

/* In place, not recorded: x holds n_heads contiguous head vectors of length d (even), all at position
 * pos. Gives bit-identical results to ox_nn_rope on the same values and position. No allocation. */
void ox_nn_rope_rows(float *x, int64_t n_heads, int64_t d, int64_t pos);

#endif
