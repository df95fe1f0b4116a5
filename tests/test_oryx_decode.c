/* test_oryx_decode.c - Oryx decoding (models/oryx/generate.h, MODELS.md 7.4 and 11 items 13-15):
 *   - golden: step-by-step logits of model_oryx-{gdn,mamba2}_T150.data (empty state, the file's mode map, one
 *     token at a time) against the file's step.logits, rel <= 1e-4 (the golden README's tolerance for logits);
 *   - step == parallel forward (rel <= 1e-4, MODELS 11 item 14) for every preset, for mixed maps switching in
 *     both directions (shared by the layers and per layer), with and without a prefill: both sides are fp32
 *     runs of the same math with different summation orders (chunked vs sequential linear mixer, blocked vs
 *     one-row attention), whose difference is ~1e-6; a wrong term or a stale state shows up as 1e-2 or more;
 *   - KV-cache dropping (item 15): the same logits bit for bit (a LIN readout never reads the cache, so the
 *     same float operations run), ATTN after a drop is an error that leaves the decoder unchanged;
 *   - a 2,000-token pure-LIN decode without a cache: no allocation and no growth after the first token;
 *   - layer-0 independence (item 13): layer 0's state, rings and cache are bitwise equal for every map;
 *   - sampling: greedy = argmax, top-k never leaves the top k, temperature frequencies match softmax, same seed
 *     same tokens, the callback stops the loop;
 *   - argument errors.
 * Models are small (D = 32, H = 2, dk = 16, dv = 8, V = 64) with order-one random weights (as the golden
 * files) so that every parameter visibly affects the logits. */
#include "test_util.h"
#include "nn/chunk.h"

#include "models/oryx/checkpoint.h"
#include "models/oryx/generate.h"
#include "tensor/safetensors.h"

#include <stdio.h>
#include <string.h>

/* T = 70 crosses the 64-token chunk of the linear mixers and the attention key blocks (40 under ASan) */
static int64_t seq_len(void) { return test_small() ? 40 : 70; }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void small_model(ox_ctx *ctx, ox_oryx_model *m, const char *preset, int64_t L, uint64_t seed)
{
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, preset, L, &c));
    c.vocab = 64;
    c.d_model = 32;
    c.n_heads = 2;
    c.d_k = 16;
    c.d_v = 8;
    c.mlp_hidden = 64;
    ox_rng rng = ox_rng_seed(seed);
    assert_ok(ctx, ox_oryx_model_init(ctx, m, &c, &rng));
    for (int i = 0; i < m->params.n; i++) {     /* order-one weights; A_log, dt_bias keep their init */
        const char *name = m->params.items[i].name;
        ox_tensor *t = m->params.items[i].t;
        if (ends_with(name, "A_log") || ends_with(name, "dt_bias"))
            continue;
        if (ends_with(name, "conv.weight"))
            assert_ok(ctx, ox_tensor_fill_uniform(ctx, t, &rng, -0.5, 0.5));
        else if (t->ndim == 1)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 1.0, 0.2));
        else if (strcmp(name, "embed.weight") == 0)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 0.0, 0.5));
        else
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 0.0, 1.0 / sqrt((double)t->shape[1])));
    }
}

static ox_tensor *random_tokens(ox_ctx *ctx, uint64_t seed, int64_t B, int64_t T, int64_t V)
{
    ox_rng rng = ox_rng_seed(seed);
    ox_tensor *t = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
    for (int64_t i = 0; i < B * T; i++)
        ox_tensor_i32(t)[i] = (int32_t)ox_rng_below(&rng, (uint64_t)V);
    return t;
}

/* A mixed map [B, T] (layers == 0) or [L, B, T]: runs of several lengths, single tokens, switches both ways,
 * different in each sequence (and layer). */
static ox_tensor *mixed_map(ox_ctx *ctx, int64_t layers, int64_t B, int64_t T)
{
    int64_t n = layers ? layers : 1;
    ox_tensor *m = layers ? ox_tensor_empty(ctx, OX_I32, OX_DIMS(layers, B, T))
                          : ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
    for (int64_t l = 0; l < n; l++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                int64_t u = t + 5 * l + 3 * b;
                int v = (int)((u / (7 + 4 * b)) % 2);
                if (t % 13 == 6)         /* single-token switches */
                    v = !v;
                ox_tensor_i32(m)[(l * B + b) * T + t] = v;
            }
    return m;
}

