/* test_safetensors.c - safetensors writer and readers (tensor/safetensors.h): bit-exact round trips
 * (F32, I32, strided and broadcast views, scalars, empty tensors, metadata), the header layout of the
 * writer, atomic replacement on failure and the writer's argument errors. Malformed files are in
 * tests/test_safetensors_malformed.c, the golden files in tests/test_safetensors_golden.c.
 * All comparisons are on bit patterns: the format stores bytes, so no tolerance applies. */
#include "safetensors_util.h"

#include <cJSON.h>
#include <signal.h>
#include <sys/resource.h>

/* ---- round trips ---- */

Test(safetensors, roundtrip_f32_i32_views_scalars_metadata_bit_exact)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);

    ox_tensor *w = ox_tensor_randn(ctx, &rng, OX_DIMS(3, 5), 0, 1);
    float *wd = ox_tensor_f32(w);
    /* special values must survive bit for bit */
    wd[0] = -0.0f;
    wd[1] = INFINITY;
    wd[2] = -INFINITY;
    wd[3] = 1e-40f;   /* subnormal */
    uint32_t nan_bits = 0x7fc12345u;
    memcpy(&wd[4], &nan_bits, 4);
    ox_tensor *base = ox_tensor_randn(ctx, &rng, OX_DIMS(4, 6), 0, 1);
    ox_tensor *bt = ox_tensor_view_transpose(ctx, base, 0, 1);                 /* [6, 4], strides {1, 6} */
    ox_tensor *c = ox_tensor_randn(ctx, &rng, OX_DIMS(3), 0, 1);
    ox_tensor *cx = ox_tensor_view_expand(ctx, c, OX_DIMS(2, 3));             /* stride-0 rows */
    ox_tensor *tok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 7));
    for (int i = 0; i < 14; i++)
        ox_tensor_i32(tok)[i] = i == 0 ? INT32_MIN : i == 1 ? INT32_MAX : (i * 1000003) - 5000000;
    ox_tensor *tokt = ox_tensor_view_transpose(ctx, tok, 0, 1);               /* [7, 2] I32 */
    ox_tensor *s = ox_tensor_full(ctx, OX_F32, 0, (const int64_t[]){ 0 }, 3.25); /* scalar [] */
    ox_tensor *one = ox_tensor_full(ctx, OX_F32, OX_DIMS(1), -2.5);           /* [1] */
    ox_tensor *empty = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(0, 3));
    cr_assert_not_null(empty, "%s", ox_ctx_message(ctx));
    ox_st_entry ents[] = { { "w", w }, { "bt", bt }, { "c_expanded", cx }, { "tok", tok }, { "tok_t", tokt },
                           { "s", s }, { "one", one }, { "empty", empty } };
    const char *note = "h\xc3\xa9llo \"quoted\" \\ {not json} \xe2\x82\xac";
    ox_st_kv meta[] = { { "format_version", "1" }, { "note", note }, { "blank", "" } };

    uint64_t live = ox_alloc_bytes_live();
    assert_ok(ctx, ox_safetensors_write(ctx, path, ents, 8, meta, 3));
    cr_assert_eq(ox_alloc_bytes_live(), live, "the writer frees its transient buffers");

    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    cr_assert_eq(f->n, 8);
    /* references by plain loops over the original storage */
    ox_tensor *r = ox_st_file_get(f, "w");
    cr_assert(r && r->dtype == OX_F32 && r->ndim == 2 && r->shape[0] == 3 && r->shape[1] == 5);
    cr_assert_eq(memcmp(ox_tensor_f32(r), wd, 15 * 4), 0);
    r = ox_st_file_get(f, "bt");
    cr_assert(r && r->dtype == OX_F32 && r->ndim == 2 && r->shape[0] == 6 && r->shape[1] == 4);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++)
            cr_assert_eq(bits_f32(ox_tensor_f32(r)[i * 4 + j]), bits_f32(ox_tensor_f32(base)[j * 6 + i]));
    r = ox_st_file_get(f, "c_expanded");
    cr_assert(r && r->ndim == 2 && r->shape[0] == 2 && r->shape[1] == 3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            cr_assert_eq(bits_f32(ox_tensor_f32(r)[i * 3 + j]), bits_f32(ox_tensor_f32(c)[j]));
    r = ox_st_file_get(f, "tok");
    cr_assert(r && r->dtype == OX_I32 && r->ndim == 2 && r->shape[0] == 2 && r->shape[1] == 7);
    cr_assert_eq(memcmp(ox_tensor_i32(r), ox_tensor_i32(tok), 14 * 4), 0);
    r = ox_st_file_get(f, "tok_t");
    cr_assert(r && r->dtype == OX_I32 && r->ndim == 2 && r->shape[0] == 7 && r->shape[1] == 2);
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 2; j++)
            cr_assert_eq(ox_tensor_i32(r)[i * 2 + j], ox_tensor_i32(tok)[j * 7 + i]);
    r = ox_st_file_get(f, "s");
    cr_assert(r && r->ndim == 0 && ox_tensor_f32(r)[0] == 3.25f);
    r = ox_st_file_get(f, "one");
    cr_assert(r && r->ndim == 1 && r->shape[0] == 1 && ox_tensor_f32(r)[0] == -2.5f);
    r = ox_st_file_get(f, "empty");
    cr_assert(r && r->ndim == 2 && r->shape[0] == 0 && r->shape[1] == 3);
    cr_assert_null(ox_st_file_get(f, "nope"));
    cr_assert_eq(f->meta->n, 3);
    cr_assert_str_eq(ox_st_file_meta(f, "format_version"), "1");
    cr_assert_str_eq(ox_st_file_meta(f, "note"), note);
    cr_assert_str_eq(ox_st_file_meta(f, "blank"), "");
    cr_assert_null(ox_st_file_meta(f, "missing"));
    ox_st_file_free(f);
    cr_assert_eq(ox_alloc_bytes_live(), live, "ox_st_file_free frees everything the loader allocated");
    remove_tree(dir);
    ox_ctx_free(ctx);
}

