/* modes.h - mode-map builders for Oryx models (MODELS.md 7.2, 8, 10.3): I32 [B, T] maps, 1 = ATTN, 0 = LIN,
 * shared by every layer (use ox_tensor_view_expand or build [L, B, T] by hand for per-layer maps).
 *
 *   all ATTN / all LIN          ox_oryx_modes_fill
 *   mixed-mode training         ox_oryx_modes_mixed: per sequence a ratio r drawn from a set (default
 *                               {0, 1/4, 1/2, 3/4, 1}), then each chunk of C tokens (default 64; the last one
 *                               may be shorter) is ATTN with probability r, independently (MODELS 8)
 *   a fraction of chunks        ox_oryx_modes_chunk_fraction: round(f * nchunks) chunks per sequence, chosen
 *                               uniformly without replacement
 *   listed positions            ox_oryx_modes_positions: ATTN exactly at the given token positions
 *   every N-th position         ox_oryx_modes_every: ATTN at positions p with p % N == N - 1
 *
 * Randomness: each sequence b of a call draws from its own stream ox_rng_seed(hash(seed, step, b)), so a map
 * depends only on (seed, step, b, sizes): the same seed gives the same maps, whatever the thread count, and
 * the maps of step s do not depend on how many earlier steps were drawn.
 * Results are arena tensors (valid until ox_ctx_reset).
 *
 *   ox_tensor *mode = ox_oryx_modes_mixed(ctx, 1234, step, B, T, 64, NULL, 0);
 */
#ifndef OX_ORYX_MODES_H
#define OX_ORYX_MODES_H

#include "models/oryx/config.h"
#include "nn/mixer.h"
#include "tensor/rng.h"

/* Every entry = mode (OX_NN_ATTN or OX_NN_LIN, nn/mixer.h). */
ox_tensor *ox_oryx_modes_fill(ox_ctx *ctx, int64_t B, int64_t T, int mode);

/* The mixed-mode sampler of MODELS 8. ratios[0..n_ratios-1] in [0, 1] (NULL / 0: the default set
 * {0, 0.25, 0.5, 0.75, 1}); chunk >= 1. */
ox_tensor *ox_oryx_modes_mixed(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T, int64_t chunk,
                               const double *ratios, int n_ratios);

/* ATTN on round(fraction * ceil(T / chunk)) chunks of each sequence (fraction in [0, 1]), chosen uniformly
 * without replacement from the sequence's stream; LIN elsewhere. */
ox_tensor *ox_oryx_modes_chunk_fraction(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T,
                                        int64_t chunk, double fraction);

/* ATTN at positions pos[0..n-1] (each in [0, T), repeats allowed) of every sequence, LIN elsewhere. */
ox_tensor *ox_oryx_modes_positions(ox_ctx *ctx, int64_t B, int64_t T, const int64_t *pos, int64_t n);

/* ATTN at positions p with p % every == every - 1 (every >= 1; every = 1: all ATTN) of every sequence, LIN
 * elsewhere. */
ox_tensor *ox_oryx_modes_every(ox_ctx *ctx, int64_t B, int64_t T, int64_t every);

/* The stream of sequence b of a call (what the samplers above use). */
ox_rng ox_oryx_modes_stream(uint64_t seed, uint64_t step, int64_t b);

#endif