/* ---- golden --------------------------------------------------------------------------------------- */

static void run_golden(const char *data_file)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/golden/%s", data_file);
    ox_ctx *ctx = test_ctx();
    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    snprintf(path, sizeof path, "tests/data/golden/%s", ox_st_file_meta(f, "checkpoint"));
    ox_oryx_model m;
    int64_t step = 0, seq = 0;
    assert_ok(ctx, ox_oryx_load(ctx, path, &m, &step, &seq));
    ox_tensor *tokens = ox_st_file_get(f, "tokens"), *mode = ox_st_file_get(f, "mode_map");
    ox_tensor *ref = ox_st_file_get(f, "step.logits");
    cr_assert_not_null(tokens);
    cr_assert_not_null(mode);
    cr_assert_not_null(ref);
    const int64_t B = tokens->shape[0], T = tokens->shape[1];
    ox_oryx_decoder d;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, B, T, 0));
    ox_tensor *all = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, T, m.cfg.vocab));
    /* one token at a time through the public step (not prefill) */
    int32_t tok[8], md[8];
    cr_assert_leq(B, 8);
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++) {
            tok[b] = ox_tensor_i32(tokens)[b * T + t];
            md[b] = ox_tensor_i32(mode)[b * T + t];
        }
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &d, tok, md, B));
        for (int64_t b = 0; b < B; b++)
            memcpy(ox_tensor_f32(all) + (b * T + t) * m.cfg.vocab, ox_tensor_f32(d.logits) + b * m.cfg.vocab,
                   (size_t)m.cfg.vocab * sizeof(float));
    }
    cr_assert_eq(d.pos, T);
    assert_rel(ctx, "", data_file, all, ref, 1e-4);
    ox_oryx_decoder_free(&d);
    ox_oryx_model_free(&m);
    ox_st_file_free(f);
    ox_ctx_free(ctx);
}

Test(oryx_decode, golden_gdn_T150) { run_golden("model_oryx-gdn_T150.data.safetensors"); }
Test(oryx_decode, golden_mamba2_T150) { run_golden("model_oryx-mamba2_T150.data.safetensors"); }

/* ---- step == parallel forward ---------------------------------------------------------------------- */

/* Decodes tokens [B, T] with map (NULL, [B, T] or [L, B, T]): the first `prefill` tokens through
 * ox_oryx_decoder_prefill (parallel forward), the next 5 through a second prefill (stepping, as it continues a
 * sequence), the rest through ox_oryx_decoder_step; returns every position's logits. */
static ox_tensor *decode_all(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *map,
                             int64_t prefill)
{
    const int64_t B = tokens->shape[0], T = tokens->shape[1], V = m->cfg.vocab, L = m->cfg.n_layers;
    ox_oryx_decoder d;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, m, B, T, 0));
    ox_tensor *all = ox_tensor_empty(ctx, OX_F32, OX_DIMS(B, T, V));
    if (prefill > 0) {
        ox_tensor *tp = ox_tensor_view_narrow(ctx, tokens, 1, 0, prefill);
        ox_tensor *mp = map ? ox_tensor_view_narrow(ctx, map, map->ndim - 1, 0, prefill) : NULL;
        ox_tensor *ap = ox_tensor_view_narrow(ctx, all, 1, 0, prefill);
        assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &d, tp, mp, ap));     /* parallel: from the empty state */
        cr_assert_eq(d.pos, prefill);
        if (prefill + 5 < T) {       /* a second prompt piece continues by stepping */
            tp = ox_tensor_view_narrow(ctx, tokens, 1, prefill, 5);
            mp = map ? ox_tensor_view_narrow(ctx, map, map->ndim - 1, prefill, 5) : NULL;
            ap = ox_tensor_view_narrow(ctx, all, 1, prefill, 5);
            assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &d, tp, mp, ap));
            prefill += 5;
            cr_assert_eq(d.pos, prefill);
        }
    }
    int64_t nm = map ? (map->ndim == 3 ? L * B : B) : 0;
    int32_t tok[4], md[4 * OX_ORYX_MAX_LAYERS];
    for (int64_t t = prefill; t < T; t++) {
        for (int64_t b = 0; b < B; b++)
            tok[b] = ox_tensor_i32(tokens)[b * T + t];
        for (int64_t i = 0; i < nm; i++)
            md[i] = ox_tensor_i32(map)[i * T + t];       /* [B, T] or [L, B, T], contiguous */
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &d, tok, map ? md : NULL, nm));
        for (int64_t b = 0; b < B; b++)
            memcpy(ox_tensor_f32(all) + (b * T + t) * V, ox_tensor_f32(d.logits) + b * V, (size_t)V * sizeof(float));
    }
    ox_oryx_decoder_free(&d);
    return all;
}

