/* model.h - an Oryx-family language model (MODELS.md 2): parameters, initialisation, forward to logits, and
 * the next-token loss. One code path for every preset (config.h): a layer holds the shared trunk once plus
 * only the cores its kind can run.
 *
 *   h = E[tokens]                                           E = embed.weight [V, D]
 *   for l in 0..L-1:  h += Mixer_l(RMSNorm(h; norm1), m[l])     (nn/block.h, the pre-norm layer;
 *                     h += SwiGLU_l(RMSNorm(h; norm2))           nn/mixer.h; m: 1 = ATTN, 0 = LIN)
 *   logits = RMSNorm(h; norm_f) E^T                         (tied head)
 *          (+ s * b when cfg.logit_bias_scale = s > 0:      b = lm_head.bias [V], zero at init)
 *
 * The logit bias (off in every preset) gives a prior over the vocabulary that does not depend on the input
 * a place to live that is not the residual stream. Without it, in a layer-axis hybrid trained on MQAR the
 * lower layers write the prior "the answer is a value token" into the residual stream within ~100 steps as
 * one vector shared by every position (the tied head has no bias and nothing else can hold it); the keys
 * and values of an attention layer above them then barely differ between positions, its query/key
 * gradients fall to ~1e-6 and it never learns recall (issue 14; attention in layer 0 reads the embedding
 * and is not affected). Adam moves each bias entry by about lr per step, too slowly to win against the
 * residual stream (s = 1, 10 and 30 do not help), hence the fixed multiplier s (OX_ORYX_LOGIT_BIAS_SCALE = 100
 * measured; a constant multiplier on a parameter, like an embedding multiplier, changes what the optimizer
 * does, not what the model can express).
 *
 * Shapes: tokens I32 [B, T]; mode map I32 [B, T] (one map for every layer) or [L, B, T] (one per layer);
 * logits [B, T, V]. Layers that have one core (attn or lin kinds) ignore the map, and a map may be NULL when
 * no layer is of kind oryx.
 *
 * Ownership: the model owns its parameters (heap, in `params`, named as in MODELS 12.2); free them with
 * ox_oryx_model_free. Forward results are arena tensors (valid until ox_ctx_reset) recorded on the tape, so
 * ox_ag_backward(ctx, loss) accumulates into every parameter's grad.
 *
 *   ox_oryx_model m;
 *   ox_rng rng = ox_rng_seed(1);
 *   ox_oryx_model_init(ctx, &m, &cfg, &rng);
 *   ox_tensor *loss = ox_oryx_loss(ctx, &m, rows, mode, NULL);   // rows I32 [B, T+1], mode [B, T]
 *   ox_ag_backward(ctx, loss);
 *   ox_oryx_model_free(&m);
 */
#ifndef OX_ORYX_MODEL_H
#define OX_ORYX_MODEL_H

#include "models/oryx/config.h"
#include "nn/block.h"
#include "nn/embedding.h"

/* One pre-norm block (nn/block.h) under "layers.{i}": norm1, the mixer with the cores of this layer's kind,
 * norm2, the SwiGLU MLP. The tensors are borrowed from the model's parameter list. */
typedef ox_nn_block ox_oryx_layer;

typedef struct ox_oryx_model {
    ox_oryx_config cfg;
    ox_nn_params params;            /* every parameter, owned; registration order: embed, layers, norm_f,
                                       lm_head.bias (only with the logit bias) */
    ox_nn_embedding_t embed;        /* embed.weight [V, D], also the LM head */
    ox_oryx_layer layers[OX_ORYX_MAX_LAYERS];
    ox_nn_rmsnorm_t norm_f;         /* norm_f.weight [D] */
    ox_tensor *logit_bias;          /* lm_head.bias [V] when cfg.logit_bias_scale > 0, else NULL (borrowed) */
} ox_oryx_model;

/* The mixer cores (nn/mixer.h ox_nn_core mask) layer l of cfg holds. */
unsigned ox_oryx_layer_cores(const ox_oryx_config *cfg, int64_t l);

/* Validates cfg, registers every parameter and initialises it as MODELS 13 says, drawing from rng in
 * registration order (deterministic for a seed; the logit bias is registered last, zero, and draws nothing,
 * so the other parameters are the same with or without it). On error the model is left empty (safe to
 * free). */
ox_status ox_oryx_model_init(ox_ctx *ctx, ox_oryx_model *m, const ox_oryx_config *cfg, ox_rng *rng);
/* Frees the parameters and their gradients (NULL-safe, idempotent). */
void ox_oryx_model_free(ox_oryx_model *m);

/* logits [B, T, V] for tokens I32 [B, T] (ids in [0, V)) with mode map I32 [B, T] or [L, B, T] of 0/1 (see
 * above). Errors (NULL + message): shapes, dtypes, ids or modes out of range, a missing map when a layer
 * needs one. */
ox_tensor *ox_oryx_forward(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *mode);

/* ox_oryx_forward that also starts decoding (the decoder's prefill, generate.h): layer l's parallel pass
 * fills states[l], the empty decode state of layer l's mixer (nn/block.h, nn/mixer.h ox_nn_mixer_prefill).
 * Errors: those of the forward and of the prefill (ATTN rows without a cache, a cache too small). */
ox_tensor *ox_oryx_forward_prefill(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens,
                                   const ox_tensor *mode, ox_nn_mixer_state *states);

/* The head of MODELS 2: logits [..., V] = RMSNorm(h; norm_f) E^T (+ s * lm_head.bias with the logit bias)
 * for final hidden states h [..., D]. Used by ox_oryx_forward and the prefill. */
ox_tensor *ox_oryx_head(ox_ctx *ctx, const ox_oryx_model *m, ox_tensor *h);
/* Its step form for a decode step's rows h [B, 1, D] (the same code, E^T by dot products,
 * nn/linear_step.h; not recorded). */
ox_tensor *ox_oryx_head_step(ox_ctx *ctx, const ox_oryx_model *m, ox_tensor *h);

/* Mean next-token cross entropy over inputs [B, T] and targets [B, T] (I32; targets equal to ignore_index
 * are skipped, as MQAR needs): (1 / count) sum_{b,t} logsumexp(z_bt) - z_bt[y_bt]. Returns a 0-d arena
 * tensor; *logits_out (may be NULL) receives the logits [B, T, V]. */
ox_tensor *ox_oryx_loss_targets(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *inputs,
                                const ox_tensor *targets, const ox_tensor *mode, int32_t ignore_index,
                                ox_tensor **logits_out);

/* The training loss of MODELS 2: rows I32 [B, T+1]; inputs are tokens 0..T-1 of each row, targets tokens
 * 1..T, loss = mean over the B*T positions. mode: [B, T] or [L, B, T] (or with T+1 columns, of which the
 * first T are used), or NULL as in ox_oryx_forward. */
ox_tensor *ox_oryx_loss(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *rows, const ox_tensor *mode,
                        ox_tensor **logits_out);

#endif