Test(safetensors, strict_roundtrip_into_strided_and_owned_tensors)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(12);
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    ox_tensor *a = ox_tensor_randn(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *b = ox_tensor_randn(ctx, &rng, OX_DIMS(5), 0, 1);
    ox_st_entry out[] = { { "layer.b", b }, { "layer.a", a } };
    assert_ok(ctx, ox_safetensors_write(ctx, path, out, 2, NULL, 0));

    ox_tensor *a_store = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(4, 3));
    ox_tensor *a_dst = ox_tensor_view_transpose(ctx, a_store, 0, 1);   /* [3, 4], not contiguous */
    ox_tensor *b_dst = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(5));
    ox_st_entry in[] = { { "layer.a", a_dst }, { "layer.b", b_dst } };
    ox_st_meta *meta = NULL;
    assert_ok(ctx, ox_safetensors_read_strict(ctx, path, in, 2, &meta));
    cr_assert_not_null(meta);
    cr_assert_eq(meta->n, 0, "no __metadata__ written for n_meta = 0");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            cr_assert_eq(bits_f32(ox_tensor_f32(a_store)[j * 3 + i]), bits_f32(ox_tensor_f32(a)[i * 4 + j]));
    cr_assert_eq(memcmp(ox_tensor_f32(b_dst), ox_tensor_f32(b), 5 * 4), 0);
    ox_st_meta_free(meta);
    /* meta_out may be NULL */
    assert_ok(ctx, ox_safetensors_read_strict(ctx, path, in, 2, NULL));
    ox_tensor_free(a_store);
    ox_tensor_free(b_dst);
    remove_tree(dir);
    ox_ctx_free(ctx);
}

