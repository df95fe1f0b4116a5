/* test_nn_block.c - the pre-norm residual layer (nn/block.h) in its two forms:
 *   - step == parallel: ox_nn_block_step on token t, from the empty state, equals row t of ox_nn_block_forward
 *     over the whole sequence (rel <= 1e-4, MODELS 11 item 14), for attention, GDN and Mamba-2 alone and for
 *     the two-core (Oryx) mixers with all-ATTN, all-LIN and mixed maps. Both sides are fp32 runs of the same
 *     code with different summation orders (chunked vs recurrent linear core, blocked vs one-row attention,
 *     GEMM vs dot products), whose difference is ~1e-6; a wrong term or a stale state gives 1e-2 or more;
 *   - prefill: the parallel form with a decode state returns the same rows bit for bit as without one (the
 *     state is a by-product of the same pass), and leaves the state stepping leaves: rings and KV cache hold
 *     the same projections and rotations (rel <= 1e-5: GEMM vs dot order only), the linear state comes from
 *     the chunked form vs the recurrence (rel <= 1e-4, MODELS 11 item 4); steps after the prefill continue
 *     the parallel rows (rel <= 1e-4);
 *   - the parallel form's gradient in h passes the central finite-difference gradcheck (default fp32
 *     tolerances with eps = 1e-2, autograd/gradcheck.h; see the test) for a two-core mixer with a mixed map;
 *   - registration order and names, argument errors.
 * Sizes: D = 32, H = 2, dk = 16, dv = 8, F = 64, B = 2, T = 70 (crosses the 64-token chunk of the linear
 * cores and the attention key blocks; 40 under ASan), order-one random weights so that every parameter
 * visibly moves the output. */
#include "test_util.h"
#include "nn/block.h"

#include <stdio.h>
#include <string.h>

enum { D = 32, H = 2, DK = 16, DV = 8, F = 64, BATCH = 2 };

static int64_t seq_len(void) { return test_small() ? 40 : 70; }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* a block with cores `cores` and order-one weights (A_log, dt_bias keep their init) */
static void make_block(ox_ctx *ctx, ox_nn_params *ps, ox_nn_block *b, unsigned cores, uint64_t seed)
{
    ox_nn_params_init(ps);
    ox_rng rng = ox_rng_seed(seed);
    ox_nn_mixer_config mc = {
        .d_model = D, .n_heads = H, .d_k = DK, .d_v = DV, .cores = cores,
        .conv_act = (cores & OX_NN_CORE_MAMBA2) || cores == OX_NN_CORE_ATTN ? OX_NN_ACT_NONE : OX_NN_ACT_SILU,
        .n_layers = 2,
    };
    assert_ok(ctx, ox_nn_block_init(ctx, ps, b, "layers.1", &mc, F, &rng));
    for (int i = 0; i < ps->n; i++) {
        const char *name = ps->items[i].name;
        ox_tensor *t = ps->items[i].t;
        if (ends_with(name, "A_log") || ends_with(name, "dt_bias"))
            continue;
        if (ends_with(name, "conv.weight"))
            assert_ok(ctx, ox_tensor_fill_uniform(ctx, t, &rng, -0.5, 0.5));
        else if (t->ndim == 1)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 1.0, 0.2));
        else
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 0.0, 1.0 / sqrt((double)t->shape[1])));
    }
}

/* map kinds: 0 mixed (runs, single-token switches, different per sequence), 1 all ATTN, 2 all LIN */
static ox_tensor *make_map(ox_ctx *ctx, int which, int64_t T)
{
    ox_tensor *m = ox_tensor_empty(ctx, OX_I32, OX_DIMS(BATCH, T));
    for (int64_t b = 0; b < BATCH; b++)
        for (int64_t t = 0; t < T; t++) {
            int v = (int)(((t + 3 * b) / (7 + 4 * b)) % 2);
            if (t % 13 == 6)
                v = !v;
            ox_tensor_i32(m)[b * T + t] = which == 0 ? v : which == 1 ? OX_NN_ATTN : OX_NN_LIN;
        }
    return m;
}

