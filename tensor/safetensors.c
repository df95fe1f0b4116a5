/* safetensors.c - safetensors strict checkpoint reader and lenient test-vector loader (the writer is
 * in safetensors_write.c)
 * (see safetensors.h; format in MODELS.md section 12.1).
 *
 * Both readers share read_header(): it reads and validates the whole header (length bounds, UTF-8, JSON,
 * every entry, dtypes, offsets, exact coverage of the data buffer, duplicates, metadata) into an array of
 * st_info before a single data byte is read. The strict reader then matches the entries against the
 * caller's list; the loader allocates one owned tensor per entry. Elements are 4 bytes (F32 and I32), so
 * strided copies move uint32_t bit patterns and are exact. */
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
/* ---- small helpers ------------------------------------------------------------------------------------ */

static void shape_str(char *buf, int ndim, const int64_t *shape)
{
    ox_tensor t = { 0 };
    t.ndim = ndim;
    memcpy(t.shape, shape, sizeof(int64_t) * (size_t)ndim);
    ox_shape_str(&t, buf);
}

/* Reads exactly len bytes at offset off. Returns 0 or an errno value (EIO for an unexpected end). */
static int read_full(int fd, void *dst, int64_t len, int64_t off)
{
    unsigned char *p = dst;
    while (len > 0) {
        size_t chunk = len > (1 << 30) ? (size_t)1 << 30 : (size_t)len;
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO;
        p += r;
        off += r;
        len -= r;
    }
    return 0;
}

/* ---- metadata ------------------------------------------------------------------------------------------ */

const char *ox_st_meta_get(const ox_st_meta *m, const char *key)
{
    if (!m || !key)
        return NULL;
    for (int64_t i = 0; i < m->n; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return m->kv[i].value;
    return NULL;
}

void ox_st_meta_free(ox_st_meta *m) { ox_free(m); }

/* One heap block: struct, kv array, strings. obj is a validated object of strings, or NULL. */
static ox_st_meta *meta_copy(ox_ctx *ctx, const char *path, const cJSON *obj)
{
    size_t n = 0, chars = 0;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
        n++;
        chars += strlen(c->string) + strlen(c->valuestring) + 2;
    }
    size_t head = sizeof(ox_st_meta) + n * sizeof(ox_st_kv);
    ox_st_meta *m = ox_malloc(head + chars);
    if (!m) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory copying %zu metadata entries", path, n);
        return NULL;
    }
    m->n = (int64_t)n;
    m->kv = (ox_st_kv *)(m + 1);
    char *s = (char *)m + head;
    size_t i = 0;
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next, i++) {
        size_t lk = strlen(c->string) + 1, lv = strlen(c->valuestring) + 1;
        memcpy(s, c->string, lk);
        m->kv[i].key = s;
        s += lk;
        memcpy(s, c->valuestring, lv);
        m->kv[i].value = s;
        s += lv;
    }
    return m;
}

/* ---- header parsing and validation --------------------------------------------------------------------- */

typedef struct st_info {          /* one validated header entry */
    const char *name;             /* points into the cJSON tree */
    ox_dtype dtype;
    int ndim;
    int64_t shape[OX_MAX_DIMS];
    int64_t begin, end;           /* byte offsets in the data buffer, begin <= end */
} st_info;

typedef struct st_header {
    const char *path;
    int fd;
    char *text;                   /* header bytes + NUL (ox_malloc) */
    cJSON *json;
    st_info *info;                /* n entries in file order (ox_malloc) */
    int64_t n;
    const cJSON *meta;            /* "__metadata__" object or NULL */
    int64_t data_start;           /* 8 + N */
    int64_t data_size;            /* file size - data_start */
} st_header;

static void header_close(st_header *h)
{
    if (h->fd >= 0)
        close(h->fd);
    cJSON_Delete(h->json);
    ox_free(h->text);
    ox_free(h->info);
    h->fd = -1;
    h->json = NULL;
    h->text = NULL;
    h->info = NULL;
}