static void step_vs_forward(const char *preset, int per_layer_map)
{
    ox_ctx *ctx = test_ctx();
    const int64_t L = 4, B = 2, T = seq_len();
    ox_oryx_model m;
    small_model(ctx, &m, preset, L, 11);
    ox_tensor *tokens = random_tokens(ctx, 5, B, T, m.cfg.vocab);
    int oryx = m.cfg.kinds[0] == OX_ORYX_KIND_ORYX;
    ox_tensor *map = oryx ? mixed_map(ctx, per_layer_map ? L : 0, B, T) : NULL;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *ref = ox_oryx_forward(ctx, &m, tokens, map);
    ox_ag_set_grad_enabled(ctx, prev);
    cr_assert_not_null(ref, "%s", ox_ctx_message(ctx));
    char what[128];
    int64_t pre[3] = { 0, 1, 33 };   /* no prefill, a one-token prompt, a prompt ending inside a run */
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s%s, prefill %lld", preset, per_layer_map ? " (per-layer map)" : "",
                 (long long)pre[i]);
        assert_rel(ctx, "", what, decode_all(ctx, &m, tokens, map, pre[i]), ref, 1e-4);
    }
    if (oryx) {     /* all-ATTN and all-LIN maps decode like the forward too */
        for (int v = 0; v < 2; v++) {
            ox_tensor *fill = ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), v);
            prev = ox_ag_set_grad_enabled(ctx, 0);
            ox_tensor *r = ox_oryx_forward(ctx, &m, tokens, fill);
            ox_ag_set_grad_enabled(ctx, prev);
            snprintf(what, sizeof what, "%s, all %s", preset, v ? "ATTN" : "LIN");
            assert_rel(ctx, "", what, decode_all(ctx, &m, tokens, fill, 20), r, 1e-4);
        }
    }
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

Test(oryx_decode, step_eq_forward_transformer) { step_vs_forward("transformer", 0); }
Test(oryx_decode, step_eq_forward_gdn) { step_vs_forward("gdn", 0); }
Test(oryx_decode, step_eq_forward_mamba2) { step_vs_forward("mamba2", 0); }
Test(oryx_decode, step_eq_forward_hybrid_gdn) { step_vs_forward("hybrid-gdn", 0); }
Test(oryx_decode, step_eq_forward_hybrid_mamba2) { step_vs_forward("hybrid-mamba2", 0); }
Test(oryx_decode, step_eq_forward_oryx_gdn) { step_vs_forward("oryx-gdn", 0); }
Test(oryx_decode, step_eq_forward_oryx_mamba2) { step_vs_forward("oryx-mamba2", 0); }
Test(oryx_decode, step_eq_forward_oryx_gdn_per_layer) { step_vs_forward("oryx-gdn", 1); }
Test(oryx_decode, step_eq_forward_oryx_mamba2_per_layer) { step_vs_forward("oryx-mamba2", 1); }

/* The parallel prefill leaves the state stepping leaves: rings, linear state, KV cache, logits, for a mixed,
 * an all-ATTN and an all-LIN prompt. The rings and the cache hold the same projections and rotations (rel <=
 * 1e-5: the same float ops up to GEMM vs dot order); the linear state comes from the chunked form vs the
 * recurrence (rel <= 1e-4, MODELS 11 item 4). The parallel prefill runs each layer's linear recurrence once:
 * one chunked pass per layer (ox_chunk_forward_calls counts them, gradients off as in prefill). */
