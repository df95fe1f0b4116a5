/* clip.h - whole-model gradient operations: global norm, finiteness check, clipping, scaling.
 *
 * The order of a training step is: backward (gradients accumulate into every parameter's t->grad), then
 * ox_optim_clip_grad_norm (which measures, checks and clips), then the optimizer step. When any gradient
 * holds a NaN or Inf, the norm and clip functions fail with OX_ERR_NUMERIC before anything is modified,
 * so the trainer skips the step with weights, moments and gradients untouched.
 *
 *   double norm;
 *   ox_optim_grad_scale(ctx, &params, 1.0f / n_micro);                // accumulation over n micro-batches
 *   if (ox_optim_clip_grad_norm(ctx, &params, 1.0, &norm) == OX_OK)   // norm before clipping
 *       ox_optim_adamw_step(ctx, opt, lr);
 *
 * Every function first checks the list (ox_optim_check_params: F32, contiguous, gradients present) and
 * is sticky (nothing is done when ctx->status is set). Nothing allocates. */
#ifndef OX_OPTIM_CLIP_H
#define OX_OPTIM_CLIP_H

#include "optim/state.h"

/* norm = sqrt(sum over all parameters and elements of g^2). Each squared element is summed in double, in
 * fixed chunks of 16384 elements (eight interleaved partial sums each), the chunk sums of a tensor in
 * order, then the tensors in list order: deterministic, and the same at any thread count. OX_ERR_NUMERIC
 * (naming the first parameter, in list order, whose gradient has a NaN or Inf, and the element) if the
 * sum is not finite; *norm is then NaN or Inf. */
ox_status ox_optim_grad_norm(ox_ctx *ctx, const ox_nn_params *ps, double *norm);

/* OX_OK if every gradient element is finite, else OX_ERR_NUMERIC naming the first offending parameter. */
ox_status ox_optim_grad_check_finite(ox_ctx *ctx, const ox_nn_params *ps);

/* Measures the norm as ox_optim_grad_norm (failing the same way, before touching anything) and, when
 * norm > max_norm, multiplies every gradient by max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_).
 * *norm (may be NULL) receives the norm before clipping. max_norm must be > 0. */
ox_status ox_optim_clip_grad_norm(ox_ctx *ctx, ox_nn_params *ps, double max_norm, double *norm);

/* g *= s for every gradient element (e.g. s = 1/n after accumulating n micro-batches). s must be finite. */
ox_status ox_optim_grad_scale(ox_ctx *ctx, ox_nn_params *ps, float s);

#endif
