/* cross_entropy.c - fused log-softmax + NLL with label smoothing and a reduction: forward kernel (saves
 * logsumexp per row), backward kernel, tape glue (see cross_entropy.h). */
#include "nn/cross_entropy.h"
#include "nn/util.h"

#include <math.h>
#include <string.h>

typedef struct ce_saved {
    ox_tensor *z;           /* the logits rows used (input or its copy); row r at z + r * rs */
    int64_t rs, rows, V;
    const int32_t *y;       /* [rows], private copy */
    const float *lse;       /* [rows] */
    int32_t ignore;
    int64_t count;
    float eps;              /* label smoothing */
    ox_nn_reduction reduction;
} ce_saved;

static ox_status ce_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const ce_saved *s = node->saved;
    ox_tensor *gz = ox_ag_grad(ctx, node->in[0]);
    if (!gz || s->count == 0 || !node->out[0]->grad)    /* no counted row: the gradient is 0 */
        return ctx->status;
    /* the incoming gradient of row r's loss: dL/dl_r = g / count (mean), g (sum) or dy[r] (none) */
    const float *dl = ox_tensor_f32(node->out[0]->grad);
    int per_row = s->reduction == OX_NN_REDUCE_NONE;
    float scale = s->reduction == OX_NN_REDUCE_MEAN ? dl[0] / (float)s->count : dl[0];
    int64_t V = s->V, rs = s->rs;
    const float *zp = ox_tensor_f32(s->z), *lse = s->lse;
    const int32_t *y = s->y;
    float *g = ox_tensor_f32(gz);
    float smooth = s->eps / (float)V, hit = 1.0f - s->eps;
    int nt = ox_nn_threads(ctx, s->rows * V);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < s->rows; r++) {
        if (y[r] == s->ignore)
            continue;
        const float *z = zp + r * rs;
        float *d = g + r * V, l = lse[r], sc = per_row ? dl[r] : scale;
        /* dz = sc * (exp(z - lse) - eps / V - (1 - eps) onehot(y)) */
        for (int64_t v = 0; v < V; v++)
            d[v] += sc * (expf(z[v] - l) - smooth);
        d[y[r]] -= sc * hit;
    }
    return OX_OK;
}

static const ox_ag_op ce_op = { "cross_entropy", ce_backward };

ox_nn_ce_opts ox_nn_ce_defaults(void)
{
    return (ox_nn_ce_opts){ .ignore_index = -100, .label_smoothing = 0.0, .reduction = OX_NN_REDUCE_MEAN };
}