/* A JSON number that must be an integer >= 0 (and <= 2^53, so the double holds it exactly). */
static int json_uint(ox_ctx *ctx, const char *path, const char *name, const char *field, int i,
                     const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"%s\"[%d] is not a number", path, name, field, i);
        return -1;
    }
    double d = v->valuedouble;
    if (d < 0) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"%s\"[%d] is negative (%g)", path, name, field, i, d);
        return -1;
    }
    if (!isfinite(d) || d != floor(d)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"%s\"[%d] is not an integer (%g)", path, name, field,
                    i, d);
        return -1;
    }
    if (d > 9007199254740992.0) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"%s\"[%d] is too large (%g)", path, name, field, i, d);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* Validates one tensor entry (everything that does not depend on the other entries). */
static int parse_entry(ox_ctx *ctx, const char *path, const cJSON *e, int allow_i32, st_info *info)
{
    const char *name = e->string;
    info->name = name;
    if (!cJSON_IsObject(e)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
        return -1;
    }
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = e->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': unknown key \"%s\" in its entry", path, name,
                        c->string);
            return -1;
        }
        if (*slot) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': key \"%s\" appears twice", path, name, c->string);
            return -1;
        }
        *slot = c;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': entry has no \"%s\"", path, name, missing);
        return -1;
    }
    if (!cJSON_IsString(dtype)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is not a string", path, name);
        return -1;
    }
    if (!cJSON_IsArray(shape)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", path, name);
        return -1;
    }
    if (!cJSON_IsArray(offs)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not an array", path, name);
        return -1;
    }
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': shape has %d axes, more than the %d supported", path,
                    name, ndim, OX_MAX_DIMS);
        return -1;
    }
    info->ndim = ndim;
    int i = 0;
    for (const cJSON *c = shape->child; c; c = c->next, i++)
        if (json_uint(ctx, path, name, "shape", i, c, &info->shape[i]))
            return -1;
    if (cJSON_GetArraySize(offs) != 2) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" has %d elements, not 2 [begin, end]",
                    path, name, cJSON_GetArraySize(offs));
        return -1;
    }
    if (json_uint(ctx, path, name, "data_offsets", 0, offs->child, &info->begin) ||
        json_uint(ctx, path, name, "data_offsets", 1, offs->child->next, &info->end))
        return -1;
    if (info->begin > info->end) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path,
                    name, (long long)info->begin, (long long)info->end);
        return -1;
    }
    const char *dt = dtype->valuestring;
    if (strcmp(dt, "F32") == 0)
        info->dtype = OX_F32;
    else if (allow_i32 && strcmp(dt, "I32") == 0)
        info->dtype = OX_I32;
    else {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s': dtype \"%s\" is not supported (expected %s)", path,
                    name, dt, allow_i32 ? "F32 or I32" : "F32");
        return -1;
    }
    return 0;
}

static int cmp_info_name(const void *a, const void *b)
{
    return ox_st_cmp_str(((const st_info *)a)->name, ((const st_info *)b)->name);
}

static int cmp_info_offset(const void *a, const void *b)
{
    const st_info *x = *(const st_info *const *)a, *y = *(const st_info *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Checks that the entries cover [0, data_size) exactly: sorted by offset, each begins where the previous
 * one ends, the first at 0, the last at data_size. */
static int check_coverage(ox_ctx *ctx, st_header *h)
{
    const st_info **order = ox_malloc(sizeof *order * (size_t)(h->n ? h->n : 1));
    if (!order) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", h->path);
        return -1;
    }
    for (int64_t i = 0; i < h->n; i++)
        order[i] = &h->info[i];
    qsort(order, (size_t)h->n, sizeof *order, cmp_info_offset);
    int64_t pos = 0;
    const char *prev = NULL;
    int rc = 0;
    for (int64_t i = 0; i < h->n && !rc; i++) {
        const st_info *e = order[i];
        if (e->begin < pos) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data buffer (byte %lld)",
                        h->path, prev, e->name, (long long)e->begin);
            rc = -1;
        } else if (e->begin > pos) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT,
                        "%s: hole in the data buffer: bytes [%lld, %lld) before tensor '%s' belong to no tensor",
                        h->path, (long long)pos, (long long)e->begin, e->name);
            rc = -1;
        }
        pos = e->end;
        prev = e->name;
    }
    if (!rc && pos != h->data_size) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT,
                    "%s: the tensors end at byte %lld of the data buffer but the file holds %lld data bytes "
                    "(data does not end at the end of the file)",
                    h->path, (long long)pos, (long long)h->data_size);
        rc = -1;
    }
    ox_free(order);
    return rc;
}

