/* safetensors_write.c - the atomic safetensors writer (see safetensors.h): tensors sorted by name,
 * offsets contiguous, header padded to a multiple of 8, written through tensor/io.h's atomic replacement
 * (temporary file, fsync, rename), so a crash mid-save never destroys the previous file. */
#include "tensor/safetensors.h"
#include "tensor/alloc.h"
#include "tensor/io.h"
#include "tensor/safetensors_common.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");


/* ---- small helpers ------------------------------------------------------------------------------------ */
/* ---- writer -------------------------------------------------------------------------------------------- */

static int cmp_entry_ptr_name(const void *a, const void *b)
{
    return ox_st_cmp_str((*(const ox_st_entry *const *)a)->name, (*(const ox_st_entry *const *)b)->name);
}

static int utf8_str_ok(const char *s)
{
    size_t bad;
    return ox_st_utf8_valid((const unsigned char *)s, strlen(s), &bad);
}

/* Checks the caller's lists; fills order[] with the entries sorted by name. */
static ox_status check_write_args(ox_ctx *ctx, const char *path, const ox_st_entry *entries, int64_t n,
                                  const ox_st_kv *meta, int64_t n_meta, const ox_st_entry **order)
{
    for (int64_t i = 0; i < n; i++) {
        const ox_st_entry *e = &entries[i];
        if (!e->name || !e->name[0] || !utf8_str_ok(e->name))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: entry %lld has a NULL, empty or non-UTF-8 name", path,
                               (long long)i);
        if (strcmp(e->name, OX_ST_META_KEY) == 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: \"%s\" is reserved and cannot name a tensor", path,
                               OX_ST_META_KEY);
        if (!e->tensor)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: tensor '%s' is NULL", path, e->name);
        if (e->tensor->dtype != OX_F32 && e->tensor->dtype != OX_I32)
            return ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: tensor '%s' has dtype %d, not F32 or I32", path, e->name,
                               (int)e->tensor->dtype);
        if (ox_st_shape_numel(e->tensor->ndim, e->tensor->shape) < 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: tensor '%s' is too large", path, e->name);
        order[i] = e;
    }
    qsort(order, (size_t)n, sizeof *order, cmp_entry_ptr_name);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: duplicate tensor name '%s'", path, order[i]->name);
    for (int64_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || !utf8_str_ok(meta[i].key) || !utf8_str_ok(meta[i].value))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: metadata entry %lld has a NULL or non-UTF-8 key or value",
                               path, (long long)i);
        for (int64_t j = 0; j < i; j++)
            if (strcmp(meta[j].key, meta[i].key) == 0)
                return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: duplicate metadata key \"%s\"", path, meta[i].key);
    }
    return OX_OK;
}

/* The JSON header (unpadded, from cJSON's allocator), or NULL with the error recorded. */
static char *build_header(ox_ctx *ctx, const char *path, const ox_st_entry *const *order, int64_t n,
                          const ox_st_kv *meta, int64_t n_meta)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, OX_ST_META_KEY);
        ok = m != NULL;
        for (int64_t i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    }
    int64_t off = 0;
    for (int64_t i = 0; ok && i < n; i++) {
        const ox_tensor *t = order[i]->tensor;
        int64_t bytes = OX_ST_ELEM * ox_tensor_numel(t);
        cJSON *e = cJSON_AddObjectToObject(root, order[i]->name);
        cJSON *shape = e ? cJSON_CreateArray() : NULL;
        cJSON *offs = e ? cJSON_CreateArray() : NULL;
        ok = e && shape && offs && cJSON_AddStringToObject(e, "dtype", t->dtype == OX_F32 ? "F32" : "I32");
        for (int d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        if (ok) {
            ok = cJSON_AddItemToObject(e, "shape", shape);
            if (ok)
                shape = NULL;
            ok = ok && cJSON_AddItemToObject(e, "data_offsets", offs);
            if (ok)
                offs = NULL;
        }
        cJSON_Delete(shape);   /* only those not attached (NULL-safe) */
        cJSON_Delete(offs);
        off += bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory building the JSON header", path);
    return text;
}

/* Writes the file body to fp; returns 0 or an errno value. */
static int write_body(FILE *fp, const char *json, size_t json_len, size_t padded, const ox_st_entry *const *order,
                      int64_t n)
{
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (fwrite(lenb, 1, 8, fp) != 8 || fwrite(json, 1, json_len, fp) != json_len)
        return errno ? errno : EIO;
    for (size_t i = json_len; i < padded; i++)
        if (fputc(' ', fp) == EOF)
            return errno ? errno : EIO;
    for (int64_t i = 0; i < n; i++) {
        const ox_tensor *t = order[i]->tensor;
        size_t numel = (size_t)ox_tensor_numel(t);
        if (numel == 0)
            continue;
        if (ox_tensor_is_contiguous(t)) {
            if (fwrite((const uint32_t *)t->data + t->offset, OX_ST_ELEM, numel, fp) != numel)
                return errno ? errno : EIO;
            continue;
        }
        uint32_t *buf = ox_malloc(numel * OX_ST_ELEM);
        if (!buf)
            return ENOMEM;
        ox_st_copy_strided(t, buf, 1);
        size_t w = fwrite(buf, OX_ST_ELEM, numel, fp);
        int e = errno;
        ox_free(buf);
        if (w != numel)
            return e ? e : EIO;
    }
    return 0;
}

ox_status ox_safetensors_write(ox_ctx *ctx, const char *path, const ox_st_entry *entries, int64_t n,
                               const ox_st_kv *meta, int64_t n_meta)
{
    if (ctx->status)
        return ctx->status;
    if (!path || !path[0] || n < 0 || n_meta < 0 || (n > 0 && !entries) || (n_meta > 0 && !meta))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "safetensors_write: NULL/empty path or bad lists (%lld tensors, "
                           "%lld metadata entries)", (long long)n, (long long)n_meta);
    const ox_st_entry **order = ox_malloc(sizeof *order * (size_t)(n ? n : 1));
    if (!order)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
    char *json = NULL;
    if (check_write_args(ctx, path, entries, n, meta, n_meta, order))
        goto done;
    json = build_header(ctx, path, order, n, meta, n_meta);
    if (!json)
        goto done;
    size_t json_len = strlen(json), padded = (json_len + 7) & ~(size_t)7;
    ox_io_atomic w;
    if (ox_io_atomic_open(ctx, &w, path))
        goto done;
    errno = 0;
    int err = write_body(w.fp, json, json_len, padded, order, n);
    if (err) {
        ox_io_atomic_abort(&w);
        ox_ctx_fail(ctx, err == ENOMEM ? OX_ERR_NOMEM : OX_ERR_IO, "%s: writing the new file failed (%s); the "
                    "previous file is kept", path, strerror(err));
        goto done;
    }
    ox_io_atomic_commit(ctx, &w);
done:
    cJSON_free(json);
    ox_free(order);
    return ctx->status;
}
