/* test_safetensors_golden.c - safetensors readers on the golden files: the test vectors
 * (tests/data/golden, read from the repository root) with the lenient loader, and the golden checkpoints
 * with the strict reader and a hand-built tensor list (MODELS.md 12.2), rewritten byte for byte.
 * All comparisons are on bit patterns: the format stores bytes, so no tolerance applies. */
#include "safetensors_util.h"

/* ---- golden test vectors (lenient loader) ---- */

static ox_tensor *get_shape(const ox_st_file *f, const char *name, ox_dtype dtype, int ndim, const int64_t *shape)
{
    ox_tensor *t = ox_st_file_get(f, name);
    cr_assert_not_null(t, "tensor '%s' present", name);
    cr_assert_eq(t->dtype, dtype, "dtype of '%s'", name);
    cr_assert_eq(t->ndim, ndim, "rank of '%s'", name);
    for (int d = 0; d < ndim; d++)
        cr_assert_eq(t->shape[d], shape[d], "axis %d of '%s'", d, name);
    return t;
}

static const char *golden_files[] = {
    "mixer_attention.safetensors", "mixer_attention_T150.safetensors", "mixer_gdn.safetensors",
    "mixer_gdn_T150.safetensors", "mixer_mamba2.safetensors", "mixer_mamba2_T150.safetensors",
    "model_oryx-gdn.ckpt.safetensors", "model_oryx-gdn.data.safetensors", "model_oryx-gdn_T150.data.safetensors",
    "model_oryx-mamba2.ckpt.safetensors", "model_oryx-mamba2.data.safetensors",
    "model_oryx-mamba2_T150.data.safetensors",
};

