/* test_safetensors.c - safetensors writer and readers (tensor/safetensors.h): bit-exact round trips
 * (F32, I32, strided and broadcast views, scalars, empty tensors, metadata), the header layout of the
 * writer, atomic replacement on failure, one distinct error per malformed-file case, the golden test
 * vectors (tests/data/golden, read from the repository root) with the lenient loader, and the golden
 * checkpoints with the strict reader and a hand-built tensor list (MODELS.md 12.2).
 * All comparisons are on bit patterns: the format stores bytes, so no tolerance applies. */
#include "test_util.h"
#include "tensor/safetensors.h"

#include <cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "tests/data/golden/"

/* ---- file helpers ---- */

static void make_tmpdir(char *dir)
{
    strcpy(dir, "/tmp/ox_st_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes dir and what it holds (files, and directories one level down). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Number of directory entries of dir (without . and ..), and how many have ".tmp." in their name. */
static int count_entries(const char *dir, int *n_tmp)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    *n_tmp = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (strstr(e->d_name, ".tmp."))
            (*n_tmp)++;
    }
    closedir(d);
    return n;
}

static unsigned char *read_all(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)*len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

static void write_bytes(const char *path, const void *buf, long len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
}

/* A hand-made safetensors file: N = strlen(header), the header, then data_len bytes; byte i of the data
 * is the byte i of the float sequence 0, 0.5, 1, 1.5, ... */
static void write_st(const char *path, const char *header, long data_len)
{
    uint64_t n = strlen(header);
    long len = 8 + (long)n + data_len;
    unsigned char *buf = calloc(1, (size_t)len + 4);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (long i = 0; i < (data_len + 3) / 4; i++) {
        float v = 0.5f * (float)i;
        memcpy(buf + 8 + n + 4 * i, &v, 4);
    }
    write_bytes(path, buf, len);
    free(buf);
}

static uint32_t bits_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

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

/* ---- malformed files: each has its own error ---- */

/* The good file of the malformed-file cases: a [2, 2] and b [3], 28 data bytes. */
#define GOOD_HDR \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}"
#define A_OK "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"
#define B_OK "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}"

typedef struct bad_case {
    const char *header;      /* written by write_st, unless raw != 0 (made in the test body) */
    long data_len;
    int strict_only;         /* 1: a valid file that the lenient loader accepts (set or dtype mismatch) */
    const char *msg;         /* a substring of the expected message */
} bad_case;

static const bad_case bad_cases[] = {
    { "\"a\":1}", 28, 0, "does not start with '{'" },
    { "[" A_OK "]", 28, 0, "does not start with '{'" },
    { "{\"a\xff\":{}}", 28, 0, "not valid UTF-8" },
    { "{\"a\":{\"dtype\":\"F32\",}", 28, 0, "not valid JSON" },
    { GOOD_HDR "x", 28, 0, "other than padding after the JSON object" },
    { "{\"a\":[1]," B_OK "}", 28, 0, "tensor 'a': entry is not a JSON object" },
    { "{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]}," B_OK "}", 28, 0, "entry has no \"dtype\"" },
    { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}," B_OK "}", 28, 0, "entry has no \"shape\"" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}," B_OK "}", 28, 0, "entry has no \"data_offsets\"" },
    { "{\"a\":{\"dtype\":32,\"shape\":[2,2],\"data_offsets\":[0,16]}," B_OK "}", 28, 0, "\"dtype\" is not a string" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}," B_OK "}", 28, 0, "\"shape\" is not an array" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":16}," B_OK "}", 28, 0,
      "\"data_offsets\" is not an array" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,\"2\"],\"data_offsets\":[0,16]}," B_OK "}", 28, 0,
      "\"shape\"[1] is not a number" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}," B_OK "}", 28, 0,
      "\"shape\"[1] is negative" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2.5],\"data_offsets\":[0,16]}," B_OK "}", 28, 0,
      "\"shape\"[1] is not an integer" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,4],\"data_offsets\":[0,16]}," B_OK "}", 28, 0,
      "more than the 6 supported" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0]}," B_OK "}", 28, 0, "not 2 [begin, end]" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[-4,16]}," B_OK "}", 28, 0,
      "\"data_offsets\"[0] is negative" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16.5]}," B_OK "}", 28, 0,
      "\"data_offsets\"[1] is not an integer" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}," B_OK "}", 28, 0, "end before they begin" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],\"extra\":1}," B_OK "}", 28, 0,
      "unknown key \"extra\"" },
    { "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}," B_OK "}", 28, 0,
      "dtype \"F16\" is not supported" },
    { "{\"a\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," B_OK "}", 28, 1,
      "dtype \"I32\" is not supported (expected F32)" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}," B_OK "}", 28, 1,
      "tensor 'a' has shape [4] in the file but [2, 2] is expected" },
    { "{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,40]}}", 28, 0,
      "lie outside the data buffer of 28 bytes" },
    { "{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,24]}}", 28, 0,
      "span 8 bytes but shape [3] of F32 needs 12" },
    { "{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}", 24, 0,
      "tensors 'a' and 'b' overlap" },
    { "{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,32]}}", 32, 0,
      "hole in the data buffer: bytes [16, 20)" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[4,20]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,32]}}", 32, 0,
      "hole in the data buffer: bytes [0, 4)" },
    { GOOD_HDR, 32, 0, "does not end at the end of the file" },
    { "{" A_OK "," B_OK ",\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[28,32]}}", 32, 1,
      "unexpected tensor 'c'" },
    { "{" A_OK "}", 16, 1, "missing tensor 'b'" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[32,44]}}", 44, 0, "duplicate tensor name 'a'" },
    { "{\"__metadata__\":\"x\"," A_OK "," B_OK "}", 28, 0, "\"__metadata__\" is not a JSON object" },
    { "{\"__metadata__\":{\"k\":1}," A_OK "," B_OK "}", 28, 0, "value of key \"k\" is not a string" },
    { "{\"__metadata__\":{\"k\":{\"n\":\"1\"}}," A_OK "," B_OK "}", 28, 0, "value of key \"k\" is not a string" },
};