/* Opens path and validates its whole header into h (see safetensors.h for the list of checks).
 * On failure everything is released and the error is recorded. */
static ox_status read_header(ox_ctx *ctx, const char *path, int allow_i32, st_header *h)
{
    memset(h, 0, sizeof *h);
    h->path = path;
    h->fd = ox_io_open_regular(ctx, path, "safetensors file");
    if (h->fd < 0)
        return ctx->status;
    struct stat sb;
    if (fstat(h->fd, &sb) != 0) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    int64_t size = (int64_t)sb.st_size;
    if (size < 8) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                    (long long)size);
        goto fail;
    }
    unsigned char lenb[8];
    int err = read_full(h->fd, lenb, 8, 0);
    if (err) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot read the header length: %s", path, strerror(err));
        goto fail;
    }
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--)
        N = (N << 8) | lenb[i];
    if (N > OX_ST_MAX_HEADER) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header length %llu exceeds the limit of %d bytes", path,
                    (unsigned long long)N, OX_ST_MAX_HEADER);
        goto fail;
    }
    if ((int64_t)N + 8 > size) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header length %llu + 8 exceeds the file size of %lld bytes", path,
                    (unsigned long long)N, (long long)size);
        goto fail;
    }
    h->data_start = 8 + (int64_t)N;
    h->data_size = size - h->data_start;
    h->text = ox_malloc(N + 1);
    if (!h->text) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory reading a header of %llu bytes", path,
                    (unsigned long long)N);
        goto fail;
    }
    err = read_full(h->fd, h->text, (int64_t)N, 8);
    if (err) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot read the header: %s", path, strerror(err));
        goto fail;
    }
    h->text[N] = 0;
    size_t bad = 0;
    if (!ox_st_utf8_valid((const unsigned char *)h->text, N, &bad)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the header)", path, bad);
        goto fail;
    }
    if (N == 0 || h->text[0] != '{') {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header does not start with '{' (it must be a JSON object)", path);
        goto fail;
    }
    const char *end = NULL;
    h->json = cJSON_ParseWithLengthOpts(h->text, N, &end, 0);
    if (!h->json) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header is not valid JSON (error near byte %lld of the header)", path,
                    end ? (long long)(end - h->text) : -1LL);
        goto fail;
    }
    for (const char *p = end; p < h->text + N; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            ox_ctx_fail(ctx, OX_ERR_FORMAT,
                        "%s: header has bytes other than padding after the JSON object (byte %lld of the header)",
                        path, (long long)(p - h->text));
            goto fail;
        }
    if (!cJSON_IsObject(h->json)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    int64_t count = 0;
    for (const cJSON *c = h->json->child; c; c = c->next)
        count++;
    h->info = ox_malloc(sizeof *h->info * (size_t)(count ? count : 1));
    if (!h->info) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory for %lld header entries", path, (long long)count);
        goto fail;
    }
    for (const cJSON *c = h->json->child; c; c = c->next) {
        if (strcmp(c->string, OX_ST_META_KEY) == 0) {
            if (h->meta) {
                ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: duplicate \"%s\"", path, OX_ST_META_KEY);
                goto fail;
            }
            if (!cJSON_IsObject(c)) {
                ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: \"%s\" is not a JSON object", path, OX_ST_META_KEY);
                goto fail;
            }
            for (const cJSON *m = c->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: \"%s\" value of key \"%s\" is not a string", path,
                                OX_ST_META_KEY, m->string);
                    goto fail;
                }
                for (const cJSON *o = c->child; o != m; o = o->next)
                    if (strcmp(o->string, m->string) == 0) {
                        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: duplicate \"%s\" key \"%s\"", path, OX_ST_META_KEY,
                                    m->string);
                        goto fail;
                    }
            }
            h->meta = c;
            continue;
        }
        if (parse_entry(ctx, path, c, allow_i32, &h->info[h->n]))
            goto fail;
        h->n++;
    }
    /* duplicates: sort by name (file order is not needed afterwards) */
    qsort(h->info, (size_t)h->n, sizeof *h->info, cmp_info_name);
    for (int64_t i = 1; i < h->n; i++)
        if (strcmp(h->info[i - 1].name, h->info[i].name) == 0) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, h->info[i].name);
            goto fail;
        }
    for (int64_t i = 0; i < h->n; i++) {
        const st_info *e = &h->info[i];
        char sb1[OX_SHAPE_BUF];
        if (e->end > h->data_size) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] lie outside the data buffer of %lld bytes",
                        path, e->name, (long long)e->begin, (long long)e->end, (long long)h->data_size);
            goto fail;
        }
        int64_t numel = ox_st_shape_numel(e->ndim, e->shape);
        if (numel < 0 || e->end - e->begin != OX_ST_ELEM * numel) {
            shape_str(sb1, e->ndim, e->shape);
            ox_ctx_fail(ctx, OX_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] span %lld bytes but shape %s of %s needs "
                        "%lld",
                        path, e->name, (long long)e->begin, (long long)e->end, (long long)(e->end - e->begin),
                        sb1, e->dtype == OX_F32 ? "F32" : "I32", numel < 0 ? -1LL : (long long)(OX_ST_ELEM * numel));
            goto fail;
        }
    }
    if (check_coverage(ctx, h))
        goto fail;
    return OX_OK;
