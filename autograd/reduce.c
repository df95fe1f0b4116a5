/* reduce.c - reductions over one axis or over all elements: sum, mean, max, logsumexp.
 *
 * Math (x viewed as [outer, n, inner], the reduced axis in the middle; y is [outer, inner], with the axis
 * kept as size 1 when keepdim, or the 0-d [] for the *_all forms, which view x as [1, numel, 1]):
 *     sum:        y = sum_i x_i                          dx_i += dy
 *     mean:       y = (1/n) sum_i x_i                    dx_i += dy / n
 *     max:        y = max_i x_i                          dx_a += dy, a = the FIRST i with x_i == y
 *     logsumexp:  y = m + log sum_i exp(x_i - m)         dx_i += dy exp(x_i - y)
 * with m = max_i x_i (0 when m is infinite), so large inputs do not overflow and a row of -inf gives
 * -inf. A NaN in a row makes max and logsumexp NaN (PyTorch does the same). Empty axis: sum 0, mean NaN,
 * logsumexp -inf, max an error (it has no element to pick).
 *
 * Kernels. A non-contiguous input is first copied to a contiguous one. The work is cut into tasks
 * (o, c, b): row block o of outer, chunk c of the reduced axis (rc rows), block b of inner (kc elements).
 *  - inner == 1 (last axis, *_all): a task reduces rc <= 16384 consecutive elements with the 16-lane
 *    kernels of lanes.h;
 *  - inner > 1: a task walks its rc rows and updates kc accumulators, the inner axis being the
 *    vectorised loop.
 * When the axis has several chunks, each task writes a partial result and the partials are combined
 * in chunk order. Tasks run in parallel (OpenMP, static schedule) only when x has at least
 * OX_PARALLEL_MIN elements. The split depends on the shape alone, never on the thread count or on
 * timing, and every output is computed by one task in a fixed order: results are bit-identical for
 * any number of threads.
 *
 * Saved for backward: the argmax (I32 indices along the axis, [outer, inner]) for max, the contiguous
 * input for logsumexp (its output y is the node's output). Sum and mean need nothing. */
#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <math.h>
#include <string.h>

enum red { RED_SUM, RED_MEAN, RED_MAX, RED_LSE };

static const char *const red_names[2][4] = {
    { "sum", "mean", "max", "logsumexp" },
    { "sum_all", "mean_all", "max_all", "logsumexp_all" },
};

/* ---------------------------------------------------------------- work split */

#define CHUNK 16384     /* elements of x per task, about (a quarter of a 256 KiB L2) */
#define KBLOCK 512      /* inner elements per task: 2 KiB accumulator rows */
#define MIN_ROWS 32     /* rows per chunk at least, so partials stay small */

struct plan {
    int64_t outer, n, inner;
    int64_t rc, nc;     /* rows of the reduced axis per chunk, number of chunks */
    int64_t kc, nk;     /* inner elements per block, number of blocks */
};

/* For outer, n, inner >= 1. Depends on the shape only. */
static struct plan make_plan(int64_t outer, int64_t n, int64_t inner)
{
    struct plan p = { outer, n, inner, 0, 0, 0, 0 };
    p.kc = inner < KBLOCK ? inner : KBLOCK;
    p.nk = (inner + p.kc - 1) / p.kc;
    p.rc = inner == 1 ? CHUNK : (CHUNK / p.kc > MIN_ROWS ? CHUNK / p.kc : MIN_ROWS);
    if (p.rc > n)
        p.rc = n;
    p.nc = (n + p.rc - 1) / p.rc;
    return p;
}

enum stage {
    ST_SUM,         /* out = sum of the chunk */
    ST_MAX,         /* out = max of the chunk */
    ST_ARGMAX,      /* out = max of the chunk, idx = its first index along the axis */
    ST_SUMEXP,      /* out = sum of exp(x - shift) over the chunk */
    ST_BACK_SUM,    /* g += scale * dy over the chunk */
    ST_BACK_LSE     /* g += dy * exp(x - y) over the chunk (y = shift) */
};

