/* layernorm.c - LayerNorm over the last axis (Ba et al. 2016, torch.nn.functional.layer_norm with
 * normalized_shape = [D]) as one fused op: forward kernel, backward kernel, tape glue.
 *
 * Math, per row x of length D (any leading axes; y has x's shape), weight w [D], bias b [D] or none:
 *     m = (1/D) sum_j x_j            v = (1/D) sum_j (x_j - m)^2       (biased variance, as PyTorch)
 *     r = 1 / sqrt(v + eps)          xh_j = (x_j - m) r                y_j = xh_j w_j + b_j
 * Backward, with gh_j = dy_j w_j:
 *     dx_j += r (gh_j - (1/D) sum_k gh_k - xh_j (1/D) sum_k gh_k xh_k)
 *     dw_j += sum_rows dy_j xh_j          db_j += sum_rows dy_j
 *
 * Kernels: the variance is two-pass (the mean, then the squared deviations from it), which stays accurate
 * for rows with a large mean where E[x^2] - m^2 cancels. Row sums use 16 lanes combined in a fixed order
 * (lanes.h). Rows are split between threads (OpenMP, static) in blocks of LN_ROW_BLOCK when x has at
 * least OX_PARALLEL_MIN elements; dw and db are summed per block into partials added in block order. Every
 * sum has a fixed order, so results are bit-identical at any thread count.
 *
 * Saved for backward: the rows of x (x itself when contiguous, else a contiguous copy), m and r per row. */
#include "autograd/lanes.h"
#include "autograd/ops.h"
#include "tensor/iter.h"

#include <math.h>
#include <string.h>

/* Rows per block of the dw / db partial sums (and per unit of parallel work). */
#define LN_ROW_BLOCK 32

typedef struct ln_saved {
    ox_tensor *xc;          /* [rows, D] contiguous */
    float *mean, *rstd;     /* [rows] */
} ln_saved;

/* sum_j (x_j - m)^2, 16 lanes in a fixed order */
static float sum_sq_dev(const float *x, int64_t n, float m)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++) {
            float e = x[i + j] - m;
            acc[j] += e * e;
        }
    for (int j = 0; i < n; i++, j++) {
        float e = x[i] - m;
        acc[j] += e * e;
    }
    return lanes_combine(acc);
}

/* sum_j dy_j w_j (x_j - m), 16 lanes in a fixed order */
static float sum_gh_dev(const float *dy, const float *w, const float *x, int64_t n, float m)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++)
            acc[j] += dy[i + j] * w[i + j] * (x[i + j] - m);
    for (int j = 0; i < n; i++, j++)
        acc[j] += dy[i] * w[i] * (x[i] - m);
    return lanes_combine(acc);
}

/* ---------------------------------------------------------------- forward */

/* rows [r0, r1): mean, rstd and y */
static void forward_rows(const float *x, const float *w, const float *b, float *y, float *mean, float *rstd,
                         int64_t r0, int64_t r1, int64_t D, float eps)
{
    float inv_d = 1.0f / (float)D;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float m = lanes_sum(xr, D) * inv_d;
        float rs = 1.0f / sqrtf(sum_sq_dev(xr, D, m) * inv_d + eps);
        mean[r] = m;
        rstd[r] = rs;
        if (b)
            for (int64_t j = 0; j < D; j++)
                yr[j] = (xr[j] - m) * rs * w[j] + b[j];
        else
            for (int64_t j = 0; j < D; j++)
                yr[j] = (xr[j] - m) * rs * w[j];
    }
}

/* ---------------------------------------------------------------- backward */

/* Row block k: dx of its rows ((+)= by `fresh`) and its partials pw, pb of dw, db (either may be NULL). */
static void backward_block(const ln_saved *s, const float *w, const float *dy, float *dx, int fresh, float *pw,
                           float *pb, int64_t k, int64_t rows, int64_t D)
{
    float inv_d = 1.0f / (float)D;
    if (pw)
        memset(pw, 0, sizeof(float) * (size_t)D);
    if (pb)
        memset(pb, 0, sizeof(float) * (size_t)D);
    int64_t r1 = (k + 1) * LN_ROW_BLOCK < rows ? (k + 1) * LN_ROW_BLOCK : rows;
    for (int64_t r = k * LN_ROW_BLOCK; r < r1; r++) {
        const float *x = ox_tensor_f32(s->xc) + r * D, *g = dy + r * D;
        float m = s->mean[r], rs = s->rstd[r];
        if (dx) {
            /* c1 = (1/D) sum gh, c2 = (1/D) sum gh xh */
            float c1 = lanes_dot(g, w, D) * inv_d, c2 = sum_gh_dev(g, w, x, D, m) * rs * inv_d;
            float *d = dx + r * D;
            if (fresh)
                for (int64_t j = 0; j < D; j++)
                    d[j] = rs * (g[j] * w[j] - c1 - (x[j] - m) * rs * c2);
            else
                for (int64_t j = 0; j < D; j++)
                    d[j] += rs * (g[j] * w[j] - c1 - (x[j] - m) * rs * c2);
        }
        if (pw)
            for (int64_t j = 0; j < D; j++)
                pw[j] += g[j] * (x[j] - m) * rs;
        if (pb)
            for (int64_t j = 0; j < D; j++)
                pb[j] += g[j];
    }
}