static void prefill_state(const char *preset, int which)
{
    ox_ctx *ctx = test_ctx();
    const int64_t L = 2, B = 2, T = seq_len();
    ox_oryx_model m;
    small_model(ctx, &m, preset, L, 71);
    ox_tensor *tokens = random_tokens(ctx, 12, B, T, m.cfg.vocab);
    ox_tensor *map = which == 0 ? mixed_map(ctx, L, B, T)
                                : ox_tensor_full(ctx, OX_I32, OX_DIMS(L, B, T), which == 1 ? OX_NN_ATTN : OX_NN_LIN);
    ox_oryx_decoder par, seq;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &par, &m, B, T, 0));
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &seq, &m, B, T, 0));
    uint64_t passes = ox_chunk_forward_calls();
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &par, tokens, map, NULL));
    cr_assert_eq(ox_chunk_forward_calls() - passes, (uint64_t)L, "%s map %d: %llu chunked passes for %lld layers",
                 preset, which, (unsigned long long)(ox_chunk_forward_calls() - passes), (long long)L);
    /* seq: a first token by prefill (parallel, T = 1), the rest by prefill continuing (stepping) */
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &seq, ox_tensor_view_narrow(ctx, tokens, 1, 0, 1),
                                           ox_tensor_view_narrow(ctx, map, 2, 0, 1), NULL));
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &seq, ox_tensor_view_narrow(ctx, tokens, 1, 1, T - 1),
                                           ox_tensor_view_narrow(ctx, map, 2, 1, T - 1), NULL));
    cr_assert_eq(par.pos, T);
    cr_assert_eq(seq.pos, T);
    assert_rel(ctx, "", "prefill logits", par.logits, seq.logits, 1e-4);
    for (int64_t l = 0; l < L; l++) {
        const ox_oryx_decoder_layer *a = &par.layers[l], *b = &seq.layers[l];
        assert_rel(ctx, "", "ring_k", a->ring_k, b->ring_k, 1e-5);
        assert_rel(ctx, "", "ring_v", a->ring_v, b->ring_v, 1e-5);
        assert_rel(ctx, "", "ring_q", a->ring_q, b->ring_q, 1e-5);
        assert_rel(ctx, "", "linear state", a->state, b->state, 1e-4);
        cr_assert_eq(a->kv.len, T);
        cr_assert_eq(b->kv.len, T);
        assert_rel(ctx, "", "KV cache keys", ox_tensor_view_narrow(ctx, a->kv.k, 2, 0, T),
                  ox_tensor_view_narrow(ctx, b->kv.k, 2, 0, T), 1e-5);
        assert_rel(ctx, "", "KV cache values", ox_tensor_view_narrow(ctx, a->kv.v, 2, 0, T),
                  ox_tensor_view_narrow(ctx, b->kv.v, 2, 0, T), 1e-5);
    }
    ox_oryx_decoder_free(&par);
    ox_oryx_decoder_free(&seq);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

Test(oryx_decode, prefill_state_gdn) { prefill_state("oryx-gdn", 0); }
Test(oryx_decode, prefill_state_mamba2) { prefill_state("oryx-mamba2", 0); }
Test(oryx_decode, prefill_state_gdn_all_attn) { prefill_state("oryx-gdn", 1); }
Test(oryx_decode, prefill_state_gdn_all_lin) { prefill_state("oryx-gdn", 2); }
Test(oryx_decode, prefill_state_mamba2_all_attn) { prefill_state("oryx-mamba2", 1); }
Test(oryx_decode, prefill_state_mamba2_all_lin) { prefill_state("oryx-mamba2", 2); }

/* ---- KV-cache dropping ------------------------------------------------------------------------------ */

