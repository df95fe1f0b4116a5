/* mha.h - plain multi-head self-attention (torch.nn.MultiheadAttention / nanoGPT's CausalSelfAttention):
 * input projections, softmax attention on the fast kernel nn/attention.h, heads concatenated, output
 * projection. No RoPE, no short convolutions, no output gate, no per-head norm (those are Oryx's mixer,
 * nn/mixer.h).
 *
 * Letters: B batch, T sequence length, C = dim, H = n_heads, hd = C / H.
 * Math, for x [B, T, C]:
 *     q, k, v = x Wq^T (+ bq), x Wk^T (+ bk), x Wv^T (+ bv)            each [B, T, C], seen as [B, T, H, hd]
 *     o_h     = softmax(q_h k_h^T / sqrt(hd) + mask) v_h              per head (ox_nn_attention_masked)
 *     y       = concat_h(o_h) Wo^T (+ bo)                             [B, T, C]
 * The mask is ox_nn_attn_mask: causal or not, and optional key lengths I32 [B] (keys s >= len_b hidden, for
 * padding); a query that sees no key outputs 0 before the output projection (so y = bo there).
 *
 * Two layouts of the input projections (cfg.packed):
 *   packed (nanoGPT, GPT-2): one Linear "<prefix>.c_attn" [3C, C] whose output is [q | k | v] in that
 *     order, head h owning columns h*hd .. h*hd+hd-1 of each; output projection "<prefix>.c_proj" [C, C];
 *   separate: "<prefix>.q_proj", "<prefix>.k_proj", "<prefix>.v_proj" [C, C] and "<prefix>.o_proj" [C, C].
 * Each with ".weight" and, when cfg.bias, ".bias" [3C] or [C]. The packed output is read in place (q, k, v
 * are strided views of it, no copy).
 * Init (nanoGPT's _init_weights): weights N(0, std^2), the output projection N(0, out_std^2) (nanoGPT:
 * 0.02 / sqrt(2 n_layer)), biases 0. Weights decay, biases do not.
 * Dropout: none inside (nanoGPT's attn_dropout on the weights is not supported; apply ox_ag_dropout to y
 * for resid_dropout). Cost: 8 B T C^2 flops of projections plus the kernel's (attention.h).
 *
 *   ox_nn_mha_config c = { .dim = 64, .n_heads = 4, .packed = 1, .bias = 1, .std = 0.02, .out_std = 0.01 };
 *   ox_nn_mha_t attn;
 *   ox_nn_mha_init(ctx, &ps, &attn, "transformer.h.0.attn", &c, &rng);
 *   ox_tensor *y = ox_nn_mha_forward(ctx, &attn, x, NULL);                      // causal, [B, T, C]
 *   ox_nn_attn_mask m = { .causal = 0, .key_len = lens };                       // bidirectional, padded
 *   ox_tensor *y2 = ox_nn_mha_forward(ctx, &attn, x, &m);
 */
#ifndef OX_NN_MHA_H
#define OX_NN_MHA_H

#include "nn/attention.h"
#include "nn/linear.h"

typedef struct ox_nn_mha_config {
    int64_t dim;        /* C >= 1 */
    int64_t n_heads;    /* H >= 1, dividing C */
    int packed;         /* nonzero: one c_attn [3C, C] (nanoGPT); 0: q_proj, k_proj, v_proj */
    int bias;           /* nonzero: every projection has a bias */
    double std;         /* init std of the input projections' weights (0.02) */
    double out_std;     /* init std of the output projection's weight */
} ox_nn_mha_config;

typedef struct ox_nn_mha_t {
    ox_nn_mha_config cfg;
    int64_t head_dim;                    /* C / H */
    ox_nn_linear_t c_attn;               /* packed: [3C, C]; zeroed otherwise */
    ox_nn_linear_t q_proj, k_proj, v_proj;   /* separate: [C, C] each; zeroed otherwise */
    ox_nn_linear_t out;                  /* c_proj (packed) or o_proj (separate) [C, C] */
} ox_nn_mha_t;

/* Registers the projections under prefix in ps (names above) and fills them from rng (in registration order:
 * c_attn or q, k, v, then the output projection). Errors (recorded, returned): dim or n_heads < 1, n_heads
 * not dividing dim, a negative std (OX_ERR_ARG naming the values); a duplicate name. */
ox_status ox_nn_mha_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_mha_t *m, const char *prefix,
                         const ox_nn_mha_config *cfg, ox_rng *rng);

/* y = MHA(x): x [B, T, C] (any strides) -> y [B, T, C], arena-owned; differentiable in x and every
 * parameter. mask NULL = causal without lengths. Errors: x not F32 [B, T, C] (OX_ERR_SHAPE naming the
 * shapes), a bad key_len (attention.h). */
ox_tensor *ox_nn_mha_forward(ox_ctx *ctx, const ox_nn_mha_t *m, ox_tensor *x, const ox_nn_attn_mask *mask);

#endif