Test(safetensors, golden_files_load_leniently)
{
    ox_ctx *ctx = test_ctx();
    char path[256];
    uint64_t live = ox_alloc_bytes_live();
    for (unsigned i = 0; i < sizeof golden_files / sizeof golden_files[0]; i++) {
        snprintf(path, sizeof path, GOLDEN "%s", golden_files[i]);
        ox_st_file *f = ox_safetensors_load(ctx, path);
        cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
        cr_assert_gt(f->n, 0);
        cr_assert_gt(f->meta->n, 0, "%s has metadata", path);
        int is_data = strstr(golden_files[i], ".data.") != NULL;
        for (int64_t k = 0; k < f->n; k++) {
            const ox_tensor *t = f->entries[k].tensor;
            int is_int = is_data && (!strcmp(f->entries[k].name, "tokens") || !strcmp(f->entries[k].name, "mode_map"));
            cr_assert_eq(t->dtype, is_int ? OX_I32 : OX_F32, "%s: dtype of %s", path, f->entries[k].name);
            if (k)
                cr_assert_lt(strcmp(f->entries[k - 1].name, f->entries[k].name), 0, "entries sorted by name");
            if (t->dtype == OX_F32)
                for (int64_t e = 0; e < ox_tensor_numel(t); e++)
                    cr_assert(isfinite(ox_tensor_f32(t)[e]), "%s: %s is finite", path, f->entries[k].name);
        }
        ox_st_file_free(f);
    }
    cr_assert_eq(ox_alloc_bytes_live(), live);

    /* facts from tests/data/golden/README.md */
    ox_st_file *f = ox_safetensors_load(ctx, GOLDEN "mixer_gdn.safetensors");
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    get_shape(f, "x", OX_F32, OX_DIMS(2, 37, 32));
    get_shape(f, "y", OX_F32, OX_DIMS(2, 37, 32));
    get_shape(f, "mixer.gdn.A_log", OX_F32, OX_DIMS(2));
    get_shape(f, "mixer.k_conv.weight", OX_F32, OX_DIMS(32, 4));
    ox_tensor *beta = get_shape(f, "inter.beta", OX_F32, OX_DIMS(2, 37, 2));
    for (int i = 0; i < 2 * 37 * 2; i++)   /* beta = sigmoid(.) */
        cr_assert(ox_tensor_f32(beta)[i] > 0 && ox_tensor_f32(beta)[i] < 1);
    ox_tensor *la = get_shape(f, "inter.log_alpha", OX_F32, OX_DIMS(2, 37, 2));
    for (int i = 0; i < 2 * 37 * 2; i++)   /* log of a decay in (0, 1] */
        cr_assert_leq(ox_tensor_f32(la)[i], 0);
    cr_assert_str_eq(ox_st_file_meta(f, "T"), "37");
    cr_assert_str_eq(ox_st_file_meta(f, "B"), "2");
    cr_assert_str_eq(ox_st_file_meta(f, "kind"), "mixer");
    cr_assert_str_eq(ox_st_file_meta(f, "mixer"), "gdn");
    cr_assert_str_eq(ox_st_file_meta(f, "conv_act"), "silu");
    cr_assert_null(ox_st_file_get(f, "mixer.attn.q_proj.weight"));
    ox_st_file_free(f);

    f = ox_safetensors_load(ctx, GOLDEN "model_oryx-gdn.data.safetensors");
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    ox_tensor *tok = get_shape(f, "tokens", OX_I32, OX_DIMS(2, 37));
    ox_tensor *mm = get_shape(f, "mode_map", OX_I32, OX_DIMS(2, 37));
    int seen[2] = { 0, 0 };
    for (int i = 0; i < 74; i++) {
        cr_assert(ox_tensor_i32(tok)[i] >= 0 && ox_tensor_i32(tok)[i] < 256);
        cr_assert(ox_tensor_i32(mm)[i] == 0 || ox_tensor_i32(mm)[i] == 1);
        seen[ox_tensor_i32(mm)[i]]++;
    }
    cr_assert(seen[0] > 0 && seen[1] > 0, "both modes occur");
    get_shape(f, "logits", OX_F32, OX_DIMS(2, 37, 256));
    ox_tensor *loss = get_shape(f, "loss", OX_F32, OX_DIMS(1));
    cr_assert(ox_tensor_f32(loss)[0] > 0 && ox_tensor_f32(loss)[0] < 20);
    get_shape(f, "grad.embed.weight", OX_F32, OX_DIMS(256, 32));
    cr_assert_str_eq(ox_st_file_meta(f, "kind"), "model-data");
    cr_assert_str_eq(ox_st_file_meta(f, "checkpoint"), "model_oryx-gdn.ckpt.safetensors");
    cr_assert_str_eq(ox_st_file_meta(f, "T"), "37");
    ox_st_file_free(f);

    /* T = 150: step.logits equals logits bitwise, and the mode map has the runs of the README table */
    f = ox_safetensors_load(ctx, GOLDEN "model_oryx-mamba2_T150.data.safetensors");
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    ox_tensor *lg = get_shape(f, "logits", OX_F32, OX_DIMS(2, 150, 256));
    ox_tensor *sl = get_shape(f, "step.logits", OX_F32, OX_DIMS(2, 150, 256));
    cr_assert_eq(memcmp(ox_tensor_f32(lg), ox_tensor_f32(sl), 2 * 150 * 256 * 4), 0);
    mm = get_shape(f, "mode_map", OX_I32, OX_DIMS(2, 150));
    static const int attn_runs[2][5][2] = { { { 12, 12 }, { 40, 89 }, { 91, 99 }, { 141, 141 }, { -1, -1 } },
                                            { { 0, 6 }, { 8, 20 }, { 76, 76 }, { 110, 130 }, { -1, -1 } } };
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 150; t++) {
            int attn = 0;
            for (int r = 0; r < 5; r++)
                attn |= t >= attn_runs[s][r][0] && t <= attn_runs[s][r][1];
            cr_assert_eq(ox_tensor_i32(mm)[s * 150 + t], attn, "mode of sequence %d token %d", s, t);
        }
    cr_assert_str_eq(ox_st_file_meta(f, "T"), "150");
    cr_assert_str_eq(ox_st_file_meta(f, "checkpoint"), "model_oryx-mamba2.ckpt.safetensors");
    ox_st_file_free(f);

    f = ox_safetensors_load(ctx, GOLDEN "mixer_attention_T150.safetensors");
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    get_shape(f, "inter.q_rot", OX_F32, OX_DIMS(2, 150, 32));
    get_shape(f, "inter.k_rot", OX_F32, OX_DIMS(2, 150, 32));
    get_shape(f, "mixer.attn.q_proj.weight", OX_F32, OX_DIMS(32, 32));
    cr_assert_str_eq(ox_st_file_meta(f, "mixer"), "attention");
    cr_assert_str_eq(ox_st_file_meta(f, "conv_act"), "none");
    ox_st_file_free(f);

    f = ox_safetensors_load(ctx, GOLDEN "model_oryx-mamba2.ckpt.safetensors");
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    get_shape(f, "layers.1.mixer.mamba2.D", OX_F32, OX_DIMS(2));
    cr_assert_str_eq(ox_st_file_meta(f, "arch"), "oryx");
    cr_assert_str_eq(ox_st_file_meta(f, "linear_mixer"), "mamba2");
    cr_assert_str_eq(ox_st_file_meta(f, "layer_kinds"), "oryx,oryx");
    cr_assert_str_eq(ox_st_file_meta(f, "mlp_hidden"), "96");
    ox_st_file_free(f);
    ox_ctx_free(ctx);
}

/* ---- golden checkpoints (strict reader, tensor list built by hand from MODELS.md 12.2) ---- */

#define CK_MAX 64

