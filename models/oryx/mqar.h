/* mqar.h - MQAR, multi-query associative recall (MODELS.md 10; zoology's multiquery_ar): the seeded batch
 * generator, accuracy at the query positions, the mode maps of the Oryx recall evaluation (query-only ATTN
 * and the attention-fraction sweep), a small trainer over mixed (T, N) slices, and evaluation on a fixed
 * held-out set.
 *
 * One example of a task (V, T, N), MODELS 10.1 (keys K = {1 .. V/2-1}, values {V/2 .. V-1}):
 *     positions 0 .. 2N-1     k_1 v_1 k_2 v_2 ... k_N v_N      (N distinct keys, N distinct values)
 *     positions 2N .. T-1     key k_i at 2N + 2 g_i, where the gap indices g_i in {0 .. S-1}, S = (T-2N)/2,
 *                             are N distinct draws without replacement, index g with weight
 *                             pa * (g+1)^(pa-1) (power law, pa = 0.01); every other position a uniform
 *                             token of [0, V) (random_non_queries; 0 when that is off)
 *     targets                 value v_i at position 2N + 2 g_i, OX_ORYX_MQAR_IGNORE elsewhere
 * Randomness: example number i of a seed draws from its own stream (hash of seed and i), so a batch is a
 * function of (seed, first example index, task) only, whatever the thread count.
 *
 * Mode maps (I32 [B, T], 1 = ATTN, same map in every layer; each example b of a call may differ):
 *     LIN / ATTN      every token LIN / ATTN
 *     QUERIES         ATTN exactly at the N query positions of the example (fraction N / T, MODELS 10.3)
 *     SWEEP f         K = round(f * T) ATTN tokens per example, queries first: if K <= N, K of the queries
 *                     chosen uniformly without replacement; otherwise all N queries plus K - N non-query
 *                     positions chosen uniformly without replacement. So f = 0 is all LIN, f = 1 all ATTN,
 *                     f = N / T the query-only map. Draws come from ox_oryx_modes_stream(seed, stream, b).
 *
 * Training (ox_oryx_mqar_trainer): step s (s = 0, 1, ...) uses slice k = s mod n_slices (zoology mixes
 * (T, N) slices; we alternate them step by step), B fresh examples first = s * B of the training seed,
 * the training mode map ox_oryx_map_build(cfg.map, stream s, B, T_k) (models/oryx/train.h: MODELS 8 mixed
 * maps for oryx presets; ignored by layers with one core), loss = cross entropy over the query positions
 * only (MODELS 10.2), global grad-norm clipping, AdamW with lr = ox_optim_lr_cosine(s + 1, warmup,
 * total_steps, lr_max, lr_min). The arena is reset every step; init runs one warm-up forward/backward per
 * slice with the costliest map and reserves 5/4 of the largest arena any needed, so steps allocate nothing.
 * Same seed and thread count => bit-identical weights.
 *
 * Ownership: generator and map outputs are caller tensors or arena tensors (valid until ox_ctx_reset);
 * the trainer owns its optimizer and batch tensors (ox_oryx_mqar_trainer_free), borrows the model.
 *
 *   ox_oryx_mqar_task task = ox_oryx_mqar_task_make(256, 256, 16);
 *   ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, 256)), *y = ..same.., *q = [B, 16];
 *   ox_oryx_mqar_generate(ctx, &task, seed, 0, x, y, q);
 *   ox_tensor *loss = ox_oryx_loss_targets(ctx, &model, x, y, mode, OX_ORYX_MQAR_IGNORE, &logits);
 *   int64_t correct, n; ox_oryx_mqar_accuracy(ctx, logits, y, &correct, &n);
 */
#ifndef OX_ORYX_MQAR_H
#define OX_ORYX_MQAR_H

#include "models/oryx/train.h"

/* Target value of every non-query position (the cross entropy skips it). */
#define OX_ORYX_MQAR_IGNORE (-100)
#define OX_ORYX_MQAR_MAX_SLICES 8

/* One (V, T, N) task of MODELS 10.1. */
typedef struct ox_oryx_mqar_task {
    int64_t vocab;              /* V, even, >= 4 */
    int64_t seq_len;            /* T, even */
    int64_t n_pairs;            /* N >= 1, V/2 - 1 >= N, 4N <= T */
    double power_a;             /* pa of the gap law, > 0 (0.01) */
    int random_non_queries;     /* 1: filler tokens uniform in [0, V); 0: filler 0 */
} ox_oryx_mqar_task;

/* {V, T, N, pa = 0.01, random_non_queries = 1}. */
ox_oryx_mqar_task ox_oryx_mqar_task_make(int64_t V, int64_t T, int64_t N);

/* OX_OK, or OX_ERR_ARG naming the values: V even and >= 4, T even, N >= 1, V/2 - 1 >= N, 4N <= T, pa > 0. */
ox_status ox_oryx_mqar_check(ox_ctx *ctx, const ox_oryx_mqar_task *task);

/* The unnormalised gap weights of the task: w[g] = pa * (g+1)^(pa-1), g = 0 .. S-1, S = (T - 2N) / 2
 * (w must hold S doubles). Returns S. Used by the generator and by the tests' exact expectations. */
int64_t ox_oryx_mqar_gap_weights(const ox_oryx_mqar_task *task, double *w);

/* Fills B examples, numbers first .. first + B - 1 of `seed`: inputs and targets I32 [B, T] and (may be
 * NULL) queries I32 [B, N] (queries[b, i] = position of the query of pair i, in pair order). All three must
 * be contiguous. Scratch comes from the arena and is rewound. Errors: the task's, shapes, dtypes. */
