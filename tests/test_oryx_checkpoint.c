/* test_oryx_checkpoint.c - model checkpoints (MODELS.md 12, 11 item 20): save -> load is bit-exact (every
 * tensor, the configuration, step and train_seq_len), the file holds exactly the names of 12.2 and the
 * metadata of 12.3, and files for another model fail with an error naming the problem and the file. */
#include "test_util.h"

#include "models/oryx/checkpoint.h"
#include "tensor/safetensors.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void tmp_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/oryx_ckpt_test_%d_%s.safetensors", (int)getpid(), tag);
}

static ox_oryx_config small_config(const char *preset)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_config c;
    cr_assert_eq(ox_oryx_config_preset(ctx, preset, 2, &c), OX_OK);
    c.d_model = 32;
    c.n_heads = 2;
    c.d_k = 16;
    c.d_v = 8;
    c.mlp_hidden = 96;
    ox_ctx_free(ctx);
    return c;
}

Test(oryx_checkpoint, round_trip_bit_exact)
{
    const char *presets[] = { "oryx-gdn", "oryx-mamba2", "hybrid-gdn", "transformer" };
    for (int p = 0; p < 4; p++) {
        ox_ctx *ctx = test_ctx();
        ox_oryx_config cfg = small_config(presets[p]);
        ox_oryx_model a, b;
        ox_rng rng = ox_rng_seed(11 + p);
        assert_ok(ctx, ox_oryx_model_init(ctx, &a, &cfg, &rng));
        /* values of order one everywhere (init leaves norms at exactly 1) */
        for (int i = 0; i < a.params.n; i++)
            assert_ok(ctx, ox_tensor_fill_normal(ctx, a.params.items[i].t, &rng, 0.0, 1.0));
        char path[256];
        tmp_path(path, sizeof path, presets[p]);
        assert_ok(ctx, ox_oryx_save(ctx, &a, path, 1234, 256));
        int64_t step = 0, seq = 0;
        assert_ok(ctx, ox_oryx_load(ctx, path, &b, &step, &seq));
        cr_assert_eq(step, 1234);
        cr_assert_eq(seq, 256);
        cr_assert_eq(memcmp(&a.cfg, &b.cfg, sizeof a.cfg), 0);
        cr_assert_eq(a.params.n, b.params.n);
        for (int i = 0; i < a.params.n; i++) {
            cr_assert_str_eq(a.params.items[i].name, b.params.items[i].name);
            ox_tensor *x = a.params.items[i].t, *y = b.params.items[i].t;
            cr_assert(ox_tensor_same_shape(x, y));
            cr_assert_eq(memcmp(ox_tensor_f32(x), ox_tensor_f32(y), sizeof(float) * (size_t)ox_tensor_numel(x)), 0,
                         "%s differs", a.params.items[i].name);
        }
        /* the file: the names of the model and the metadata of 12.3, read by the lenient loader */
        ox_st_file *f = ox_safetensors_load(ctx, path);
        cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
        cr_assert_eq(f->n, a.params.n);
        cr_assert_str_eq(ox_st_file_meta(f, "arch"), ox_oryx_config_arch(&cfg));
        cr_assert_str_eq(ox_st_file_meta(f, "format_version"), "1");
        cr_assert_str_eq(ox_st_file_meta(f, "step"), "1234");
        cr_assert_str_eq(ox_st_file_meta(f, "train_seq_len"), "256");
        cr_assert_str_eq(ox_st_file_meta(f, "d_v"), "8");
        cr_assert_null(ox_st_file_get(f, "lm_head.weight"));
        ox_st_file_free(f);
        unlink(path);
        ox_oryx_model_free(&a);
        ox_oryx_model_free(&b);
        ox_ctx_free(ctx);
    }
}

/* Writes m's tensors, minus the one called `drop` (NULL: none), with the metadata of cfg_meta. */
static void write_custom(ox_ctx *ctx, const char *path, const ox_oryx_model *m, const char *drop,
                         const ox_oryx_config *cfg_meta)
{
    ox_oryx_meta meta;
    assert_ok(ctx, ox_oryx_config_to_meta(ctx, cfg_meta, &meta));
    ox_st_entry ents[128];
    int n = 0;
    for (int i = 0; i < m->params.n; i++)
        if (!drop || strcmp(drop, m->params.items[i].name) != 0)
            ents[n++] = (ox_st_entry){ m->params.items[i].name, m->params.items[i].t };
    assert_ok(ctx, ox_safetensors_write(ctx, path, ents, n, meta.kv, meta.n));
}