/* steps tokens t0 .. T-1 of h [B, T, D] through st; returns the outputs [B, T - t0, D] */
static ox_tensor *step_rows(ox_ctx *ctx, const ox_nn_block *blk, ox_nn_mixer_state *st, ox_tensor *h,
                            const ox_tensor *map, int64_t t0)
{
    const int64_t T = h->shape[1];
    ox_tensor *out = ox_tensor_empty(ctx, OX_F32, OX_DIMS(BATCH, T - t0, D));
    int32_t md[BATCH];
    for (int64_t t = t0; t < T; t++) {
        ox_tensor *ht = ox_tensor_contiguous(ctx, ox_tensor_view_narrow(ctx, h, 1, t, 1));     /* [B, 1, D] */
        for (int64_t b = 0; b < BATCH; b++)
            md[b] = ox_tensor_i32(map)[b * T + t];
        ox_tensor *y = ox_nn_block_step(ctx, blk, st, ht, md, t);
        cr_assert_not_null(y, "step %lld: %s", (long long)t, ox_ctx_message(ctx));
        assert_ok(ctx, ox_tensor_copy(ctx, ox_tensor_view_narrow(ctx, out, 1, t - t0, 1), y));
    }
    return out;
}

static void state_eq(ox_ctx *ctx, const char *what, const ox_nn_mixer_state *a, const ox_nn_mixer_state *b,
                     int64_t T)
{
    char w[160];
    snprintf(w, sizeof w, "%s ring_k", what);
    assert_rel(ctx, "", w, a->ring_k, b->ring_k, 1e-5);
    snprintf(w, sizeof w, "%s ring_v", what);
    assert_rel(ctx, "", w, a->ring_v, b->ring_v, 1e-5);
    if (a->has_lin) {
        snprintf(w, sizeof w, "%s ring_q", what);
        assert_rel(ctx, "", w, a->ring_q, b->ring_q, 1e-5);
        snprintf(w, sizeof w, "%s linear state", what);
        assert_rel(ctx, "", w, a->state, b->state, 1e-4);
    }
    if (a->has_attn) {
        cr_assert_eq(a->kv.len, T, "%s: prefill cache holds %lld positions", what, (long long)a->kv.len);
        cr_assert_eq(b->kv.len, T, "%s: stepped cache holds %lld positions", what, (long long)b->kv.len);
        snprintf(w, sizeof w, "%s cached keys", what);
        assert_rel(ctx, "", w, ox_tensor_view_narrow(ctx, a->kv.k, 2, 0, T), ox_tensor_view_narrow(ctx, b->kv.k, 2, 0, T),
                   1e-5);
        snprintf(w, sizeof w, "%s cached values", what);
        assert_rel(ctx, "", w, ox_tensor_view_narrow(ctx, a->kv.v, 2, 0, T), ox_tensor_view_narrow(ctx, b->kv.v, 2, 0, T),
                   1e-5);
    }
}

