/* train.c - the Oryx trainer of train.h: the optimizer step (accumulation, clipping, AdamW
 * with the cosine schedule, NaN/Inf guard), evaluation in nats and bits per byte, and resumable checkpoints
 * of the training state (model file + state file). */
#include "models/oryx/train.h"
#include "tensor/profile.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/oryx/checkpoint.h"
#include "models/oryx/modes.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/alloc.h"

#define EVAL_ROWS 8

/* ---- trainer -------------------------------------------------------------------------------------------- */

ox_oryx_train_config ox_oryx_train_defaults(void)
{
    ox_oryx_train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 8;
    c.seq_len = 256;
    c.accum = 1;
    c.lr_max = 3e-3;
    c.lr_min = 3e-4;
    c.warmup = 100;
    c.total_steps = 5000;
    c.clip = 1.0;
    c.adamw = ox_optim_adamw_defaults();
    c.seed = 1;
    c.map.kind = OX_ORYX_MAP_MIXED;
    c.map.chunk = 64;
    c.map.seed = 2;
    return c;
}

static ox_status check_cfg(ox_ctx *ctx, const ox_oryx_train_config *c, const ox_oryx_data *data)
{
    if (c->batch < 1 || c->seq_len < 1 || c->accum < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: batch (%lld), seq_len (%lld) and accum (%lld) must be >= 1",
                           (long long)c->batch, (long long)c->seq_len, (long long)c->accum);
    if (!(c->lr_max >= 0 && c->lr_min >= 0 && isfinite(c->lr_max) && isfinite(c->lr_min)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: lr_max (%g) and lr_min (%g) must be finite and >= 0",
                           c->lr_max, c->lr_min);
    if (c->warmup < 0 || c->total_steps < 0 || !isfinite(c->clip))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: warmup (%lld) and total_steps (%lld) must be >= 0, clip "
                           "(%g) finite", (long long)c->warmup, (long long)c->total_steps, c->clip);
    if (c->seq_len + 1 > data->n_train)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: windows of T + 1 = %lld bytes do not fit the %lld "
                           "training bytes", (long long)(c->seq_len + 1), (long long)data->n_train);
    return ox_oryx_map_check(ctx, &c->map);
}

/* One forward/backward on a fixed batch with the costliest map (every token ATTN but token 0 of row 0: both
 * cores of an Oryx layer run, attention on almost every row), then 5/4 of the arena it used is reserved so
 * that later micro-batches fit without a new block. Gradients are zeroed afterwards. */
static ox_status warm_up(ox_ctx *ctx, ox_oryx_trainer *tr)
{
    int64_t B = tr->cfg.batch, T = tr->cfg.seq_len;
    ox_ctx_reset(ctx);
    int32_t *r = ox_tensor_i32(tr->rows);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t <= T; t++)
            r[b * (T + 1) + t] = tr->data->bytes[t];
    ox_tensor *mode = ox_oryx_modes_fill(ctx, B, T, OX_NN_ATTN);
    if (!mode)
        return ctx->status;
    ox_tensor_i32(mode)[0] = OX_NN_LIN;
    ox_tensor *loss = ox_oryx_loss(ctx, tr->model, tr->rows, mode, NULL);
    if (!loss || ox_ag_backward(ctx, loss))
        return ctx->status;
    size_t want = ctx->arena.used + ctx->arena.used / 4;
    ox_ctx_reset(ctx);
    if (ox_arena_capacity(&ctx->arena) < want) {
        /* one block of exactly `want` bytes (growing the current arena would round up geometrically) */
        ox_arena_free(&ctx->arena);
        if (!ox_arena_alloc(&ctx->arena, want))
            return ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx trainer: cannot reserve %zu arena bytes", want);
        ox_ctx_reset(ctx);
    }
    ox_nn_params_zero_grad(&tr->model->params);
    return OX_OK;
}