Test(safetensors, header_is_padded_sorted_and_contiguous)
{
    ox_ctx *ctx = test_ctx();
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    /* byte order: uppercase < lowercase, "layers.10" < "layers.2", 0xC3 (e acute) after ASCII */
    const char *names[] = { "b", "\xc3\xa9t\xc3\xa9", "a", "Z", "layers.2.w", "layers.10.w", "aa" };
    const char *sorted[] = { "Z", "a", "aa", "b", "layers.10.w", "layers.2.w", "\xc3\xa9t\xc3\xa9" };
    ox_st_entry ents[7];
    for (int i = 0; i < 7; i++) {
        ents[i].name = names[i];
        ents[i].tensor = ox_tensor_full(ctx, OX_F32, OX_DIMS(i + 1), i);
    }
    ox_st_kv meta[] = { { "k", "v" } };
    for (int variant = 0; variant < 4; variant++) {   /* header lengths with different remainders mod 8 */
        ox_st_kv m2[] = { { "k", variant == 0 ? "v" : variant == 1 ? "vv" : variant == 2 ? "vvv" : "vvvvvv" } };
        assert_ok(ctx, ox_safetensors_write(ctx, path, ents, 7, variant ? m2 : meta, 1));
        long len;
        unsigned char *buf = read_all(path, &len);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = (n << 8) | buf[i];
        cr_assert_eq(n % 8, 0, "header length %llu is a multiple of 8", (unsigned long long)n);
        cr_assert((long)n + 8 <= len);
        cr_assert_eq(buf[8], '{');
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts((const char *)buf + 8, n, &end, 0);
        cr_assert_not_null(j);
        long json_len = end - (const char *)(buf + 8);
        cr_assert(n - (uint64_t)json_len < 8, "at most 7 padding bytes");
        for (const char *p = end; p < (const char *)buf + 8 + n; p++)
            cr_assert_eq(*p, ' ', "padding is spaces");
        int k = 0;
        long pos = 0;
        for (cJSON *e = j->child; e; e = e->next) {
            if (!strcmp(e->string, "__metadata__"))
                continue;
            cr_assert_lt(k, 7);
            cr_assert_str_eq(e->string, sorted[k], "entry %d", k);
            cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
            long b = (long)cJSON_GetArrayItem(offs, 0)->valuedouble;
            long en = (long)cJSON_GetArrayItem(offs, 1)->valuedouble;
            cr_assert_eq(b, pos, "offsets contiguous from 0");
            /* tensor named sorted[k] was made with i + 1 elements where names[i] == sorted[k] */
            int src = 0;
            while (strcmp(names[src], sorted[k]))
                src++;
            cr_assert_eq(en - b, 4L * (src + 1));
            float first;
            memcpy(&first, buf + 8 + n + b, 4);
            cr_assert_eq(first, (float)src, "data of '%s' at its offsets", sorted[k]);
            pos = en;
            k++;
        }
        cr_assert_eq(k, 7);
        cr_assert_eq(pos, len - 8 - (long)n, "data ends at the end of the file");
        cJSON_Delete(j);
        free(buf);
    }
    remove_tree(dir);
    ox_ctx_free(ctx);
}

/* ox_safetensors_read_meta: the metadata only, n = 0 without "__metadata__", the header errors of the
 * readers, NULL on failure. */
