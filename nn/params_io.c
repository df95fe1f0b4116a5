/* params_io.c - a parameter list saved to and loaded from one safetensors file by name (params_io.h). */
#include "nn/params_io.h"

#include <string.h>

#include "tensor/alloc.h"

/* One entry per parameter, in list order (owned array, ox_free). */
static ox_st_entry *entries_of(ox_ctx *ctx, const ox_nn_params *ps, const char *path)
{
    ox_st_entry *e = ox_malloc(sizeof *e * (size_t)(ps->n ? ps->n : 1));
    if (!e) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    for (int i = 0; i < ps->n; i++)
        e[i] = (ox_st_entry){ ps->items[i].name, ps->items[i].t };
    return e;
}

ox_status ox_nn_params_save(ox_ctx *ctx, const ox_nn_params *ps, const char *path, const ox_st_kv *meta,
                            int64_t n_meta)
{
    if (ctx->status)
        return ctx->status;
    if (!ps || !path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "params save: the list and the path must not be NULL");
    ox_st_entry *e = entries_of(ctx, ps, path);
    if (e)
        ox_safetensors_write(ctx, path, e, ps->n, meta, n_meta);
    ox_free(e);
    return ctx->status;
}

/* With a filter: the whole file, then each parameter by name, then every other tensor past the filter. */
static ox_status load_filtered(ox_ctx *ctx, ox_nn_params *ps, const char *path, ox_nn_params_filter allow_extra,
                               void *user, ox_st_meta **meta_out)
{
    ox_st_file *f = ox_safetensors_load(ctx, path);
    if (!f)
        return ctx->status;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    for (int i = 0; i < ps->n && !ctx->status; i++) {
        const ox_nn_param *p = &ps->items[i];
        ox_tensor *src = ox_st_file_get(f, p->name);
        if (!src)
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: missing tensor '%s'", path, p->name);
        else if (src->dtype != OX_F32)
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s' is I32, the parameter F32", path, p->name);
        else if (src->ndim != p->t->ndim ||
                 memcmp(src->shape, p->t->shape, sizeof src->shape[0] * (size_t)src->ndim) != 0)
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: tensor '%s' has shape %s, the parameter %s", path, p->name,
                        ox_shape_str(src, b1), ox_shape_str(p->t, b2));
        else
            ox_tensor_copy(ctx, p->t, src);
    }
    for (int64_t i = 0; i < f->n && !ctx->status; i++) {
        const char *name = f->entries[i].name;
        if (!ox_nn_params_get(ps, name) && !allow_extra(name, user))
            ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: unexpected tensor '%s' (no parameter has that name)", path, name);
    }
    if (!ctx->status && meta_out) {
        *meta_out = f->meta;    /* handed over */
        f->meta = NULL;
    }
    ox_st_file_free(f);
    return ctx->status;
}

ox_status ox_nn_params_load(ox_ctx *ctx, ox_nn_params *ps, const char *path, ox_nn_params_filter allow_extra,
                            void *user, ox_st_meta **meta_out)
{
    if (meta_out)
        *meta_out = NULL;
    if (ctx->status)
        return ctx->status;
    if (!ps || !path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "params load: the list and the path must not be NULL");
    if (allow_extra)
        return load_filtered(ctx, ps, path, allow_extra, user, meta_out);
    /* no extra tensor allowed: the strict reader checks names and shapes first and reads straight into the
     * parameters */
    ox_st_entry *e = entries_of(ctx, ps, path);
    if (e)
        ox_safetensors_read_strict(ctx, path, e, ps->n, meta_out);
    ox_free(e);
    return ctx->status;
}
