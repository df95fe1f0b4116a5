/* mqar.c - MQAR (see mqar.h): the generator of MODELS 10.1, accuracy of 10.2, the mode maps of 10.3, the
 * trainer over mixed (T, N) slices and the held-out evaluation. */
#include "models/oryx/mqar.h"

#include <math.h>
#include <string.h>

#include "models/oryx/modes.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/profile.h"

#define EVAL_BATCH 16

/* SplitMix64's finaliser. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The stream of example number `index` of `seed`. */
static ox_rng example_stream(uint64_t seed, uint64_t index)
{
    uint64_t h = mix64(seed ^ 0x6d71617273656564ULL);          /* "mqarseed" */
    return ox_rng_seed(mix64(h ^ (index + 0x9e3779b97f4a7c15ULL)));
}

/* ---- tasks and the generator ------------------------------------------------------------------------ */

ox_oryx_mqar_task ox_oryx_mqar_task_make(int64_t V, int64_t T, int64_t N)
{
    ox_oryx_mqar_task t = { .vocab = V, .seq_len = T, .n_pairs = N, .power_a = 0.01, .random_non_queries = 1 };
    return t;
}

ox_status ox_oryx_mqar_check(ox_ctx *ctx, const ox_oryx_mqar_task *t)
{
    if (ctx->status)
        return ctx->status;
    if (!t)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: task must not be NULL");
    long long V = (long long)t->vocab, T = (long long)t->seq_len, N = (long long)t->n_pairs;
    if (V < 4 || V % 2)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: vocab V = %lld must be even and >= 4", V);
    if (T < 4 || T % 2)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: sequence length T = %lld must be even and >= 4", T);
    if (N < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: number of pairs N = %lld must be >= 1", N);
    if (V / 2 - 1 < N)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: N = %lld pairs need V/2 - 1 >= N distinct keys, but V = %lld "
                           "gives %lld", N, V, V / 2 - 1);
    if (4 * N > T)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: N = %lld pairs need 4N <= T, but T = %lld", N, T);
    if (!(t->power_a > 0 && isfinite(t->power_a)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar: power-law exponent pa = %g must be > 0", t->power_a);
    return OX_OK;
}

int64_t ox_oryx_mqar_gap_weights(const ox_oryx_mqar_task *t, double *w)
{
    int64_t S = (t->seq_len - 2 * t->n_pairs) / 2;
    for (int64_t g = 0; g < S; g++)
        w[g] = t->power_a * pow((double)(g + 1), t->power_a - 1.0);
    return S;
}

static int check_i32_2d(ox_ctx *ctx, const char *what, const ox_tensor *x, int64_t B, int64_t n)
{
    char b[OX_SHAPE_BUF];
    if (ox_check_i32(ctx, what, x))
        return -1;
    if (x->ndim != 2 || x->shape[0] != B || x->shape[1] != n || !ox_tensor_is_contiguous(x)) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s %s must be contiguous I32 [%lld, %lld]", what, ox_shape_str(x, b),
                    (long long)B, (long long)n);
        return -1;
    }
    return 0;
}

/* Draws k distinct entries of pool[0 .. n-1] into pool[0 .. k-1] (partial Fisher-Yates). */
static void draw_distinct(ox_rng *rng, int32_t *pool, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)ox_rng_below(rng, (uint64_t)(n - i));
        int32_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
}

