/* generate.h - inference for Oryx-family models (MODELS.md 7.4): a decode state (conv rings, linear state,
 * optional KV cache, position) per layer, the one-token step with a mode per (layer, sequence), prefill,
 * KV-cache dropping, and token sampling (greedy, temperature, top-k) with a streaming generate loop.
 *
 * Step for one token per sequence, per layer l (nn/block.h ox_nn_block_step; both states advance at every
 * token, whatever its mode):
 *     x = RMSNorm(h; norm1)
 *     kp, vp, g, q_lin pre-conv (and beta/alpha or dt): always;   k, v, q_lin: conv step through the rings
 *     if the layer keeps a KV cache: append (RoPE(k, pos), v)
 *     advance the linear state S with this token (GDN 5.2 / Mamba-2 6.2)
 *     o = ATTN ? softmax attention of RoPE(x Wq_attn^T, pos) over cache[0..pos] : S q (GDN), S Cq + D v (M2)
 *     h += GatedRMSNorm(o, g) Wo^T ;  h += SwiGLU(RMSNorm(h; norm2)) ;  pos += 1
 *     logits = RMSNorm(h; norm_f) E^T                                  [B, V]
 * A layer of kind ATTN (LIN) has only the KV cache (only the linear state and ring_q) and ignores the mode.
 *
 * Shapes: B sequences decoded in lockstep (one position for all); V vocab; per layer ring_k [B, 3, H*dk],
 * ring_v [B, 3, H*dv], ring_q [B, 3, H*dk], state [B, H, dv, dk], KV cache [B, H, Tmax, dk] + [B, H, Tmax, dv].
 * Memory per layer: KV cache 4 B H Tmax (dk + dv + 1) bytes, linear state 4 B H dv dk bytes.
 *
 * Ownership: the decoder owns its state (heap tensors, allocated once by ox_oryx_decoder_init and freed by
 * ox_oryx_decoder_free) and borrows the model, which must outlive it. A step allocates nothing on the heap
 * once the context arena has grown to a step's size: its temporaries come from the arena and are released
 * (mark/rewind) before it returns; the logits live in the decoder (d->logits [B, V], overwritten by every
 * step). Steps record nothing on the autograd tape.
 *
 * Prefill from the empty state runs the parallel forward (chunked linear mixers, blocked attention) on the
 * prompt with its map and leaves the state a step would (model.h ox_oryx_forward_prefill): the last three
 * pre-conv rows of k, v and the linear query, the rotated keys and values attention used, the final linear
 * state of the one chunked pass per layer. A prefill that continues a sequence
 * (pos > 0) steps token by token. Either way, step decoding after it reproduces the parallel forward on the
 * concatenated sequence.
 *
 *   ox_oryx_decoder d;
 *   ox_oryx_decoder_init(ctx, &d, &model, B, 4096, 0);
 *   ox_oryx_decoder_prefill(ctx, &d, prompt, prompt_modes);          // prompt I32 [B, T]
 *   int32_t modes[1] = { OX_NN_LIN };                              // one mode for every layer and row
 *   ox_oryx_decoder_drop_kv(ctx, &d, -1);                            // no later token uses ATTN
 *   ox_oryx_decoder_step(ctx, &d, next_tokens, modes, 1);            // d.logits [B, V]
 *   ox_oryx_decoder_free(&d);
 */
#ifndef OX_ORYX_GENERATE_H
#define OX_ORYX_GENERATE_H

#include "models/oryx/model.h"
#include "nn/attention.h"
#include "nn/sampler.h"
#include "tensor/rng.h"

/* ox_oryx_decoder_init flag: allocate no KV cache in layers of kind ORYX (pure linear decoding in constant
 * memory; ATTN in such a layer is then an error). A layer of kind ATTN always gets its cache. */
#define OX_ORYX_DECODE_NO_KV 1u

/* One layer's decode state: its mixer's (nn/mixer.h: rings ring_k, ring_v, ring_q, linear state, KV cache kv,
 * has_attn, has_lin). */
typedef ox_nn_mixer_state ox_oryx_decoder_layer;

typedef struct ox_oryx_decoder {
    const ox_oryx_model *model;     /* borrowed */
    int64_t B;                      /* sequences decoded together */
    int64_t cap;                    /* Tmax: positions a KV cache can hold */
    int64_t pos;                    /* next position (tokens consumed so far) */
    ox_tensor *logits;              /* [B, V] logits of the last step (heap) */
    ox_oryx_decoder_layer layers[OX_ORYX_MAX_LAYERS];
} ox_oryx_decoder;

