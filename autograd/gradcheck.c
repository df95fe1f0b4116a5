/* gradcheck.c - central finite differences against the tape's gradients (see gradcheck.h). */
#include "autograd/gradcheck.h"
#include "tensor/alloc.h"
#include "tensor/rng.h"

#include <math.h>
#include <string.h>

ox_gradcheck_opts ox_gradcheck_defaults(void)
{
    ox_gradcheck_opts o = { 1e-3, 1e-2, 1e-3, 1e-2, 0, 1 };
    return o;
}

/* L = sum(R * out) in double; NAN on failure (error recorded). */
static double eval_loss(ox_ctx *ctx, ox_gradcheck_fn f, void *arg, ox_tensor *const *in, const float *r,
                        int64_t n_out)
{
    ox_tensor *out = f(ctx, in, arg);
    if (!out)
        return NAN;
    if (ox_tensor_numel(out) != n_out) {
        ox_ctx_fail(ctx, OX_ERR_STATE, "gradcheck: the function's output size changed between calls");
        return NAN;
    }
    ox_tensor *c = ox_tensor_contiguous(ctx, out);
    if (!c)
        return NAN;
    const float *y = ox_tensor_f32(c);
    double s = 0;
    for (int64_t i = 0; i < n_out; i++)
        s += (double)r[i] * (double)y[i];
    return s;
}

ox_status ox_gradcheck(ox_ctx *ctx, ox_gradcheck_fn f, void *arg, int n_in, ox_tensor *const *inputs,
                       const ox_gradcheck_opts *opts)
{
    if (ctx->status)
        return ctx->status;
    for (int k = 0; k < n_in; k++) {
        ox_tensor *x = inputs[k];
        if (x->dtype == OX_F32 && (!x->requires_grad || !x->grad || !ox_tensor_is_contiguous(x)))
            return ox_ctx_fail(ctx, OX_ERR_ARG,
                               "gradcheck: input %d must be a contiguous leaf with a gradient", k);
    }
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int grad_was = ox_ag_set_grad_enabled(ctx, 1);
    float *r = NULL;
    double *an = NULL;
    ox_status st = OX_OK;

    /* analytic gradients, seeded with R */
    ox_ag_zero_grad(inputs, n_in);
    ox_tensor *out = f(ctx, inputs, arg);
    if (!out) {
        st = ctx->status;
        goto done;
    }
    int64_t n_out = ox_tensor_numel(out);
    r = ox_malloc(sizeof(float) * (size_t)(n_out ? n_out : 1));
    if (!r) {
        st = ox_ctx_fail(ctx, OX_ERR_NOMEM, "gradcheck: out of memory");
        goto done;
    }
    ox_rng rng = ox_rng_seed(opts->seed);
    for (int64_t i = 0; i < n_out; i++)
        r[i] = (float)ox_rng_normal(&rng);
    ox_tensor *seed = ox_tensor_from_buffer(ctx, OX_F32, out->ndim, out->shape, r);
    if (!seed || ox_ag_backward_seeded(ctx, out, seed)) {
        st = ctx->status;
        goto done;
    }
    ctx->tape = NULL;
    ctx->tape_len = 0;
    ox_arena_rewind(&ctx->arena, mark);

    ox_ag_set_grad_enabled(ctx, 0);
    for (int k = 0; k < n_in && st == OX_OK; k++) {
        ox_tensor *x = inputs[k];
        if (x->dtype != OX_F32)
            continue;
        int64_t n = ox_tensor_numel(x);
        an = ox_malloc(sizeof(double) * (size_t)(n ? n : 1));
        if (!an) {
            st = ox_ctx_fail(ctx, OX_ERR_NOMEM, "gradcheck: out of memory");
            break;
        }
        for (int64_t i = 0; i < n; i++)
            an[i] = ox_tensor_f32(x->grad)[i];
        int64_t checks = opts->max_elems > 0 && opts->max_elems < n ? opts->max_elems : n;
        double max_fd = 0;
        float *xv = ox_tensor_f32(x);
        for (int64_t c = 0; c < checks; c++) {
            int64_t i = checks == n ? c : c * n / checks;
            float orig = xv[i];
            xv[i] = orig + (float)opts->eps;
            double hi = (double)xv[i];
            double lp = eval_loss(ctx, f, arg, inputs, r, n_out);
            ox_arena_rewind(&ctx->arena, mark);
            xv[i] = orig - (float)opts->eps;
            double lo = (double)xv[i];
            double lm = eval_loss(ctx, f, arg, inputs, r, n_out);
            ox_arena_rewind(&ctx->arena, mark);
            xv[i] = orig;
            if (ctx->status) {
                st = ctx->status;
                break;
            }
            double fd = (lp - lm) / (hi - lo);      /* the actual float step, not the nominal one */
            if (fabs(fd) > max_fd)
                max_fd = fabs(fd);
            double tol = opts->rtol * fmax(fabs(fd), fabs(an[i])) + opts->atol;
            if (!isfinite(fd) || !isfinite(an[i])) {
                st = ox_ctx_fail(ctx, OX_ERR_NUMERIC,
                                 "gradcheck: input %d element %lld: non-finite %s gradient (analytic %.6g, "
                                 "numeric %.6g)", k, (long long)i, isfinite(an[i]) ? "numeric" : "analytic",
                                 an[i], fd);
                break;
            }
            if (!(fabs(fd - an[i]) <= tol)) {
                st = ox_ctx_fail(ctx, OX_ERR_MISMATCH,
                                 "gradcheck: input %d element %lld: analytic %.6g, numeric %.6g (tolerance %.3g)",
                                 k, (long long)i, an[i], fd, tol);
                break;
            }
        }
        if (st == OX_OK && max_fd < opts->min_scale)
            st = ox_ctx_fail(ctx, OX_ERR_ARG,
                             "gradcheck: input %d: largest numeric gradient %.3g is below %.3g; scale the "
                             "inputs so gradients are of order one", k, max_fd, opts->min_scale);
        ox_free(an);
        an = NULL;
    }

done:
    ox_free(r);
    ox_free(an);
    ctx->tape = NULL;
    ctx->tape_len = 0;
    ox_arena_rewind(&ctx->arena, mark);
    ox_ag_set_grad_enabled(ctx, grad_was);
    return st;
}