ox_status ox_oryx_trainer_init(ox_ctx *ctx, ox_oryx_trainer *tr, ox_oryx_model *model, const ox_oryx_data *data,
                               const ox_oryx_train_config *cfg)
{
    if (!tr)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: tr must not be NULL");
    memset(tr, 0, sizeof *tr);
    if (ctx->status)
        return ctx->status;
    if (!model || !data || !data->bytes || !cfg)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx trainer: model, data and cfg must not be NULL");
    if (check_cfg(ctx, cfg, data))
        return ctx->status;
    tr->cfg = *cfg;
    if (cfg->map.kind == OX_ORYX_MAP_POSITIONS) {
        /* the trainer's own copy: the caller's list may go, and resume builds its list from the state file */
        tr->positions = ox_malloc(sizeof *tr->positions * (size_t)cfg->map.n_positions);
        if (!tr->positions)
            return ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx trainer: cannot copy %lld map positions",
                               (long long)cfg->map.n_positions);
        if (cfg->map.n_positions)
            memcpy(tr->positions, cfg->map.positions, sizeof *tr->positions * (size_t)cfg->map.n_positions);
        tr->cfg.map.positions = tr->positions;
    } else {
        tr->cfg.map.positions = NULL;
        tr->cfg.map.n_positions = 0;
    }
    tr->model = model;
    tr->data = data;
    tr->rng = ox_rng_seed(cfg->seed);
    tr->opt = ox_optim_adamw_new(ctx, &model->params, cfg->adamw);
    tr->rows = tr->opt ? ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(cfg->batch, cfg->seq_len + 1)) : NULL;
    if (!tr->rows || warm_up(ctx, tr)) {
        ox_status s = ctx->status;
        ox_oryx_trainer_free(tr);
        return s;
    }
    return OX_OK;
}

void ox_oryx_trainer_free(ox_oryx_trainer *tr)
{
    if (!tr)
        return;
    ox_optim_adamw_free(tr->opt);
    ox_tensor_free(tr->rows);
    ox_free(tr->positions);
    memset(tr, 0, sizeof *tr);
}

static ox_status check_trainer(ox_ctx *ctx, const ox_oryx_trainer *tr, const char *op)
{
    if (ctx->status)
        return ctx->status;
    if (!tr || !tr->opt || !tr->rows)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "%s: the trainer is not initialised", op);
    return OX_OK;
}

ox_status ox_oryx_train_grads(ox_ctx *ctx, ox_oryx_trainer *tr, double *loss)
{
    if (check_trainer(ctx, tr, "oryx train grads"))
        return ctx->status;
    const ox_oryx_train_config *c = &tr->cfg;
    ox_rng rng0 = tr->rng;     /* a failed step leaves the sampler where it was */
    ox_nn_params_zero_grad(&tr->model->params);
    OX_PROFILE_MARK(ctx, "zero_grad", OX_PROF_OTHER);
    double sum = 0;
    for (int64_t j = 0; j < c->accum; j++) {
        ox_ctx_reset(ctx);
        ox_tensor *mode = NULL, *l = NULL;
        if (ox_oryx_data_sample(ctx, tr->data, &tr->rng, tr->rows) == OX_OK)
            mode = ox_oryx_map_build(ctx, &c->map, (uint64_t)(tr->step * c->accum + j), c->batch, c->seq_len);
        OX_PROFILE_MARK(ctx, "data", OX_PROF_OTHER);
        if (mode)
            l = ox_oryx_loss(ctx, tr->model, tr->rows, mode, NULL);
        double v = l ? (double)ox_tensor_f32(l)[0] : NAN;
        if (l && !isfinite(v))
            ox_ctx_fail(ctx, OX_ERR_NUMERIC, "oryx train step %lld: the loss of micro-batch %lld of %lld is %g; "
                        "step stopped before any weight or moment was touched", (long long)tr->step + 1,
                        (long long)j + 1, (long long)c->accum, v);
        if (!l || ctx->status || ox_ag_backward(ctx, l)) {
            ox_status s = ctx->status;
            ox_ctx_reset(ctx);
            tr->rng = rng0;
            return s;
        }
        sum += v;
    }
    ox_ctx_reset(ctx);
    OX_PROFILE_MARK(ctx, "arena.reset", OX_PROF_OTHER);
    if (loss)
        *loss = sum / (double)c->accum;
    return OX_OK;
}