struct job {
    struct plan p;
    enum stage st;
    const float *x;         /* contiguous [outer, n, inner] */
    float *out;             /* [outer, nc, inner]: partials, or y itself when nc == 1 */
    int32_t *idx;           /* ST_ARGMAX: laid out as out */
    const float *shift;     /* [outer, inner]: the shift of ST_SUMEXP, y for ST_BACK_LSE */
    const float *dy;        /* [outer, inner] */
    float *g;               /* contiguous [outer, n, inner] */
    float scale;
};

/* Task of a reduction over the last axis (inner == 1): elements r0 .. r0+len-1 of row o. */
static void task_row(const struct job *j, int64_t o, int64_t c, int64_t r0, int64_t len)
{
    const struct plan *p = &j->p;
    const float *x = j->x + o * p->n + r0;
    int64_t at = o * p->nc + c;
    switch (j->st) {
    case ST_SUM: j->out[at] = lanes_sum(x, len); break;
    case ST_MAX: j->out[at] = lanes_max(x, len); break;
    case ST_ARGMAX: {
        int64_t a;
        j->out[at] = lanes_argmax(x, len, &a);
        j->idx[at] = (int32_t)(r0 + a);
        break;
    }
    case ST_SUMEXP: j->out[at] = lanes_sum_exp(x, len, j->shift[o]); break;
    case ST_BACK_SUM: {
        float d = j->scale * j->dy[o], *g = j->g + o * p->n + r0;
        for (int64_t i = 0; i < len; i++)
            g[i] += d;
        break;
    }
    case ST_BACK_LSE: {
        float d = j->dy[o], y = j->shift[o], *g = j->g + o * p->n + r0;
        if (y == -INFINITY)         /* every x_i is -inf: no element has any weight */
            break;
        for (int64_t i = 0; i < len; i++)
            g[i] += d * expf(x[i] - y);
        break;
    }
    }
}

/* Task of a reduction over a middle axis (inner > 1): rows r0 .. r0+len-1 (len >= 1), inner elements
 * k0 .. k0+kl-1 of row block o. The loops over k are the vectorised ones. */
static void task_block(const struct job *j, int64_t o, int64_t c, int64_t r0, int64_t len, int64_t k0,
                       int64_t kl)
{
    const struct plan *p = &j->p;
    int64_t inner = p->inner;
    const float *x = j->x + (o * p->n + r0) * inner + k0;
    float *dst = j->out + (o * p->nc + c) * inner + k0;
    switch (j->st) {
    case ST_SUM:
        memcpy(dst, x, sizeof(float) * (size_t)kl);
        for (int64_t r = 1; r < len; r++) {
            const float *xr = x + r * inner;
            for (int64_t k = 0; k < kl; k++)
                dst[k] += xr[k];
        }
        break;
    case ST_MAX:
        memcpy(dst, x, sizeof(float) * (size_t)kl);
        for (int64_t r = 1; r < len; r++) {
            const float *xr = x + r * inner;
            for (int64_t k = 0; k < kl; k++)
                dst[k] = lanes_takes(xr[k], dst[k]) ? xr[k] : dst[k];
        }
        break;
    case ST_ARGMAX: {
        int32_t *id = j->idx + (o * p->nc + c) * inner + k0;
        memcpy(dst, x, sizeof(float) * (size_t)kl);
        for (int64_t k = 0; k < kl; k++)
            id[k] = (int32_t)r0;
        for (int64_t r = 1; r < len; r++) {
            const float *xr = x + r * inner;
            int32_t rr = (int32_t)(r0 + r);
            for (int64_t k = 0; k < kl; k++) {
                int take = lanes_takes(xr[k], dst[k]);
                dst[k] = take ? xr[k] : dst[k];
                id[k] = take ? rr : id[k];
            }
        }
        break;
    }
    case ST_SUMEXP: {
        const float *sh = j->shift + o * inner + k0;
        for (int64_t k = 0; k < kl; k++)
            dst[k] = expf(x[k] - sh[k]);
        for (int64_t r = 1; r < len; r++) {
            const float *xr = x + r * inner;
            for (int64_t k = 0; k < kl; k++)
                dst[k] += expf(xr[k] - sh[k]);
        }
        break;
    }
    case ST_BACK_SUM: {
        const float *d = j->dy + o * inner + k0;
        float s = j->scale;
        for (int64_t r = 0; r < len; r++) {
            float *g = j->g + (o * p->n + r0 + r) * inner + k0;
            for (int64_t k = 0; k < kl; k++)
                g[k] += s * d[k];
        }
        break;
    }
    case ST_BACK_LSE: {
        const float *d = j->dy + o * inner + k0, *y = j->shift + o * inner + k0;
        for (int64_t r = 0; r < len; r++) {
            float *g = j->g + (o * p->n + r0 + r) * inner + k0;
            const float *xr = x + r * inner;
            for (int64_t k = 0; k < kl; k++)      /* y == -inf: every x is -inf, no weight */
                g[k] += y[k] == -INFINITY ? 0.0f : d[k] * expf(xr[k] - y[k]);
        }
        break;
    }
    }
}

