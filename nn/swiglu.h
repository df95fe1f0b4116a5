/* swiglu.h - the SwiGLU MLP (MODELS.md 2): a fused silu(a) ⊙ b op, the MLP composed of three
 * ox_nn_linear GEMMs around it, its module, and the module's step form (the same math with the step's
 * projections, nn/linear_step.h, for a decode step's few rows).
 *
 * Math (no biases):
 *     a = x Wgate^T (F),  b = x Wup^T (F),  u = silu(a) ⊙ b,  y = u Wdown^T (D)
 * Backward of the fused op (the GEMMs' backward is ox_nn_linear's):
 *     da = du ⊙ b ⊙ silu'(a),   db = du ⊙ silu(a),   silu'(a) = σ(a) (1 + a (1 - σ(a)))
 * Shapes: x [..., D] (e.g. [B, T, D]), Wgate, Wup [F, D], Wdown [D, F], y [..., D].
 * Cost: 6 * rows * D * F flops forward (three GEMMs), twice that backward; the fused op is one pass
 * over a and b (saves the intermediate silu(a) of the composed form). Saved: x, a, b (the GEMMs' and
 * the fused op's inputs), u.
 *
 *   ox_nn_swiglu_t mlp;
 *   ox_nn_swiglu_init(ctx, &ps, &mlp, "layers.0.mlp", D, F, L, &rng);
 *   ox_tensor *y = ox_nn_swiglu_forward(ctx, &mlp, x);        // [B, T, D]
 */
#ifndef OX_NN_SWIGLU_H
#define OX_NN_SWIGLU_H

#include "nn/linear.h"

/* u = silu(a) ⊙ b: a, b of the same shape (any strides) -> u contiguous, arena-owned. Differentiable in
 * a and b. Errors: dtypes, shapes differing. */
ox_tensor *ox_nn_silu_mul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);

/* y = (silu(x Wgate^T) ⊙ (x Wup^T)) Wdown^T: x [..., D], wgate, wup [F, D], wdown [D, F] -> [..., D],
 * arena-owned. Differentiable in all four. Errors: shapes naming the mismatch. */
ox_tensor *ox_nn_swiglu(ox_ctx *ctx, ox_tensor *x, ox_tensor *wgate, ox_tensor *wup, ox_tensor *wdown);

/* Module: "<prefix>.gate_proj.weight", "<prefix>.up_proj.weight" [F, D] N(0, 0.02^2) and
 * "<prefix>.down_proj.weight" [D, F] N(0, (0.02 / sqrt(2 n_layers))^2) (MODELS.md 12.2, 13), owned by the
 * parameter list. */
typedef struct ox_nn_swiglu_t {
    ox_nn_linear_t gate, up, down;
    int64_t dim, hidden;
} ox_nn_swiglu_t;

ox_status ox_nn_swiglu_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_swiglu_t *m, const char *prefix, int64_t dim,
                            int64_t hidden, int n_layers, ox_rng *rng);
ox_tensor *ox_nn_swiglu_forward(ox_ctx *ctx, const ox_nn_swiglu_t *m, ox_tensor *x);
/* The step form: the same y for the few rows of a decode step (x [B, 1, D]), its three products by
 * ox_nn_linear_step (dot products, not recorded); for use with gradients off. */
ox_tensor *ox_nn_swiglu_step(ox_ctx *ctx, const ox_nn_swiglu_t *m, ox_tensor *x);

#endif
