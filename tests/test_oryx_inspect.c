/* test_oryx_inspect.c - ox_oryx_attention_probs (models/oryx/inspect.h): the probabilities of one head
 * must be a causal softmax at the rows attention computes (each such row sums to 1, nothing above the
 * diagonal), all zero at LIN rows, and P V must reproduce that head's attention output as the model's own
 * mixer computes it (the trace's o at ATTN rows, from the blocked flash kernel). The layer input is built
 * here from the public modules (embedding, the layer's block nn/block.h with this test's own choice of mode
 * map per layer, then RMSNorm and the traced mixer), so a P from the wrong q or k, the wrong layer input
 * (a layer skipped or given the wrong map), or the wrong head fails the P V check. Weights are random of
 * order one so the softmax rows are far from uniform. */
#include "test_util.h"

#include "models/oryx/inspect.h"
#include "models/oryx/modes.h"

#include <string.h>

static ox_oryx_model tiny_model(ox_ctx *ctx, const char *preset, int64_t L)
{
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, preset, L, &c));
    c.d_model = 32;
    c.n_heads = 2;
    c.d_k = 16;
    c.d_v = 8;
    c.mlp_hidden = 64;
    ox_oryx_model m;
    ox_rng rng = ox_rng_seed(7);
    assert_ok(ctx, ox_oryx_model_init(ctx, &m, &c, &rng));
    for (int i = 0; i < m.params.n; i++) {   /* projections of order one: peaky, distinct softmax rows */
        ox_tensor *t = m.params.items[i].t;
        if (t->ndim == 2 && strstr(m.params.items[i].name, "proj"))
            assert_ok(ctx, ox_tensor_fill_normal(ctx, t, &rng, 0.0, 1.0 / sqrt((double)t->shape[1])));
    }
    return m;
}

/* Checks P [T, T] of (layer, head) against the mixer output o computed here. map: I32 [1, T] or NULL. */
static void check_probs(ox_ctx *ctx, const ox_oryx_model *m, const ox_tensor *tokens, const ox_tensor *map,
                        int64_t layer, int64_t head)
{
    int64_t T = tokens->shape[1], dv = m->cfg.d_v, HV = m->cfg.n_heads * dv;
    ox_tensor *rows;
    ox_tensor *P = ox_oryx_attention_probs(ctx, m, tokens, map, layer, head, &rows);
    cr_assert_not_null(P, "%s", ox_ctx_message(ctx));
    cr_assert_eq(P->ndim, 2);
    cr_assert_eq(P->shape[0], T);
    cr_assert_eq(P->shape[1], T);

    /* the layer's own computation, from the public modules */
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *h = ox_nn_embedding_forward(ctx, &m->embed, tokens);
    for (int64_t l = 0; l < layer; l++)
        h = ox_nn_block_forward(ctx, &m->layers[l], h, m->cfg.kinds[l] == OX_ORYX_KIND_ORYX ? map : NULL, NULL);
    ox_nn_mixer_trace tr;
    const ox_tensor *ml = m->cfg.kinds[layer] == OX_ORYX_KIND_ORYX ? map : NULL;
    cr_assert_not_null(ox_nn_mixer_forward(ctx, &m->layers[layer].mixer,
                                           ox_nn_rmsnorm_forward(ctx, &m->layers[layer].norm1, h), ml, &tr),
                       "%s", ox_ctx_message(ctx));
    ox_ag_set_grad_enabled(ctx, prev);
    ox_tensor *v = ox_tensor_contiguous(ctx, tr.v), *o = ox_tensor_contiguous(ctx, tr.o);
    const float *p = ox_tensor_f32(P);

    int64_t n_attn = 0;
    double max_ref = 0, max_err = 0, max_p_off = 0;
    for (int64_t t = 0; t < T; t++) {
        int attn = !ml || ox_tensor_i32(ml)[t * ml->stride[1]];
        cr_assert_eq(ox_tensor_i32(rows)[t], attn, "row %lld computed flag", (long long)t);
        double sum = 0;
        for (int64_t s = 0; s < T; s++) {
            double x = p[t * T + s];
            if (s > t || !attn)
                cr_assert_eq(x, 0.0, "P[%lld, %lld] = %g must be 0", (long long)t, (long long)s, x);
            cr_assert(x >= 0 && x <= 1);
            sum += x;
            if (s < t && x > max_p_off)
                max_p_off = x;
        }
        if (!attn)
            continue;
        n_attn++;
        /* float probabilities, each rounded once from double: the sum is 1 to a few ulps of T terms */
        cr_assert(fabs(sum - 1) < 1e-5, "row %lld sums to %.9f", (long long)t, sum);
        for (int64_t j = 0; j < dv; j++) {
            double pv = 0;
            for (int64_t s = 0; s <= t; s++)
                pv += p[t * T + s] * (double)ox_tensor_f32(v)[s * HV + head * dv + j];
            double ref = ox_tensor_f32(o)[t * HV + head * dv + j];
            max_err = fabs(pv - ref) > max_err ? fabs(pv - ref) : max_err;
            max_ref = fabs(ref) > max_ref ? fabs(ref) : max_ref;
        }
    }
    cr_assert(n_attn > 0);
    cr_assert(max_p_off > 0.01, "some row attends to an earlier key (%g)", max_p_off);
    /* o comes from the fp32 flash kernel (online softmax, sums over <= T = 40 keys): its relative error is
     * ~1e-6; a P from the wrong q, k, layer input or head is off by O(1). */
    cr_assert(max_err <= 2e-5 * max_ref, "P V vs the mixer's o: max error %g (max |o| %g)", max_err, max_ref);
}

