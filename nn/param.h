/* param.h - a model's parameters: named, heap-owned tensors with gradients, in registration order.
 *
 * Modules register their parameters here as they are initialised; optimizers, gradient clipping,
 * checkpoints and parameter reports walk the list. Names are the checkpoint names of MODELS.md 12.2
 * (e.g. "layers.0.mixer.k_proj.weight"), so the list IS the checkpoint table.
 *
 *   ox_nn_params ps; ox_nn_params_init(&ps);
 *   ox_tensor *w = ox_nn_params_add(ctx, &ps, "mlp.up_proj.weight", OX_DIMS(F, D), OX_NN_DECAY);
 *   ...
 *   ox_nn_params_zero_grad(&ps);
 *   ox_nn_params_free(&ps);                   // frees every tensor and gradient
 */
#ifndef OX_NN_PARAM_H
#define OX_NN_PARAM_H

#include "tensor/tensor.h"

/* Whether AdamW's weight decay applies: not to norms, gains and other 1-d parameters. */
typedef enum ox_nn_decay { OX_NN_NO_DECAY = 0, OX_NN_DECAY = 1 } ox_nn_decay;

typedef struct ox_nn_param {
    char *name;         /* owned copy */
    ox_tensor *t;       /* owned; t->grad allocated, zeroed */
    ox_nn_decay decay;
} ox_nn_param;

typedef struct ox_nn_params {
    ox_nn_param *items;
    int n, cap;
} ox_nn_params;

void ox_nn_params_init(ox_nn_params *ps);
/* A new zero-filled parameter with a zeroed gradient, appended to the list; the tensor's name points at
 * the list's copy of `name`. NULL on error (duplicate name, bad shape, out of memory). */
ox_tensor *ox_nn_params_add(ox_ctx *ctx, ox_nn_params *ps, const char *name, int ndim, const int64_t *shape,
                            ox_nn_decay decay);
/* The parameter called `name`, or NULL. */
ox_tensor *ox_nn_params_get(const ox_nn_params *ps, const char *name);
/* Total number of elements. */
int64_t ox_nn_params_numel(const ox_nn_params *ps);
void ox_nn_params_zero_grad(ox_nn_params *ps);
void ox_nn_params_free(ox_nn_params *ps);

#endif