static void do_task(const struct job *j, int64_t t)
{
    const struct plan *p = &j->p;
    int64_t o = t / (p->nc * p->nk), c = t / p->nk % p->nc, b = t % p->nk;
    int64_t r0 = c * p->rc, len = p->n - r0 < p->rc ? p->n - r0 : p->rc;
    if (p->inner == 1) {
        task_row(j, o, c, r0, len);
    } else {
        int64_t k0 = b * p->kc, kl = p->inner - k0 < p->kc ? p->inner - k0 : p->kc;
        task_block(j, o, c, r0, len, k0, kl);
    }
}

/* Runs every task. Each task writes its own outputs (partials, or its own rows of g), so the split
 * between threads changes nothing in the results. */
static void run(const struct job *j, int n_threads)
{
    const struct plan *p = &j->p;
    int64_t nt = p->outer * p->nc * p->nk;
    if (n_threads > 1 && nt > 1 && p->outer * p->n * p->inner >= OX_PARALLEL_MIN) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t t = 0; t < nt; t++)
            do_task(j, t);
    } else {
        for (int64_t t = 0; t < nt; t++)
            do_task(j, t);
    }
}

/* y[o, k] = part[o, 0, k] + part[o, 1, k] + ... in chunk order. */
static void combine_sum(const struct plan *p, const float *part, float *y)
{
    int64_t inner = p->inner;
    for (int64_t o = 0; o < p->outer; o++) {
        const float *po = part + o * p->nc * inner;
        float *yo = y + o * inner;
        memcpy(yo, po, sizeof(float) * (size_t)inner);
        for (int64_t c = 1; c < p->nc; c++)
            for (int64_t k = 0; k < inner; k++)
                yo[k] += po[c * inner + k];
    }
}

/* y[o, k] = max over chunks in order; a later chunk wins only when strictly larger (or the first NaN),
 * so idx (if not NULL) keeps the first maximal element. */
static void combine_max(const struct plan *p, const float *part, const int32_t *pidx, float *y, int32_t *idx)
{
    int64_t inner = p->inner;
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t k = 0; k < inner; k++) {
            int64_t at = o * p->nc * inner + k;
            float m = part[at];
            int32_t a = pidx ? pidx[at] : 0;
            for (int64_t c = 1; c < p->nc; c++)
                if (lanes_takes(part[at + c * inner], m)) {
                    m = part[at + c * inner];
                    a = pidx ? pidx[at + c * inner] : 0;
                }
            y[o * inner + k] = m;
            if (idx)
                idx[o * inner + k] = a;
        }
}

/* ---------------------------------------------------------------- backward */

struct reduce_saved {
    ox_tensor *xc;          /* logsumexp: the input, contiguous */
    int32_t *argmax;        /* max: [outer, inner], index along the axis */
};

/* g[o, a, k] += dy[o, k] with a = argmax[o, k], for one row block o */
static void scatter_max(float *g, const float *dy, const int32_t *argmax, int64_t o, int64_t n, int64_t inner)
{
    for (int64_t k = 0; k < inner; k++)
        g[(o * n + argmax[o * inner + k]) * inner + k] += dy[o * inner + k];
}

