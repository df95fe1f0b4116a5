/* data.c - the byte-level corpus of data.h: loading, the 90/10 split, random training windows. */
#include "models/oryx/data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tensor/alloc.h"
#include "tensor/io.h"

uint64_t ox_oryx_data_hash(const uint8_t *bytes, int64_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (int64_t i = 0; i < n; i++) {
        h ^= bytes[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Takes ownership of buf (n bytes) after checking the sizes; frees it on error. */
static ox_status data_adopt(ox_ctx *ctx, uint8_t *buf, int64_t n, int64_t T, const char *what, ox_oryx_data *d)
{
    int64_t n_val = n / 10, n_train = n - n / 10;
    if (n == 0) {
        ox_free(buf);
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data %s: the corpus is empty", what);
    }
    if (n_train < T + 1 || n_val < 2) {
        ox_free(buf);
        return ox_ctx_fail(ctx, OX_ERR_ARG,
                           "oryx data %s: %lld bytes split into %lld training + %lld validation bytes is too short "
                           "for windows of T + 1 = %lld bytes (need >= %lld training and >= 2 validation bytes)",
                           what, (long long)n, (long long)n_train, (long long)n_val, (long long)(T + 1),
                           (long long)(T + 1));
    }
    d->bytes = buf;
    d->n = n;
    d->n_train = n_train;
    d->n_val = n_val;
    d->hash = ox_oryx_data_hash(buf, n);
    return OX_OK;
}

ox_status ox_oryx_data_load(ox_ctx *ctx, const char *path, int64_t T, ox_oryx_data *d)
{
    if (!d)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data: d must not be NULL");
    memset(d, 0, sizeof *d);
    if (ctx->status)
        return ctx->status;
    if (!path || T < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data: path must not be NULL and T (%lld) must be >= 1",
                           (long long)T);
    uint8_t *buf = NULL;
    int64_t size = 0;
    if (ox_io_read_file(ctx, path, "oryx data file", 1, &buf, &size))
        return ctx->status;
    return data_adopt(ctx, buf, size, T, path, d);
}

ox_status ox_oryx_data_from_bytes(ox_ctx *ctx, const uint8_t *bytes, int64_t n, int64_t T, ox_oryx_data *d)
{
    if (!d)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data: d must not be NULL");
    memset(d, 0, sizeof *d);
    if (ctx->status)
        return ctx->status;
    if ((!bytes && n > 0) || n < 0 || T < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data: bad buffer (n = %lld) or T (%lld) < 1", (long long)n,
                           (long long)T);
    uint8_t *buf = ox_malloc((size_t)n);
    if (!buf)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx data: out of memory for %lld bytes", (long long)n);
    if (n > 0)
        memcpy(buf, bytes, (size_t)n);
    return data_adopt(ctx, buf, n, T, "buffer", d);
}

void ox_oryx_data_free(ox_oryx_data *d)
{
    if (!d)
        return;
    ox_free(d->bytes);
    memset(d, 0, sizeof *d);
}

ox_status ox_oryx_data_sample(ox_ctx *ctx, const ox_oryx_data *d, ox_rng *rng, ox_tensor *rows)
{
    if (ctx->status)
        return ctx->status;
    if (!d || !d->bytes || !rng || !rows)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx data sample: data, rng and rows must not be NULL");
    if (ox_check_i32(ctx, "oryx data sample", rows))
        return ctx->status;
    char b1[OX_SHAPE_BUF];
    if (rows->ndim != 2 || rows->shape[0] < 1 || rows->shape[1] < 2 || rows->shape[1] > d->n_train)
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "oryx data sample: rows %s must be [B, T + 1] with 2 <= T + 1 <= %lld",
                           ox_shape_str(rows, b1), (long long)d->n_train);
    int64_t B = rows->shape[0], W = rows->shape[1];
    int32_t *r = ox_tensor_i32(rows);
    for (int64_t b = 0; b < B; b++) {
        int64_t start = (int64_t)ox_rng_below(rng, (uint64_t)(d->n_train - W + 1));
        for (int64_t t = 0; t < W; t++)
            r[b * rows->stride[0] + t * rows->stride[1]] = d->bytes[start + t];
    }
    return OX_OK;
}