static void drop_kv(const char *preset)
{
    ox_ctx *ctx = test_ctx();
    const int64_t L = 2, B = 2, T = seq_len(), T0 = 17, V = 64;
    ox_oryx_model m;
    small_model(ctx, &m, preset, L, 21);
    ox_tensor *tokens = random_tokens(ctx, 8, B, T, V);
    /* a mixed prefix (ATTN and LIN), then LIN only */
    ox_tensor *map = mixed_map(ctx, 0, B, T0);
    ox_oryx_decoder keep, drop, never;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &keep, &m, B, T, 0));
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &drop, &m, B, T, 0));
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &never, &m, B, T, OX_ORYX_DECODE_NO_KV));
    uint64_t full_bytes = ox_oryx_decoder_bytes(&keep);
    cr_assert_lt(ox_oryx_decoder_bytes(&never), full_bytes);
    ox_tensor *tp = ox_tensor_view_narrow(ctx, tokens, 1, 0, T0);
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &keep, tp, map, NULL));
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &drop, tp, map, NULL));
    /* the never-cached decoder cannot take the mixed prefix: its first ATTN token is an error */
    cr_assert_neq(ox_oryx_decoder_prefill(ctx, &never, tp, map, NULL), OX_OK);
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_STATE);
    cr_assert(strstr(ox_ctx_message(ctx), "dropped") != NULL, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, ox_oryx_decoder_drop_kv(ctx, &drop, -1));
    cr_assert_lt(ox_oryx_decoder_bytes(&drop), full_bytes);
    int32_t lin[2] = { OX_NN_LIN, OX_NN_LIN }, tok[2];
    int64_t npos = 0;
    for (int64_t t = T0; t < T; t++) {
        for (int64_t b = 0; b < B; b++)
            tok[b] = ox_tensor_i32(tokens)[b * T + t];
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &keep, tok, lin, B));
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &drop, tok, lin, B));
        cr_assert(memcmp(ox_tensor_f32(keep.logits), ox_tensor_f32(drop.logits), (size_t)(B * V) * sizeof(float)) == 0,
                  "%s: logits differ at position %lld after dropping the KV cache", preset, (long long)t);
        npos++;
    }
    cr_assert_eq(npos, T - T0);
    /* ATTN after the drop: an error naming the drop, nothing advanced */
    int32_t attn[2] = { OX_NN_LIN, OX_NN_ATTN };
    int64_t pos = drop.pos;
    float before = ox_tensor_f32(drop.layers[0].state)[3];
    cr_assert_eq(ox_oryx_decoder_step(ctx, &drop, tok, attn, B), OX_ERR_STATE);
    cr_assert(strstr(ox_ctx_message(ctx), "dropped") != NULL, "%s", ox_ctx_message(ctx));
    cr_assert_eq(drop.pos, pos);
    cr_assert_eq(ox_tensor_f32(drop.layers[0].state)[3], before);
    ox_ctx_clear_error(ctx);

    /* an all-LIN decode without ever allocating the cache equals the cached one */
    ox_oryx_decoder_reset(&keep);
    ox_oryx_decoder_reset(&never);
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++)
            tok[b] = ox_tensor_i32(tokens)[b * T + t];
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &keep, tok, lin, B));
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &never, tok, lin, B));
        cr_assert(memcmp(ox_tensor_f32(keep.logits), ox_tensor_f32(never.logits), (size_t)(B * V) * sizeof(float)) ==
                      0, "%s: logits differ at %lld without a KV cache", preset, (long long)t);
    }
    ox_oryx_decoder_free(&keep);
    ox_oryx_decoder_free(&drop);
    ox_oryx_decoder_free(&never);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

Test(oryx_decode, drop_kv_gdn) { drop_kv("oryx-gdn"); }
Test(oryx_decode, drop_kv_mamba2) { drop_kv("oryx-mamba2"); }

Test(oryx_decode, constant_memory_pure_lin)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    small_model(ctx, &m, "oryx-gdn", 2, 31);
    ox_oryx_decoder d;
    /* cap 16: without a cache nothing bounds the length */
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, 1, 16, OX_ORYX_DECODE_NO_KV));
    int32_t lin = OX_NN_LIN, tok = 7;
    assert_ok(ctx, ox_oryx_decoder_step(ctx, &d, &tok, &lin, 1));
    uint64_t allocs = ox_alloc_count(), live = ox_alloc_bytes_live(), bytes = ox_oryx_decoder_bytes(&d);
    size_t arena_cap = ox_arena_capacity(&ctx->arena), arena_used = ctx->arena.used;
    ox_rng rng = ox_rng_seed(3);
    for (int64_t i = 1; i < 2000; i++) {
        tok = (int32_t)ox_rng_below(&rng, 64);
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &d, &tok, &lin, 1));
    }
    cr_assert_eq(d.pos, 2000);
    cr_assert_eq(ox_alloc_count(), allocs, "%llu allocations during 1999 steps",
                 (unsigned long long)(ox_alloc_count() - allocs));
    cr_assert_eq(ox_alloc_bytes_live(), live);
    cr_assert_eq(ox_oryx_decoder_bytes(&d), bytes);
    cr_assert_eq(ox_arena_capacity(&ctx->arena), arena_cap);
    cr_assert_eq(ctx->arena.used, arena_used);
    for (int64_t i = 0; i < m.cfg.vocab; i++)
        cr_assert(isfinite(ox_tensor_f32(d.logits)[i]));
    ox_oryx_decoder_free(&d);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