typedef struct ck_list {
    int n;
    char names[CK_MAX][64];
    int ndim[CK_MAX];
    int64_t shape[CK_MAX][2];
} ck_list;

static void ck_add(ck_list *l, const char *name, int64_t d0, int64_t d1)
{
    cr_assert_lt(l->n, CK_MAX);
    snprintf(l->names[l->n], 64, "%s", name);
    l->ndim[l->n] = d1 ? 2 : 1;
    l->shape[l->n][0] = d0;
    l->shape[l->n][1] = d1;
    l->n++;
}

/* Oryx with attention + one linear mixer per layer: L = 2, D = 32, H = 2, dk = dv = 16, F = 96, V = 256. */
static void ck_oryx(ck_list *l, int mamba2)
{
    const int64_t L = 2, D = 32, H = 2, dk = 16, dv = 16, F = 96, V = 256;
    char n[64];
    l->n = 0;
    ck_add(l, "embed.weight", V, D);
    ck_add(l, "norm_f.weight", D, 0);
    for (int i = 0; i < L; i++) {
#define P(fmt, d0, d1) (snprintf(n, sizeof n, "layers.%d." fmt, i), ck_add(l, n, d0, d1))
        P("norm1.weight", D, 0);
        P("norm2.weight", D, 0);
        P("mixer.k_proj.weight", H * dk, D);
        P("mixer.v_proj.weight", H * dv, D);
        P("mixer.g_proj.weight", H * dv, D);
        P("mixer.o_proj.weight", D, H * dv);
        P("mixer.k_conv.weight", H * dk, 4);
        P("mixer.v_conv.weight", H * dv, 4);
        P("mixer.norm.weight", H * dv, 0);
        P("mixer.attn.q_proj.weight", H * dk, D);
        if (!mamba2) {
            P("mixer.gdn.q_proj.weight", H * dk, D);
            P("mixer.gdn.q_conv.weight", H * dk, 4);
            P("mixer.gdn.beta_proj.weight", H, D);
            P("mixer.gdn.alpha_proj.weight", H, D);
            P("mixer.gdn.A_log", H, 0);
            P("mixer.gdn.dt_bias", H, 0);
        } else {
            P("mixer.mamba2.q_proj.weight", H * dk, D);
            P("mixer.mamba2.q_conv.weight", H * dk, 4);
            P("mixer.mamba2.dt_proj.weight", H, D);
            P("mixer.mamba2.A_log", H, 0);
            P("mixer.mamba2.dt_bias", H, 0);
            P("mixer.mamba2.D", H, 0);
        }
        P("mlp.gate_proj.weight", F, D);
        P("mlp.up_proj.weight", F, D);
        P("mlp.down_proj.weight", D, F);
#undef P
    }
}

/* Owned zero tensors for the list; entries[i] = { names[i], tensor }. */
static void ck_tensors(ox_ctx *ctx, const ck_list *l, ox_st_entry *entries)
{
    for (int i = 0; i < l->n; i++) {
        entries[i].name = l->names[i];
        entries[i].tensor = ox_tensor_new_owned(ctx, OX_F32, l->ndim[i], l->shape[i]);
        cr_assert_not_null(entries[i].tensor);
    }
}

static void ck_free(ox_st_entry *entries, int n)
{
    for (int i = 0; i < n; i++)
        ox_tensor_free(entries[i].tensor);
}