/* One example (MODELS 10.1 steps 1-6) into rows x, y [T] and q [N]; scratch as in generate(). */
static void make_example(const ox_oryx_mqar_task *t, ox_rng *rng, const double *w, int64_t S, double *left,
                         int32_t *keys, int32_t *vals, int32_t *x, int32_t *y, int32_t *q)
{
    int64_t V = t->vocab, T = t->seq_len, N = t->n_pairs, half = V / 2;
    for (int64_t i = 0; i < half - 1; i++)
        keys[i] = (int32_t)(i + 1);
    for (int64_t i = 0; i < half; i++)
        vals[i] = (int32_t)(half + i);
    draw_distinct(rng, keys, half - 1, N);                  /* 1: keys and values, paired in draw order */
    draw_distinct(rng, vals, half, N);
    for (int64_t i = 0; i < T; i++) {
        x[i] = 0;
        y[i] = OX_ORYX_MQAR_IGNORE;
    }
    for (int64_t i = 0; i < N; i++) {                        /* 2: the context */
        x[2 * i] = keys[i];
        x[2 * i + 1] = vals[i];
    }
    double total = 0;                                        /* 3: gaps without replacement, by weight */
    for (int64_t g = 0; g < S; g++) {
        left[g] = w[g];
        total += w[g];
    }
    for (int64_t i = 0; i < N; i++) {
        double u = ox_rng_uniform(rng) * total, acc = 0;
        int64_t pick = -1, last = -1;
        for (int64_t g = 0; g < S; g++) {
            if (left[g] == 0)
                continue;
            last = g;
            acc += left[g];
            if (u < acc) {
                pick = g;
                break;
            }
        }
        if (pick < 0)           /* u landed past the rounded sum: the last index still available */
            pick = last;
        total -= left[pick];
        left[pick] = 0;
        int64_t p = 2 * N + 2 * pick;
        x[p] = keys[i];                                      /* 4: the query */
        y[p] = vals[i];                                      /* 5: its target */
        q[i] = (int32_t)p;
    }
    if (t->random_non_queries)                               /* 6: filler */
        for (int64_t i = 2 * N; i < T; i++)
            if (x[i] == 0)
                x[i] = (int32_t)ox_rng_below(rng, (uint64_t)V);
}

ox_status ox_oryx_mqar_generate(ox_ctx *ctx, const ox_oryx_mqar_task *t, uint64_t seed, uint64_t first,
                                ox_tensor *inputs, ox_tensor *targets, ox_tensor *queries)
{
    if (ox_oryx_mqar_check(ctx, t))
        return ctx->status;
    if (!inputs || !targets)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar generate: inputs and targets must not be NULL");
    int64_t B = inputs->ndim == 2 ? inputs->shape[0] : 0, T = t->seq_len, N = t->n_pairs;
    if (check_i32_2d(ctx, "mqar generate: inputs", inputs, B < 1 ? 1 : B, T) ||
        check_i32_2d(ctx, "mqar generate: targets", targets, B, T) ||
        (queries && check_i32_2d(ctx, "mqar generate: queries", queries, B, N)))
        return ctx->status;
    int64_t S = (T - 2 * N) / 2, half = t->vocab / 2;
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    double *w = ox_ctx_alloc(ctx, sizeof(double) * (size_t)(2 * S));
    int32_t *keys = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(2 * half + N));
    if (!w || !keys)
        return ctx->status;
    int32_t *vals = keys + half, *qs = vals + half;
    ox_oryx_mqar_gap_weights(t, w);
    for (int64_t b = 0; b < B; b++) {
        ox_rng rng = example_stream(seed, first + (uint64_t)b);
        make_example(t, &rng, w, S, w + S, keys, vals, ox_tensor_i32(inputs) + b * T, ox_tensor_i32(targets) + b * T,
                     queries ? ox_tensor_i32(queries) + b * N : qs);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

/* ---- accuracy --------------------------------------------------------------------------------------- */

ox_status ox_oryx_mqar_accuracy(ox_ctx *ctx, const ox_tensor *logits, const ox_tensor *targets, int64_t *correct,
                                int64_t *n_queries)
{
    if (ctx->status)
        return ctx->status;
    if (!logits || !targets || !correct || !n_queries)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar accuracy: logits, targets, correct and n_queries must not be NULL");
    char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
    if (ox_check_f32(ctx, "mqar accuracy (logits)", logits) || ox_check_i32(ctx, "mqar accuracy (targets)", targets))
        return ctx->status;
    if (logits->ndim != 3 || targets->ndim != 2 || logits->shape[0] != targets->shape[0] ||
        logits->shape[1] != targets->shape[1] || logits->shape[2] < 1)
        return ox_ctx_fail(ctx, OX_ERR_SHAPE, "mqar accuracy: logits %s must be [B, T, V] and targets %s [B, T]",
                           ox_shape_str(logits, b1), ox_shape_str(targets, b2));
    int64_t B = logits->shape[0], T = logits->shape[1], V = logits->shape[2];
    const float *z = ox_tensor_f32(logits);
    const int32_t *y = ox_tensor_i32(targets);
    int64_t hit = 0, n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int32_t tgt = y[b * targets->stride[0] + t * targets->stride[1]];
            if (tgt == OX_ORYX_MQAR_IGNORE)
                continue;
            const float *row = z + b * logits->stride[0] + t * logits->stride[1];
            int64_t best = 0;
            for (int64_t v = 1; v < V; v++)
                if (row[v * logits->stride[2]] > row[best * logits->stride[2]])
                    best = v;
            hit += best == tgt;
            n++;
        }
    *correct = hit;
    *n_queries = n;
    return OX_OK;
}

