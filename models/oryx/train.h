/* train.h - training and evaluating Oryx-family models on a byte corpus (data.h): the trainer (AdamW,
 * cosine schedule with warmup, global grad-norm clipping, gradient accumulation, per-micro-batch mode maps),
 * evaluation in nats/token and bits per byte, and resumable checkpoints of the whole training state.
 *
 * One optimizer step (ox_oryx_train_step = ox_oryx_train_grads + ox_oryx_train_update), step s = 0, 1, ...:
 *     zero every gradient
 *     for micro-batch j = 0 .. n-1:          (n = accum)
 *         rows = B training windows of T + 1 bytes (data sampler, the trainer's RNG)
 *         mode = map(seed, stream s * n + j, B, T)                           (ox_oryx_map_build)
 *         loss_j = ox_oryx_loss(rows, mode); backward (gradients accumulate); arena reset
 *     g = (1 / n) sum_j grad loss_j;  loss = (1 / n) sum_j loss_j
 *     norm = ||g||_2 (before clipping); if norm > clip: g *= clip / (norm + 1e-6)
 *     AdamW step t = s + 1 with lr = ox_optim_lr_cosine(t, warmup, total_steps, lr_max, lr_min)
 * A NaN or Inf in any loss_j or in g stops the step with OX_ERR_NUMERIC before any weight or moment is
 * touched (the step counter, weights and moments keep their values; the gradients do not).
 * AdamW decays only parameters of rank >= 2 (optim/adamw.h).
 *
 * Memory: the trainer owns the context's arena while it runs: it resets it at init and after every
 * micro-batch (caller's arena tensors do not survive those calls). Init runs one warm-up forward/backward with
 * the costliest map (every token ATTN but one, so both cores of an Oryx layer run) and reserves 5/4 of the
 * arena that needed, so a step allocates nothing after the first one.
 * Determinism: same seed, data and thread count => bit-identical loss curve and weights.
 *
 *   ox_oryx_train_config tc = ox_oryx_train_defaults();
 *   ox_oryx_trainer tr;
 *   ox_oryx_trainer_init(ctx, &tr, &model, &data, &tc);
 *   for (int s = 0; s < tc.total_steps; s++) { ox_oryx_train_stats st; if (ox_oryx_train_step(ctx, &tr, &st)) break; }
 *   ox_oryx_train_save(ctx, &tr, "run/ckpt");   // run/ckpt.state.safetensors, then run/ckpt.safetensors
 *   ox_oryx_trainer_free(&tr);
 */
#ifndef OX_ORYX_TRAIN_H
#define OX_ORYX_TRAIN_H

#include "models/oryx/data.h"
#include "models/oryx/model.h"
#include "models/oryx/modes.h"
#include "optim/adamw.h"

#define OX_ORYX_PATH_MAX 4096

typedef struct ox_oryx_train_config {
    int64_t batch;                  /* B, rows per micro-batch */
    int64_t seq_len;                /* T */
    int64_t accum;                  /* micro-batches per step, >= 1 */
    double lr_max, lr_min;          /* cosine schedule (optim/schedule.h) */
    int64_t warmup, total_steps;
    double clip;                    /* max global grad norm; <= 0: no clipping (the norm is still measured) */
    ox_optim_adamw_config adamw;
    uint64_t seed;                  /* data sampler's RNG seed */
    ox_oryx_map_spec map;           /* mode maps of the micro-batches (map.seed: their stream seed); a POSITIONS
                                       list is copied by ox_oryx_trainer_init, the caller's may go */
    /* Settings of the caller's loop, not used by the trainer itself: checkpoints keep them so that a resumed
     * run goes on exactly as the interrupted one would have. */
    int64_t eval_every;             /* validation every N steps (0 = only at the end) */
    int64_t eval_windows;           /* validation windows scored each time (0 = the caller's default) */
    char data_path[OX_ORYX_PATH_MAX]; /* where the corpus was read from, absolute ("" = unknown) */
} ox_oryx_train_config;

/* B 8, T 256, accum 1, lr 3e-3 -> 3e-4, warmup 100, total 5000, clip 1, AdamW defaults, seed 1, mixed maps
 * with the default ratio set and C = 64, map seed 2. */
ox_oryx_train_config ox_oryx_train_defaults(void);

typedef struct ox_oryx_trainer {
    ox_oryx_train_config cfg;
    ox_oryx_model *model;           /* borrowed: its parameters are trained */
    const ox_oryx_data *data;       /* borrowed */
    ox_optim_adamw *opt;            /* owned */
    ox_rng rng;                     /* data sampler's state (saved in checkpoints) */
    int64_t step;                   /* optimizer steps taken */
    ox_tensor *rows;                /* owned I32 [B, T + 1]: the current micro-batch */
    int64_t *positions;             /* owned copy of a POSITIONS list (cfg.map.positions points here) or NULL */
    double loss_sum;                /* sum of the micro-batch losses of the pending step */
} ox_oryx_trainer;

typedef struct ox_oryx_train_stats {
    double loss;            /* mean of the micro-batch losses (nats/token) */
    double grad_norm;       /* global norm of the averaged gradient, before clipping */
    double lr;              /* learning rate of this step */
    double tokens_per_s;    /* B * T * accum / wall time of the step */
    int64_t step;           /* steps taken after this one */
} ox_oryx_train_stats;

