/* gradcheck.h - compares an op's analytic gradient with central finite differences.
 *
 * The scalar checked is L = sum(R * f(inputs)) with a fixed random R (normal, from opts.seed), which
 * exercises every output element with a different weight. For each checked input element x_i:
 *     numeric  = (L(x_i + eps) - L(x_i - eps)) / (2 eps)        (L summed in double)
 *     analytic = dL/dx_i from ox_ag_backward_seeded(out, R)
 * and the element passes when |numeric - analytic| <= rtol * max(|numeric|, |analytic|) + atol.
 * An absolute floor alone would let a zero (missing) gradient pass, so each input's largest |numeric|
 * must also reach opts.min_scale: inputs are meant to be scaled so gradients are of order one.
 *
 * Inputs are contiguous leaves (ox_tensor_require_grad) created before the call; to check an op on a
 * transposed, sliced or broadcast input, make that view inside f (views are differentiable ops).
 * I32 inputs (indices) are passed through unchecked.
 *
 *   static ox_tensor *f(ox_ctx *ctx, ox_tensor *const *in, void *arg) {
 *       return ox_ag_mul(ctx, ox_ag_transpose(ctx, in[0], 0, 1), in[1]);
 *   }
 *   ox_gradcheck_opts o = ox_gradcheck_defaults();
 *   ox_status s = ox_gradcheck(ctx, f, NULL, 2, (ox_tensor *[]){ a, b }, &o);   // OX_OK or a message
 */
#ifndef OX_GRADCHECK_H
#define OX_GRADCHECK_H

#include "autograd/tape.h"

typedef ox_tensor *(*ox_gradcheck_fn)(ox_ctx *ctx, ox_tensor *const *inputs, void *arg);

typedef struct ox_gradcheck_opts {
    double eps;         /* finite-difference step */
    double rtol, atol;  /* acceptance, see above */
    double min_scale;   /* each checked input's max |numeric gradient| must be at least this */
    int64_t max_elems;  /* elements checked per input: all if <= 0, else an evenly spaced subset */
    uint64_t seed;      /* seed of R */
} ox_gradcheck_opts;

/* eps 1e-3, rtol 1e-2, atol 1e-3, min_scale 1e-2, all elements, seed 1: the fp32 defaults of
 * MODELS.md section 11 item 9. fp32 forward error is ~1e-7 relative, so the difference quotient has
 * error ~1e-7 * |L| / 1e-3 = 1e-4 |L| plus the O(eps^2) truncation term; 1e-2 relative with a 1e-3
 * floor leaves margin for both while a wrong term (error ~ the gradient itself) still fails. */
ox_gradcheck_opts ox_gradcheck_defaults(void);

/* OX_OK when every checked element passes. Otherwise records a message in ctx naming the input, the
 * element and both values, and returns:
 *   OX_ERR_MISMATCH  the analytic and numeric gradients differ beyond the tolerance (a wrong backward);
 *   OX_ERR_NUMERIC   one of them is NaN or infinite (the message says which);
 *   OX_ERR_ARG       an input's largest numeric gradient is below opts.min_scale (rescale the inputs),
 *                    or an input is not a contiguous leaf with a gradient;
 *   or the error of f itself. */
ox_status ox_gradcheck(ox_ctx *ctx, ox_gradcheck_fn f, void *arg, int n_in, ox_tensor *const *inputs,
                       const ox_gradcheck_opts *opts);

#endif