/* ---- mode maps -------------------------------------------------------------------------------------- */

ox_tensor *ox_oryx_mqar_map(ox_ctx *ctx, const ox_oryx_map_spec *spec, const ox_tensor *queries, int64_t T,
                            uint64_t stream)
{
    if (ctx->status)
        return NULL;
    if (!spec || !queries || T < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "mqar map: spec and queries must not be NULL and T (%lld) >= 1", (long long)T);
        return NULL;
    }
    if (ox_oryx_map_check(ctx, spec))
        return NULL;
    int64_t B = queries->ndim == 2 ? queries->shape[0] : 0, N = queries->ndim == 2 ? queries->shape[1] : 0;
    if (check_i32_2d(ctx, "mqar map: queries", queries, B < 1 ? 1 : B, N < 1 ? 1 : N))
        return NULL;
    const int32_t *q = ox_tensor_i32(queries);
    for (int64_t i = 0; i < B * N; i++)
        if (q[i] < 0 || q[i] >= T) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "mqar map: query position %d (example %lld) is outside [0, %lld)", q[i],
                        (long long)(i / N), (long long)T);
            return NULL;
        }
    if (spec->kind != OX_ORYX_MAP_QUERIES && spec->kind != OX_ORYX_MAP_SWEEP)
        return ox_oryx_map_build(ctx, spec, stream, B, T);
    ox_tensor *m = ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), OX_NN_LIN);
    if (!m)
        return m;
    int32_t *mm = ox_tensor_i32(m);
    if (spec->kind == OX_ORYX_MAP_QUERIES) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < N; i++)
                mm[b * T + q[b * N + i]] = OX_NN_ATTN;
        return m;
    }
    /* SWEEP: K ATTN tokens, queries first (random subset when K <= N), then random non-query positions */
    int64_t K = (int64_t)llround(spec->fraction * (double)T);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    int32_t *pool = ox_ctx_alloc(ctx, sizeof(int32_t) * (size_t)(T + N));
    if (!pool)
        return NULL;
    int32_t *qs = pool + T;
    for (int64_t b = 0; b < B; b++) {
        int32_t *row = mm + b * T;
        ox_rng rng = ox_oryx_modes_stream(spec->seed, stream, b);
        memcpy(qs, q + b * N, sizeof(int32_t) * (size_t)N);
        int64_t kq = K < N ? K : N;
        draw_distinct(&rng, qs, N, kq);
        for (int64_t i = 0; i < kq; i++)
            row[qs[i]] = OX_NN_ATTN;
        if (K <= N)
            continue;
        int64_t n_free = 0;       /* the non-query positions (queries are ATTN at this point) */
        for (int64_t t = 0; t < T; t++)
            if (row[t] == OX_NN_LIN)
                pool[n_free++] = (int32_t)t;
        int64_t extra = K - N < n_free ? K - N : n_free;
        draw_distinct(&rng, pool, n_free, extra);
        for (int64_t i = 0; i < extra; i++)
            row[pool[i]] = OX_NN_ATTN;
    }
    /* the map was allocated before the mark: rewinding frees only the scratch */
    ox_arena_rewind(&ctx->arena, mark);
    return m;
}

