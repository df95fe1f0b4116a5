/* test_safetensors_malformed.c - safetensors readers (tensor/safetensors.h) on malformed files: each
 * hand-made bad file gets its own error, from the lenient loader and the strict reader.
 * All comparisons are on bit patterns: the format stores bytes, so no tolerance applies. */
#include "safetensors_util.h"

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
