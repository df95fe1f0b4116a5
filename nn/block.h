/* block.h - the pre-norm residual layer (MODELS.md 2): the one definition of the layer the Oryx family
 * stacks, in its parallel form (training forward, prefill) and its one-token step form (decoding), side by
 * side in block.c.
 *
 * Math, for the residual stream h (eps of both norms OX_NN_NORM_EPS, nn/rmsnorm.h):
 *     h = h + Mixer(RMSNorm(h; norm1), mode)          (nn/mixer.h: trunk + attention / GDN / Mamba-2 cores)
 *     h = h + SwiGLU(RMSNorm(h; norm2))               (nn/swiglu.h: (silu(x Wg^T) ⊙ x Wu^T) Wd^T)
 * The parallel form runs this over [B, T, D] as differentiable ops (the backward is the tape's); given a
 * decode state it is also the prefill (the mixer fills the state, nn/mixer.h ox_nn_mixer_prefill). The step
 * form runs it for one token per sequence [B, 1, D] with the same modules' step forms (ox_nn_mixer_step,
 * ox_nn_swiglu_step: the same formula code, projections by dot products), not recorded. Norms and the
 * residual adds are the same calls in both forms. The layer's decode state is its mixer's (norms and MLP
 * keep none).
 *
 * Shapes: h [B, T, D] (parallel) or [B, 1, D] contiguous (step) -> same shape; mode I32 [B, T] of OX_NN_LIN /
 * OX_NN_ATTN (two-core mixers; may be NULL otherwise); md[b] one mode per sequence for a step.
 * Parameters (MODELS 12.2): "<prefix>.norm1.weight", "<prefix>.mixer.*", "<prefix>.norm2.weight",
 * "<prefix>.mlp.{gate,up,down}_proj.weight", registered and initialised (MODELS 13) in that order.
 * Ownership: the parameter list owns the tensors, the block borrows them; results are arena tensors.
 *
 *   ox_nn_block blk;
 *   ox_nn_block_init(ctx, &ps, &blk, "layers.0", &mixer_cfg, F, &rng);
 *   h = ox_nn_block_forward(ctx, &blk, h, mode, NULL);              // training: [B, T, D]
 *   ox_nn_mixer_state st;  ox_nn_mixer_state_init(ctx, &st, &blk.mixer, B, Tmax, 1);
 *   h = ox_nn_block_forward(ctx, &blk, h, mode, &st);               // prefill: also fills st
 *   h1 = ox_nn_block_step(ctx, &blk, &st, h1, md, T);               // one token at position T
 */
#ifndef OX_NN_BLOCK_H
#define OX_NN_BLOCK_H

#include "nn/mixer.h"
#include "nn/rmsnorm.h"
#include "nn/swiglu.h"

typedef struct ox_nn_block {
    ox_nn_rmsnorm_t norm1, norm2;   /* <prefix>.norm1.weight, norm2.weight [D] */
    ox_nn_mixer mixer;              /* <prefix>.mixer.*: trunk + the cores of mixer_cfg */
    ox_nn_swiglu_t mlp;             /* <prefix>.mlp.{gate,up,down}_proj.weight */
} ox_nn_block;

/* Registers the block's parameters under prefix (see above) and initialises them, drawing from rng in
 * registration order. mc: the mixer (nn/mixer.h; mc->n_layers also scales the MLP's down projection);
 * mlp_hidden F >= 1. Errors: those of the modules, a prefix too long. */
ox_status ox_nn_block_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_block *b, const char *prefix,
                           const ox_nn_mixer_config *mc, int64_t mlp_hidden, ox_rng *rng);

/* Parallel form: h [B, T, D] -> the layer's output [B, T, D]. st NULL: a training/inference forward; st
 * not NULL: a prefill from st's empty state, leaving st as T steps would. Errors: those of the mixer. */
ox_tensor *ox_nn_block_forward(ox_ctx *ctx, const ox_nn_block *b, ox_tensor *h, const ox_tensor *mode,
                               ox_nn_mixer_state *st);

/* Step form: h [B, 1, D] -> [B, 1, D] for the token at position pos, advancing st (see ox_nn_mixer_step for
 * md and what the caller checks). Row b equals row pos of the parallel form run over the whole sequence up
 * to fp32 summation order. */
ox_tensor *ox_nn_block_step(ox_ctx *ctx, const ox_nn_block *b, ox_nn_mixer_state *st, ox_tensor *h,
                            const int32_t *md, int64_t pos);

#endif
