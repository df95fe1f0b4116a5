/* attention.h - softmax attention (MODELS.md section 4), causal by default, optionally bidirectional and
 * with per-batch key lengths (padding): the blocked flash-style fused op with its hand-written backward
 * (attention.c), the materialised reference kept beside it (attention_ref.c), and the KV-cache decode step
 * (attention_cache.c).
 *
 * Letters: B batch, T sequence length, H heads, dk head dim of q and k, dv head dim of v.
 * Inputs are already RoPE-rotated (nn/rope.h). For every computed query row t of batch b, head h:
 *     S_ts = q_t . k_s / sqrt(dk)         for s <= t          (keys after t are masked)
 *     P_ts = exp(S_ts - LSE_t),  LSE_t = log sum_{s<=t} exp(S_ts)
 *     o_t  = sum_{s<=t} P_ts v_s
 * Backward (FlashAttention-2, Dao 2023, arXiv 2307.08691; MODELS.md 4.2):
 *     Delta_t = do_t . o_t ;  dv_s += sum_t P_ts do_t ;  dP_ts = do_t . v_s ;  dS_ts = P_ts (dP_ts - Delta_t)
 *     dq_t += sum_s dS_ts k_s / sqrt(dk) ;  dk_s += sum_t dS_ts q_t / sqrt(dk)
 *
 * Subset rows: `rows` is an I32 [B, T] map, 1 = compute query row t (an ATTN row of Oryx), 0 = skip it:
 * its output row is 0 and it sends no gradient (dq row 0, no contribution to dk, dv). NULL = all rows.
 * Keys and values are always every position <= the query, whatever the map.
 *
 * Masks (ox_nn_attention_masked): query t of batch b sees the keys s with s < len_b (len_b = key_len[b], or
 * T without lengths) and, when causal, s <= t; i.e. s <= lim_t, lim_t = min(t, len_b - 1) causal or
 * len_b - 1 bidirectional. The sums above run over s <= lim_t instead of s <= t. A query row that sees no
 * key (len_b = 0) is treated as a skipped row: output 0, no gradient (PyTorch would give NaN there).
 * ox_nn_attention(q, k, v, rows) is ox_nn_attention_masked(q, k, v, rows, NULL): causal, no lengths.
 *
 *   ox_tensor *o = ox_nn_attention(ctx, ox_nn_rope(ctx, q, 0), ox_nn_rope(ctx, k, 0), v, NULL);
 *   ox_nn_kv_cache c; ox_nn_kv_cache_init(ctx, &c, B, H, Tmax, dk, dv);
 *   ox_nn_attention_step(ctx, &c, q_tok, k_tok, v_tok, out_tok);   // one decode token
 *   ox_nn_kv_cache_free(&c);
 */
#ifndef OX_NN_ATTENTION_H
#define OX_NN_ATTENTION_H

#include "autograd/tape.h"

/* Query rows per block and keys per block of the fast path. */
#define OX_ATTN_BLOCK 64

/* Which keys the queries see, besides the rows map (see the top of the file). NULL = { 1, NULL }. */
typedef struct ox_nn_attn_mask {
    int causal;                 /* nonzero: query t sees keys s <= t only */
    const ox_tensor *key_len;   /* I32 [B] (any stride) with 0 <= key_len[b] <= T, or NULL: keys s >= key_len[b]
                                 * are hidden (padding); borrowed, read during the call only */
} ox_nn_attn_mask;

/* The fast path. q, k [B, T, H, dk], v [B, T, H, dv]: any strides (a last axis with stride 1 is used in
 * place, otherwise the tensor is copied once). rows: I32 [B, T] of 0/1, or NULL. Returns o [B, T, H, dv]
 * contiguous (arena), differentiable in q, k and v; NULL with an error in ctx on bad shapes/dtypes/values.
 *
 * Per (b, h) the selected rows are taken in order in blocks of up to 64 (gathered into contiguous
 * scratch); each block walks 64-key blocks J = [j0, min(j0 + 64, pmax + 1)), pmax = the block's last
 * position, with S = Q K_J^T and acc += P V_J through ox_sgemm and an online softmax (running max and
 * sum). A row with position p takes part in key block J only when j0 <= p. Saved for backward: o and the
 * row log-sum-exp LSE [B, H, T] (0 at skipped rows); no T x T matrix is ever formed. With a mask, read
 * lim_p (the row's last visible key, above) for p in this paragraph and the next one. Memory: O(B T H
 * (dk + dv)) plus O(threads * 64 * (64 + dk + dv)) scratch.
 *
 * Work count: adds to ctx->attn_madds, per head and computed row at position p in a block whose last
 * position is pmax,  min(64 * ceil((p + 1) / 64), pmax + 1) * (dk + dv)  (the keys of every key block the
 * row takes part in, masked entries of the diagonal key block included). With all rows selected that is
 * 64 * (t / 64 + 1) * (dk + dv) for row t; in general it lies between (p + 1) * (dk + dv) and
 * (p + 64) * (dk + dv). Cost in flops: 2 * attn_madds forward (S, P V) and
 * 2 * attn_madds * (3 dk + 2 dv) / (dk + dv) backward (S recomputed, dP, dV, dQ, dK).
 * Threads: forward over (b, h, query block); backward over (b, h) when B*H >= threads, otherwise a dQ
 * pass over (b, h, query block) then a dK/dV pass over (b, h, key block). Both schedules make the same
 * products in the same order, so results do not depend on the thread count. */