static void strict_golden_checkpoint(int mamba2)
{
    ox_ctx *ctx = test_ctx();
    const char *path = mamba2 ? GOLDEN "model_oryx-mamba2.ckpt.safetensors" : GOLDEN "model_oryx-gdn.ckpt.safetensors";
    ck_list l;
    ck_oryx(&l, mamba2);
    cr_assert_eq(l.n, 40, "2 + 2 * 19 tensors");
    ox_st_entry ents[CK_MAX + 1];
    ck_tensors(ctx, &l, ents);
    ox_st_meta *meta = NULL;
    assert_ok(ctx, ox_safetensors_read_strict(ctx, path, ents, l.n, &meta));
    cr_assert_str_eq(ox_st_meta_get(meta, "arch"), "oryx");
    cr_assert_str_eq(ox_st_meta_get(meta, "linear_mixer"), mamba2 ? "mamba2" : "gdn");
    cr_assert_str_eq(ox_st_meta_get(meta, "conv_act"), mamba2 ? "none" : "silu");
    cr_assert_str_eq(ox_st_meta_get(meta, "d_model"), "32");
    cr_assert_str_eq(ox_st_meta_get(meta, "format_version"), "1");
    ox_st_meta_free(meta);
    /* same bytes as the lenient loader; and no tensor is all zeros (everything was filled) */
    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    cr_assert_eq(f->n, l.n);
    for (int i = 0; i < l.n; i++) {
        ox_tensor *r = ox_st_file_get(f, l.names[i]);
        cr_assert_not_null(r);
        int64_t numel = ox_tensor_numel(r);
        cr_assert_eq(memcmp(ox_tensor_f32(r), ox_tensor_f32(ents[i].tensor), (size_t)numel * 4), 0, "%s", l.names[i]);
        int nonzero = 0;
        for (int64_t e = 0; e < numel; e++)
            nonzero |= ox_tensor_f32(ents[i].tensor)[e] != 0;
        cr_assert(nonzero, "%s was filled", l.names[i]);
    }
    ox_st_file_free(f);

    /* one expected shape changed */
    ox_tensor *saved = ents[1].tensor;   /* norm_f.weight [32] */
    cr_assert_str_eq(ents[1].name, "norm_f.weight");
    ox_tensor *wrong = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(33));
    ents[1].tensor = wrong;
    cr_assert_eq(ox_safetensors_read_strict(ctx, path, ents, l.n, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "'norm_f.weight' has shape [32] in the file but [33] is expected"),
              "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    for (int e = 0; e < 33; e++)
        cr_assert_eq(ox_tensor_f32(wrong)[e], 0.0f, "untouched after a rejection");
    ents[1].tensor = saved;
    ox_tensor_free(wrong);

    /* one name removed from the list: the file holds a tensor nobody expects */
    cr_assert_eq(ox_safetensors_read_strict(ctx, path, ents, l.n - 1, NULL), OX_ERR_FORMAT);
    char want[128];
    snprintf(want, sizeof want, "unexpected tensor '%s'", l.names[l.n - 1]);
    cr_assert(strstr(ox_ctx_message(ctx), want), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    /* one name added: missing from the file */
    ox_tensor *extra = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(32));
    ents[l.n].name = "layers.2.norm1.weight";
    ents[l.n].tensor = extra;
    cr_assert_eq(ox_safetensors_read_strict(ctx, path, ents, l.n + 1, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "missing tensor 'layers.2.norm1.weight'"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_tensor_free(extra);

    /* the other linear mixer's list does not fit */
    ck_list other;
    ck_oryx(&other, !mamba2);
    ox_st_entry oents[CK_MAX];
    ck_tensors(ctx, &other, oents);
    cr_assert_eq(ox_safetensors_read_strict(ctx, path, oents, other.n, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "unexpected tensor 'layers.0.mixer."), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ck_free(oents, other.n);
    ck_free(ents, l.n);
    ox_ctx_free(ctx);
}

Test(safetensors, strict_reader_accepts_gdn_checkpoint_and_rejects_changed_lists)
{
    strict_golden_checkpoint(0);
}

Test(safetensors, strict_reader_accepts_mamba2_checkpoint_and_rejects_changed_lists)
{
    strict_golden_checkpoint(1);
}

/* A checkpoint written by our writer and read back by the strict reader equals the golden one byte for
 * byte: same names, sorted order, offsets and padding as the reference writer produced. */
Test(safetensors, rewriting_the_golden_checkpoint_reproduces_its_bytes)
{
    ox_ctx *ctx = test_ctx();
    const char *path = GOLDEN "model_oryx-gdn.ckpt.safetensors";
    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    char dir[64], out[128];
    make_tmpdir(dir);
    snprintf(out, sizeof out, "%s/re.safetensors", dir);
    assert_ok(ctx, ox_safetensors_write(ctx, out, f->entries, f->n, f->meta->kv, f->meta->n));
    long l1, l2;
    unsigned char *b1 = read_all(path, &l1), *b2 = read_all(out, &l2);
    uint64_t n1 = 0, n2 = 0;
    for (int i = 7; i >= 0; i--) {
        n1 = (n1 << 8) | b1[i];
        n2 = (n2 << 8) | b2[i];
    }
    /* the data buffers are identical (same order, same offsets); headers may differ only in spacing */
    cr_assert_eq(l1 - (long)n1, l2 - (long)n2);
    cr_assert_eq(memcmp(b1 + 8 + n1, b2 + 8 + n2, (size_t)(l1 - 8 - (long)n1)), 0);
    ox_st_file *g = ox_safetensors_load(ctx, out);
    cr_assert_not_null(g, "%s", ox_ctx_message(ctx));
    cr_assert_eq(g->meta->n, f->meta->n);
    for (int64_t i = 0; i < f->meta->n; i++)
        cr_assert_str_eq(ox_st_meta_get(g->meta, f->meta->kv[i].key), f->meta->kv[i].value);
    free(b1);
    free(b2);
    ox_st_file_free(g);
    ox_st_file_free(f);
    remove_tree(dir);
    ox_ctx_free(ctx);
}
