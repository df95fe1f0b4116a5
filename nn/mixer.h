/* mixer.h - the token-mixer layer of MODELS.md section 3: the shared trunk plus one or more mixer cores.
 *
 * The trunk (k/v projections and short convs, output gate, GatedRMSNorm, output projection) is stored once;
 * each core present adds only its specific parameters (MODELS 7.2):
 *   attention:  attn.q_proj                                     (section 4)
 *   GDN:        gdn.q_proj, q_conv, beta_proj, alpha_proj, A_log, dt_bias   (section 5)
 *   Mamba-2:    mamba2.q_proj, q_conv, dt_proj, A_log, dt_bias, D           (section 6)
 * A single-mixer layer (Transformer, GDN, Mamba-2, or one layer of a layer-axis hybrid) has one core; an
 * Oryx layer has attention plus one linear core and picks, per token, which core's output that token uses
 * (mode map: 1 = ATTN, 0 = LIN). Both states advance at every token: the linear core runs over all rows,
 * attention over the ATTN rows only (its keys and values are all rows).
 *
 * Shapes: x [B, T, D] (the block's normalised input), y [B, T, D]; k, q [B, T, H, dk]; v, o [B, T, H, dv].
 * Cost per layer: the projections (2 D H (2 dk + 2 dv) per token for Oryx), the linear core (linear in T),
 * attention O(|ATTN rows| * T * (dk + dv)).
 *
 *   ox_nn_mixer m;
 *   ox_nn_mixer_config cfg = { .d_model = 256, .n_heads = 4, .d_k = 64, .d_v = 64,
 *                              .cores = OX_NN_CORE_ATTN | OX_NN_CORE_GDN, .conv_act = OX_NN_ACT_SILU,
 *                              .n_layers = 4 };
 *   ox_nn_mixer_init(ctx, &params, &m, "layers.0.mixer", &cfg, &rng);
 *   ox_tensor *y = ox_nn_mixer_forward(ctx, &m, x, mode, NULL);   // mode: I32 [B, T]; NULL: no trace
 *
 * Decoding: a parallel form that also fills a decode state (prefill) and a one-token step form, both written
 * with the same gate, query/key, skip and output code in mixer.c:
 *   ox_nn_mixer_state st;
 *   ox_nn_mixer_state_init(ctx, &st, &m, B, Tmax, 1);
 *   ox_tensor *y = ox_nn_mixer_prefill(ctx, &m, x, mode, &st);   // x [B, T, D]
 *   ox_tensor *y1 = ox_nn_mixer_step(ctx, &m, &st, x1, md, T);   // x1 [B, 1, D], md[b] per sequence
 *   ox_nn_mixer_state_free(&st);
 */
#ifndef OX_NN_MIXER_H
#define OX_NN_MIXER_H

#include "nn/attention.h"
#include "nn/param.h"
#include "nn/shortconv.h"
#include "tensor/rng.h"

/* A token's mode in a mode map (MODELS 1), the one definition of the library: which core's output the token
 * of a two-core (Oryx) layer uses. Mode maps are I32 tensors of these values. */
typedef enum ox_nn_mode {
    OX_NN_LIN = 0,          /* the linear core (GDN or Mamba-2) */
    OX_NN_ATTN = 1          /* softmax attention */
} ox_nn_mode;

typedef enum ox_nn_core {
    OX_NN_CORE_ATTN = 1,
    OX_NN_CORE_GDN = 2,
    OX_NN_CORE_MAMBA2 = 4
} ox_nn_core;

typedef struct ox_nn_mixer_config {
    int64_t d_model, n_heads, d_k, d_v;
    unsigned cores;         /* OR of ox_nn_core: one core, or ATTN plus one linear core */
    ox_nn_act conv_act;     /* SiLU for the GDN family, none for Mamba-2 and the Transformer (MODELS 3) */
    int n_layers;           /* >= 1: for the o_proj initialisation scale 0.02 / sqrt(2 L) (MODELS 13) */
} ox_nn_mixer_config;