static ox_status layernorm_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const ln_saved *s = node->saved;
    ox_tensor *y = node->out[0], *w = node->in[1];
    int fresh = 0;
    ox_tensor *gx = ox_ag_grad_fresh(ctx, node->in[0], &fresh);
    ox_tensor *gw = ox_ag_grad(ctx, w);
    ox_tensor *gb = node->n_in > 2 ? ox_ag_grad(ctx, node->in[2]) : NULL;
    if (ctx->status || !y->grad)
        return ctx->status;
    int64_t D = w->shape[0], rows = D ? ox_tensor_numel(y) / D : 0;
    if (rows == 0 || D == 0)
        return OX_OK;
    int64_t nb = (rows + LN_ROW_BLOCK - 1) / LN_ROW_BLOCK;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    float *pw = gw ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nb * D)) : NULL;
    float *pb = gb ? ox_ctx_alloc(ctx, sizeof(float) * (size_t)(nb * D)) : NULL;
    if (ctx->status)
        return ctx->status;
    const float *wv = ox_tensor_f32(w), *dy = ox_tensor_f32(y->grad);
    float *dx = gx ? ox_tensor_f32(gx) : NULL;
    int nt = ctx->n_threads > 1 && nb > 1 && rows * D >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
    /* blocks are independent: each writes its own rows of dx and its own partials */
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
    for (int64_t k = 0; k < nb; k++)
        backward_block(s, wv, dy, dx, fresh, pw ? pw + k * D : NULL, pb ? pb + k * D : NULL, k, rows, D);
    for (int p = 0; p < 2; p++) {
        ox_tensor *gt = p ? gb : gw;
        const float *part = p ? pb : pw;
        if (!gt)
            continue;
        float *g = ox_tensor_f32(gt);
        for (int64_t k = 0; k < nb; k++)
            for (int64_t j = 0; j < D; j++)
                g[j] += part[k * D + j];
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op layernorm_op = { "layernorm", layernorm_backward };

ox_tensor *ox_ag_layernorm(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b, double eps)
{
    if (ctx->status || !x || !w)
        return NULL;
    if (ox_check_f32(ctx, "layernorm", x) || ox_check_f32(ctx, "layernorm", w) ||
        (b && ox_check_f32(ctx, "layernorm", b)))
        return NULL;
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF], b3[OX_SHAPE_BUF];
    if (x->ndim < 1 || w->ndim != 1 || w->shape[0] != x->shape[x->ndim - 1] ||
        (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "layernorm: input %s, weight %s and bias %s do not fit (want x [..., D], "
                    "w [D], b [D] or none)", ox_shape_str(x, b1), ox_shape_str(w, b2), b ? ox_shape_str(b, b3) : "none");
        return NULL;
    }
    if (!(eps >= 0.0) || !isfinite((float)eps)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "layernorm: eps %g must be a finite float >= 0 (PyTorch's default: 1e-5)", eps);
        return NULL;
    }
    int64_t D = w->shape[0], rows = D ? ox_tensor_numel(x) / D : 0;
    ox_tensor *wc = ox_ag_contiguous(ctx, w), *bc = b ? ox_ag_contiguous(ctx, b) : NULL;
    ox_tensor *xc = ox_tensor_contiguous(ctx, x);
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    ln_saved *s = ox_ctx_alloc(ctx, sizeof *s);
    float *mean = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows + 1));
    float *rstd = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows + 1));
    if (ctx->status)
        return NULL;
    *s = (ln_saved){ xc, mean, rstd };
    if (rows > 0) {
        const float *xv = ox_tensor_f32(xc), *wv = ox_tensor_f32(wc), *bv = bc ? ox_tensor_f32(bc) : NULL;
        float *yv = ox_tensor_f32(y);
        int64_t nb = (rows + LN_ROW_BLOCK - 1) / LN_ROW_BLOCK;
        int nt = ctx->n_threads > 1 && nb > 1 && rows * D >= OX_PARALLEL_MIN ? ctx->n_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(guided) if (nt > 1)
        for (int64_t k = 0; k < nb; k++)
            forward_rows(xv, wv, bv, yv, mean, rstd, k * LN_ROW_BLOCK,
                         (k + 1) * LN_ROW_BLOCK < rows ? (k + 1) * LN_ROW_BLOCK : rows, D, (float)eps);
    }
    ox_tensor *ins[3] = { x, wc, bc };
    ox_ag_node *node = ox_ag_record(ctx, &layernorm_op, bc ? 3 : 2, ins, 1, &y);
    if (node)
        node->saved = s;
    return ctx->status ? NULL : y;
}
