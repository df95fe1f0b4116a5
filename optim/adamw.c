/* adamw.c - the AdamW optimizer (see adamw.h): state allocation, the fused elementwise update. */
#include "optim/adamw.h"
#include "tensor/alloc.h"

#include <math.h>
#include <string.h>

ox_optim_adamw_config ox_optim_adamw_defaults(void)
{
    return (ox_optim_adamw_config){ .b1 = 0.9f, .b2 = 0.95f, .eps = 1e-8f, .wd = 0.1f };
}

ox_optim_adamw *ox_optim_adamw_new(ox_ctx *ctx, ox_nn_params *ps, ox_optim_adamw_config cfg)
{
    if (ctx->status)
        return NULL;
    /* the negated comparisons also reject NaN */
    if (!(cfg.b1 >= 0 && cfg.b1 < 1) || !(cfg.b2 >= 0 && cfg.b2 < 1) || !(cfg.eps > 0 && isfinite(cfg.eps)) ||
        !(cfg.wd >= 0 && isfinite(cfg.wd))) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "adamw: config out of range: b1 %g, b2 %g (need [0, 1)), eps %g (need > 0), "
                    "wd %g (need >= 0)", cfg.b1, cfg.b2, cfg.eps, cfg.wd);
        return NULL;
    }
    if (ox_optim_check_params(ctx, "adamw", ps, NULL))
        return NULL;
    ox_optim_adamw *opt = ox_calloc(1, sizeof *opt);
    if (!opt) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "adamw: out of memory");
        return NULL;
    }
    opt->cfg = cfg;
    opt->params = ps;
    if (ox_optim_state_init(ctx, &opt->m, ps, "optim.m.") || ox_optim_state_init(ctx, &opt->v, ps, "optim.v.")) {
        ox_optim_adamw_free(opt);
        return NULL;
    }
    return opt;
}

void ox_optim_adamw_free(ox_optim_adamw *opt)
{
    if (!opt)
        return;
    ox_optim_state_free(&opt->m);
    ox_optim_state_free(&opt->v);
    ox_free(opt->lr_scale);
    ox_free(opt->wd);
    ox_free(opt);
}

struct step_args {
    const ox_optim_adamw *opt;
    float lr, inv_bc1, inv_bc2;
};

/* The update of n elements, literally the formula of adamw.h in float; no dependence between elements,
 * so gcc vectorises it (sqrtf and the division are exact IEEE operations in vector form too, and -std=c11
 * disables FMA contraction, so the vector body and the scalar tail round identically). */
static void adamw_kernel(int64_t n, float *restrict w, const float *restrict g, float *restrict m,
                         float *restrict v, float b1, float b2, float eps, float wd, float lr, float inv_bc1,
                         float inv_bc2)
{
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i], wi = w[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - lr * ((mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps) + wd * wi);
    }
}

static void step_seg(void *arg, int i, int64_t b, int64_t e)
{
    const struct step_args *a = arg;
    const ox_optim_adamw *o = a->opt;
    const ox_nn_param *p = &o->params->items[i];
    float wd = o->wd ? o->wd[i] : p->decay == OX_NN_DECAY && p->t->ndim >= 2 ? o->cfg.wd : 0.0f;
    float lr = o->lr_scale ? a->lr * o->lr_scale[i] : a->lr;
    adamw_kernel(e - b, ox_tensor_f32(p->t) + b, ox_tensor_f32(p->t->grad) + b, ox_tensor_f32(o->m.t[i]) + b,
                 ox_tensor_f32(o->v.t[i]) + b, o->cfg.b1, o->cfg.b2, o->cfg.eps, wd, lr, a->inv_bc1,
                 a->inv_bc2);
}

