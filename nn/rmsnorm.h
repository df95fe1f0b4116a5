/* rmsnorm.h - RMSNorm over the last axis (a fused op with a hand-written backward) and its module.
 *
 * Math (MODELS.md 2), per row x of length n, eps = 1e-6:
 *     r = (mean_j x_j^2 + eps)^(-1/2),   y = x * r ⊙ w
 * Backward, with gy = dy ⊙ w:
 *     dx = r * gy - x * r^3 * (gy . x) / n
 *     dw += sum_rows dy ⊙ x * r
 * Saved for backward: r per row ([rows] floats) and the input. dw is summed per block of
 * OX_NN_ROW_BLOCK rows and the block partials are added in block order: bit-identical at any thread count.
 * Shapes: x [..., n] (e.g. [B, T, D]), w [n], y like x. Cost: ~4 flops per element forward, ~8 backward;
 * memory traffic dominates (read x, write y; backward reads x, dy, writes dx).
 *
 *   ox_nn_rmsnorm_t norm;
 *   ox_nn_rmsnorm_init(ctx, &ps, &norm, "layers.0.norm1", D);        // "layers.0.norm1.weight" = 1
 *   ox_tensor *y = ox_nn_rmsnorm_forward(ctx, &norm, h);             // [B, T, D]
 */
#ifndef OX_NN_RMSNORM_H
#define OX_NN_RMSNORM_H

#include "autograd/tape.h"
#include "nn/param.h"

/* The eps of every RMSNorm and GatedRMSNorm (MODELS.md 2, 3.1), inside the root. */
#define OX_NN_NORM_EPS 1e-6f

/* y = RMSNorm(x) ⊙ w over the last axis: x [..., n], w [n] -> y [..., n] contiguous, arena-owned.
 * Differentiable in x and w. Inputs may be strided (x's rows are copied once if they do not fold).
 * Errors: non-F32 input, w not [n]. */
ox_tensor *ox_nn_rmsnorm(ox_ctx *ctx, ox_tensor *x, ox_tensor *w);

/* Module: "<prefix>.weight" [n], initialised to 1 (MODELS.md 13), no weight decay. Owned by the list. */
typedef struct ox_nn_rmsnorm_t {
    ox_tensor *weight;      /* [n], borrowed from the parameter list */
    int64_t n;
} ox_nn_rmsnorm_t;

ox_status ox_nn_rmsnorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_rmsnorm_t *m, const char *prefix, int64_t n);
ox_tensor *ox_nn_rmsnorm_forward(ox_ctx *ctx, const ox_nn_rmsnorm_t *m, ox_tensor *x);

#endif