/* sum_v z[v] in 16 float lanes combined in a fixed order */
static float row_sum(const float *z, int64_t V)
{
    float acc[16] = { 0 }, sum = 0.0f;
    int64_t v = 0;
    for (; v + 16 <= V; v += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += z[v + k];
    for (int k = 0; k < 16; k++)
        sum += acc[k];
    for (; v < V; v++)
        sum += z[v];
    return sum;
}

ox_tensor *ox_nn_cross_entropy(ox_ctx *ctx, ox_tensor *logits, const ox_tensor *targets, int32_t ignore_index)
{
    ox_nn_ce_opts o = ox_nn_ce_defaults();
    o.ignore_index = ignore_index;
    return ox_nn_cross_entropy_ex(ctx, logits, targets, &o);
}

ox_tensor *ox_nn_cross_entropy_ex(ox_ctx *ctx, ox_tensor *logits, const ox_tensor *targets, const ox_nn_ce_opts *opts)
{
    if (ctx->status || !logits || !targets)
        return NULL;
    ox_nn_ce_opts o = opts ? *opts : ox_nn_ce_defaults();
    int32_t ignore_index = o.ignore_index;
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "cross_entropy: label_smoothing %g is outside [0, 1)", o.label_smoothing);
        return NULL;
    }
    if (o.reduction != OX_NN_REDUCE_MEAN && o.reduction != OX_NN_REDUCE_SUM && o.reduction != OX_NN_REDUCE_NONE) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "cross_entropy: reduction %d is not OX_NN_REDUCE_MEAN (0), _SUM (1) or _NONE (2)",
                    (int)o.reduction);
        return NULL;
    }
    float eps = (float)o.label_smoothing;
    if (ox_check_f32(ctx, "cross_entropy", logits) || ox_check_i32(ctx, "cross_entropy", targets))
        return NULL;
    int ok = logits->ndim >= 1 && targets->ndim == logits->ndim - 1;
    for (int d = 0; ok && d < targets->ndim; d++)
        ok = targets->shape[d] == logits->shape[d];
    if (!ok || logits->shape[logits->ndim - 1] < 1) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "cross_entropy: logits %s and targets %s do not fit (want [..., V] and [...])",
                    ox_shape_str(logits, b1), ox_shape_str(targets, b2));
        return NULL;
    }
    int64_t V = logits->shape[logits->ndim - 1], rows, rs;
    ox_tensor *zr = ox_nn_unit_rows(ctx, logits, &rows, &rs);
    ox_tensor *yc = ox_tensor_contiguous(ctx, (ox_tensor *)targets);
    int32_t *y = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(rows + 1));
    float *lse = ox_ctx_alloc(ctx, sizeof(float) * (size_t)(rows + 1));
    double *row_loss = ox_ctx_alloc(ctx, sizeof(double) * (size_t)(rows + 1));
    /* reduction none: one loss per target (the targets' shape); otherwise a 0-d tensor */
    ox_tensor *loss = o.reduction == OX_NN_REDUCE_NONE ? ox_tensor_empty(ctx, OX_F32, targets->ndim, targets->shape)
                                                       : ox_tensor_empty(ctx, OX_F32, 0, (const int64_t[1]){ 0 });
    if (!zr || !yc || !y || !lse || !row_loss || !loss)
        return NULL;
    memcpy(y, ox_tensor_i32(yc), sizeof(int32_t) * (size_t)rows);
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (y[r] == ignore_index)
            continue;
        if (y[r] < 0 || y[r] >= V) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "cross_entropy: target %d at flat position %lld is outside [0, %lld) "
                        "and is not ignore_index %d", (int)y[r], (long long)r, (long long)V, (int)ignore_index);
            return NULL;
        }
        count++;
    }
    const float *zp = ox_tensor_f32(zr);
    int nt = ox_nn_threads(ctx, rows * V);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = zp + r * rs;
        float mx[16], m = z[0];
        int64_t v0 = 0;
        for (int k = 0; k < 16; k++)
            mx[k] = z[0];
        for (; v0 + 16 <= V; v0 += 16)
            for (int k = 0; k < 16; k++)
                mx[k] = z[v0 + k] > mx[k] ? z[v0 + k] : mx[k];
        for (int k = 0; k < 16; k++)
            m = mx[k] > m ? mx[k] : m;
        for (; v0 < V; v0++)
            m = z[v0] > m ? z[v0] : m;
        /* sum of exp(z - m) <= V, in 16 float partial sums (vectorised), combined in a fixed order */
        float acc[16] = { 0 }, sum = 0.0f;
        int64_t v = 0;
        for (; v + 16 <= V; v += 16)
            for (int k = 0; k < 16; k++)
                acc[k] += expf(z[v + k] - m);
        for (int k = 0; k < 16; k++)
            sum += acc[k];
        for (; v < V; v++)
            sum += expf(z[v] - m);
        float l = m + logf(sum);
        lse[r] = l;
        if (y[r] == ignore_index)
            row_loss[r] = 0.0;
        else if (eps == 0.0f)
            row_loss[r] = (double)l - (double)z[y[r]];
        else    /* (1 - eps) (lse - z_y) + eps (lse - mean_v z_v) */
            row_loss[r] = (1.0 - (double)eps) * ((double)l - (double)z[y[r]]) +
                          (double)eps * ((double)l - (double)row_sum(z, V) / (double)V);
    }
    if (o.reduction == OX_NN_REDUCE_NONE) {
        for (int64_t r = 0; r < rows; r++)
            ox_tensor_f32(loss)[r] = (float)row_loss[r];
    } else {
        double total = 0.0;
        for (int64_t r = 0; r < rows; r++)
            total += row_loss[r];
        if (o.reduction == OX_NN_REDUCE_SUM)
            ox_tensor_f32(loss)[0] = (float)total;
        else
            ox_tensor_f32(loss)[0] = count ? (float)(total / (double)count) : 0.0f;
    }
    if (ox_ag_needs_grad(ctx, 1, &logits)) {
        ce_saved *s = ox_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (ce_saved){ zr, rs, rows, V, y, lse, ignore_index, count, eps, o.reduction };
        ox_ag_node *node = ox_ag_record(ctx, &ce_op, 1, &logits, 1, &loss);
        if (node)
            node->saved = s;
    }
    return ctx->status ? NULL : loss;
}
