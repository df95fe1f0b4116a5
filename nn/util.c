/* util.c - helpers shared by the nn/ modules (see util.h). */
#include "nn/util.h"

#include <stdio.h>

int ox_nn_fold_rows(const ox_tensor *x, int64_t *rows, int64_t *rs, int64_t *cs)
{
    int last = x->ndim - 1;
    int64_t n = x->shape[last];
    *cs = n > 1 ? x->stride[last] : 1;
    if (n > 1 && *cs == 0)
        return 0;
    int64_t r = 1, row_stride = 0, expect = 0;
    int seen = 0;
    for (int d = last - 1; d >= 0; d--) {
        r *= x->shape[d];
        if (x->shape[d] == 1)
            continue;
        if (!seen) {
            row_stride = x->stride[d];
            if (row_stride == 0)
                return 0;
            expect = row_stride * x->shape[d];
            seen = 1;
        } else {
            if (x->stride[d] != expect)
                return 0;
            expect *= x->shape[d];
        }
    }
    *rows = r;
    *rs = seen ? row_stride : n * *cs;
    return 1;
}

ox_tensor *ox_nn_unit_rows(ox_ctx *ctx, ox_tensor *x, int64_t *rows, int64_t *rs)
{
    if (ctx->status || !x)
        return NULL;
    int64_t cs;
    if (ox_nn_fold_rows(x, rows, rs, &cs) && cs == 1)
        return x;
    ox_tensor *c = ox_tensor_empty_like(ctx, x);
    if (!c || ox_tensor_copy(ctx, c, x))
        return NULL;
    ox_nn_fold_rows(c, rows, rs, &cs);
    return c;
}

ox_tensor *ox_nn_param_new(ox_ctx *ctx, ox_nn_params *ps, const char *prefix, const char *suffix, int ndim,
                           const int64_t *shape, ox_nn_decay decay)
{
    if (ctx->status)
        return NULL;
    char name[OX_NN_NAME_MAX];
    int len = snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    if (len < 0 || len >= (int)sizeof name) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "parameter name '%s.%s' is longer than %d characters", prefix, suffix,
                    OX_NN_NAME_MAX - 1);
        return NULL;
    }
    return ox_nn_params_add(ctx, ps, name, ndim, shape, decay);
}
