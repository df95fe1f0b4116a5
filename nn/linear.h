/* linear.h - the linear layer y = x W^T (+ b) as one fused op (one GEMM forward, two backward, and a
 * column sum for the optional bias), and a thin module holding its weight and optional bias.
 *
 * Math (MODELS.md 1: weights are stored [out, in] and applied as y = x W^T; torch.nn.Linear adds b):
 *     y[r, o] = sum_i x[r, i] W[o, i] (+ b[o])    for every row r of the folded leading axes
 *     dx += dy W          (one GEMM: [rows, out] x [out, in])
 *     dW += dy^T x        (one GEMM with beta = 1, straight into W's gradient buffer)
 *     db += sum_r dy[r]   (rows added in order: bit-identical at any thread count)
 * Shapes: x [..., in] (e.g. [B, T, D]), W [out, in], y [..., out]. Cost: 2 * rows * in * out flops
 * forward, twice that backward.
 *
 * Layout: the leading axes of x are folded into one row axis without a copy when its rows are evenly
 * strided (any contiguous tensor, a narrowed last axis, a transposed 2-D x); otherwise x is copied once
 * (and the copy is what backward reads). W may be any strided 2-D view (W^T is passed to BLIS as a
 * stride swap), so the tied LM head h E^T is ox_nn_linear(ctx, h, E) with no copy.
 *
 *   ox_nn_linear_t up;                                   // a module: its weight lives in `ps`
 *   ox_nn_linear_init(ctx, &ps, &up, "layers.0.mlp.up_proj", D, F, 0.02, &rng);
 *   ox_tensor *y = ox_nn_linear_forward(ctx, &up, x);    // [B, T, F]; arena tensor
 *   ox_nn_linear_init_bias(ctx, &ps, &fc, "transformer.h.0.mlp.c_fc", D, 4 * D, 0.02, &rng);   // + .bias
 */
#ifndef OX_NN_LINEAR_H
#define OX_NN_LINEAR_H

#include "autograd/tape.h"
#include "nn/param.h"
#include "tensor/rng.h"

/* y = x W^T: x [..., in], w [out, in] -> y [..., out], contiguous, arena-owned (valid until
 * ox_ctx_reset). Differentiable in x and w. Errors (NULL + message): non-F32 input, w not 2-D, last axis
 * of x not equal to w's second axis. */
ox_tensor *ox_nn_linear(ox_ctx *ctx, ox_tensor *x, ox_tensor *w);
/* y = x W^T + b: as ox_nn_linear, with b [out] (any stride) added to every row; b = NULL is ox_nn_linear.
 * Differentiable in x, w and b. Errors: those of ox_nn_linear, b not F32 or not [out]. */
ox_tensor *ox_nn_linear_bias(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b);

/* Module: the weight is the parameter "<prefix>.weight" [out, in] and the optional bias "<prefix>.bias"
 * [out], registered in the list given to init, which owns them (freed by ox_nn_params_free). */
typedef struct ox_nn_linear_t {
    ox_tensor *weight;      /* [out, in], borrowed from the parameter list */
    ox_tensor *bias;        /* [out], borrowed; NULL for the bias-free layer (ox_nn_linear_init) */
    int64_t in, out;
} ox_nn_linear_t;

/* Registers "<prefix>.weight" [out, in] (weight decay on) and fills it N(0, std^2) from rng
 * (MODELS.md 13: std 0.02; o_proj and down_proj 0.02 / sqrt(2L)). No bias: m->bias = NULL. */
ox_status ox_nn_linear_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *m, const char *prefix,
                            int64_t in, int64_t out, double std, ox_rng *rng);
/* ox_nn_linear_init, then registers "<prefix>.bias" [out] (no weight decay) and fills it from rng (drawn
 * after the weight) uniform in [-1/sqrt(in), 1/sqrt(in)), PyTorch's nn.Linear bias init (0 when in = 0).
 * For nanoGPT's init (bias 0) fill m->bias with 0 afterwards. */
ox_status ox_nn_linear_init_bias(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *m, const char *prefix,
                                 int64_t in, int64_t out, double std, ox_rng *rng);
/* ox_nn_linear_bias(ctx, x, m->weight, m->bias): x W^T, plus the bias when the module has one. */
ox_tensor *ox_nn_linear_forward(ox_ctx *ctx, const ox_nn_linear_t *m, ox_tensor *x);

#endif