ox_status ox_oryx_mqar_generate(ox_ctx *ctx, const ox_oryx_mqar_task *task, uint64_t seed, uint64_t first,
                                ox_tensor *inputs, ox_tensor *targets, ox_tensor *queries);

/* Counts, over every position with target != OX_ORYX_MQAR_IGNORE, the ones where the argmax over all V
 * logits (first maximum on ties) equals the target: logits F32 [B, T, V] (any strides), targets I32 [B, T].
 * accuracy = *correct / *n_queries (the mean over examples too, since each example has N queries). */
ox_status ox_oryx_mqar_accuracy(ox_ctx *ctx, const ox_tensor *logits, const ox_tensor *targets, int64_t *correct,
                                int64_t *n_queries);

/* The map (see above) for queries I32 [B, N] (contiguous) and length T: an arena tensor I32 [B, T]. The
 * spec is the one vocabulary of models/oryx/modes.h: QUERIES and SWEEP (fraction) are built here, every other
 * kind by ox_oryx_map_build(spec, stream, B, T). Example b of a SWEEP map draws from
 * ox_oryx_modes_stream(spec->seed, stream, b). Errors: a bad spec, queries outside [0, T). */
ox_tensor *ox_oryx_mqar_map(ox_ctx *ctx, const ox_oryx_map_spec *spec, const ox_tensor *queries, int64_t T,
                            uint64_t stream);

/* Accuracy of m on the held-out set of a task: examples 0 .. n_examples-1 of `seed`, 16 per forward pass,
 * batch j with map ox_oryx_mqar_map(spec, ..., stream j). No gradients; the arena is rewound (nothing the
 * caller made is freed). Writes the counts as ox_oryx_mqar_accuracy does. */
ox_status ox_oryx_mqar_evaluate(ox_ctx *ctx, const ox_oryx_model *m, const ox_oryx_mqar_task *task,
                                int64_t n_examples, uint64_t seed, const ox_oryx_map_spec *spec,
                                int64_t *correct, int64_t *n_queries);

typedef struct ox_oryx_mqar_train_config {
    int n_slices;                                   /* 1 .. OX_ORYX_MQAR_MAX_SLICES */
    ox_oryx_mqar_task slices[OX_ORYX_MQAR_MAX_SLICES];  /* same V in every slice (the model's) */
    int64_t batch;                                  /* B >= 1 */
    double lr_max, lr_min;
    int64_t warmup, total_steps;
    double clip;                                    /* <= 0: no clipping */
    ox_optim_adamw_config adamw;
    uint64_t seed;                                  /* training examples' seed */
    ox_oryx_map_spec map;                           /* training maps (oryx layers) */
} ox_oryx_mqar_train_config;

/* Slices (256, 16) and (128, 8) of V = 256, B 32, lr 3e-3 -> 3e-4, warmup 100, total 2000, clip 1, AdamW
 * defaults with weight decay 0.1, seed 1, MODELS 8 mixed maps (C = 64, default ratio set), map seed 2. */
ox_oryx_mqar_train_config ox_oryx_mqar_train_defaults(void);

typedef struct ox_oryx_mqar_trainer {
    ox_oryx_mqar_train_config cfg;
    ox_oryx_model *model;                           /* borrowed */
    ox_optim_adamw *opt;                            /* owned */
    ox_tensor *inputs[OX_ORYX_MQAR_MAX_SLICES];     /* owned I32 [B, T_k] */
    ox_tensor *targets[OX_ORYX_MQAR_MAX_SLICES];    /* owned I32 [B, T_k] */
    ox_tensor *queries[OX_ORYX_MQAR_MAX_SLICES];    /* owned I32 [B, N_k] */
    int64_t step;                                   /* steps taken */
} ox_oryx_mqar_trainer;

typedef struct ox_oryx_mqar_train_stats {
    double loss;            /* cross entropy over the batch's query positions (nats) */
    double grad_norm;       /* before clipping */
    double lr;
    int slice;              /* slice index of this step */
    int64_t step;           /* steps taken after this one */
} ox_oryx_mqar_train_stats;

/* Validates cfg (every slice's task, the vocabularies equal the model's V, sizes, the map spec), creates
 * the optimizer and the batch tensors, resets the arena and runs the warm-up (gradients zeroed after).
 * On error tr is left empty (safe to free). */
ox_status ox_oryx_mqar_trainer_init(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, ox_oryx_model *model,
                                    const ox_oryx_mqar_train_config *cfg);
/* NULL-safe, idempotent; frees what the trainer owns. */
void ox_oryx_mqar_trainer_free(ox_oryx_mqar_trainer *tr);

/* One step (see above). stats may be NULL. A non-finite loss or gradient fails with OX_ERR_NUMERIC before
 * any weight or moment changes. */
ox_status ox_oryx_mqar_train_step(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, ox_oryx_mqar_train_stats *stats);

/* Called after each step of ox_oryx_mqar_train_run with the step's stats and the elapsed seconds. */
typedef void (*ox_oryx_mqar_progress_fn)(void *user, const ox_oryx_mqar_train_stats *st, double elapsed);

/* Steps until tr->step == cfg.total_steps or, when max_seconds > 0, until max_seconds have elapsed.
 * With a time budget the run is fitted to it: after 10 steps of this call and every 100 steps after that,
 * the mean seconds per step so far set cfg.total_steps = min(the total_steps given at the start, step +
 * remaining time / (1.05 * seconds per step)), so the cosine schedule ends near the budget (the step count
 * is then timing-dependent; with max_seconds <= 0 the run is deterministic). progress may be NULL. */
ox_status ox_oryx_mqar_train_run(ox_ctx *ctx, ox_oryx_mqar_trainer *tr, double max_seconds,
                                 ox_oryx_mqar_progress_fn progress, void *user);

#endif
