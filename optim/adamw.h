/* adamw.h - AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, arXiv 1711.05101; the
 * update of PyTorch's torch.optim.AdamW).
 *
 * For every parameter w with gradient g, at step t = 1, 2, ... (elementwise, float arithmetic):
 *     m = b1 m + (1 - b1) g                 v = b2 v + (1 - b2) g^2
 *     m_hat = m / (1 - b1^t)                v_hat = v / (1 - b2^t)      (bias corrections, from double)
 *     w -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * w)
 * where wd is cfg.wd for parameters registered with OX_NN_DECAY and of rank >= 2, and 0 otherwise:
 * norm weights, gains, biases and every other 1-d (or 0-d) parameter are never decayed, even if flagged.
 * lr is passed to each step so that a schedule (schedule.h) can drive it; parameter groups
 * (ox_optim_adamw_set_groups) give parameters by name prefix their own lr multiplier and weight decay.
 *
 * State: m and v, one owned tensor each per parameter (allocated and zeroed by ox_optim_adamw_new, never
 * again), named "optim.m.<param name>" / "optim.v.<param name>" (their t->name) for checkpoints, and
 * the count t of steps taken. A step allocates nothing; it is parallel over elements and, being
 * elementwise, gives bit-identical results at any thread count.
 *
 * A step does not look for NaN or Inf in the gradients: call ox_optim_clip_grad_norm (or
 * ox_optim_grad_check_finite) first, and skip the step when it fails (clip.h).
 *
 *   ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &params, ox_optim_adamw_defaults());
 *   for (step = 0; ...) {
 *       ... forward, backward ...
 *       if (ox_optim_clip_grad_norm(ctx, &params, 1.0, &norm)) break;
 *       ox_optim_adamw_step(ctx, opt, ox_optim_lr_cosine(step, warmup, total, 3e-3, 3e-4));
 *       ox_nn_params_zero_grad(&params);
 *   }
 *   ox_optim_adamw_free(opt);
 */
#ifndef OX_OPTIM_ADAMW_H
#define OX_OPTIM_ADAMW_H

#include "optim/state.h"

typedef struct ox_optim_adamw_config {
    float b1;    /* first-moment decay, in [0, 1) */
    float b2;    /* second-moment decay, in [0, 1) */
    float eps;   /* > 0, added to sqrt(v_hat) */
    float wd;    /* decoupled weight decay, >= 0 (multiplied by lr) */
} ox_optim_adamw_config;

typedef struct ox_optim_adamw {
    ox_optim_adamw_config cfg;
    ox_nn_params *params;    /* borrowed: must outlive the optimizer and keep its parameters */
    ox_optim_state m, v;     /* owned: first and second moments, "optim.m." / "optim.v." + param name */
    int64_t t;               /* steps taken */
    float *lr_scale, *wd;    /* owned, one per parameter, or NULL: set by ox_optim_adamw_set_groups */
} ox_optim_adamw;

/* A parameter group (PyTorch's param_groups): the parameters whose name starts with `prefix` ("" = all). */
typedef struct ox_optim_group {
    const char *prefix;
    float lr_scale;          /* the step's lr is multiplied by it for these parameters (>= 0; 0 freezes them) */
    float wd;                /* their weight decay, >= 0, used as given (rank and flag rules do not apply) */
} ox_optim_group;

/* b1 0.9, b2 0.95, eps 1e-8, wd 0.1 (the usual language-model settings). */
ox_optim_adamw_config ox_optim_adamw_defaults(void);

/* A new optimizer over every parameter of ps, m = v = 0, t = 0. Owned: free with ox_optim_adamw_free.
 * NULL with OX_ERR_ARG for a config out of range, OX_ERR_NOMEM, or the errors of ox_optim_check_params. */
ox_optim_adamw *ox_optim_adamw_new(ox_ctx *ctx, ox_nn_params *ps, ox_optim_adamw_config cfg);
void ox_optim_adamw_free(ox_optim_adamw *opt);

/* One update of every parameter from its gradient (t += 1 first). lr must be finite and >= 0. The
 * gradients are only read. OX_ERR_STATE if the parameter list no longer matches the state. */
ox_status ox_optim_adamw_step(ox_ctx *ctx, ox_optim_adamw *opt, float lr);

/* Parameter groups: each parameter takes the first group whose prefix its name starts with; a parameter in
 * no group keeps the rule above (lr, cfg.wd by flag and rank). Replaces earlier groups; n = 0 removes them.
 * Groups are settings, not state: checkpoints do not hold them (set them again after restoring). The update
 * of a parameter with lr_scale 1 and the rule's wd is bit-identical to an optimizer without groups.
 * OX_ERR_ARG for a NULL prefix or a negative or non-finite lr_scale or wd. */
ox_status ox_optim_adamw_set_groups(ox_ctx *ctx, ox_optim_adamw *opt, const ox_optim_group *groups, int n);

/* The first / second moment of parameter i (0 <= i < params->n), a [shape of parameter i] owned by the
 * optimizer, named "optim.m.<param name>" / "optim.v.<param name>"; NULL if i is out of range. A
 * checkpoint saves and restores them in place (ox_safetensors_read_strict into these tensors). */
ox_tensor *ox_optim_adamw_m(const ox_optim_adamw *opt, int i);
ox_tensor *ox_optim_adamw_v(const ox_optim_adamw *opt, int i);
/* The state tensor called `name` ("optim.m.<param name>" or "optim.v.<param name>"), or NULL. */
ox_tensor *ox_optim_adamw_find(const ox_optim_adamw *opt, const char *name);

/* Steps taken so far (the t of the last bias correction); set it when restoring a checkpoint. */
int64_t ox_optim_adamw_get_step(const ox_optim_adamw *opt);
/* OX_ERR_ARG if t < 0. */
ox_status ox_optim_adamw_set_step(ox_ctx *ctx, ox_optim_adamw *opt, int64_t t);

#endif
