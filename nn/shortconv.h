/* shortconv.h - causal depthwise short convolution (kernel 4, no bias) with an optional SiLU: the fused
 * training op, its streaming (step) form for inference, and a thin module.
 *
 * Math (MODELS.md 3.2), per batch row, channel c and token t (x[s, c] = 0 for s < 0):
 *     pre[t, c] = sum_{j=0..3} w[c, j] * x[t - 3 + j, c]        (tap 3 = the current token)
 *     out       = act(pre),   act = identity or silu
 * Backward:
 *     dpre       = dout ⊙ act'(pre)                       (pre is recomputed from x, not saved)
 *     dx[s, c]  += sum_j w[c, j] * dpre[s + 3 - j, c]     (terms with s + 3 - j >= T dropped)
 *     dw[c, j]  += sum_{b,t} dpre[t, c] * x[t - 3 + j, c]
 * dw is reduced by channel ranges (threads own channels and add rows in order): bit-identical at any
 * thread count. Same as PyTorch Conv1d(groups=C, padding=3) truncated to the first T outputs.
 * Shapes: x [B, T, C], w [C, 4], out [B, T, C]. Cost: 8 flops per element (+ an exp with SiLU) forward,
 * ~20 backward; memory traffic dominates. Saved: nothing beyond the input.
 *
 * Step form (inference): a state [B, 3, C] holds the last three pre-conv inputs of each sequence, oldest
 * first (row 0 = x_{t-3}, row 2 = x_{t-1}; zeros at the start). A step computes
 *     pre_t = w[:,3] x_t + w[:,2] x_{t-1} + w[:,1] x_{t-2} + w[:,0] x_{t-3}
 * and shifts x_t into the state, allocating nothing.
 *
 *   ox_tensor *st = ox_nn_shortconv_state_new(ctx, B, C);                 // heap: ox_tensor_free(st)
 *   ox_tensor *y = ox_nn_shortconv_prefill(ctx, x, w, OX_NN_ACT_SILU, st);  // [B, T, C]; fills st
 *   ox_nn_shortconv_step(ctx, x_next, w, OX_NN_ACT_SILU, st, y_next);      // [B, C] -> [B, C]
 */
#ifndef OX_NN_SHORTCONV_H
#define OX_NN_SHORTCONV_H

#include "autograd/tape.h"
#include "nn/param.h"
#include "tensor/rng.h"

#define OX_NN_CONV_K 4

/* The activation after the conv (MODELS.md 3: SiLU for the GDN family, identity for Mamba-2/attention). */
typedef enum ox_nn_act { OX_NN_ACT_NONE = 0, OX_NN_ACT_SILU = 1 } ox_nn_act;

/* out = act(causal_conv(x, w)): x [B, T, C] (any strides), w [C, 4] (any strides) -> [B, T, C]
 * contiguous, arena-owned. Differentiable in x and w. Errors: shapes, dtypes, unknown act. */
ox_tensor *ox_nn_shortconv(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_nn_act act);

/* A zeroed streaming state [B, 3, C], heap-owned: the caller frees it with ox_tensor_free. */
ox_tensor *ox_nn_shortconv_state_new(ox_ctx *ctx, int64_t batch, int64_t channels);

/* Starts a sequence: returns ox_nn_shortconv(x, w, act) and overwrites state [B, 3, C] (contiguous) with
 * the last three rows of x (zeros in front when T < 3), ready for ox_nn_shortconv_step. */
ox_tensor *ox_nn_shortconv_prefill(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_nn_act act, ox_tensor *state);

/* One token per sequence: x [B, C] -> out [B, C] (caller's tensor, any strides, not aliasing x or the
 * state); state [B, 3, C] contiguous, updated in place. Not recorded for autograd; allocates nothing. */
ox_status ox_nn_shortconv_step(ox_ctx *ctx, const ox_tensor *x, const ox_tensor *w, ox_nn_act act,
                               ox_tensor *state, ox_tensor *out);

/* Module: "<prefix>.weight" [C, 4] (MODELS.md 12.2: "layers.{i}.mixer.k_conv.weight", ...), filled
 * U(-0.5, 0.5) (MODELS.md 13), weight decay on, owned by the parameter list. */
typedef struct ox_nn_shortconv_t {
    ox_tensor *weight;      /* [C, 4], borrowed from the parameter list */
    int64_t channels;
    ox_nn_act act;
} ox_nn_shortconv_t;

ox_status ox_nn_shortconv_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_shortconv_t *m, const char *prefix,
                               int64_t channels, ox_nn_act act, ox_rng *rng);
ox_tensor *ox_nn_shortconv_forward(ox_ctx *ctx, const ox_nn_shortconv_t *m, ox_tensor *x);

#endif
