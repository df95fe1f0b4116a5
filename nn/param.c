/* param.c - the parameter list (see param.h). */
#include "nn/param.h"
#include "tensor/alloc.h"

#include <string.h>

void ox_nn_params_init(ox_nn_params *ps)
{
    ps->items = NULL;
    ps->n = ps->cap = 0;
}

ox_tensor *ox_nn_params_get(const ox_nn_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0)
            return ps->items[i].t;
    return NULL;
}

ox_tensor *ox_nn_params_add(ox_ctx *ctx, ox_nn_params *ps, const char *name, int ndim, const int64_t *shape,
                            ox_nn_decay decay)
{
    if (ctx->status)
        return NULL;
    if (ox_nn_params_get(ps, name)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "parameter '%s' is registered twice", name);
        return NULL;
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 32;
        ox_nn_param *items = ox_malloc(sizeof *items * (size_t)cap);
        if (!items) {
            ox_ctx_fail(ctx, OX_ERR_NOMEM, "out of memory registering parameter '%s'", name);
            return NULL;
        }
        if (ps->n)
            memcpy(items, ps->items, sizeof *items * (size_t)ps->n);
        ox_free(ps->items);
        ps->items = items;
        ps->cap = cap;
    }
    size_t len = strlen(name) + 1;
    char *copy = ox_malloc(len);
    ox_tensor *t = copy ? ox_tensor_new_owned(ctx, OX_F32, ndim, shape) : NULL;
    if (!t || ox_tensor_require_grad(ctx, t)) {
        ox_tensor_free(t);
        ox_free(copy);
        if (!ctx->status)
            ox_ctx_fail(ctx, OX_ERR_NOMEM, "out of memory for parameter '%s'", name);
        return NULL;
    }
    memcpy(copy, name, len);
    t->name = copy;
    ps->items[ps->n++] = (ox_nn_param){ copy, t, decay };
    return t;
}

int64_t ox_nn_params_numel(const ox_nn_params *ps)
{
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++)
        n += ox_tensor_numel(ps->items[i].t);
    return n;
}

void ox_nn_params_zero_grad(ox_nn_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].t->grad)
            memset(ps->items[i].t->grad->data, 0, sizeof(float) * (size_t)ox_tensor_numel(ps->items[i].t));
}

void ox_nn_params_free(ox_nn_params *ps)
{
    for (int i = 0; i < ps->n; i++) {
        ox_tensor_free(ps->items[i].t);
        ox_free(ps->items[i].name);
    }
    ox_free(ps->items);
    ox_nn_params_init(ps);
}
