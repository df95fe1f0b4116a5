/* test_oryx_report.c - the parameter report (MODELS.md 7.6) and the configuration (presets, validation,
 * metadata round trip). Counts are exact integers: the expected values are the worked example of MODELS
 * 7.6 (D=256, L=4, H=4, dk=dv=64, V=256, F=704), written out here by hand from that text. */
#include "test_util.h"

#include "models/oryx/report.h"

#include <stdio.h>
#include <string.h>

struct expect {
    const char *preset;
    int64_t total, shared, attn, gdn, mamba2;
};

/* MODELS 7.6: shared 3,288,320 in every preset; per layer attn 65,536, gdn 68,616, mamba2 67,596 */
static const struct expect expected[] = {
    { "transformer", 3550464, 3288320, 4 * 65536, 0, 0 },
    { "gdn", 3562784, 3288320, 0, 4 * 68616, 0 },
    { "mamba2", 3558704, 3288320, 0, 0, 4 * 67596 },
    { "hybrid-gdn", 3559704, 3288320, 65536, 3 * 68616, 0 },
    { "hybrid-mamba2", 3288320 + 65536 + 3 * 67596, 3288320, 65536, 0, 3 * 67596 },
    { "oryx-gdn", 3824928, 3288320, 4 * 65536, 4 * 68616, 0 },
    { "oryx-mamba2", 3820848, 3288320, 4 * 65536, 0, 4 * 67596 },
};

static void assert_counts(const ox_oryx_report *r, const struct expect *e, const char *how)
{
    cr_assert_eq(r->total, e->total, "%s %s: total %lld != %lld", e->preset, how, (long long)r->total,
                 (long long)e->total);
    cr_assert_eq(r->shared, e->shared, "%s %s: shared %lld", e->preset, how, (long long)r->shared);
    cr_assert_eq(r->attn, e->attn, "%s %s: attn %lld", e->preset, how, (long long)r->attn);
    cr_assert_eq(r->gdn, e->gdn, "%s %s: gdn %lld", e->preset, how, (long long)r->gdn);
    cr_assert_eq(r->mamba2, e->mamba2, "%s %s: mamba2 %lld", e->preset, how, (long long)r->mamba2);
}

Test(oryx_report, worked_example_counts_from_config)
{
    ox_ctx *ctx = test_ctx();
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        ox_oryx_config cfg;
        assert_ok(ctx, ox_oryx_config_preset(ctx, expected[i].preset, 4, &cfg));
        ox_oryx_report r;
        ox_oryx_report_config(&cfg, &r);
        assert_counts(&r, &expected[i], "config");
    }
    ox_ctx_free(ctx);
}

/* The fractions printed in MODELS 7.6, to their 4 printed digits (|x - printed| <= 5e-5). */
Test(oryx_report, worked_example_fractions)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_config cfg;
    ox_oryx_report r;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-gdn", 4, &cfg));
    ox_oryx_report_config(&cfg, &r);
    cr_assert_leq(fabs(r.r_attn - 0.9262), 5e-5, "%f", r.r_attn);
    cr_assert_leq(fabs(r.r_gdn - 0.9230), 5e-5, "%f", r.r_gdn);
    cr_assert_eq(r.r_mamba2, 0.0);
    cr_assert_leq(fabs(r.whole - 0.8597), 5e-5, "%f", r.whole);
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-mamba2", 4, &cfg));
    ox_oryx_report_config(&cfg, &r);
    cr_assert_leq(fabs(r.r_attn - 0.9262), 5e-5, "%f", r.r_attn);
    cr_assert_leq(fabs(r.r_mamba2 - 0.9240), 5e-5, "%f", r.r_mamba2);
    cr_assert_leq(fabs(r.whole - 0.8606), 5e-5, "%f", r.whole);
    /* the requirement of the contract: r_m >= 0.90 for every mode of the default Oryx presets */
    cr_assert_geq(r.r_attn, 0.90);
    cr_assert_geq(r.r_mamba2, 0.90);
    ox_ctx_free(ctx);
}

/* The report from a real model's parameter list equals the formula, for every preset: at the default size
 * (the exact worked-example numbers) outside ASan, and at a small odd size with L = 5 (two hybrid periods
 * started) everywhere. */
