/* state.c - per-parameter optimizer state and the parallel element walk (see state.h). */
#include "optim/state.h"
#include "tensor/alloc.h"
#include "tensor/iter.h"

#include <omp.h>
#include <string.h>

ox_status ox_optim_state_init(ox_ctx *ctx, ox_optim_state *st, const ox_nn_params *ps, const char *prefix)
{
    st->n = 0;
    st->t = NULL;
    st->names = NULL;
    if (ctx->status)
        return ctx->status;
    if (!ps || !prefix)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "optim state: NULL parameter list or prefix");
    st->t = ox_calloc((size_t)ps->n + 1, sizeof *st->t);
    st->names = ox_calloc((size_t)ps->n + 1, sizeof *st->names);
    if (!st->t || !st->names) {
        ox_optim_state_free(st);
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "optim state: out of memory for %d parameters", ps->n);
    }
    size_t plen = strlen(prefix);
    for (int i = 0; i < ps->n; i++) {
        const ox_nn_param *p = &ps->items[i];
        if (ox_check_f32(ctx, "optim state", p->t))
            break;
        size_t nlen = strlen(p->name) + 1;
        st->names[i] = ox_malloc(plen + nlen);
        st->t[i] = st->names[i] ? ox_tensor_new_owned(ctx, OX_F32, p->t->ndim, p->t->shape) : NULL;
        st->n = i + 1;   /* so that free releases what this iteration made, even on failure */
        if (!st->t[i]) {
            if (!ctx->status)
                ox_ctx_fail(ctx, OX_ERR_NOMEM, "optim state: out of memory for '%s%s'", prefix, p->name);
            break;
        }
        memcpy(st->names[i], prefix, plen);
        memcpy(st->names[i] + plen, p->name, nlen);
        st->t[i]->name = st->names[i];
    }
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_optim_state_free(st);
        return s;
    }
    st->n = ps->n;
    return OX_OK;
}

ox_tensor *ox_optim_state_find(const ox_optim_state *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->names[i], name) == 0)
            return st->t[i];
    return NULL;
}

void ox_optim_state_free(ox_optim_state *st)
{
    for (int i = 0; i < st->n; i++) {
        ox_tensor_free(st->t ? st->t[i] : NULL);
        ox_free(st->names ? st->names[i] : NULL);
    }
    ox_free(st->t);
    ox_free(st->names);
    st->n = 0;
    st->t = NULL;
    st->names = NULL;
}

ox_status ox_optim_check_params(ox_ctx *ctx, const char *op, const ox_nn_params *ps, const ox_optim_state *st)
{
    if (ctx->status)
        return ctx->status;
    if (!ps)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: NULL parameter list", op);
    if (st && st->n != ps->n)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "%s: the optimizer was made for %d parameters, the list now has %d",
                           op, st->n, ps->n);
    char b0[OX_SHAPE_BUF], b1[OX_SHAPE_BUF];
    for (int i = 0; i < ps->n; i++) {
        const ox_tensor *t = ps->items[i].t, *g = t ? t->grad : NULL;
        const char *name = ps->items[i].name;
        if (!t)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: parameter '%s' has no tensor", op, name);
        if (t->dtype != OX_F32 || (g && g->dtype != OX_F32))
            return ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: parameter '%s' is not F32", op, name);
        if (!g)
            return ox_ctx_fail(ctx, OX_ERR_STATE, "%s: parameter '%s' %s has no gradient buffer", op, name,
                               ox_shape_str(t, b0));
        if (!ox_tensor_same_shape(t, g))
            return ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: parameter '%s' is %s but its gradient is %s", op, name,
                               ox_shape_str(t, b0), ox_shape_str(g, b1));
        if (!ox_tensor_is_contiguous(t) || !ox_tensor_is_contiguous(g))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: parameter '%s' %s or its gradient is not contiguous", op,
                               name, ox_shape_str(t, b0));
        if (st && !ox_tensor_same_shape(t, st->t[i]))
            return ox_ctx_fail(ctx, OX_ERR_STATE, "%s: parameter %d '%s' is %s, the optimizer state %s is %s", op,
                               i, name, ox_shape_str(t, b0), st->names[i], ox_shape_str(st->t[i], b1));
    }
    return OX_OK;
}

/* Start of thread k's range of the concatenated elements: an equal split, rounded down to 16 elements
 * (a 64-byte line) so neighbouring threads rarely write one cache line. */
static int64_t split_at(int64_t total, int k, int nt)
{
    if (k >= nt)
        return total;
    return (total * k / nt) & ~(int64_t)15;
}

void ox_optim_run_segments(const ox_nn_params *ps, int n_threads, ox_optim_seg_fn fn, void *arg)
{
    int64_t total = ox_nn_params_numel(ps);
    int nt = total >= OX_PARALLEL_MIN && n_threads > 1 ? n_threads : 1;
    if (nt == 1) {
        for (int i = 0; i < ps->n; i++)
            fn(arg, i, 0, ox_tensor_numel(ps->items[i].t));
        return;
    }
    /* Safe to split anywhere: every element's update reads and writes only that element's slots. */
#pragma omp parallel num_threads(nt)
    {
        int k = omp_get_thread_num(), nk = omp_get_num_threads();
        int64_t lo = split_at(total, k, nk), hi = split_at(total, k + 1, nk), base = 0;
        for (int i = 0; i < ps->n && base < hi; i++) {
            int64_t n = ox_tensor_numel(ps->items[i].t);
            int64_t b = lo > base ? lo - base : 0, e = hi < base + n ? hi - base : n;
            if (b < e)
                fn(arg, i, b, e);
            base += n;
        }
    }
}
