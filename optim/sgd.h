/* sgd.h - stochastic gradient descent with momentum, PyTorch's convention (torch.optim.SGD, dampening 0;
 * Nesterov as in Sutskever et al. 2013, in PyTorch's form).
 *
 * For every parameter w with gradient g, elementwise in float:
 *     d = g + wd * w                        (L2 weight decay, coupled: it goes through the momentum)
 *     buf = mu * buf + d                    (buf starts at 0, so the first step gives buf = d, as PyTorch)
 *     w -= lr * (nesterov ? d + mu * buf : buf)
 * wd applies, as in AdamW (adamw.h), only to parameters flagged OX_NN_DECAY of rank >= 2. With mu = 0 this
 * is plain SGD (the buffer then just holds the last d).
 *
 * State: one momentum buffer per parameter (owned, allocated and zeroed once at init), named
 * "optim.buf.<param name>" for checkpoints, and the step count. A step allocates nothing, is parallel over
 * elements and bit-identical at any thread count. Like AdamW it does not check gradients for NaN/Inf:
 * the trainer calls ox_optim_clip_grad_norm first (clip.h).
 *
 *   ox_optim_sgd *opt = ox_optim_sgd_new(ctx, &params, (ox_optim_sgd_config){ .momentum = 0.9f });
 *   ox_optim_sgd_step(ctx, opt, 0.1f);
 *   ox_optim_sgd_free(opt);
 */
#ifndef OX_OPTIM_SGD_H
#define OX_OPTIM_SGD_H

#include "optim/state.h"

typedef struct ox_optim_sgd_config {
    float momentum;   /* mu, in [0, 1) */
    float wd;         /* L2 weight decay, >= 0 */
    int nesterov;     /* 0 or 1; 1 needs momentum > 0 */
} ox_optim_sgd_config;

typedef struct ox_optim_sgd {
    ox_optim_sgd_config cfg;
    ox_nn_params *params;    /* borrowed: must outlive the optimizer and keep its parameters */
    ox_optim_state buf;      /* owned: momentum buffers, "optim.buf." + param name */
    int64_t t;               /* steps taken */
} ox_optim_sgd;

/* A new optimizer over every parameter of ps, buf = 0, t = 0. Owned: free with ox_optim_sgd_free.
 * NULL with OX_ERR_ARG for a config out of range, OX_ERR_NOMEM, or the errors of ox_optim_check_params. */
ox_optim_sgd *ox_optim_sgd_new(ox_ctx *ctx, ox_nn_params *ps, ox_optim_sgd_config cfg);
void ox_optim_sgd_free(ox_optim_sgd *opt);

/* One update of every parameter (t += 1). lr must be finite and >= 0. Gradients are only read. */
ox_status ox_optim_sgd_step(ox_ctx *ctx, ox_optim_sgd *opt, float lr);

/* The momentum buffer of parameter i ("optim.buf.<param name>", the parameter's shape), NULL if out of
 * range; and the buffer called `name`, or NULL. Owned by the optimizer. */
ox_tensor *ox_optim_sgd_buf(const ox_optim_sgd *opt, int i);
ox_tensor *ox_optim_sgd_find(const ox_optim_sgd *opt, const char *name);

int64_t ox_optim_sgd_get_step(const ox_optim_sgd *opt);
/* OX_ERR_ARG if t < 0. */
ox_status ox_optim_sgd_set_step(ox_ctx *ctx, ox_optim_sgd *opt, int64_t t);

#endif