/* Loading fails with `status`, its message contains `needle` and the path, and the model is left empty. */
static void expect_load_error(ox_ctx *ctx, const char *path, ox_status status, const char *needle)
{
    ox_oryx_model m;
    cr_assert_eq(ox_oryx_load(ctx, path, &m, NULL, NULL), status, "%s", ox_ctx_message(ctx));
    cr_assert_not_null(strstr(ox_ctx_message(ctx), needle), "message '%s' lacks '%s'", ox_ctx_message(ctx), needle);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), path), "message '%s' lacks the path", ox_ctx_message(ctx));
    cr_assert_eq(m.params.n, 0);
    ox_oryx_model_free(&m);
    ox_ctx_clear_error(ctx);
}

Test(oryx_checkpoint, wrong_files_fail_clearly)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_config cfg = small_config("oryx-gdn");
    ox_oryx_model m;
    ox_rng rng = ox_rng_seed(5);
    assert_ok(ctx, ox_oryx_model_init(ctx, &m, &cfg, &rng));
    char path[256];
    tmp_path(path, sizeof path, "bad");

    /* a missing tensor */
    write_custom(ctx, path, &m, "layers.1.mixer.attn.q_proj.weight", &cfg);
    expect_load_error(ctx, path, OX_ERR_FORMAT, "layers.1.mixer.attn.q_proj.weight");

    /* a wrong shape: the metadata says F = 64, the MLP tensors hold F = 96 */
    ox_oryx_config other = cfg;
    other.mlp_hidden = 64;
    write_custom(ctx, path, &m, NULL, &other);
    expect_load_error(ctx, path, OX_ERR_FORMAT, "mlp");

    /* a wrong arch: a Mamba-2 Oryx model's metadata over GDN tensors (gdn.* unknown, mamba2.* missing) */
    other = cfg;
    other.linear = OX_ORYX_LINEAR_MAMBA2;
    write_custom(ctx, path, &m, NULL, &other);
    expect_load_error(ctx, path, OX_ERR_FORMAT, "mixer.");

    /* a GDN-only model's metadata over Oryx tensors: attn.q_proj is not expected */
    other = cfg;
    other.kinds[0] = other.kinds[1] = OX_ORYX_KIND_LIN;
    write_custom(ctx, path, &m, NULL, &other);
    expect_load_error(ctx, path, OX_ERR_FORMAT, "attn.q_proj");

    /* metadata inconsistent in itself: arch says oryx, layer kinds say lin */
    ox_oryx_meta meta;
    assert_ok(ctx, ox_oryx_config_to_meta(ctx, &other, &meta));
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.kv[i].key, "arch") == 0)
            meta.kv[i].value = "oryx";
    ox_st_entry e = { "embed.weight", m.embed.weight };
    assert_ok(ctx, ox_safetensors_write(ctx, path, &e, 1, meta.kv, meta.n));
    expect_load_error(ctx, path, OX_ERR_FORMAT, "arch");

    /* no metadata at all */
    assert_ok(ctx, ox_safetensors_write(ctx, path, &e, 1, NULL, 0));
    expect_load_error(ctx, path, OX_ERR_FORMAT, "__metadata__");

    /* not a safetensors file, and no file */
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    fputs("hello", fp);
    fclose(fp);
    expect_load_error(ctx, path, OX_ERR_FORMAT, "8-byte");
    unlink(path);
    expect_load_error(ctx, path, OX_ERR_IO, "cannot open");

    /* the golden checkpoints load (names and metadata written by another implementation) */
    ox_oryx_model g;
    assert_ok(ctx, ox_oryx_load(ctx, "tests/data/golden/model_oryx-mamba2.ckpt.safetensors", &g, NULL, NULL));
    cr_assert_eq(g.cfg.linear, OX_ORYX_LINEAR_MAMBA2);
    cr_assert_eq(g.cfg.mlp_hidden, 96);
    ox_oryx_model_free(&g);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}
