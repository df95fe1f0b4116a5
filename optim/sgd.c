/* sgd.c - SGD with momentum and optional Nesterov (see sgd.h). */
#include "optim/sgd.h"
#include "tensor/alloc.h"

#include <math.h>

ox_optim_sgd *ox_optim_sgd_new(ox_ctx *ctx, ox_nn_params *ps, ox_optim_sgd_config cfg)
{
    if (ctx->status)
        return NULL;
    if (!(cfg.momentum >= 0 && cfg.momentum < 1) || !(cfg.wd >= 0 && isfinite(cfg.wd)) ||
        (cfg.nesterov != 0 && cfg.nesterov != 1) || (cfg.nesterov && cfg.momentum == 0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "sgd: config out of range: momentum %g (need [0, 1), > 0 with nesterov), "
                    "wd %g (need >= 0), nesterov %d (need 0 or 1)", cfg.momentum, cfg.wd, cfg.nesterov);
        return NULL;
    }
    if (ox_optim_check_params(ctx, "sgd", ps, NULL))
        return NULL;
    ox_optim_sgd *opt = ox_calloc(1, sizeof *opt);
    if (!opt) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "sgd: out of memory");
        return NULL;
    }
    opt->cfg = cfg;
    opt->params = ps;
    if (ox_optim_state_init(ctx, &opt->buf, ps, "optim.buf.")) {
        ox_optim_sgd_free(opt);
        return NULL;
    }
    return opt;
}

void ox_optim_sgd_free(ox_optim_sgd *opt)
{
    if (!opt)
        return;
    ox_optim_state_free(&opt->buf);
    ox_free(opt);
}

struct step_args {
    const ox_optim_sgd *opt;
    float lr;
};

/* Two loops (heavy-ball and Nesterov) so that each inner loop is branch-free and vectorises. */
static void sgd_kernel(int64_t n, float *restrict w, const float *restrict g, float *restrict buf, float mu,
                       float wd, int nesterov, float lr)
{
    if (nesterov) {
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * w[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            w[i] = w[i] - lr * (d + mu * b);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * w[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            w[i] = w[i] - lr * b;
        }
    }
}

static void step_seg(void *arg, int i, int64_t b, int64_t e)
{
    const struct step_args *a = arg;
    const ox_optim_sgd *o = a->opt;
    const ox_nn_param *p = &o->params->items[i];
    float wd = p->decay == OX_NN_DECAY && p->t->ndim >= 2 ? o->cfg.wd : 0.0f;
    sgd_kernel(e - b, ox_tensor_f32(p->t) + b, ox_tensor_f32(p->t->grad) + b, ox_tensor_f32(o->buf.t[i]) + b,
               o->cfg.momentum, wd, o->cfg.nesterov, a->lr);
}

ox_status ox_optim_sgd_step(ox_ctx *ctx, ox_optim_sgd *opt, float lr)
{
    if (ctx->status)
        return ctx->status;
    if (!opt)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "sgd_step: NULL optimizer");
    if (!(lr >= 0 && isfinite(lr)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "sgd_step: lr %g must be finite and >= 0", lr);
    if (ox_optim_check_params(ctx, "sgd_step", opt->params, &opt->buf))
        return ctx->status;
    struct step_args a = { opt, lr };
    ox_optim_run_segments(opt->params, ctx->n_threads, step_seg, &a);
    opt->t++;
    return OX_OK;
}

ox_tensor *ox_optim_sgd_buf(const ox_optim_sgd *opt, int i)
{
    return opt && i >= 0 && i < opt->buf.n ? opt->buf.t[i] : NULL;
}

ox_tensor *ox_optim_sgd_find(const ox_optim_sgd *opt, const char *name)
{
    return opt && name ? ox_optim_state_find(&opt->buf, name) : NULL;
}

int64_t ox_optim_sgd_get_step(const ox_optim_sgd *opt)
{
    return opt ? opt->t : 0;
}

ox_status ox_optim_sgd_set_step(ox_ctx *ctx, ox_optim_sgd *opt, int64_t t)
{
    if (ctx->status)
        return ctx->status;
    if (!opt || t < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "sgd_set_step: step %lld must be >= 0 (optimizer %s)", (long long)t,
                           opt ? "given" : "NULL");
    opt->t = t;
    return OX_OK;
}