static ox_tensor *seq_tokens(ox_ctx *ctx, int64_t T)
{
    ox_tensor *tok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, T));
    const char *text = "First Citizen: Before we proceed any further, hear me speak.";
    for (int64_t t = 0; t < T; t++)
        ox_tensor_i32(tok)[t] = (uint8_t)text[t % 60];
    return tok;
}

Test(oryx_inspect, oryx_layers_mixed_map)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m = tiny_model(ctx, "oryx-gdn", 2);
    int64_t T = 40;
    ox_tensor *tok = seq_tokens(ctx, T);
    ox_tensor *map = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, T));
    for (int64_t t = 0; t < T; t++)
        ox_tensor_i32(map)[t] = (t % 3 != 1);   /* ATTN except every third position */
    for (int64_t l = 0; l < 2; l++)
        for (int64_t h = 0; h < 2; h++)
            check_probs(ctx, &m, tok, map, l, h);
    /* an all-LIN map: attention computes no row */
    ox_tensor *rows;
    ox_tensor *P = ox_oryx_attention_probs(ctx, &m, tok, ox_oryx_modes_fill(ctx, 1, T, OX_NN_LIN), 1, 0, &rows);
    cr_assert_not_null(P, "%s", ox_ctx_message(ctx));
    for (int64_t i = 0; i < T * T; i++)
        cr_assert_eq(ox_tensor_f32(P)[i], 0.0f);
    for (int64_t t = 0; t < T; t++)
        cr_assert_eq(ox_tensor_i32(rows)[t], 0);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

Test(oryx_inspect, attention_layers_and_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m = tiny_model(ctx, "transformer", 2);
    ox_tensor *tok = seq_tokens(ctx, 33);
    check_probs(ctx, &m, tok, NULL, 1, 1);
    ox_oryx_model_free(&m);

    /* hybrid-gdn with 4 layers: layers 0-2 are LIN (no attention), layer 3 ATTN */
    m = tiny_model(ctx, "hybrid-gdn", 4);
    check_probs(ctx, &m, tok, NULL, 3, 0);
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, tok, NULL, 1, 0, NULL));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "no attention"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, tok, NULL, 3, 2, NULL));
    cr_assert(strstr(ox_ctx_message(ctx), "head 2"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, tok, NULL, 4, 0, NULL));
    ox_ctx_clear_error(ctx);
    ox_tensor *bad = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(2, 5));
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, bad, NULL, 3, 0, NULL));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    ox_ctx_clear_error(ctx);
    ox_oryx_model_free(&m);

    /* an oryx model needs a map of the right shape */
    m = tiny_model(ctx, "oryx-mamba2", 2);
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, tok, NULL, 0, 0, NULL));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_oryx_attention_probs(ctx, &m, tok, ox_oryx_modes_fill(ctx, 1, 32, 1), 0, 0, NULL));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_SHAPE);
    ox_ctx_clear_error(ctx);
    check_probs(ctx, &m, tok, ox_oryx_modes_fill(ctx, 1, 33, OX_NN_ATTN), 1, 0);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}