typedef struct ox_nn_mixer {
    ox_nn_mixer_config cfg;
    /* trunk (shared by every core) */
    ox_tensor *k_proj, *v_proj, *g_proj;    /* [H*dk, D], [H*dv, D], [H*dv, D] */
    ox_tensor *o_proj;                      /* [D, H*dv] */
    ox_tensor *k_conv, *v_conv;             /* [H*dk, 4], [H*dv, 4] */
    ox_tensor *norm;                        /* [H*dv] */
    /* attention */
    ox_tensor *attn_q;                      /* [H*dk, D] */
    /* linear core: GDN or Mamba-2 */
    ox_tensor *lin_q, *lin_q_conv;          /* [H*dk, D], [H*dk, 4] */
    ox_tensor *gdn_beta, *gdn_alpha;        /* [H, D] each (GDN) */
    ox_tensor *m2_dt;                       /* [H, D] (Mamba-2) */
    ox_tensor *A_log, *dt_bias;             /* [H] */
    ox_tensor *m2_D;                        /* [H] (Mamba-2 skip) */
} ox_nn_mixer;

/* Registers the parameters under "<prefix>.k_proj.weight", ... (MODELS 12.2 names) and initialises them as
 * MODELS 13 says. Errors: a core set that is empty or holds two linear cores, sizes <= 0. */
ox_status ox_nn_mixer_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_mixer *m, const char *prefix,
                           const ox_nn_mixer_config *cfg, ox_rng *rng);
/* Points an ox_nn_mixer at already registered parameters (e.g. loaded from a file) named under prefix. */
ox_status ox_nn_mixer_bind(ox_ctx *ctx, const ox_nn_params *ps, ox_nn_mixer *m, const char *prefix,
                           const ox_nn_mixer_config *cfg);

/* Intermediate results of one forward, for tests and teaching (arena tensors; a core's fields are NULL
 * when the layer has no such core or when no row of the mode map used it). */
typedef struct ox_nn_mixer_trace {
    ox_tensor *k, *v;       /* [B, T, H*dk], [B, T, H*dv]: after conv and activation, before RoPE */
    ox_tensor *g;           /* [B, T, H*dv]: gate pre-activation */
    ox_tensor *o;           /* [B, T, H*dv]: per-head mixer output before GatedRMSNorm */
    ox_tensor *q_attn;      /* [B, T, H*dk]: x Wq^T before RoPE (0 at LIN rows of a mixed map) */
    ox_tensor *q_rot, *k_rot;           /* [B, T, H*dk]: q_attn and k rotated by RoPE at positions 0..T-1 */
    ox_tensor *q_lin;       /* [B, T, H*dk]: GDN: l2norm(silu(conv)) / sqrt(dk); Mamba-2: C after conv */
    ox_tensor *k_norm;      /* [B, T, H*dk]: GDN only: l2norm(k) */
    ox_tensor *beta, *log_alpha, *dt;   /* [B, T, H] */
} ox_nn_mixer_trace;

/* y = (RMSNorm_head(o) * w_norm * silu(g)) Wo^T with o from the cores (MODELS 3, 7.2): x [B, T, D] ->
 * y [B, T, D], arena-owned, differentiable in x and every parameter (the tape does the backward).
 * mode: I32 [B, T] of OX_NN_LIN (0) / OX_NN_ATTN (1), any strides; required for a two-core layer, ignored (may be
 * NULL) for a one-core layer. In a two-core layer attention computes only the ATTN rows (their query
 * projection, RoPE'd queries and softmax rows; keys and values are every row) and the linear core runs
 * over all rows (its state advances at every token); a core that no row reads (an all-LIN or all-ATTN map)
 * is not run at all: the result is the same, and that core's specific parameters get exactly zero gradient
 * either way. trace may be NULL. Errors (NULL + message): shapes, a missing or malformed mode map,
 * a mode value other than 0/1. */
ox_tensor *ox_nn_mixer_forward(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *mode,
                               ox_nn_mixer_trace *trace);