ox_tensor *ox_nn_attention(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, const ox_tensor *rows);
/* The fast path with a mask (NULL = causal, no lengths: ox_nn_attention). Same arguments, results and
 * costs otherwise; errors also for a bad key_len (not I32 [B], a value outside [0, T]). */
ox_tensor *ox_nn_attention_masked(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v, const ox_tensor *rows,
                                  const ox_nn_attn_mask *mask);

/* The reference: same arguments, same math, same result up to rounding. Per (b, h) it materialises the
 * T x T scores S = Q K^T / sqrt(dk) (one ox_sgemm), the masked softmax P (saved, [B, H, T, T] in the
 * arena), then o = P V; backward from the saved P: dV += P^T dO, dP = dO V^T,
 * dS = P (dP - rowsum(P dP)), dQ += dS K / sqrt(dk), dK += dS^T Q / sqrt(dk). Memory O(B H T^2). For
 * tests and teaching; the fast path never calls it. Does not count attn_madds. */
ox_tensor *ox_nn_attention_reference(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                                     const ox_tensor *rows);
/* The reference with a mask (NULL = causal, no lengths): the masked entries of P are 0. */
ox_tensor *ox_nn_attention_reference_masked(ox_ctx *ctx, ox_tensor *q, ox_tensor *k, ox_tensor *v,
                                            const ox_tensor *rows, const ox_nn_attn_mask *mask);

/* Argument check shared by both versions: q, k, v F32 of shapes [B, T, H, dk], [B, T, H, dk], [B, T, H, dv]
 * (dk, dv >= 1) and rows NULL or I32 [B, T] of 0/1. Returns 0, or -1 with an error recorded that names
 * `op` and the shapes (or the offending rows value). */
int ox_nn_attention_check(ox_ctx *ctx, const char *op, const ox_tensor *q, const ox_tensor *k,
                          const ox_tensor *v, const ox_tensor *rows);
/* The mask's check (after ox_nn_attention_check): mask NULL or its key_len NULL, or I32 [B] with values in
 * [0, T] (B, T from q). Returns 0, or -1 with an error naming `op` and the offending shape or value. */
int ox_nn_attention_check_mask(ox_ctx *ctx, const char *op, const ox_tensor *q, const ox_nn_attn_mask *mask);
/* len_b: key_len[b] of a checked mask, or T when mask or its key_len is NULL. */
int64_t ox_nn_attention_key_len(const ox_nn_attn_mask *mask, int64_t b, int64_t T);

/* ---- decoding with a KV cache ---------------------------------------------------------------------- */

/* Keys (already rotated) and values of the tokens seen so far, for one attention layer. */
typedef struct ox_nn_kv_cache {
    ox_tensor *k;          /* [B, H, Tmax, dk], rotated keys, owned (heap) */
    ox_tensor *v;          /* [B, H, Tmax, dv], owned (heap) */
    ox_tensor *scores;     /* [B, H, Tmax] scratch for the step's scores, owned (heap) */
    int64_t B, H, cap, dk, dv;
    int64_t len;           /* positions 0 .. len-1 are filled; the next token goes to position len */
} ox_nn_kv_cache;

/* Allocates the cache once for up to cap (= Tmax) positions: 4 * B * H * cap * (dk + dv + 1) bytes, owned by
 * the cache (free with ox_nn_kv_cache_free). len = 0. On error c is left empty (safe to free). */
ox_status ox_nn_kv_cache_init(ox_ctx *ctx, ox_nn_kv_cache *c, int64_t B, int64_t H, int64_t cap,
                              int64_t dk, int64_t dv);
/* Frees the cache's tensors (NULL-safe, idempotent). */
void ox_nn_kv_cache_free(ox_nn_kv_cache *c);
/* Empties the cache (len = 0) for a new sequence; keeps the memory. */
void ox_nn_kv_cache_clear(ox_nn_kv_cache *c);

/* Prefill: appends k [B, T, H, dk] (rotated, positions len .. len+T-1) and v [B, T, H, dv] (any
 * strides). OX_ERR_STATE if fewer than T positions are free, OX_ERR_SHAPE on mismatched shapes. */
ox_status ox_nn_kv_cache_append(ox_ctx *ctx, ox_nn_kv_cache *c, const ox_tensor *k, const ox_tensor *v);

/* One decode token at position t = c->len: appends k [B, H, dk] (rotated) and v [B, H, dv], then, if q
 * is not NULL, attends q [B, H, dk] (rotated) over positions 0 .. t and writes out [B, H, dv]:
 *     out = sum_{s<=t} softmax_s(q . k_s / sqrt(dk)) v_s     (one row of ox_nn_attention)
 * q == NULL only appends (a token of a linear-mode layer still fills the cache) and out is unused.
 * Any strides. No allocation (the cache's scratch is used). Adds (t + 1) * (dk + dv) per head to
 * ctx->attn_madds when q is given. Errors: OX_ERR_STATE when the cache is full, OX_ERR_SHAPE/DTYPE on
 * mismatched inputs (the cache is then unchanged). Not recorded for autograd. */
ox_status ox_nn_attention_step(ox_ctx *ctx, ox_nn_kv_cache *c, const ox_tensor *q, const ox_tensor *k,
                               const ox_tensor *v, ox_tensor *out);

#endif
