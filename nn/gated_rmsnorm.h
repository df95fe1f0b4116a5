/* gated_rmsnorm.h - GatedRMSNorm per head (the mixer trunk's output norm), a fused op with a
 * hand-written backward, and its module.
 *
 * Math (MODELS.md 3.1), for each row (token) and head h, o = o_{t,h} in R^dv, eps = 1e-6 inside the root:
 *     r = (mean_j o_j^2 + eps)^(-1/2),   n = o * r,   y = n ⊙ w[h*dv : (h+1)*dv] ⊙ silu(g_{t,h})
 * Backward (dy is dypre of MODELS; the o_proj GEMM that follows is a separate ox_nn_linear):
 *     dg  = dy ⊙ n ⊙ w ⊙ silu'(g),          silu'(g) = σ(g) (1 + g (1 - σ(g)))
 *     dw += sum over rows of dy ⊙ n ⊙ silu(g)
 *     dn  = dy ⊙ w ⊙ silu(g)
 *     do  = r * dn - n * r * (dn . n) / dv    (per head)
 * Saved for backward: r per (row, head) ([rows, H] floats) and the inputs. dw is summed per block of
 * OX_NN_ROW_BLOCK rows, block partials added in block order (bit-identical at any thread count).
 * Shapes: o, g [..., H*dv] (e.g. [B, T, H*dv], feature h*dv + j), w [H*dv], y like o.
 * Cost: ~10 flops and one exp per element forward, ~20 backward; memory traffic dominates.
 *
 *   ox_nn_gated_rmsnorm_t norm;
 *   ox_nn_gated_rmsnorm_init(ctx, &ps, &norm, "layers.0.mixer.norm", H, dv);   // weight = 1
 *   ox_tensor *y = ox_nn_gated_rmsnorm_forward(ctx, &norm, o, g);             // [B, T, H*dv]
 */
#ifndef OX_NN_GATED_RMSNORM_H
#define OX_NN_GATED_RMSNORM_H

#include "autograd/tape.h"
#include "nn/param.h"

/* y = RMSNorm_head(o) ⊙ w ⊙ silu(g) with heads of dv features: o, g [..., H*dv] (same shape), w [H*dv]
 * -> y [..., H*dv], contiguous, arena-owned. Differentiable in o, g, w. Inputs may be strided.
 * Errors: non-F32 input, shapes differing, w not [H*dv], last axis not a multiple of dv (dv >= 1). */
ox_tensor *ox_nn_gated_rmsnorm(ox_ctx *ctx, ox_tensor *o, ox_tensor *g, ox_tensor *w, int64_t dv);

/* Module: "<prefix>.weight" [H*dv] (MODELS.md 12.2: "layers.{i}.mixer.norm.weight"), initialised to 1,
 * no weight decay, owned by the parameter list. */
typedef struct ox_nn_gated_rmsnorm_t {
    ox_tensor *weight;      /* [H*dv], borrowed from the parameter list */
    int64_t heads, dv;
} ox_nn_gated_rmsnorm_t;

ox_status ox_nn_gated_rmsnorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_gated_rmsnorm_t *m, const char *prefix,
                                   int64_t heads, int64_t dv);
ox_tensor *ox_nn_gated_rmsnorm_forward(ox_ctx *ctx, const ox_nn_gated_rmsnorm_t *m, ox_tensor *o, ox_tensor *g);

#endif