/* ---- layer-0 independence (MODELS 11 item 13) --------------------------------------------------------- */

static int same_tensor(const ox_tensor *a, const ox_tensor *b)
{
    return ox_tensor_numel(a) == ox_tensor_numel(b) &&
           memcmp(ox_tensor_f32(a), ox_tensor_f32(b), (size_t)ox_tensor_numel(a) * sizeof(float)) == 0;
}

static void layer0_independence(const char *preset)
{
    ox_ctx *ctx = test_ctx();
    const int64_t L = 2, B = 2, T = 45;
    ox_oryx_model m;
    small_model(ctx, &m, preset, L, 41);
    ox_tensor *tokens = random_tokens(ctx, 9, B, T, m.cfg.vocab);
    ox_tensor *maps[3] = { ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), 0), ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), 1),
                           mixed_map(ctx, L, B, T) };
    ox_oryx_decoder d[3];
    for (int i = 0; i < 3; i++) {
        assert_ok(ctx, ox_oryx_decoder_init(ctx, &d[i], &m, B, T, 0));
        assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &d[i], tokens, maps[i], NULL));
    }
    for (int i = 1; i < 3; i++) {
        const ox_oryx_decoder_layer *a = &d[0].layers[0], *b = &d[i].layers[0];
        cr_assert(same_tensor(a->state, b->state), "%s: layer-0 linear state depends on the map (%d)", preset, i);
        cr_assert(same_tensor(a->kv.k, b->kv.k) && same_tensor(a->kv.v, b->kv.v),
                  "%s: layer-0 KV cache depends on the map (%d)", preset, i);
        cr_assert(same_tensor(a->ring_k, b->ring_k) && same_tensor(a->ring_v, b->ring_v) &&
                  same_tensor(a->ring_q, b->ring_q), "%s: layer-0 conv rings depend on the map (%d)", preset, i);
        /* layer 1 reads layer 0's output, which the map changes: its state must differ */
        cr_assert(!same_tensor(d[0].layers[1].state, d[i].layers[1].state), "%s: layer 1 ignores the map", preset);
    }
    for (int i = 0; i < 3; i++)
        ox_oryx_decoder_free(&d[i]);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

Test(oryx_decode, layer0_independence_gdn) { layer0_independence("oryx-gdn"); }
Test(oryx_decode, layer0_independence_mamba2) { layer0_independence("oryx-mamba2"); }

/* ---- sampling -------------------------------------------------------------------------------------------- */

Test(oryx_decode, sample_greedy_is_argmax)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(1);
    ox_nn_sampler greedy = { .temperature = 0.0, .top_k = 0 };
    for (int trial = 0; trial < 200; trial++) {
        float z[50];
        int64_t V = 1 + (int64_t)ox_rng_below(&rng, 50), best = 0;
        for (int64_t i = 0; i < V; i++)
            z[i] = (float)ox_rng_normal(&rng);
        for (int64_t i = 1; i < V; i++)
            if (z[i] > z[best])
                best = i;
        cr_assert_eq(ox_nn_sample(ctx, z, V, &greedy, NULL), best);
    }
    float tie[4] = { 1, 3, 3, 2 };
    cr_assert_eq(ox_nn_sample(ctx, tie, 4, &greedy, NULL), 1, "ties go to the lower id");
    ox_ctx_free(ctx);
}

