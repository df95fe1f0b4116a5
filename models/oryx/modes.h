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
 * Above them, one vocabulary for every program: a map spec (kind + parameters, ox_oryx_map_spec), its one
 * builder ox_oryx_map_build and its one parser ox_oryx_map_parse (the SPEC strings of bin/oryx).
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

/* ---- map specifications: the one vocabulary of mode maps (trainer, MQAR, bin/oryx, examples) ------------ */

/* How the map of a call is made. The numbers are stable (checkpoints of format 1 and 2 store them; format 3
 * stores ox_oryx_map_kind_name). No kind has a size limit: EVERY is a period, POSITIONS a list of any length. */
typedef enum ox_oryx_map_kind {
    OX_ORYX_MAP_MIXED = 0,      /* MODELS 8: ratio r from `ratios` per sequence, each chunk ATTN w.p. r */
    OX_ORYX_MAP_ATTN = 1,       /* every token ATTN */
    OX_ORYX_MAP_LIN = 2,        /* every token LIN */
    OX_ORYX_MAP_FRACTION = 3,   /* ATTN on round(fraction * n_chunks) chunks per sequence */
    OX_ORYX_MAP_POSITIONS = 4,  /* ATTN at the listed positions (those >= T are ignored) */
    OX_ORYX_MAP_EVERY = 5,      /* ATTN at positions p with p % every == every - 1 (period N, offset N - 1) */
    OX_ORYX_MAP_CHUNKS = 6,     /* each chunk ATTN w.p. fraction: MIXED with the one-ratio set {fraction} */
    OX_ORYX_MAP_PROMPT = 7,     /* ATTN at positions < n_prompt, LIN after (decoding a prompt, then LIN) */
    OX_ORYX_MAP_QUERIES = 8,    /* MQAR 10.3: ATTN at the query positions (built by ox_oryx_mqar_map) */
    OX_ORYX_MAP_SWEEP = 9       /* MQAR 10.3: round(fraction T) ATTN tokens, queries first (ox_oryx_mqar_map) */
} ox_oryx_map_kind;

#define OX_ORYX_MAX_RATIOS 16

typedef struct ox_oryx_map_spec {
    ox_oryx_map_kind kind;
    int64_t chunk;                          /* mode chunk C (MIXED, CHUNKS, FRACTION); 0 = 64 */
    int n_ratios;                           /* MIXED: 0 = the default set {0, 1/4, 1/2, 3/4, 1} */
    double ratios[OX_ORYX_MAX_RATIOS];
    double fraction;                        /* FRACTION, CHUNKS, SWEEP: in [0, 1] */
    int64_t every;                          /* EVERY: the period N >= 1 */
    int64_t n_prompt;                       /* PROMPT: positions 0 .. n_prompt-1 are ATTN (>= 0) */
    int64_t n_positions;                    /* POSITIONS: how many (>= 0; 0 = every token LIN) */
    const int64_t *positions;               /* POSITIONS: each >= 0, repeats allowed; borrowed */
    uint64_t seed;                          /* stream seed of the random kinds */
} ox_oryx_map_spec;

/* The kind's name: "mixed", "attn", "lin", "fraction", "positions", "every", "chunks", "prompt", "queries",
 * "sweep"; "?" for a value outside the enum. */
const char *ox_oryx_map_kind_name(ox_oryx_map_kind kind);
/* The kind named `name` (one of the above) into *kind; OX_ERR_ARG naming the accepted names otherwise. */
ox_status ox_oryx_map_kind_parse(ox_ctx *ctx, const char *name, ox_oryx_map_kind *kind);

/* Checks a spec: a known kind, ranges (ratios and fraction in [0, 1], every >= 1, n_prompt >= 0, positions
 * >= 0). OX_ERR_ARG naming the field otherwise. */
ox_status ox_oryx_map_check(ox_ctx *ctx, const ox_oryx_map_spec *spec);

/* The map for call number `stream` (each sequence b draws from ox_oryx_modes_stream(seed, stream, b)):
 * an arena tensor I32 [B, T]. NULL + OX_ERR_ARG for a bad spec, or for QUERIES / SWEEP (they need the
 * queries: ox_oryx_mqar_map). */
ox_tensor *ox_oryx_map_build(ox_ctx *ctx, const ox_oryx_map_spec *spec, uint64_t stream, int64_t B, int64_t T);

/* What ox_oryx_map_parse accepts besides attn, lin, mixed, chunks:<f>, every:<N>. */
enum {
    OX_ORYX_MAP_ACCEPT_PROMPT = 1,  /* prompt-attn (its n_prompt is the caller's to set) */
    OX_ORYX_MAP_ACCEPT_FILE = 2     /* a file of 'a' / 'l' characters, one per position, whitespace skipped */
};

/* A mode SPEC as a person writes it: "attn", "lin", "mixed" (MODELS 8, the default ratio set), "chunks:<f>"
 * (each 64-token chunk ATTN with probability f), "every:<N>", "prompt-attn", or the path of a map file (a
 * regular, non-empty file with at least one 'a' or 'l'; POSITIONS: its 'a' positions). spec->seed is left 0,
 * spec->chunk 64. *owned (may be NULL when files are not accepted) receives the positions array of a map
 * file (ox_free), else NULL. "mixed:<f>", the spelling before chunks:<f>, gets an error naming chunks:<f>.
 * Errors: OX_ERR_ARG with one line naming the SPEC and what is accepted, or the file's error. */
ox_status ox_oryx_map_parse(ox_ctx *ctx, const char *text, unsigned accept, ox_oryx_map_spec *spec,
                            int64_t **owned);

#endif