/* ---- decoding (MODELS 7.4) ------------------------------------------------------------------------------ */

/* The decode state of one mixer for B sequences: what its step form carries from one token to the next. */
typedef struct ox_nn_mixer_state {
    ox_tensor *ring_k, *ring_v;     /* [B, 3, H*dk], [B, 3, H*dv]: last three pre-conv k, v rows (heap) */
    ox_tensor *ring_q;              /* [B, 3, H*dk]: linear query pre-conv rows; NULL without a linear core */
    ox_tensor *state;               /* [B, H, dv, dk]: GDN S or Mamba-2 h; NULL without a linear core */
    ox_nn_kv_cache kv;              /* rotated keys and values; kv.k == NULL when absent or dropped */
    int has_attn, has_lin;          /* the cores of the mixer */
} ox_nn_mixer_state;

/* Allocates the empty state (zero rings and linear state, empty cache) of mixer m for B >= 1 sequences: a
 * KV cache of cap >= 1 positions when m has attention and kv != 0 (kv = 0: none; the step then serves only
 * LIN tokens). Heap tensors owned by st (ox_nn_mixer_state_free). Memory: KV cache 4 B H cap (dk + dv + 1)
 * bytes, linear state 4 B H dv dk bytes, rings 12 B H (2 dk + dv). On error st is left empty. */
ox_status ox_nn_mixer_state_init(ox_ctx *ctx, ox_nn_mixer_state *st, const ox_nn_mixer *m, int64_t B, int64_t cap,
                                 int kv);
/* Frees the state (NULL-safe, idempotent). */
void ox_nn_mixer_state_free(ox_nn_mixer_state *st);
/* Back to the empty state; keeps the memory (a freed cache stays freed). */
void ox_nn_mixer_state_reset(ox_nn_mixer_state *st);
/* Heap bytes the state holds. */
uint64_t ox_nn_mixer_state_bytes(const ox_nn_mixer_state *st);

/* Prefill: ox_nn_mixer_forward on x [B, T, D] from st's empty state (st must be fresh or reset), also leaving
 * st as T steps would: the rings hold the last three pre-conv rows of the trunk's own projections, the cache
 * (if kept) the rotated keys the attention core used (rotated here only when no row ran attention) and the
 * values, the linear state the final state of the same chunked pass (from zero; the linear core then runs
 * even when no row reads its output, so each recurrence runs once). Errors: those of the forward, ATTN
 * rows without a cache, more rows than it holds, a cache that is not empty (OX_ERR_STATE); after an error
 * st is partial. */
ox_tensor *ox_nn_mixer_prefill(ox_ctx *ctx, const ox_nn_mixer *m, ox_tensor *x, const ox_tensor *mode,
                               ox_nn_mixer_state *st);

/* Step: y [B, 1, D] for one token per sequence, x [B, 1, D] contiguous at position pos, advancing st, with
 * the parallel form's math one row at a time (the same gate, query/key, skip and output code; projections
 * by dot products, nn/linear_step.h; the recurrences' and attention's step forms):
 *     k, v = act(conv step of x Wk^T, x Wv^T through the rings);  g = x Wg^T
 *     attention (if any): append (RoPE(k, pos), v) to the cache when kept; for ATTN sequences
 *                         o = softmax attention of RoPE(x Wq^T, pos) over the cache
 *     linear core (if any): advance S with this token (GDN 5.2, Mamba-2 6.2); for LIN sequences o = its readout
 *     y = GatedRMSNorm(o, g) Wo^T
 * md[b] is sequence b's mode (OX_NN_LIN / OX_NN_ATTN; read only in a two-core mixer, may be NULL otherwise).
 * The caller checks the modes, that ATTN finds a cache and that the cache has room (the decoder does, before
 * any layer changes). Not recorded (run with gradients off); arena temporaries, no heap allocation. */
ox_tensor *ox_nn_mixer_step(ox_ctx *ctx, const ox_nn_mixer *m, ox_nn_mixer_state *st, ox_tensor *x,
                            const int32_t *md, int64_t pos);

#endif