Test(oryx_decode, sample_top_k_stays_in_top_k)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(2), draw = ox_rng_seed(77);
    const int64_t V = 40;
    float z[40];
    for (int64_t i = 0; i < V; i++)
        z[i] = (float)(0.3 * ox_rng_normal(&rng));      /* flat logits: outside picks would be frequent */
    for (int64_t k = 1; k <= 8; k++) {
        /* the reference top-k: ids whose logit is beaten by fewer than k others */
        int in_top[40], seen[40] = { 0 };
        for (int64_t i = 0; i < V; i++) {
            int64_t above = 0;
            for (int64_t j = 0; j < V; j++)
                above += z[j] > z[i];
            in_top[i] = above < k;
        }
        ox_nn_sampler s = { .temperature = 2.0, .top_k = k };
        for (int n = 0; n < 2000; n++) {
            int32_t id = ox_nn_sample(ctx, z, V, &s, &draw);
            cr_assert(id >= 0 && id < V && in_top[id], "top-%lld picked id %d outside the top k", (long long)k, id);
            seen[id] = 1;
        }
        int64_t n_seen = 0;
        for (int64_t i = 0; i < V; i++)
            n_seen += seen[i];
        cr_assert_eq(n_seen, k, "top-%lld: %lld distinct ids drawn in 2000 draws", (long long)k, (long long)n_seen);
    }
    ox_ctx_free(ctx);
}

Test(oryx_decode, sample_temperature_matches_softmax)
{
    ox_ctx *ctx = test_ctx();
    ox_rng draw = ox_rng_seed(5);
    float z[4] = { 0.5f, -1.0f, 1.5f, 0.0f };
    const double temp = 0.7;
    double p[4], tot = 0;
    for (int i = 0; i < 4; i++)
        tot += p[i] = exp(z[i] / temp);
    int cnt[4] = { 0 };
    const int N = 40000;
    ox_nn_sampler s = { .temperature = temp, .top_k = 0 };
    for (int n = 0; n < N; n++)
        cnt[ox_nn_sample(ctx, z, 4, &s, &draw)]++;
    /* binomial sd <= sqrt(0.25 / N) = 0.0025: 0.0125 is 5 sd */
    for (int i = 0; i < 4; i++)
        cr_assert_leq(fabs(cnt[i] / (double)N - p[i] / tot), 0.0125, "id %d: %g vs %g", i, cnt[i] / (double)N,
                      p[i] / tot);
    ox_ctx_free(ctx);
}

static int stop_at_5(void *user, int64_t i, const int32_t *tokens, int64_t B)
{
    int *calls = user;
    (*calls)++;
    (void)tokens;
    (void)B;
    return i == 4;
}

Test(oryx_decode, generate_same_seed_same_text)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    small_model(ctx, &m, "oryx-mamba2", 2, 51);
    const int64_t B = 2, N = 30;
    ox_tensor *prompt = random_tokens(ctx, 4, B, 9, m.cfg.vocab);
    ox_tensor *pmap = mixed_map(ctx, 0, B, 9);
    int32_t gen_modes[2] = { OX_NN_ATTN, OX_NN_LIN };
    ox_nn_sampler s = { .temperature = 1.5, .top_k = 20 };
    int32_t out[3][2 * 30];
    uint64_t seeds[3] = { 123, 123, 124 };
    for (int r = 0; r < 3; r++) {
        ox_oryx_decoder d;
        assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, B, 64, 0));
        ox_rng rng = ox_rng_seed(seeds[r]);
        int64_t n = 0;
        assert_ok(ctx, ox_oryx_sample_generate(ctx, &d, prompt, pmap, gen_modes, B, N, &s, &rng, NULL, NULL, out[r],
                                               &n));
        cr_assert_eq(n, N);
        cr_assert_eq(d.pos, 9 + N - 1, "the last sampled token is not stepped");
        ox_oryx_decoder_free(&d);
    }
    cr_assert(memcmp(out[0], out[1], sizeof out[0]) == 0, "same seed, different tokens");
    cr_assert(memcmp(out[0], out[2], sizeof out[0]) != 0, "different seeds, same 60 tokens");

    /* greedy generation = argmax of the logits of the stepped sequence, checked against a fresh decode */
    ox_nn_sampler g = { .temperature = 0, .top_k = 0 };
    ox_oryx_decoder d;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, B, 64, 0));
    int32_t gout[2 * 8];
    int64_t n = 0;
    assert_ok(ctx, ox_oryx_sample_generate(ctx, &d, prompt, pmap, gen_modes, B, 8, &g, NULL, NULL, NULL, gout, &n));
    ox_oryx_decoder e;
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &e, &m, B, 64, 0));
    assert_ok(ctx, ox_oryx_decoder_prefill(ctx, &e, prompt, pmap, NULL));
    for (int64_t i = 0; i < 8; i++) {
        for (int64_t b = 0; b < B; b++) {
            const float *z = ox_tensor_f32(e.logits) + b * m.cfg.vocab;
            int64_t best = 0;
            for (int64_t v = 1; v < m.cfg.vocab; v++)
                if (z[v] > z[best])
                    best = v;
            cr_assert_eq(gout[i * B + b], best, "greedy token %lld of sequence %lld", (long long)i, (long long)b);
        }
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &e, gout + i * B, gen_modes, B));
    }
    /* the callback stops the loop */
    ox_oryx_decoder_reset(&d);
    int calls = 0;
    ox_rng rng = ox_rng_seed(1);
    assert_ok(ctx, ox_oryx_sample_generate(ctx, &d, prompt, pmap, gen_modes, B, N, &s, &rng, stop_at_5, &calls, NULL,
                                           &n));
    cr_assert_eq(n, 5);
    cr_assert_eq(calls, 5);
    cr_assert_eq(d.pos, 9 + 4);
    ox_oryx_decoder_free(&d);
    ox_oryx_decoder_free(&e);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