static void step_vs_parallel(unsigned cores, const char *name)
{
    ox_ctx *ctx = test_ctx();
    const int64_t T = seq_len(), P = 33;        /* a prefill ending inside a run of the mixed map */
    ox_nn_params ps;
    ox_nn_block blk;
    make_block(ctx, &ps, &blk, cores, 7);
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *h = ox_tensor_randn(ctx, &rng, OX_DIMS(BATCH, T, D), 0.0, 1.0);
    int two = (cores & OX_NN_CORE_ATTN) && cores != OX_NN_CORE_ATTN;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    for (int which = 0; which < (two ? 3 : 1); which++) {
        char what[128];
        snprintf(what, sizeof what, "%s, %s map", name, which == 0 ? "mixed" : which == 1 ? "all-ATTN" : "all-LIN");
        ox_tensor *map = make_map(ctx, which, T);
        ox_tensor *ref = ox_nn_block_forward(ctx, &blk, h, two ? map : NULL, NULL);
        cr_assert_not_null(ref, "%s: %s", what, ox_ctx_message(ctx));
        /* every token stepped from the empty state */
        ox_nn_mixer_state seq, par;
        assert_ok(ctx, ox_nn_mixer_state_init(ctx, &seq, &blk.mixer, BATCH, T, 1));
        assert_rel(ctx, "", what, step_rows(ctx, &blk, &seq, h, map, 0), ref, 1e-4);
        /* a prefill of P tokens, then steps */
        assert_ok(ctx, ox_nn_mixer_state_init(ctx, &par, &blk.mixer, BATCH, T, 1));
        ox_tensor *y = ox_nn_block_forward(ctx, &blk, ox_tensor_view_narrow(ctx, h, 1, 0, P),
                                           two ? ox_tensor_view_narrow(ctx, map, 1, 0, P) : NULL, &par);
        ox_tensor *y0 = ox_nn_block_forward(ctx, &blk, ox_tensor_view_narrow(ctx, h, 1, 0, P),
                                            two ? ox_tensor_view_narrow(ctx, map, 1, 0, P) : NULL, NULL);
        cr_assert_not_null(y, "%s: prefill: %s", what, ox_ctx_message(ctx));
        cr_assert_not_null(y0);
        cr_assert(memcmp(ox_tensor_f32(y), ox_tensor_f32(y0), sizeof(float) * BATCH * P * D) == 0,
                  "%s: the prefill's rows differ from the forward's", what);
        ox_nn_mixer_state ref_st;      /* the state after stepping the same P tokens */
        assert_ok(ctx, ox_nn_mixer_state_init(ctx, &ref_st, &blk.mixer, BATCH, T, 1));
        step_rows(ctx, &blk, &ref_st, ox_tensor_view_narrow(ctx, h, 1, 0, P), ox_tensor_view_narrow(ctx, map, 1, 0, P),
                  0);
        state_eq(ctx, what, &par, &ref_st, P);
        assert_rel(ctx, "", what, step_rows(ctx, &blk, &par, h, map, P), ox_tensor_view_narrow(ctx, ref, 1, P, T - P),
                   1e-4);
        ox_nn_mixer_state_free(&seq);
        ox_nn_mixer_state_free(&par);
        ox_nn_mixer_state_free(&ref_st);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(nn_block, step_eq_parallel_attn) { step_vs_parallel(OX_NN_CORE_ATTN, "attention"); }
Test(nn_block, step_eq_parallel_gdn) { step_vs_parallel(OX_NN_CORE_GDN, "GDN"); }
Test(nn_block, step_eq_parallel_mamba2) { step_vs_parallel(OX_NN_CORE_MAMBA2, "Mamba-2"); }
Test(nn_block, step_eq_parallel_attn_gdn) { step_vs_parallel(OX_NN_CORE_ATTN | OX_NN_CORE_GDN, "attention + GDN"); }
Test(nn_block, step_eq_parallel_attn_mamba2)
{
    step_vs_parallel(OX_NN_CORE_ATTN | OX_NN_CORE_MAMBA2, "attention + Mamba-2");
}

/* ---- gradient ----------------------------------------------------------------------------------------- */

typedef struct grad_arg {
    const ox_nn_block *blk;
    const ox_tensor *map;
} grad_arg;

static ox_tensor *block_fn(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    const grad_arg *a = arg;
    return ox_nn_block_forward(ctx, a->blk, in[0], a->map, NULL);
}

Test(nn_block, gradcheck_parallel_form)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_block blk;
    make_block(ctx, &ps, &blk, OX_NN_CORE_ATTN | OX_NN_CORE_GDN, 19);
    const int64_t T = 9;
    ox_rng rng = ox_rng_seed(4);
    ox_tensor *h = test_leaf(ctx, &rng, OX_DIMS(BATCH, T, D), 1.0);
    grad_arg arg = { &blk, make_map(ctx, 0, T) };
    /* eps = 1e-2 instead of 1e-3: L sums B*T*D = 576 outputs of ~20 fp32 ops each (|L| ~ 30), so its rounding
     * (~1e-7 |L|) over 2 eps is ~2e-3 at eps = 1e-3, half the tolerance (it fails by that much); at 1e-2 it is
     * ~2e-4, while the truncation error eps^2 / 6 * L''' stays ~1e-5 for these order-one inputs */
    ox_gradcheck_opts o = ox_gradcheck_defaults();
    o.eps = 1e-2;
    assert_gradcheck(ctx, block_fn, &arg, 1, (ox_tensor *[]){ h }, &o);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

/* ---- parameters and errors ------------------------------------------------------------------------------ */

Test(nn_block, registration_order_and_names)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_block blk;
    make_block(ctx, &ps, &blk, OX_NN_CORE_ATTN | OX_NN_CORE_MAMBA2, 1);
    cr_assert_str_eq(ps.items[0].name, "layers.1.norm1.weight");
    cr_assert_str_eq(ps.items[1].name, "layers.1.mixer.k_proj.weight");
    cr_assert_str_eq(ps.items[ps.n - 4].name, "layers.1.norm2.weight");
    cr_assert_str_eq(ps.items[ps.n - 1].name, "layers.1.mlp.down_proj.weight");
    cr_assert_eq(blk.norm1.weight, ps.items[0].t);
    cr_assert_eq(blk.mlp.down.weight, ps.items[ps.n - 1].t);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}

Test(nn_block, errors)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params ps;
    ox_nn_block blk;
    make_block(ctx, &ps, &blk, OX_NN_CORE_ATTN | OX_NN_CORE_GDN, 2);
    const int64_t T = 5;
    ox_tensor *h = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(BATCH, T, D));
    ox_tensor *attn = make_map(ctx, 1, T);
    /* a prefill whose map asks for ATTN in a state without a KV cache */
    ox_nn_mixer_state st;
    assert_ok(ctx, ox_nn_mixer_state_init(ctx, &st, &blk.mixer, BATCH, T, 0));
    cr_assert_null(st.kv.k);
    cr_assert_null(ox_nn_block_forward(ctx, &blk, h, attn, &st));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_STATE, "%s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "no KV cache"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_nn_mixer_state_free(&st);
    /* a prefill longer than the cache */
    assert_ok(ctx, ox_nn_mixer_state_init(ctx, &st, &blk.mixer, BATCH, T - 1, 1));
    cr_assert_null(ox_nn_block_forward(ctx, &blk, h, attn, &st));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_STATE, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_nn_mixer_state_free(&st);
    /* a second prefill into a state that holds positions */
    assert_ok(ctx, ox_nn_mixer_state_init(ctx, &st, &blk.mixer, BATCH, 2 * T, 1));
    cr_assert_not_null(ox_nn_block_forward(ctx, &blk, h, attn, &st), "%s", ox_ctx_message(ctx));
    cr_assert_null(ox_nn_block_forward(ctx, &blk, h, attn, &st));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_STATE, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    /* a step with more than one row, or without modes for a two-core mixer */
    int32_t md[BATCH] = { OX_NN_LIN, OX_NN_ATTN };
    cr_assert_null(ox_nn_block_step(ctx, &blk, &st, h, md, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_nn_block_step(ctx, &blk, &st, ox_tensor_zeros(ctx, OX_F32, OX_DIMS(BATCH, 1, D)), NULL, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE, "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_nn_mixer_state_free(&st);
    /* a prefix that does not fit a parameter name */
    char longp[300];     /* longer than a parameter name may be (OX_NN_NAME_MAX, nn/util.h) */
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    ox_nn_block b2;
    ox_rng rng = ox_rng_seed(1);
    cr_assert_eq(ox_nn_block_init(ctx, &ps, &b2, longp, &blk.mixer.cfg, F, &rng), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
}