/* ---- evaluation ------------------------------------------------------------------------------------- */

ox_status ox_oryx_mqar_evaluate(ox_ctx *ctx, const ox_oryx_model *m, const ox_oryx_mqar_task *task,
                                int64_t n_examples, uint64_t seed, const ox_oryx_map_spec *spec,
                                int64_t *correct, int64_t *n_queries)
{
    if (ox_oryx_mqar_check(ctx, task))
        return ctx->status;
    if (!m || !spec || !correct || !n_queries || n_examples < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar evaluate: model, spec, correct and n_queries must not be NULL and "
                           "n_examples (%lld) >= 1", (long long)n_examples);
    if (task->vocab != m->cfg.vocab)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar evaluate: task vocab %lld differs from the model's %lld",
                           (long long)task->vocab, (long long)m->cfg.vocab);
    int64_t T = task->seq_len, N = task->n_pairs, hit = 0, n = 0;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    for (int64_t i = 0, j = 0; i < n_examples && !ctx->status; i += EVAL_BATCH, j++) {
        int64_t B = n_examples - i < EVAL_BATCH ? n_examples - i : EVAL_BATCH;
        ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
        ox_tensor *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
        ox_tensor *q = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, N));
        if (x && y && q && ox_oryx_mqar_generate(ctx, task, seed, (uint64_t)i, x, y, q) == OX_OK) {
            ox_tensor *mode = ox_oryx_mqar_map(ctx, spec, q, T, (uint64_t)j);
            ox_tensor *logits = mode ? ox_oryx_forward(ctx, m, x, mode) : NULL;
            int64_t c = 0, k = 0;
            if (logits && ox_oryx_mqar_accuracy(ctx, logits, y, &c, &k) == OX_OK) {
                hit += c;
                n += k;
            }
        }
        ox_arena_rewind(&ctx->arena, mark);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    if (ctx->status)
        return ctx->status;
    *correct = hit;
    *n_queries = n;
    return OX_OK;
}

/* ---- trainer ---------------------------------------------------------------------------------------- */

ox_oryx_mqar_train_config ox_oryx_mqar_train_defaults(void)
{
    ox_oryx_mqar_train_config c;
    memset(&c, 0, sizeof c);
    c.n_slices = 2;
    c.slices[0] = ox_oryx_mqar_task_make(256, 256, 16);
    c.slices[1] = ox_oryx_mqar_task_make(256, 128, 8);
    c.batch = 32;
    c.lr_max = 3e-3;
    c.lr_min = 3e-4;
    c.warmup = 100;
    c.total_steps = 2000;
    c.clip = 1.0;
    c.adamw = ox_optim_adamw_defaults();
    c.adamw.wd = 0.1f;
    c.seed = 1;
    c.map.kind = OX_ORYX_MAP_MIXED;
    c.map.chunk = 64;
    c.map.seed = 2;
    return c;
}

static ox_status check_train_cfg(ox_ctx *ctx, const ox_oryx_mqar_train_config *c, const ox_oryx_model *m)
{
    if (c->n_slices < 1 || c->n_slices > OX_ORYX_MQAR_MAX_SLICES)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: n_slices = %d must be in [1, %d]", c->n_slices,
                           OX_ORYX_MQAR_MAX_SLICES);
    for (int k = 0; k < c->n_slices; k++) {
        if (ox_oryx_mqar_check(ctx, &c->slices[k]))
            return ctx->status;
        if (c->slices[k].vocab != m->cfg.vocab)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: slice %d has vocab %lld but the model has V = %lld", k,
                               (long long)c->slices[k].vocab, (long long)m->cfg.vocab);
    }
    if (c->batch < 1 || c->warmup < 0 || c->total_steps < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: batch (%lld) must be >= 1, warmup (%lld) and total_steps "
                           "(%lld) >= 0", (long long)c->batch, (long long)c->warmup, (long long)c->total_steps);
    if (!(c->lr_max >= 0 && c->lr_min >= 0 && isfinite(c->lr_max) && isfinite(c->lr_min) && isfinite(c->clip)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: lr_max (%g), lr_min (%g) must be finite and >= 0, clip "
                           "(%g) finite", c->lr_max, c->lr_min, c->clip);
    /* the map spec is checked by building one */
    if (!ox_oryx_map_build(ctx, &c->map, 0, 1, c->slices[0].seq_len))
        return ctx->status;
    return OX_OK;
}