static ox_status reduce_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, node->in[0]);
    if (!g || !y->grad)
        return ctx->status;
    enum red kind = (enum red)node->i[0];
    int64_t outer = node->i[1], n = node->i[2], inner = node->i[3];
    if (outer * n * inner == 0)
        return OX_OK;
    const struct reduce_saved *sv = node->saved;
    const float *dy = ox_tensor_f32(y->grad);
    float *gx = ox_tensor_f32(g);
    if (kind == RED_MAX) {
        /* each output sends its gradient to one element of its own row: no two outputs collide */
        if (ctx->n_threads > 1 && outer > 1 && outer * inner >= OX_PARALLEL_MIN) {
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static)
            for (int64_t o = 0; o < outer; o++)
                scatter_max(gx, dy, sv->argmax, o, n, inner);
        } else {
            for (int64_t o = 0; o < outer; o++)
                scatter_max(gx, dy, sv->argmax, o, n, inner);
        }
        return OX_OK;
    }
    struct job j = { make_plan(outer, n, inner), ST_BACK_SUM, NULL, NULL, NULL, NULL, dy, gx, 1.0f };
    if (kind == RED_MEAN)
        j.scale = (float)(1.0 / (double)n);
    if (kind == RED_LSE) {
        j.st = ST_BACK_LSE;
        j.x = ox_tensor_f32(sv->xc);
        j.shift = ox_tensor_f32(y);
    }
    run(&j, ctx->n_threads);
    return OX_OK;
}

static const ox_ag_op reduce_op = { "reduce", reduce_backward };

/* ---------------------------------------------------------------- forward */

/* y [outer, inner] from the contiguous x [outer, n, inner] (n >= 1, outer, inner >= 1); am: the
 * argmax output for max (NULL when no gradient is needed). Scratch comes from the arena. */
static void reduce_forward(ox_ctx *ctx, enum red kind, const float *x, float *y, int32_t *am, int64_t outer,
                           int64_t n, int64_t inner)
{
    struct plan p = make_plan(outer, n, inner);
    int64_t m = outer * inner;
    float *part = p.nc > 1 ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(m * p.nc)) : NULL;
    int32_t *pidx = am && p.nc > 1 ? ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(m * p.nc)) : am;
    float *s = kind == RED_LSE ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)m) : NULL;
    if (ctx->status)
        return;
    struct job j = { p, ST_SUM, x, part ? part : y, pidx, NULL, NULL, NULL, 1.0f };
    switch (kind) {
    case RED_SUM:
    case RED_MEAN:
        run(&j, ctx->n_threads);
        if (part)
            combine_sum(&p, part, y);
        if (kind == RED_MEAN) {
            float inv = (float)(1.0 / (double)n);
            for (int64_t i = 0; i < m; i++)
                y[i] *= inv;
        }
        break;
    case RED_MAX:
        j.st = am ? ST_ARGMAX : ST_MAX;
        run(&j, ctx->n_threads);
        if (part)
            combine_max(&p, part, pidx, y, am);
        break;
    case RED_LSE:
        /* pass 1: y = max; then y = the shift (the max, or 0 when it is infinite) */
        j.st = ST_MAX;
        run(&j, ctx->n_threads);
        if (part)
            combine_max(&p, part, NULL, y, NULL);
        for (int64_t i = 0; i < m; i++)
            y[i] = isfinite(y[i]) ? y[i] : 0.0f;
        /* pass 2: s = sum exp(x - shift); y = shift + log(s) */
        j.st = ST_SUMEXP;
        j.shift = y;
        j.out = part ? part : s;
        run(&j, ctx->n_threads);
        if (part)
            combine_sum(&p, part, s);
        for (int64_t i = 0; i < m; i++)
            y[i] += logf(s[i]);
        break;
    }
}