Test(safetensors, read_meta_returns_the_metadata_only)
{
    ox_ctx *ctx = test_ctx();
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    ox_st_entry e = { "w", ox_tensor_full(ctx, OX_F32, OX_DIMS(3), 2.0) };
    ox_st_kv kv[] = { { "arch", "oryx" }, { "step", "12" } };
    assert_ok(ctx, ox_safetensors_write(ctx, path, &e, 1, kv, 2));
    ox_st_meta *meta = NULL;
    assert_ok(ctx, ox_safetensors_read_meta(ctx, path, &meta));
    cr_assert_not_null(meta);
    cr_assert_eq(meta->n, 2);
    cr_assert_str_eq(ox_st_meta_get(meta, "arch"), "oryx");
    cr_assert_str_eq(ox_st_meta_get(meta, "step"), "12");
    ox_st_meta_free(meta);

    assert_ok(ctx, ox_safetensors_write(ctx, path, &e, 1, NULL, 0));
    assert_ok(ctx, ox_safetensors_read_meta(ctx, path, &meta));
    cr_assert_not_null(meta);
    cr_assert_eq(meta->n, 0);
    ox_st_meta_free(meta);

    write_st(path, "\"a\":1}", 28);
    meta = (ox_st_meta *)1;
    cr_assert_eq(ox_safetensors_read_meta(ctx, path, &meta), OX_ERR_FORMAT);
    cr_assert_null(meta);
    cr_assert(strstr(ox_ctx_message(ctx), "does not start with '{'"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    cr_assert_eq(ox_safetensors_read_meta(ctx, path, &meta), OX_ERR_IO);
    cr_assert_null(meta);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_safetensors_read_meta(ctx, path, NULL), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    remove_tree(dir);
    ox_ctx_free(ctx);
}

/* ---- atomic write ---- */

Test(safetensors, failed_write_leaves_old_file_and_no_temp)
{
    ox_ctx *ctx = test_ctx();
    char dir[64], path[128], bad[160], adir[160], keep[192];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ox_tensor *x = ox_tensor_full(ctx, OX_F32, OX_DIMS(4), 1.0);
    ox_tensor *y = ox_tensor_full(ctx, OX_F32, OX_DIMS(2), 2.0);
    ox_st_entry v1[] = { { "x", x } };
    assert_ok(ctx, ox_safetensors_write(ctx, path, v1, 1, NULL, 0));
    long len1;
    unsigned char *old = read_all(path, &len1);
    int n_tmp;

    /* (a) duplicate names: rejected before anything is written */
    ox_st_entry dup[] = { { "x", y }, { "y", y }, { "x", x } };
    cr_assert_eq(ox_safetensors_write(ctx, path, dup, 3, NULL, 0), OX_ERR_ARG);
    cr_assert(strstr(ox_ctx_message(ctx), "duplicate tensor name 'x'"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    /* (b) a directory that does not exist */
    snprintf(bad, sizeof bad, "%s/no_such_dir/model.safetensors", dir);
    cr_assert_eq(ox_safetensors_write(ctx, bad, v1, 1, NULL, 0), OX_ERR_IO);
    cr_assert(strstr(ox_ctx_message(ctx), bad), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    /* (c) the write fails half way (file size limit): the temp file is removed, the old file intact */
    ox_tensor *big = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(65536));   /* 256 KiB */
    ox_st_entry v2[] = { { "x", big } };
    struct rlimit old_lim, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
    lim = old_lim;
    lim.rlim_cur = 64 * 1024;
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ox_status st = ox_safetensors_write(ctx, path, v2, 1, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_sig);
    cr_assert_eq(st, OX_ERR_IO, "%s", ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), "File too large"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);

    /* (d) rename fails: the target is a directory, which keeps its contents */
    snprintf(adir, sizeof adir, "%s/adir", dir);
    cr_assert_eq(mkdir(adir, 0700), 0);
    snprintf(keep, sizeof keep, "%s/keep", adir);
    write_bytes(keep, "k", 1);
    cr_assert_eq(ox_safetensors_write(ctx, adir, v1, 1, NULL, 0), OX_ERR_IO);
    cr_assert(strstr(ox_ctx_message(ctx), "rename"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_eq(access(keep, F_OK), 0);

    long len;
    unsigned char *now = read_all(path, &len);
    cr_assert(len == len1 && memcmp(now, old, (size_t)len) == 0, "the old file is untouched");
    free(now);
    cr_assert_eq(count_entries(dir, &n_tmp), 2, "only model.safetensors and adir");
    cr_assert_eq(n_tmp, 0, "no temp file left behind");
    int n_tmp_adir;
    cr_assert_eq(count_entries(adir, &n_tmp_adir), 1);

    /* a successful write replaces the file and leaves no temp file */
    ox_st_entry v3[] = { { "y", y } };
    assert_ok(ctx, ox_safetensors_write(ctx, path, v3, 1, NULL, 0));
    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    cr_assert(f->n == 1 && ox_st_file_get(f, "y") && !ox_st_file_get(f, "x"));
    ox_st_file_free(f);
    cr_assert_eq(count_entries(dir, &n_tmp), 2);
    cr_assert_eq(n_tmp, 0);
    free(old);
    remove_tree(dir);
    ox_ctx_free(ctx);
}

Test(safetensors, writer_rejects_bad_arguments)
{
    ox_ctx *ctx = test_ctx();
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2));
    ox_st_entry null_t[] = { { "x", NULL } };
    ox_st_entry reserved[] = { { "__metadata__", x } };
    ox_st_entry empty_name[] = { { "", x } };
    ox_st_entry bad_utf8[] = { { "x\xff", x } };
    ox_st_entry ok1[] = { { "x", x } };
    ox_st_kv dup_meta[] = { { "k", "1" }, { "k", "2" } };
    struct { const ox_st_entry *e; const ox_st_kv *m; int n_meta; const char *msg; } cases[] = {
        { null_t, NULL, 0, "tensor 'x' is NULL" },
        { reserved, NULL, 0, "reserved" },
        { empty_name, NULL, 0, "empty" },
        { bad_utf8, NULL, 0, "non-UTF-8 name" },
        { ok1, dup_meta, 2, "duplicate metadata key \"k\"" },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(ox_safetensors_write(ctx, path, cases[i].e, 1, cases[i].m, cases[i].n_meta), OX_ERR_ARG,
                     "case %u", i);
        cr_assert(strstr(ox_ctx_message(ctx), cases[i].msg), "case %u: %s", i, ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
    }
    /* sticky: a context holding an error does nothing */
    ox_ctx_fail(ctx, OX_ERR_SHAPE, "earlier failure");
    cr_assert_eq(ox_safetensors_write(ctx, path, ok1, 1, NULL, 0), OX_ERR_SHAPE);
    cr_assert_null(ox_safetensors_load(ctx, GOLDEN "mixer_gdn.safetensors"));
    cr_assert_str_eq(ox_ctx_message(ctx), "earlier failure");
    int n_tmp;
    cr_assert_eq(count_entries(dir, &n_tmp), 0, "no file was created");
    remove_tree(dir);
    ox_ctx_free(ctx);
}