/* One forward/backward per slice with the costliest map (every token ATTN but one, so both cores of an Oryx
 * layer run), then 5/4 of the largest arena any of them used is reserved as one block. */
static ox_status warm_up(ox_ctx *ctx, ox_oryx_mqar_trainer *tr)
{
    size_t most = 0;
    for (int k = 0; k < tr->cfg.n_slices; k++) {
        const ox_oryx_mqar_task *t = &tr->cfg.slices[k];
        ox_ctx_reset(ctx);
        if (ox_oryx_mqar_generate(ctx, t, tr->cfg.seed, 0, tr->inputs[k], tr->targets[k], tr->queries[k]))
            return ctx->status;
        ox_tensor *spare = ox_oryx_map_build(ctx, &tr->cfg.map, 0, tr->cfg.batch, t->seq_len);  /* its size */
        ox_tensor *mode = spare ? ox_oryx_modes_fill(ctx, tr->cfg.batch, t->seq_len, OX_NN_ATTN) : NULL;
        if (!mode)
            return ctx->status;
        ox_tensor_i32(mode)[0] = OX_NN_LIN;
        ox_tensor *loss = ox_oryx_loss_targets(ctx, tr->model, tr->inputs[k], tr->targets[k], mode,
                                               OX_ORYX_MQAR_IGNORE, NULL);
        if (!loss || ox_ag_backward(ctx, loss))
            return ctx->status;
        if (ctx->arena.used > most)
            most = ctx->arena.used;
    }
    size_t want = most + most / 4;
    ox_ctx_reset(ctx);
    if (ox_arena_capacity(&ctx->arena) < want) {
        ox_arena_free(&ctx->arena);
        if (!ox_arena_alloc(&ctx->arena, want))
            return ox_ctx_fail(ctx, OX_ERR_NOMEM, "mqar trainer: cannot reserve %zu arena bytes", want);
        ox_ctx_reset(ctx);
    }
    ox_nn_params_zero_grad(&tr->model->params);
    return OX_OK;
}

ox_status ox_oryx_mqar_trainer_init(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, ox_oryx_model *model,
                                    const ox_oryx_mqar_train_config *cfg)
{
    if (!tr)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: tr must not be NULL");
    memset(tr, 0, sizeof *tr);
    if (ctx->status)
        return ctx->status;
    if (!model || !cfg)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mqar trainer: model and cfg must not be NULL");
    if (model->params.n == 0)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "mqar trainer: the model is not initialised");
    if (check_train_cfg(ctx, cfg, model))
        return ctx->status;
    ox_ctx_reset(ctx);
    tr->cfg = *cfg;
    tr->model = model;
    tr->opt = ox_optim_adamw_new(ctx, &model->params, cfg->adamw);
    for (int k = 0; k < cfg->n_slices && tr->opt; k++) {
        int64_t B = cfg->batch, T = cfg->slices[k].seq_len, N = cfg->slices[k].n_pairs;
        tr->inputs[k] = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T));
        tr->targets[k] = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T));
        tr->queries[k] = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, N));
    }
    if (ctx->status || warm_up(ctx, tr)) {
        ox_status s = ctx->status;
        ox_oryx_mqar_trainer_free(tr);
        return s;
    }
    return OX_OK;
}