Test(oryx_report, model_params_match_formula)
{
    ox_ctx *ctx = test_ctx();
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        ox_oryx_config cfg;
        ox_rng rng = ox_rng_seed(3);
        ox_oryx_model m;
        ox_oryx_report a, b;
        if (!test_small()) {
            assert_ok(ctx, ox_oryx_config_preset(ctx, expected[i].preset, 4, &cfg));
            assert_ok(ctx, ox_oryx_model_init(ctx, &m, &cfg, &rng));
            ox_oryx_report_model(&m, &a);
            assert_counts(&a, &expected[i], "model");
            cr_assert_eq(a.total, ox_nn_params_numel(&m.params));
            ox_oryx_model_free(&m);
        }
        assert_ok(ctx, ox_oryx_config_preset(ctx, expected[i].preset, 5, &cfg));
        cfg.d_model = 24;
        cfg.n_heads = 3;
        cfg.d_k = 6;
        cfg.d_v = 5;
        cfg.vocab = 50;
        cfg.mlp_hidden = 40;
        assert_ok(ctx, ox_oryx_model_init(ctx, &m, &cfg, &rng));
        ox_oryx_report_model(&m, &a);
        ox_oryx_report_config(&cfg, &b);
        cr_assert_eq(a.total, ox_nn_params_numel(&m.params));
        cr_assert_eq(a.total, b.total, "%s", expected[i].preset);
        cr_assert_eq(a.shared, b.shared, "%s", expected[i].preset);
        cr_assert_eq(a.attn, b.attn, "%s", expected[i].preset);
        cr_assert_eq(a.gdn, b.gdn, "%s", expected[i].preset);
        cr_assert_eq(a.mamba2, b.mamba2, "%s", expected[i].preset);
        ox_oryx_model_free(&m);
    }
    ox_ctx_free(ctx);
}

Test(oryx_report, format_writes_the_numbers)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_config cfg;
    ox_oryx_report r;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-gdn", 4, &cfg));
    ox_oryx_report_config(&cfg, &r);
    char buf[512];
    int n = ox_oryx_report_format(&r, buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_assert_lt(n, (int)sizeof buf);
    cr_assert_not_null(strstr(buf, "3824928"), "%s", buf);
    cr_assert_not_null(strstr(buf, "3288320"), "%s", buf);
    cr_assert_not_null(strstr(buf, "0.9262"), "%s", buf);
    cr_assert_not_null(strstr(buf, "0.9230"), "%s", buf);
    cr_assert_null(strstr(buf, "mamba2"), "%s", buf);
    char small[16];     /* truncation: NUL-terminated, full length returned */
    cr_assert_eq(ox_oryx_report_format(&r, small, sizeof small), n);
    cr_assert_eq(strlen(small), sizeof small - 1);
    ox_ctx_free(ctx);
}

/* ---- configuration ---------------------------------------------------------------------------------- */

Test(oryx_config, presets)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "hybrid-gdn", 8, &c));
    for (int l = 0; l < 8; l++)
        cr_assert_eq(c.kinds[l], l % 4 == 3 ? OX_ORYX_KIND_ATTN : OX_ORYX_KIND_LIN, "layer %d", l);
    cr_assert_eq(c.conv_act, OX_NN_ACT_SILU);
    cr_assert_str_eq(ox_oryx_config_arch(&c), "hybrid");
    assert_ok(ctx, ox_oryx_config_preset(ctx, "hybrid-mamba2", 5, &c));
    for (int l = 0; l < 5; l++)
        cr_assert_eq(c.kinds[l], l == 3 ? OX_ORYX_KIND_ATTN : OX_ORYX_KIND_LIN, "layer %d", l);
    cr_assert_eq(c.linear, OX_ORYX_LINEAR_MAMBA2);
    cr_assert_eq(c.conv_act, OX_NN_ACT_NONE);
    assert_ok(ctx, ox_oryx_config_preset(ctx, "hybrid-gdn", 2, &c));     /* L < 4: no layer has l % 4 == 3 */
    cr_assert_eq(c.kinds[0], OX_ORYX_KIND_LIN);
    cr_assert_eq(c.kinds[1], OX_ORYX_KIND_LIN);
    cr_assert_str_eq(ox_oryx_config_arch(&c), "gdn");
    assert_ok(ctx, ox_oryx_config_preset(ctx, "transformer", 0, &c));
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(c.mlp_hidden, 704);
    cr_assert_eq(c.d_model, 256);
    cr_assert_eq(c.linear, OX_ORYX_LINEAR_NONE);
    cr_assert_str_eq(ox_oryx_config_arch(&c), "transformer");
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-mamba2", 0, &c));
    cr_assert_str_eq(ox_oryx_config_arch(&c), "oryx");
    assert_ok(ctx, ox_oryx_config_preset(ctx, "gdn", 0, &c));
    cr_assert_str_eq(ox_oryx_config_arch(&c), "gdn");
    cr_assert_eq(ox_oryx_default_mlp_hidden(32), 96);
    cr_assert_eq(ox_oryx_config_preset(ctx, "retnet", 0, &c), OX_ERR_ARG);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "retnet"));
    ox_ctx_free(ctx);
}

