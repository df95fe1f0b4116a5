/* chunk.h - internal: the chunked linear-recurrence machinery shared by SSD (nn/ssd.c) and Gated DeltaNet
 * (nn/gdn.c), MODELS.md sections 5.4-5.5 and 6.4-6.5. Not part of the public API.
 *
 * Both mixers run the same chunk of Lc = 64 tokens per (batch, head), with state S0 (dv x dk) before it:
 *     F1  g_r = sum_{i<=r} a_i,  gam_r = exp(g_r),  eta_r = exp(g_n - g_r)
 *     F2  Gam[r,i] = exp(g_r - g_i) (i <= r)                      (exponents of differences only)
 *     U   GDN: F3-F6 (A; U = Ut - W S0^T, computed as the unit lower solve (I + A) U = Bv - Bk S0^T);
 *         SSD: U = diag(dt) X
 *     F7  P = (Q K^T) ⊙ Gam
 *     F8  O = diag(gam) Q S0^T + P U
 *     F9  S1 = gam_n S0 + U^T diag(eta) K
 * SSD is the GDN chunk with Tm = I and W = 0, with dt in the role of beta (q = C, k = B, v = X). The
 * backward (B9, B8, B7, then B6-B3 for GDN or the SSD replacement, then B2, B1) recomputes F1-F7 from the
 * saved chunk-start state. Every product goes through ox_sgemm / ox_strsm_unit_lower with one thread: the
 * drivers parallelise over (batch, head) pairs, each pair walking its chunks in order, so every output
 * element is written by one thread in a fixed order (bit-identical for any thread count).
 *
 *   ox_chunk_args p = { OX_CHUNK_GDN, B, T, H, dk, dv, q, k, v, beta, a, s0 };
 *   ox_chunk_forward_all(ctx, &p, y, s_final, saved);       // saved: [B, H, nchunks, dv, dk] or NULL
 *   ox_chunk_backward_all(ctx, &p, saved, dy, ds_final, &grads);
 */
#ifndef OX_NN_CHUNK_H
#define OX_NN_CHUNK_H

#include "autograd/tape.h"

#define OX_CHUNK_LC 64   /* Lc, the kernel chunk length (MODELS.md section 1) */

typedef enum ox_chunk_kind { OX_CHUNK_SSD = 0, OX_CHUNK_GDN = 1 } ox_chunk_kind;

/* The operands of one call. q, k [B, T, H, dk], v [B, T, H, dv]: any strides on the first three axes,
 * the last axis contiguous (stride 1). beta [B, T, H] (dt for SSD) and a [B, T, H]: any strides.
 * s0 [B, H, dv, dk] any strides, or NULL (= 0). */
typedef struct ox_chunk_args {
    ox_chunk_kind kind;
    int64_t B, T, H;
    int64_t dk, dv;
    const ox_tensor *q, *k, *v, *beta, *a, *s0;
} ox_chunk_args;

/* Gradient buffers to ADD into (contiguous, the operands' shapes); any may be NULL (not needed). */
typedef struct ox_chunk_grads {
    float *q, *k, *v, *beta, *a, *s0;
} ox_chunk_grads;

/* Number of chunks, ceil(T / Lc). */
static inline int64_t ox_chunk_count(int64_t T) { return (T + OX_CHUNK_LC - 1) / OX_CHUNK_LC; }

/* Checks the operands of an SSD / GDN call (names: op, then the five input names and the state's) and
 * fills p (q, k, v, beta, a, s0 as given). Records OX_ERR_SHAPE / OX_ERR_DTYPE naming the shapes and
 * returns nonzero on a mismatch. */
int ox_chunk_check(ox_ctx *ctx, const char *op, const char *const names[6], ox_chunk_kind kind,
                   ox_tensor *q, ox_tensor *k, ox_tensor *v, ox_tensor *beta, ox_tensor *a, ox_tensor *s0,
                   ox_chunk_args *p);

/* The value preconditions of the mixers (gdn.h, ssd.h), one O(numel) pass: every element of t (any shape and
 * strides, walked in row-major order) must be finite and in [lo, hi]. Otherwise records OX_ERR_NUMERIC (a NaN
 * or Inf) or OX_ERR_ARG (finite but out of range), with a message naming op, the tensor, the first offending
 * index and value, and `allowed` (e.g. "0 <= beta <= 1"), and returns nonzero. Returns 0 without looking when
 * ctx already holds an error or t is NULL or not F32 (the argument checks that follow report those). */
int ox_chunk_check_range(ox_ctx *ctx, const char *op, const char *name, const ox_tensor *t, float lo, float hi,
                         const char *allowed);

/* The tensor itself when its last axis has stride 1 (or size 1), else a contiguous arena copy. */
ox_tensor *ox_chunk_rows(ox_ctx *ctx, ox_tensor *t);

/* Forward over all chunks (F1-F9). y: contiguous [B, T, H, dv] (written). s_final: contiguous
 * [B, H, dv, dk] or NULL. saved: contiguous [B, H, nchunks, dv, dk] or NULL; receives the state at every
 * chunk start. Per-thread scratch comes from the arena and is released before returning, so allocate
 * everything that must survive (y, s_final, saved) before the call. */
ox_status ox_chunk_forward_all(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final, float *saved);
/* How many times this process has run ox_chunk_forward_all (the chunked recurrence of GDN or SSD, with or
 * without gradients): for tests that count linear passes (e.g. one per linear layer in a decoder prefill). */
uint64_t ox_chunk_forward_calls(void);