fail:
    header_close(h);
    return ctx->status;
}

/* Reads entry e's data into t (same element count; any strides without broadcast axes). */
static ox_status read_data(ox_ctx *ctx, const st_header *h, const st_info *e, ox_tensor *t)
{
    int64_t bytes = e->end - e->begin;
    int err;
    if (ox_tensor_is_contiguous(t)) {
        err = read_full(h->fd, (uint32_t *)t->data + t->offset, bytes, h->data_start + e->begin);
    } else {
        uint32_t *buf = ox_malloc((size_t)bytes);
        if (!buf)
            return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory reading tensor '%s' (%lld bytes)", h->path,
                               e->name, (long long)bytes);
        err = read_full(h->fd, buf, bytes, h->data_start + e->begin);
        if (!err)
            ox_st_copy_strided(t, buf, 0);
        ox_free(buf);
    }
    if (err)
        return ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot read the data of tensor '%s': %s", h->path, e->name,
                           strerror(err));
    return OX_OK;
}

/* ---- strict reader ------------------------------------------------------------------------------------- */

ox_status ox_safetensors_read_meta(ox_ctx *ctx, const char *path, ox_st_meta **meta_out)
{
    if (meta_out)
        *meta_out = NULL;
    if (ctx->status)
        return ctx->status;
    if (!path || !meta_out)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "safetensors_read_meta: NULL path or meta_out");
    st_header h;
    if (read_header(ctx, path, 1, &h))
        return ctx->status;
    *meta_out = meta_copy(ctx, path, h.meta);
    header_close(&h);
    return ctx->status;
}