ox_status ox_optim_adamw_step(ox_ctx *ctx, ox_optim_adamw *opt, float lr)
{
    if (ctx->status)
        return ctx->status;
    if (!opt)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "adamw_step: NULL optimizer");
    if (!(lr >= 0 && isfinite(lr)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "adamw_step: lr %g must be finite and >= 0", lr);
    if (ox_optim_check_params(ctx, "adamw_step", opt->params, &opt->m))
        return ctx->status;
    int64_t t = opt->t + 1;
    /* bias corrections in double, then rounded once to float */
    double bc1 = 1.0 - pow((double)opt->cfg.b1, (double)t), bc2 = 1.0 - pow((double)opt->cfg.b2, (double)t);
    struct step_args a = { opt, lr, (float)(1.0 / bc1), (float)(1.0 / bc2) };
    ox_optim_run_segments(opt->params, ctx->n_threads, step_seg, &a);
    opt->t = t;
    return OX_OK;
}

ox_status ox_optim_adamw_set_groups(ox_ctx *ctx, ox_optim_adamw *opt, const ox_optim_group *groups, int n)
{
    if (ctx->status)
        return ctx->status;
    if (!opt || n < 0 || (n > 0 && !groups))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "adamw groups: NULL optimizer or %d groups without a list", n);
    for (int g = 0; g < n; g++)
        if (!groups[g].prefix || !(groups[g].lr_scale >= 0 && isfinite(groups[g].lr_scale)) ||
            !(groups[g].wd >= 0 && isfinite(groups[g].wd)))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "adamw groups: group %d needs a prefix, lr_scale >= 0 and wd >= 0 "
                               "(got %g, %g)", g, groups[g].lr_scale, groups[g].wd);
    ox_free(opt->lr_scale);
    ox_free(opt->wd);
    opt->lr_scale = opt->wd = NULL;
    if (n == 0)
        return OX_OK;
    int P = opt->params->n;
    opt->lr_scale = ox_malloc(sizeof(float) * (size_t)(P ? P : 1));
    opt->wd = ox_malloc(sizeof(float) * (size_t)(P ? P : 1));
    if (!opt->lr_scale || !opt->wd) {
        ox_free(opt->lr_scale);
        ox_free(opt->wd);
        opt->lr_scale = opt->wd = NULL;
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "adamw groups: out of memory");
    }
    for (int i = 0; i < P; i++) {
        const ox_nn_param *p = &opt->params->items[i];
        opt->lr_scale[i] = 1.0f;
        opt->wd[i] = p->decay == OX_NN_DECAY && p->t->ndim >= 2 ? opt->cfg.wd : 0.0f;     /* the rule */
        for (int g = 0; g < n; g++)
            if (strncmp(p->name, groups[g].prefix, strlen(groups[g].prefix)) == 0) {
                opt->lr_scale[i] = groups[g].lr_scale;
                opt->wd[i] = groups[g].wd;
                break;
            }
    }
    return OX_OK;
}

ox_tensor *ox_optim_adamw_m(const ox_optim_adamw *opt, int i)
{
    return opt && i >= 0 && i < opt->m.n ? opt->m.t[i] : NULL;
}

ox_tensor *ox_optim_adamw_v(const ox_optim_adamw *opt, int i)
{
    return opt && i >= 0 && i < opt->v.n ? opt->v.t[i] : NULL;
}

ox_tensor *ox_optim_adamw_find(const ox_optim_adamw *opt, const char *name)
{
    if (!opt || !name)
        return NULL;
    ox_tensor *t = ox_optim_state_find(&opt->m, name);
    return t ? t : ox_optim_state_find(&opt->v, name);
}

int64_t ox_optim_adamw_get_step(const ox_optim_adamw *opt)
{
    return opt ? opt->t : 0;
}

ox_status ox_optim_adamw_set_step(ox_ctx *ctx, ox_optim_adamw *opt, int64_t t)
{
    if (ctx->status)
        return ctx->status;
    if (!opt || t < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "adamw_set_step: step %lld must be >= 0 (optimizer %s)", (long long)t,
                           opt ? "given" : "NULL");
    opt->t = t;
    return OX_OK;
}
