/* test_nn_params_io.c - nn/params_io.h: a parameter list round-trips bit for bit with its metadata; a missing
 * tensor, a wrong shape and an unexpected tensor are refused with a message naming it (with and without a
 * filter); a filter lets named extras through. (Atomic replacement is tested with the writer, test_safetensors.c.) */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/params_io.h"
#include "tensor/rng.h"
#include "test_util.h"

/* Two parameters "a.weight" [3, 2] and "b.bias" [4] with values from seed; a third "c" [2] when three. */
static void make_params(ox_ctx *ctx, ox_nn_params *ps, uint64_t seed, int three)
{
    ox_nn_params_init(ps);
    ox_tensor *a = ox_nn_params_add(ctx, ps, "a.weight", 2, (int64_t[]){ 3, 2 }, OX_NN_DECAY);
    ox_tensor *b = ox_nn_params_add(ctx, ps, "b.bias", 1, (int64_t[]){ 4 }, OX_NN_NO_DECAY);
    cr_assert(a && b, "%s", ox_ctx_message(ctx));
    if (three)
        cr_assert_not_null(ox_nn_params_add(ctx, ps, "c", 1, (int64_t[]){ 2 }, OX_NN_NO_DECAY));
    ox_rng rng = ox_rng_seed(seed);
    for (int i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ox_tensor_numel(ps->items[i].t); j++)
            ox_tensor_f32(ps->items[i].t)[j] = (float)ox_rng_normal(&rng);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "/tmp/oryx-params-%ld-%s.safetensors", (long)getpid(), name);
}

Test(nn_params_io, round_trip_bit_exact_with_metadata)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params src, dst;
    make_params(ctx, &src, 1, 0);
    make_params(ctx, &dst, 2, 0);
    char path[256];
    tmp_path(path, sizeof path, "rt");
    ox_st_kv meta[] = { { "arch", "tiny" } };
    assert_ok(ctx, ox_nn_params_save(ctx, &src, path, meta, 1));
    ox_st_meta *m = NULL;
    assert_ok(ctx, ox_nn_params_load(ctx, &dst, path, NULL, NULL, &m));
    cr_assert_str_eq(ox_st_meta_get(m, "arch"), "tiny");
    ox_st_meta_free(m);
    for (int i = 0; i < src.n; i++)
        cr_assert_eq(memcmp(ox_tensor_f32(src.items[i].t), ox_tensor_f32(dst.items[i].t),
                            sizeof(float) * (size_t)ox_tensor_numel(src.items[i].t)), 0);
    unlink(path);
    ox_nn_params_free(&src);
    ox_nn_params_free(&dst);
    ox_ctx_free(ctx);
}

static int allow_mask(const char *name, void *user)
{
    (void)user;
    return strstr(name, ".mask") != NULL;
}

/* file: a.weight, b.bias and c (+ "attn.mask" when with_mask); loads into a list of two, or of three whose c
 * has another shape */
Test(nn_params_io, mismatches_are_named)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_params three, two;
    make_params(ctx, &three, 3, 1);
    make_params(ctx, &two, 4, 0);
    char path[256];
    tmp_path(path, sizeof path, "mm");
    assert_ok(ctx, ox_nn_params_save(ctx, &two, path, NULL, 0));
    /* missing: the list wants c, the file lacks it; with or without a filter */
    for (int filtered = 0; filtered < 2; filtered++) {
        cr_assert_eq(ox_nn_params_load(ctx, &three, path, filtered ? allow_mask : NULL, NULL, NULL), OX_ERR_FORMAT);
        cr_assert(strstr(ox_ctx_message(ctx), "'c'") && strstr(ox_ctx_message(ctx), "missing"), "%s",
                  ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
    }
    /* unexpected: the file has c, the list of two does not */
    assert_ok(ctx, ox_nn_params_save(ctx, &three, path, NULL, 0));
    cr_assert_eq(ox_nn_params_load(ctx, &two, path, allow_mask, NULL, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "unexpected tensor 'c'"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_nn_params_load(ctx, &two, path, NULL, NULL, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "'c'"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    /* wrong shape */
    ox_nn_params other;
    ox_nn_params_init(&other);
    cr_assert_not_null(ox_nn_params_add(ctx, &other, "a.weight", 2, (int64_t[]){ 2, 3 }, OX_NN_DECAY));
    cr_assert_not_null(ox_nn_params_add(ctx, &other, "b.bias", 1, (int64_t[]){ 4 }, OX_NN_NO_DECAY));
    cr_assert_not_null(ox_nn_params_add(ctx, &other, "c", 1, (int64_t[]){ 2 }, OX_NN_NO_DECAY));
    cr_assert_eq(ox_nn_params_load(ctx, &other, path, allow_mask, NULL, NULL), OX_ERR_FORMAT);
    cr_assert(strstr(ox_ctx_message(ctx), "'a.weight' has shape [3, 2], the parameter [2, 3]"), "%s",
              ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    /* an extra the filter accepts: "attn.mask" beside the two parameters */
    ox_tensor *mask = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(2, 2));
    ox_st_entry e[3] = { { "a.weight", two.items[0].t }, { "b.bias", two.items[1].t }, { "attn.mask", mask } };
    assert_ok(ctx, ox_safetensors_write(ctx, path, e, 3, NULL, 0));
    assert_ok(ctx, ox_nn_params_load(ctx, &two, path, allow_mask, NULL, NULL));
    cr_assert_eq(ox_nn_params_load(ctx, &two, path, NULL, NULL, NULL), OX_ERR_FORMAT);
    ox_ctx_clear_error(ctx);
    ox_tensor_free(mask);
    unlink(path);
    ox_nn_params_free(&three);
    ox_nn_params_free(&two);
    ox_nn_params_free(&other);
    ox_ctx_free(ctx);
}