/* Allocates the decode state of model m for B >= 1 sequences and up to cap >= 1 positions (cap bounds only
 * layers that keep a KV cache; with none, decoding has no length limit). flags: 0 or OX_ORYX_DECODE_NO_KV.
 * Empty state: zero rings and linear states, empty caches, pos = 0. On error d is left empty (safe to free). */
ox_status ox_oryx_decoder_init(ox_ctx *ctx, ox_oryx_decoder *d, const ox_oryx_model *m, int64_t B, int64_t cap,
                               unsigned flags);
/* Frees the state (NULL-safe, idempotent). */
void ox_oryx_decoder_free(ox_oryx_decoder *d);
/* Back to the empty state (pos = 0) for new sequences; keeps the memory (a dropped cache stays dropped). */
void ox_oryx_decoder_reset(ox_oryx_decoder *d);
/* Frees the KV cache of layer `layer` (or of every layer when layer < 0) that has a linear core: the caller
 * declares that no later token of that layer uses ATTN. Later steps skip the append; a step asking for ATTN
 * there fails with OX_ERR_STATE. Layers of kind ATTN keep their cache (dropping it is OX_ERR_ARG when named
 * explicitly; skipped when layer < 0). */
ox_status ox_oryx_decoder_drop_kv(ox_ctx *ctx, ox_oryx_decoder *d, int64_t layer);
/* Heap bytes the decode state holds (rings, states, caches, logits). */
uint64_t ox_oryx_decoder_bytes(const ox_oryx_decoder *d);

/* One token per sequence: tokens[0..B-1] (ids in [0, V)) at position d->pos, with modes (0 = LIN,
 * 1 = ATTN): n_modes == B (modes[b] for every layer), or n_modes == L * B (modes[l * B + b]), or modes NULL /
 * n_modes 0 when no layer is of kind ORYX. Writes d->logits [B, V] and advances pos. Every argument and
 * mode is checked before any state changes: a bad id or mode, ATTN in a layer whose cache was dropped, or a
 * full KV cache returns an error and leaves the decoder as it was. */
ox_status ox_oryx_decoder_step(ox_ctx *ctx, ox_oryx_decoder *d, const int32_t *tokens, const int32_t *modes,
                               int64_t n_modes);

/* Runs a prompt tokens I32 [B, T] (any strides) with mode map I32 [B, T] or [L, B, T] (NULL when no layer is
 * of kind ORYX; any strides): from the empty state (pos == 0) by one parallel forward (arena memory of a
 * forward over T tokens, released before returning), otherwise token by token, continuing the sequence. Leaves
 * d->logits = the logits of the prompt's last token and the state as if each token had been stepped. If
 * all_logits is not NULL it must be F32 [B, T, V] and receives the logits of every prompt position.
 * Errors as the step's (ATTN in a layer whose cache was dropped, a prompt longer than the cache, bad ids,
 * modes or shapes); after an error inside the run the state is partial: reset the decoder. */
ox_status ox_oryx_decoder_prefill(ox_ctx *ctx, ox_oryx_decoder *d, const ox_tensor *tokens, const ox_tensor *mode,
                                  ox_tensor *all_logits);

/* ---- sampling ------------------------------------------------------------------------------------- */

/* Tokens are drawn by nn/sampler.h (ox_nn_sampler: temperature, top-k, top-p, seeded). */

/* Called once per generated step with the B new tokens (index i = 0, 1, ...); a nonzero return stops. */
typedef int (*ox_oryx_sample_callback)(void *user, int64_t i, const int32_t *tokens, int64_t B);

/* Generation: prefill the prompt [B, T] (with prompt_mode as in prefill), then up to max_new times: sample
 * one token per sequence from d->logits, pass them to cb (may be NULL), and, unless that was the last one
 * or cb asked to stop, step them with gen_modes (as in ox_oryx_decoder_step). out (may be NULL) receives
 * the tokens, out[i * B + b], room for max_new * B. *n_out (may be NULL) = tokens generated per sequence. */
ox_status ox_oryx_sample_generate(ox_ctx *ctx, ox_oryx_decoder *d, const ox_tensor *prompt,
                                  const ox_tensor *prompt_mode, const int32_t *gen_modes, int64_t n_gen_modes,
                                  int64_t max_new, const ox_nn_sampler *s, ox_rng *rng,
                                  ox_oryx_sample_callback cb, void *user, int32_t *out, int64_t *n_out);

#endif