/* Each invalid field gives OX_ERR_ARG with a message naming it. */
Test(oryx_config, validation_names_the_field)
{
    ox_ctx *ctx = test_ctx();
    struct { const char *needle; int field; int64_t value; } cases[] = {
        { "n_heads", 0, 0 }, { "d_k", 1, 7 }, { "mlp_hidden", 2, 0 }, { "n_layers", 3, 0 }, { "d_model", 4, -1 },
        { "vocab_size", 5, 0 }, { "d_v", 6, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ox_oryx_config c;
        assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-gdn", 2, &c));
        int64_t *f[] = { &c.n_heads, &c.d_k, &c.mlp_hidden, &c.n_layers, &c.d_model, &c.vocab, &c.d_v };
        *f[cases[i].field] = cases[i].value;
        cr_assert_eq(ox_oryx_config_validate(ctx, &c), OX_ERR_ARG, "%s", cases[i].needle);
        cr_assert_not_null(strstr(ox_ctx_message(ctx), cases[i].needle), "%s", ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
    }
    ox_oryx_config c;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-gdn", 2, &c));
    c.linear = OX_ORYX_LINEAR_NONE;      /* oryx layers without a linear mixer */
    cr_assert_eq(ox_oryx_config_validate(ctx, &c), OX_ERR_ARG);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "linear mixer"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

Test(oryx_config, metadata_round_trip_and_errors)
{
    ox_ctx *ctx = test_ctx();
    const char *presets[] = { "transformer", "gdn",      "mamba2",     "hybrid-gdn",
                              "hybrid-mamba2", "oryx-gdn", "oryx-mamba2" };
    for (int i = 0; i < 7; i++) {
        ox_oryx_config c, back;
        assert_ok(ctx, ox_oryx_config_preset(ctx, presets[i], 6, &c));
        c.d_v = 48;
        ox_oryx_meta meta;
        assert_ok(ctx, ox_oryx_config_to_meta(ctx, &c, &meta));
        cr_assert_eq(meta.n, 16, "the 16 keys of MODELS 12.3 (a 17th, logit_bias_scale, only with the logit bias)");
        assert_ok(ctx, ox_oryx_config_from_meta(ctx, meta.kv, meta.n, &back));
        cr_assert_eq(memcmp(&c, &back, sizeof c), 0, "%s", presets[i]);
    }
    /* the strings of MODELS 12.3 for hybrid-gdn at L = 4 */
    ox_oryx_config c;
    ox_oryx_meta meta;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "hybrid-gdn", 4, &c));
    assert_ok(ctx, ox_oryx_config_to_meta(ctx, &c, &meta));
    const char *want[][2] = { { "format_version", "1" }, { "arch", "hybrid" }, { "linear_mixer", "gdn" },
                              { "layer_kinds", "lin,lin,lin,attn" }, { "conv_act", "silu" }, { "d_model", "256" },
                              { "n_layers", "4" }, { "mlp_hidden", "704" }, { "chunk_size", "64" },
                              { "norm_eps", "1e-6" } };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        for (int j = 0; j < meta.n; j++)
            if (strcmp(meta.kv[j].key, want[i][0]) == 0) {
                cr_assert_str_eq(meta.kv[j].value, want[i][1], "%s", want[i][0]);
                found = 1;
            }
        cr_assert(found, "%s", want[i][0]);
    }
    /* malformed values: each an OX_ERR_FORMAT naming the key */
    const char *bad[][2] = { { "arch", "oryx" },
                             { "layer_kinds", "lin,lin,attn" },
                             { "layer_kinds", "lin,lin,lin,mlp" },
                             { "d_k", "sixty" }, { "n_heads", "0" }, { "chunk_size", "128" }, { "format_version", "2" },
                             { "linear_mixer", "rwkv" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ox_st_kv kv[OX_ORYX_META_KEYS];
        memcpy(kv, meta.kv, sizeof kv);
        for (int j = 0; j < meta.n; j++)
            if (strcmp(kv[j].key, bad[i][0]) == 0)
                kv[j].value = bad[i][1];
        ox_oryx_config out;
        cr_assert_eq(ox_oryx_config_from_meta(ctx, kv, meta.n, &out), OX_ERR_FORMAT, "%s = %s", bad[i][0], bad[i][1]);
        cr_assert_not_null(strstr(ox_ctx_message(ctx), bad[i][0]), "%s", ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
    }
    /* a missing key */
    ox_oryx_config out;
    cr_assert_eq(ox_oryx_config_from_meta(ctx, meta.kv + 1, meta.n - 1, &out), OX_ERR_FORMAT);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "format_version"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