/* ---- errors ------------------------------------------------------------------------------------------------- */

Test(oryx_decode, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    small_model(ctx, &m, "hybrid-gdn", 4, 61);     /* layers LIN, LIN, LIN, ATTN */
    ox_oryx_decoder d;
    cr_assert_eq(ox_oryx_decoder_init(ctx, &d, &m, 0, 8, 0), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, 1, 3, 0));
    int32_t tok = 64;
    cr_assert_eq(ox_oryx_decoder_step(ctx, &d, &tok, NULL, 0), OX_ERR_ARG, "id out of range");
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_oryx_decoder_drop_kv(ctx, &d, 3), OX_ERR_ARG, "an attention-only layer keeps its cache");
    ox_ctx_clear_error(ctx);
    assert_ok(ctx, ox_oryx_decoder_drop_kv(ctx, &d, -1));    /* drops nothing here: no ORYX layer */
    tok = 1;
    for (int i = 0; i < 3; i++)
        assert_ok(ctx, ox_oryx_decoder_step(ctx, &d, &tok, NULL, 0));
    cr_assert_eq(ox_oryx_decoder_step(ctx, &d, &tok, NULL, 0), OX_ERR_STATE, "the cache of layer 3 is full");
    cr_assert_eq(d.pos, 3);
    ox_ctx_clear_error(ctx);
    ox_oryx_decoder_free(&d);
    ox_oryx_model_free(&m);

    small_model(ctx, &m, "oryx-gdn", 2, 62);
    assert_ok(ctx, ox_oryx_decoder_init(ctx, &d, &m, 2, 8, 0));
    int32_t toks[2] = { 1, 2 }, bad[2] = { 0, 2 };
    cr_assert_eq(ox_oryx_decoder_step(ctx, &d, toks, NULL, 0), OX_ERR_ARG, "oryx layers need modes");
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_oryx_decoder_step(ctx, &d, toks, bad, 2), OX_ERR_ARG, "mode 2");
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_oryx_decoder_step(ctx, &d, toks, bad, 3), OX_ERR_ARG, "3 modes for B = 2, L = 2");
    ox_ctx_clear_error(ctx);
    cr_assert_eq(d.pos, 0);
    float z[3] = { 0, 1, 2 };
    ox_nn_sampler s = { .temperature = 1.0, .top_k = 0 };
    cr_assert_eq(ox_nn_sample(ctx, z, 3, &s, NULL), -1, "sampling needs an rng");
    ox_ctx_clear_error(ctx);
    z[1] = NAN;
    ox_rng rng = ox_rng_seed(1);
    cr_assert_eq(ox_nn_sample(ctx, z, 3, &s, &rng), -1, "NaN logit");
    ox_ctx_clear_error(ctx);
    ox_oryx_decoder_free(&d);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}