static ox_tensor *reduce(ox_ctx *ctx, enum red kind, ox_tensor *x, int axis, int keepdim, int all)
{
    if (ctx->status || !x)
        return NULL;
    const char *name = red_names[all][kind];
    if (ox_check_f32(ctx, name, x))
        return NULL;
    int64_t outer = 1, n = 1, inner = 1, shape[OX_MAX_DIMS] = { 0 };
    int nd = 0;
    if (all) {
        n = ox_tensor_numel(x);
    } else {
        int a = ox_check_axis(ctx, name, x, axis);
        if (a < 0)
            return NULL;
        for (int d = 0; d < x->ndim; d++) {
            if (d < a)
                outer *= x->shape[d];
            else if (d > a)
                inner *= x->shape[d];
            if (d != a || keepdim)
                shape[nd++] = d == a ? 1 : x->shape[d];
        }
        n = x->shape[a];
    }
    char b[OX_SHAPE_BUF];
    if (kind == RED_MAX && n == 0) {
        if (all)
            ox_ctx_fail(ctx, OX_ERR_ARG, "%s: cannot take the max of an empty tensor (shape %s)", name,
                        ox_shape_str(x, b));
        else
            ox_ctx_fail(ctx, OX_ERR_ARG, "%s: cannot take the max of an empty axis (axis %d of shape %s)",
                        name, axis, ox_shape_str(x, b));
        return NULL;
    }
    if (kind == RED_MAX && n > INT32_MAX) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: %lld elements along the reduced axis exceed the I32 argmax range "
                    "(shape %s)", name, (long long)n, ox_shape_str(x, b));
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    if (!y)
        return NULL;
    /* what backward needs is allocated before the mark; scratch after it is released at the end */
    struct reduce_saved *sv = NULL;
    if (ox_ag_needs_grad(ctx, 1, &x) && (kind == RED_MAX || kind == RED_LSE)) {
        sv = ox_ctx_alloc(ctx, sizeof *sv);
        if (!sv)
            return NULL;
        sv->xc = kind == RED_LSE ? ox_tensor_contiguous(ctx, x) : NULL;
        sv->argmax = kind == RED_MAX ? ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(outer * inner)) : NULL;
        if (ctx->status)
            return NULL;
    }
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *yv = ox_tensor_f32(y);
    int64_t m = outer * inner;
    if (m > 0 && n == 0) {
        float v = kind == RED_SUM ? 0.0f : kind == RED_MEAN ? NAN : -INFINITY;
        for (int64_t i = 0; i < m; i++)
            yv[i] = v;
    } else if (m > 0) {
        ox_tensor *xc = sv && sv->xc ? sv->xc : ox_tensor_contiguous(ctx, x);
        if (xc)
            reduce_forward(ctx, kind, ox_tensor_f32(xc), yv, sv ? sv->argmax : NULL, outer, n, inner);
    }
    ox_arena_rewind(&ctx->arena, mark);
    if (ctx->status)
        return NULL;
    ox_ag_node *node = ox_ag_record(ctx, &reduce_op, 1, &x, 1, &y);
    if (node) {
        node->saved = sv;
        node->i[0] = kind;
        node->i[1] = outer;
        node->i[2] = n;
        node->i[3] = inner;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_sum(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim) { return reduce(ctx, RED_SUM, x, axis, keepdim, 0); }
ox_tensor *ox_ag_mean(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim) { return reduce(ctx, RED_MEAN, x, axis, keepdim, 0); }
ox_tensor *ox_ag_max(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim) { return reduce(ctx, RED_MAX, x, axis, keepdim, 0); }
ox_tensor *ox_ag_logsumexp(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim) { return reduce(ctx, RED_LSE, x, axis, keepdim, 0); }
ox_tensor *ox_ag_sum_all(ox_ctx *ctx, ox_tensor *x) { return reduce(ctx, RED_SUM, x, 0, 0, 1); }
ox_tensor *ox_ag_mean_all(ox_ctx *ctx, ox_tensor *x) { return reduce(ctx, RED_MEAN, x, 0, 0, 1); }
ox_tensor *ox_ag_max_all(ox_ctx *ctx, ox_tensor *x) { return reduce(ctx, RED_MAX, x, 0, 0, 1); }
ox_tensor *ox_ag_logsumexp_all(ox_ctx *ctx, ox_tensor *x) { return reduce(ctx, RED_LSE, x, 0, 0, 1); }