void ox_oryx_mqar_trainer_free(ox_oryx_mqar_trainer *tr)
{
    if (!tr)
        return;
    ox_optim_adamw_free(tr->opt);
    for (int k = 0; k < OX_ORYX_MQAR_MAX_SLICES; k++) {
        ox_tensor_free(tr->inputs[k]);
        ox_tensor_free(tr->targets[k]);
        ox_tensor_free(tr->queries[k]);
    }
    memset(tr, 0, sizeof *tr);
}

ox_status ox_oryx_mqar_train_step(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, ox_oryx_mqar_train_stats *stats)
{
    if (ctx->status)
        return ctx->status;
    if (!tr || !tr->opt || !tr->model)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "mqar train step: the trainer is not initialised");
    const ox_oryx_mqar_train_config *c = &tr->cfg;
    int k = (int)(tr->step % c->n_slices);
    const ox_oryx_mqar_task *t = &c->slices[k];
    ox_nn_params *ps = &tr->model->params;
    ox_ctx_reset(ctx);
    ox_nn_params_zero_grad(ps);
    ox_tensor *mode = NULL, *loss = NULL;
    if (ox_oryx_mqar_generate(ctx, t, c->seed, (uint64_t)(tr->step * c->batch), tr->inputs[k], tr->targets[k],
                              tr->queries[k]) == OX_OK)
        mode = ox_oryx_map_build(ctx, &c->map, (uint64_t)tr->step, c->batch, t->seq_len);
    if (mode)
        loss = ox_oryx_loss_targets(ctx, tr->model, tr->inputs[k], tr->targets[k], mode, OX_ORYX_MQAR_IGNORE, NULL);
    double v = loss ? (double)ox_tensor_f32(loss)[0] : NAN;
    if (loss && !isfinite(v))
        ox_ctx_fail(ctx, OX_ERR_NUMERIC, "mqar train step %lld: the loss is %g; step stopped before any weight "
                    "or moment was touched", (long long)tr->step + 1, v);
    if (!loss || ctx->status || ox_ag_backward(ctx, loss)) {
        ox_status s = ctx->status;
        ox_ctx_reset(ctx);
        return s;
    }
    ox_ctx_reset(ctx);
    double norm = 0;
    ox_status s = c->clip > 0 ? ox_optim_clip_grad_norm(ctx, ps, c->clip, &norm) : ox_optim_grad_norm(ctx, ps, &norm);
    if (s)
        return s;
    double lr = ox_optim_lr_cosine(tr->step + 1, c->warmup, c->total_steps, c->lr_max, c->lr_min);
    if (ox_optim_adamw_step(ctx, tr->opt, (float)lr))
        return ctx->status;
    tr->step++;
    if (stats) {
        stats->loss = v;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->slice = k;
        stats->step = tr->step;
    }
    return OX_OK;
}

ox_status ox_oryx_mqar_train_run(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, double max_seconds,
                                 ox_oryx_mqar_progress_fn progress, void *user)
{
    if (ctx->status)
        return ctx->status;
    if (!tr || !tr->opt)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "mqar train run: the trainer is not initialised");
    double t0 = ox_profile_now();
    int64_t s0 = tr->step, cap = tr->cfg.total_steps;
    while (tr->step < tr->cfg.total_steps) {
        ox_oryx_mqar_train_stats st;
        if (ox_oryx_mqar_train_step(ctx, tr, &st))
            return ctx->status;
        double el = ox_profile_now() - t0;
        int64_t done = tr->step - s0;
        if (max_seconds > 0 && (done == 10 || done % 100 == 0)) {
            /* fit the schedule to the budget from the mean step time so far (refitted as it changes) */
            double fit = (double)tr->step + (max_seconds - el) / (1.05 * el / (double)done);
            int64_t total = fit < (double)cap ? (int64_t)fit : cap;
            tr->cfg.total_steps = total > tr->step ? total : tr->step;
        }
        if (progress)
            progress(user, &st, el);
        if (max_seconds > 0 && el >= max_seconds)
            break;
    }
    return OX_OK;
}