ox_status ox_oryx_train_update(ox_ctx *ctx, ox_oryx_trainer *tr, double loss, ox_oryx_train_stats *stats)
{
    if (check_trainer(ctx, tr, "oryx train update"))
        return ctx->status;
    const ox_oryx_train_config *c = &tr->cfg;
    ox_nn_params *ps = &tr->model->params;
    if (!isfinite(loss))
        return ox_ctx_fail(ctx, OX_ERR_NUMERIC, "oryx train step %lld: loss %g is not finite; step skipped",
                           (long long)tr->step + 1, loss);
    if (c->accum > 1 && ox_optim_grad_scale(ctx, ps, 1.0f / (float)c->accum))
        return ctx->status;
    double norm = 0;
    ox_status s = c->clip > 0 ? ox_optim_clip_grad_norm(ctx, ps, c->clip, &norm) : ox_optim_grad_norm(ctx, ps, &norm);
    if (s) {
        if (s == OX_ERR_NUMERIC) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", ox_ctx_message(ctx));
            ox_ctx_clear_error(ctx);
            ox_ctx_fail(ctx, OX_ERR_NUMERIC, "oryx train step %lld: non-finite gradient, step stopped before any "
                        "weight or moment was touched: %s", (long long)tr->step + 1, msg);
        }
        return s;
    }
    OX_PROFILE_MARK(ctx, "optim.clip", OX_PROF_OTHER);
    double lr = ox_optim_lr_cosine(tr->step + 1, c->warmup, c->total_steps, c->lr_max, c->lr_min);
    if (ox_optim_adamw_step(ctx, tr->opt, (float)lr))
        return ctx->status;
    OX_PROFILE_MARK(ctx, "optim.adamw", OX_PROF_OTHER);
    tr->step++;
    if (stats) {
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->tokens_per_s = 0;
        stats->step = tr->step;
    }
    return OX_OK;
}

ox_status ox_oryx_train_step(ox_ctx *ctx, ox_oryx_trainer *tr, ox_oryx_train_stats *stats)
{
    double t0 = ox_profile_now(), loss = 0;
    if (ox_oryx_train_grads(ctx, tr, &loss) || ox_oryx_train_update(ctx, tr, loss, stats))
        return ctx->status;
    double dt = ox_profile_now() - t0;
    if (stats)
        stats->tokens_per_s = dt > 0 ? (double)(tr->cfg.batch * tr->cfg.seq_len * tr->cfg.accum) / dt : 0;
    return OX_OK;
}

/* ---- evaluation ----------------------------------------------------------------------------------------- */

/* Adds the summed loss of rows [nr, w] (bytes of row i: p[i * w .. i * w + w - 1]) to *total. */
static ox_status eval_rows(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *p, int64_t nr, int64_t w,
                           const ox_oryx_map_spec *spec, uint64_t stream, double *total)
{
    ox_tensor *rows = ox_tensor_empty(ctx, OX_I32, OX_DIMS(nr, w));
    if (!rows)
        return ctx->status;
    for (int64_t i = 0; i < nr * w; i++)
        ox_tensor_i32(rows)[i] = p[i];
    ox_tensor *mode = spec ? ox_oryx_map_build(ctx, spec, stream, nr, w - 1) : NULL;
    if (ctx->status)
        return ctx->status;
    ox_tensor *loss = ox_oryx_loss(ctx, m, rows, mode, NULL);
    if (!loss)
        return ctx->status;
    *total += (double)ox_tensor_f32(loss)[0] * (double)(nr * (w - 1));
    return OX_OK;
}

ox_status ox_oryx_evaluate_bytes(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *bytes, int64_t n, int64_t T,
                                 const ox_oryx_map_spec *spec, ox_oryx_eval *out)
{
    if (ctx->status)
        return ctx->status;
    if (!m || !bytes || !out || n < 2 || T < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx evaluate: model, bytes and out must not be NULL, n (%lld) >= 2, "
                           "T (%lld) >= 1", (long long)n, (long long)T);
    int64_t W = T + 1, nw = n / W, rem = n - nw * W;
    double total = 0;
    int64_t count = 0;
    uint64_t stream = 0;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    for (int64_t i = 0; i < nw && !ctx->status; i += EVAL_ROWS, stream++) {
        int64_t nr = nw - i < EVAL_ROWS ? nw - i : EVAL_ROWS;
        if (eval_rows(ctx, m, bytes + i * W, nr, W, spec, stream, &total) == OX_OK)
            count += nr * T;
        ox_arena_rewind(&ctx->arena, mark);
    }
    if (rem >= 2 && !ctx->status) {
        if (eval_rows(ctx, m, bytes + nw * W, 1, rem, spec, stream, &total) == OX_OK)
            count += rem - 1;
        ox_arena_rewind(&ctx->arena, mark);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    if (ctx->status)
        return ctx->status;
    out->nats = total / (double)count;
    out->bits_per_byte = out->nats / log(2.0);
    out->n_predicted = count;
    return OX_OK;
}

ox_status ox_oryx_evaluate(ox_ctx *ctx, const ox_oryx_model *m, const ox_oryx_data *data, int64_t T,
                           const ox_oryx_map_spec *spec, ox_oryx_eval *out)
{
    if (ctx->status)
        return ctx->status;
    if (!data || !data->bytes)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx evaluate: data must not be NULL");
    return ox_oryx_evaluate_bytes(ctx, m, data->bytes + data->n_train, data->n_val, T, spec, out);
}