/* Reads path with both readers: strict must fail with msg (FORMAT), leaving the destinations untouched;
 * the lenient loader must fail the same way unless strict_only. */
static void expect_bad(ox_ctx *ctx, const char *path, ox_status status, int strict_only, const char *msg,
                       ox_st_entry *exp)
{
    ox_tensor_fill(ctx, exp[0].tensor, 7.0);
    ox_tensor_fill(ctx, exp[1].tensor, 7.0);
    ox_st_meta *meta = (ox_st_meta *)1;
    cr_assert_eq(ox_safetensors_read_strict(ctx, path, exp, 2, &meta), status, "%s: %s", msg,
                 ox_ctx_message(ctx));
    cr_assert_null(meta);
    cr_assert(strstr(ox_ctx_message(ctx), msg), "expected \"%s\", got: %s", msg, ox_ctx_message(ctx));
    cr_assert(strstr(ox_ctx_message(ctx), path), "the message names the file: %s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < ox_tensor_numel(exp[k].tensor); i++)
            cr_assert_eq(ox_tensor_f32(exp[k].tensor)[i], 7.0f, "destination untouched on a format error");
    ox_st_file *f = ox_safetensors_load(ctx, path);
    if (strict_only) {
        cr_assert_not_null(f, "lenient loader accepts it: %s", ox_ctx_message(ctx));
        ox_st_file_free(f);
    } else {
        cr_assert_null(f, "lenient loader rejects \"%s\" too", msg);
        cr_assert(strstr(ox_ctx_message(ctx), msg), "lenient: expected \"%s\", got: %s", msg, ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
    }
}

Test(safetensors, malformed_files_each_have_their_own_error)
{
    ox_ctx *ctx = test_ctx();
    char dir[64], path[128];
    make_tmpdir(dir);
    ox_tensor *a = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(2, 2));
    ox_tensor *b = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(3));
    ox_st_entry exp[] = { { "a", a }, { "b", b } };

    /* the good file reads, with the data at the right offsets */
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    write_st(path, GOOD_HDR, 28);
    assert_ok(ctx, ox_safetensors_read_strict(ctx, path, exp, 2, NULL));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ox_tensor_f32(a)[i], 0.5f * i);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ox_tensor_f32(b)[i], 0.5f * (4 + i));

    for (unsigned c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
        snprintf(path, sizeof path, "%s/bad%u.safetensors", dir, c);
        write_st(path, bad_cases[c].header, bad_cases[c].data_len);
        expect_bad(ctx, path, OX_ERR_FORMAT, bad_cases[c].strict_only, bad_cases[c].msg, exp);
    }

    /* cases made by patching the good file's bytes */
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    long len;
    unsigned char *good = read_all(path, &len);
    uint64_t n = strlen(GOOD_HDR);
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    write_bytes(path, good, 5);
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "file is 5 bytes, shorter than the 8-byte header length", exp);
    write_bytes(path, good, 0);
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "file is 0 bytes", exp);

    unsigned char *p = malloc((size_t)len + 8);
    memcpy(p, good, (size_t)len);
    uint64_t huge = 100000001;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(huge >> (8 * i));
    snprintf(path, sizeof path, "%s/huge.safetensors", dir);
    write_bytes(path, p, len);
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "header length 100000001 exceeds the limit of 100000000", exp);

    snprintf(path, sizeof path, "%s/trunc.safetensors", dir);
    write_bytes(path, good, 8 + (long)n - 1);   /* the header is cut short */
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "exceeds the file size", exp);

    memcpy(p, good, (size_t)len);
    memcpy(p + len, "\0\0\0\0", 4);
    snprintf(path, sizeof path, "%s/tail.safetensors", dir);
    write_bytes(path, p, len + 4);
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "data does not end at the end of the file", exp);

    memcpy(p, good, (size_t)len);
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    write_bytes(path, p, len - 4);   /* last tensor runs past the end */
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "lie outside the data buffer of 24 bytes", exp);

    /* empty header (N = 0) and an I/O error */
    memset(p, 0, 8);
    snprintf(path, sizeof path, "%s/nohdr.safetensors", dir);
    write_bytes(path, p, 8);
    expect_bad(ctx, path, OX_ERR_FORMAT, 0, "does not start with '{'", exp);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    expect_bad(ctx, path, OX_ERR_IO, 0, "cannot open", exp);
    expect_bad(ctx, dir, OX_ERR_IO, 0, "not a regular file", exp);

    free(p);
    free(good);
    ox_tensor_free(a);
    ox_tensor_free(b);
    remove_tree(dir);
    ox_ctx_free(ctx);
}

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