ox_status ox_safetensors_read_strict(ox_ctx *ctx, const char *path, const ox_st_entry *expected,
                                     int64_t n_expected, ox_st_meta **meta_out)
{
    if (meta_out)
        *meta_out = NULL;
    if (ctx->status)
        return ctx->status;
    if (!path || n_expected < 0 || (n_expected > 0 && !expected))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "safetensors_read_strict: NULL path or bad list (%lld entries)",
                           (long long)n_expected);
    for (int64_t i = 0; i < n_expected; i++) {
        const ox_tensor *t = expected[i].tensor;
        if (!expected[i].name || !t)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: expected entry %lld has a NULL name or tensor", path,
                               (long long)i);
        if (t->dtype != OX_F32)
            return ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: expected tensor '%s' is not F32", path, expected[i].name);
        for (int d = 0; d < t->ndim; d++)
            if (t->stride[d] == 0 && t->shape[d] > 1)
                return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: expected tensor '%s' is a broadcast view (axis %d)",
                                   path, expected[i].name, d);
        for (int64_t j = 0; j < i; j++)
            if (strcmp(expected[j].name, expected[i].name) == 0)
                return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: expected tensor name '%s' is listed twice", path,
                                   expected[i].name);
    }
    st_header h;
    if (read_header(ctx, path, 0, &h))
        return ctx->status;
    /* every file entry must be expected, with the expected shape ... */
    const st_info **match = ox_calloc((size_t)(n_expected ? n_expected : 1), sizeof *match);
    if (!match) {
        header_close(&h);
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t i = 0; i < h.n && !ctx->status; i++) {
        const st_info *e = &h.info[i];
        int64_t j = 0;
        while (j < n_expected && strcmp(expected[j].name, e->name) != 0)
            j++;
        if (j == n_expected) {
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: unexpected tensor '%s' (not in the expected list)", path,
                        e->name);
            break;
        }
        const ox_tensor *t = expected[j].tensor;
        int same = t->ndim == e->ndim;
        for (int d = 0; same && d < e->ndim; d++)
            same = t->shape[d] == e->shape[d];
        if (!same) {
            char sf[OX_SHAPE_BUF], se[OX_SHAPE_BUF];
            shape_str(sf, e->ndim, e->shape);
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s' has shape %s in the file but %s is expected", path,
                        e->name, sf, ox_shape_str(t, se));
            break;
        }
        match[j] = e;
    }
    /* ... and every expected tensor must be in the file */
    for (int64_t j = 0; j < n_expected && !ctx->status; j++)
        if (!match[j])
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: missing tensor '%s'", path, expected[j].name);
    ox_st_meta *meta = NULL;
    if (!ctx->status && meta_out)
        meta = meta_copy(ctx, path, h.meta);
    for (int64_t j = 0; j < n_expected && !ctx->status; j++)
        read_data(ctx, &h, match[j], expected[j].tensor);
    ox_free(match);
    header_close(&h);
    if (ctx->status) {
        ox_st_meta_free(meta);
        return ctx->status;
    }
    if (meta_out)
        *meta_out = meta;
    return OX_OK;
}

/* ---- lenient loader ------------------------------------------------------------------------------------ */

static int cmp_entry_name(const void *a, const void *b)
{
    return ox_st_cmp_str(((const ox_st_entry *)a)->name, ((const ox_st_entry *)b)->name);
}

ox_st_file *ox_safetensors_load(ox_ctx *ctx, const char *path)
{
    if (ctx->status)
        return NULL;
    if (!path) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "safetensors_load: NULL path");
        return NULL;
    }
    st_header h;
    if (read_header(ctx, path, 1, &h))
        return NULL;
    size_t chars = 0;
    for (int64_t i = 0; i < h.n; i++)
        chars += strlen(h.info[i].name) + 1;
    size_t head = sizeof(ox_st_file) + sizeof(ox_st_entry) * (size_t)h.n;
    ox_st_file *f = ox_calloc(1, head + chars);
    if (!f) {
        header_close(&h);
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory for %lld tensors", path, (long long)h.n);
        return NULL;
    }
    f->entries = (ox_st_entry *)(f + 1);
    char *s = (char *)f + head;
    f->meta = meta_copy(ctx, path, h.meta);
    for (int64_t i = 0; i < h.n && !ctx->status; i++) {   /* h.info is sorted by name */
        const st_info *e = &h.info[i];
        size_t l = strlen(e->name) + 1;
        memcpy(s, e->name, l);
        ox_tensor *t = ox_tensor_new_owned(ctx, e->dtype, e->ndim, e->shape);
        if (!t)
            break;
        f->entries[i].name = s;
        f->entries[i].tensor = t;
        f->n = i + 1;
        s += l;
        read_data(ctx, &h, e, t);
    }
    header_close(&h);
    if (ctx->status) {
        ox_st_file_free(f);
        return NULL;
    }
    return f;
}

ox_tensor *ox_st_file_get(const ox_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    ox_st_entry key = { name, NULL };
    const ox_st_entry *e = bsearch(&key, f->entries, (size_t)f->n, sizeof key, cmp_entry_name);
    return e ? e->tensor : NULL;
}

const char *ox_st_file_meta(const ox_st_file *f, const char *key)
{
    return f ? ox_st_meta_get(f->meta, key) : NULL;
}

void ox_st_file_free(ox_st_file *f)
{
    if (!f)
        return;
    for (int64_t i = 0; i < f->n; i++)
        ox_tensor_free(f->entries[i].tensor);
    ox_st_meta_free(f->meta);
    ox_free(f);
}
