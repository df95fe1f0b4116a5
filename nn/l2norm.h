/* l2norm.h - L2 normalisation over the last axis (MODELS.md 3.3), used on GDN's q and k heads.
 *
 *     y = x / nrm,   nrm = sqrt(sum_j x_j^2 + 1e-6)      (eps inside the root, as fla's l2norm)
 *     dx = (dy - y (y . dy)) / nrm
 *
 *   ox_tensor *kh = ox_nn_l2norm(ctx, k);            // k [B, T, H, dk] -> unit rows [B, T, H, dk]
 */
#ifndef OX_NN_L2NORM_H
#define OX_NN_L2NORM_H

#include "autograd/tape.h"

#define OX_NN_L2NORM_EPS 1e-6f

/* x [..., d] any strides -> y [..., d] contiguous arena tensor. Differentiable in x; saves one float per
 * row (nrm) when a gradient is needed. NULL on error (recorded in ctx). */
ox_tensor *ox_nn_l2norm(ox_ctx *ctx, ox_tensor *x);

#endif