/* Validates cfg against the model and the data (T + 1 <= n_train), creates the optimizer, resets the arena
 * and runs the warm-up (see above; gradients are zeroed afterwards). On error tr is left empty (safe to free). */
ox_status ox_oryx_trainer_init(ox_ctx *ctx, ox_oryx_trainer *tr, ox_oryx_model *model, const ox_oryx_data *data,
                               const ox_oryx_train_config *cfg);
/* Frees the optimizer, the rows and the positions copy (not the model or data). NULL-safe, idempotent. */
void ox_oryx_trainer_free(ox_oryx_trainer *tr);

/* One optimizer step (above). stats may be NULL. */
ox_status ox_oryx_train_step(ox_ctx *ctx, ox_oryx_trainer *tr, ox_oryx_train_stats *stats);
/* The two halves of a step. grads: zero the gradients, run the accum micro-batches (forward + backward;
 * *loss = their mean); fails with OX_ERR_NUMERIC at the first non-finite micro-batch loss. update: scale the
 * gradients by 1/accum, measure (and check) the norm, clip, take the AdamW step and count it; stats as above
 * (tokens_per_s = 0: the caller times the pair). Between the two a caller may inspect the gradients. */
ox_status ox_oryx_train_grads(ox_ctx *ctx, ox_oryx_trainer *tr, double *loss);
ox_status ox_oryx_train_update(ox_ctx *ctx, ox_oryx_trainer *tr, double loss, ox_oryx_train_stats *stats);

/* Evaluation result: mean nats per predicted byte and bits per byte (nats / ln 2). */
typedef struct ox_oryx_eval {
    double nats;
    double bits_per_byte;
    int64_t n_predicted;    /* number of predicted bytes */
} ox_oryx_eval;

/* Scores bytes[0 .. n-1] as consecutive non-overlapping windows of T + 1 bytes (the last one may be shorter,
 * >= 2 bytes; a final single byte is not scored); window w predicts its bytes 1.. from the bytes before them.
 * Full windows are batched up to 8 rows per forward; batch i uses the map ox_oryx_map_build(spec, i, ...)
 * (spec may be NULL when no layer of the model is of kind oryx). No gradients are recorded; the arena is
 * rewound after each batch (nothing the caller made is freed). Errors: n < 2, T < 1, the model's. */
ox_status ox_oryx_evaluate_bytes(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *bytes, int64_t n, int64_t T,
                                 const ox_oryx_map_spec *spec, ox_oryx_eval *out);
/* The same on the validation part of data. */
ox_status ox_oryx_evaluate(ox_ctx *ctx, const ox_oryx_model *m, const ox_oryx_data *data, int64_t T,
                           const ox_oryx_map_spec *spec, ox_oryx_eval *out);

/* Writes the checkpoint of tr: first <prefix>.state.safetensors, complete on its own (format
 * "oryx-train-state-3": the parameters, the AdamW moments "optim.m.<name>" / "optim.v.<name>", and as
 * metadata the step, the RNG state, the data length, hash and path, every setting of tr->cfg including the
 * whole map spec and the eval schedule, and the model's configuration as "model.<key>"), then
 * <prefix>.safetensors (ox_oryx_save: the model alone). Each is replaced atomically (tensor/io.h), in that
 * order, so an interrupted or failed save (kill -9, full disk) always leaves a resumable state file: the
 * previous complete one or the new one. Stale temporaries of dead processes are removed. */
ox_status ox_oryx_train_save(ox_ctx *ctx, const ox_oryx_trainer *tr, const char *prefix);

/* The same, with the caller's metadata: extra[i].value stored under "user.<extra[i].key>" (keys up to 64
 * bytes) in the state file, saved and replaced together with the checkpoint (e.g. a program's loss history);
 * read back by ox_oryx_train_read_user. */
ox_status ox_oryx_train_save_with(ox_ctx *ctx, const ox_oryx_trainer *tr, const char *prefix, const ox_st_kv *extra,
                                  int n_extra);
/* The "user.<key>" string of a checkpoint's state file (only its header is read): an owned copy (ox_free),
 * or NULL when the key is absent (status OK) or on error (status set). */
char *ox_oryx_train_read_user(ox_ctx *ctx, const char *prefix, const char *key);

/* Rebuilds a trainer from the checkpoint alone: for format 3 the state file alone (the model file may be
 * one save behind and is not read), for the older formats "oryx-train-state-2" / "-1" (weights in the model
 * file) both files, whose steps must agree. Loads the model into *model (owned by the caller:
 * ox_oryx_model_free after ox_oryx_trainer_free), the configuration, moments, step and RNG state, then
 * initialises tr over model and data, so training continues bit-identically (same thread count).
 * Errors: OX_ERR_STATE when the two files' steps differ or the data is not the corpus of the checkpoint,
 * OX_ERR_FORMAT for a missing or malformed metadata value, and those of the readers. */
ox_status ox_oryx_train_resume(ox_ctx *ctx, const char *prefix, ox_oryx_model *model, const ox_oryx_data *data,
                               ox_oryx_trainer *tr);

/* The settings of a checkpoint without loading it (only the state file's header is read): *cfg as resume
 * would restore it (map.positions left empty; eval_every, eval_windows and data_path are 0 / "" in the
 * older formats) and *step (may be NULL). For a caller that needs the data path or T before loading. */
ox_status ox_oryx_train_read_settings(ox_ctx *ctx, const char *prefix, ox_oryx_train_config *cfg, int64_t *step);

#endif
