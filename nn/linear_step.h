/* linear_step.h - the step form of ox_nn_linear (nn/linear.h): y = x W^T for the few rows of a decode
 * step, one dot product per output (lanes_dot, autograd/lanes.h), not recorded on the tape.
 *
 * Why a second form: a GEMM call with one row spends most of its time packing W; the dot products read
 * W once, in place. Outputs are split over threads only when the product is large (B * out * in >= 16 *
 * OX_PARALLEL_MIN), each output written by one thread, so the result does not depend on the thread count.
 * Math and shapes as ox_nn_linear: x [..., in] (contiguous), W [out, in] (unit column stride) -> y [..., out]
 * contiguous, arena-owned. Other layouts fall back to ox_nn_linear (which records on the tape when
 * gradients are on; the step forms that call this run with gradients off).
 *
 * ox_nn_proj_fn names either form, so that a module's math can be written once and run by both its
 * parallel form (ox_nn_linear) and its step form (ox_nn_linear_step): nn/swiglu.h, nn/mixer.h.
 *
 *   ox_tensor *y = ox_nn_linear_step(ctx, x, w);    // x [B, 1, D], w [F, D] -> [B, 1, F]
 */
#ifndef OX_NN_LINEAR_STEP_H
#define OX_NN_LINEAR_STEP_H

#include "nn/linear.h"

/* y = x W^T by one of the two forms (ox_nn_linear or ox_nn_linear_step). */
typedef ox_tensor *(*ox_nn_proj_fn)(ox_ctx *ctx, ox_tensor *x, ox_tensor *w);

/* y = x W^T for a step's rows, see above. Errors: those of ox_nn_linear. */
ox_tensor *ox_nn_linear_step(ox_ctx *ctx, ox_tensor *x, ox_tensor *w);

#endif