/* Backward over all chunks, last to first (B9..B1 per chunk). saved: the chunk-start states of the forward.
 * dy: contiguous [B, T, H, dv] or NULL (no gradient reached y); ds_final: contiguous [B, H, dv, dk] or
 * NULL. Adds into the non-NULL buffers of g. */
ox_status ox_chunk_backward_all(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                                const float *ds_final, const ox_chunk_grads *g);

/* Threads to use for a (batch, head)-parallel loop over `pairs` pairs doing about `work` flops in all. */
int ox_chunk_threads(const ox_ctx *ctx, int64_t pairs, int64_t work);

/* Reads state (b, h) of s0 (any strides, or NULL = 0) into a contiguous dv x dk buffer. */
void ox_chunk_load_state(const ox_tensor *s0, int64_t b, int64_t h, int64_t dv, int64_t dk, float *s);

/* dst[r * rd + j] += src[r * d + j] for r < n, j < d. */
void ox_chunk_add_rows(float *dst, int64_t rd, const float *src, int64_t n, int64_t d);

/* ---- the sequential reference (MODELS.md 5.2/5.3, 6.2/6.3), nn/chunk_ref.c ------------------------------ */

/* One token of a mixer's recurrence and of its backward, for one (batch, head). */
typedef struct ox_chunk_token {
    /* S (dv x dk, contiguous) := S_t from S_{t-1}; o (dv) = S_t q. */
    void (*fwd)(float *S, const float *q, const float *k, const float *v, float beta, float a, float *o,
                int64_t dk, int64_t dv);
    /* dS (gradient w.r.t. S_t) := gradient w.r.t. S_{t-1}. Writes (not adds) gq, gk (dk floats), gv
     * (dv), *gbeta, *ga. dO may be NULL (no output gradient). scratch: 3 dv + dk floats. */
    void (*bwd)(float *dS, const float *Sprev, const float *St, const float *q, const float *k,
                const float *v, float beta, float a, const float *dO, float *gq, float *gk, float *gv,
                float *gbeta, float *ga, float *scratch, int64_t dk, int64_t dv);
} ox_chunk_token;

/* The one-token functions of the two mixers (nn/chunk_ref.c); also the decode step. */
extern const ox_chunk_token ox_chunk_gdn_token;   /* MODELS.md 5.2 / 5.3 */
extern const ox_chunk_token ox_chunk_ssd_token;   /* MODELS.md 6.2 / 6.3 */

/* The token-by-token forward: same outputs and saved states as ox_chunk_forward_all. */
ox_status ox_chunk_reference_forward(ox_ctx *ctx, const ox_chunk_args *p, const ox_chunk_token *tok, float *y,
                                     float *s_final, float *saved);
/* The sequential backward: per chunk (last to first) recompute the chunk's states from its saved start
 * state, then walk its tokens in reverse. Same contract as ox_chunk_backward_all. */
ox_status ox_chunk_reference_backward(ox_ctx *ctx, const ox_chunk_args *p, const ox_chunk_token *tok,
                                      const float *saved, const float *dy, const float *ds_final,
                                      const ox_chunk_grads *g);

/* ---- op glue: checks, contiguous rows, outputs, saved states, the tape node ---------------------------- */

typedef ox_status (*ox_chunk_fwd_fn)(ox_ctx *ctx, const ox_chunk_args *p, float *y, float *s_final,
                                     float *saved);
typedef ox_status (*ox_chunk_bwd_fn)(ox_ctx *ctx, const ox_chunk_args *p, const float *saved, const float *dy,
                                     const float *ds_final, const ox_chunk_grads *g);

/* One op (fast or reference form of one mixer). `op` must be first: the tape node points at it. */
typedef struct ox_chunk_impl {
    ox_ag_op op;                 /* name and the shared backward (ox_chunk_node_backward) */
    ox_chunk_kind kind;
    ox_chunk_fwd_fn fwd;
    ox_chunk_bwd_fn bwd;
    const char *names[6];        /* argument names for error messages */
} ox_chunk_impl;

ox_status ox_chunk_node_backward(ox_ctx *ctx, ox_ag_node *node);

/* Argument names of the two mixers, for error messages. */
#define OX_CHUNK_GDN_NAMES { "q", "k", "v", "beta", "a", "s0" }
#define OX_CHUNK_SSD_NAMES { "c", "b", "x", "dt", "a", "h0" }

/* The reference ops (nn/chunk_ref.c): ox_chunk_reference_forward / _backward with the mixer's token. */
extern const ox_chunk_impl ox_chunk_gdn_reference_impl;
extern const ox_chunk_impl ox_chunk_ssd_reference_impl;

/* Runs impl on (q, k, v, beta, a, s0): checks the shapes, copies an input whose last axis is strided,
 * allocates *y [B, T, H, dv] and (if s_final) *s_final [B, H, dv, dk], saves the chunk-start states when a
 * gradient is needed and records the node. On error *y and *s_final are NULL. */
ox_status ox_chunk_run(ox_ctx *ctx, const ox_chunk_impl *impl, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                       ox_tensor *beta, ox_tensor *a, ox_tensor *s0, ox_tensor **y, ox_tensor **s_final);

/* One decoding step with tok->fwd for every (batch, head): q, k [B, H, dk], v, o [B, H, dv], beta, a [B, H],
 * state [B, H, dv, dk] (its last two axes contiguous) updated in place. Allocates nothing; checks shapes
 * and that every last axis has stride 1. */
ox_status ox_chunk_step(ox_ctx *ctx, const char *op, const char *const names[7], const ox_chunk_token *tok,
                        const ox_tensor *q, const ox_tensor *k, const ox_tensor *v, const ox_tensor *beta,
                        const ox_tensor *a, ox_tensor *state, ox_tensor *o);

#endif
