/* layernorm.h - the LayerNorm module (torch.nn.LayerNorm(D, bias=...)): a weight, an optional bias, and
 * the fused op ox_ag_layernorm of autograd/ops.h (math, backward and accuracy are stated there).
 *
 * Parameters: "<prefix>.weight" [D] initialised to 1 and, with a bias, "<prefix>.bias" [D] initialised
 * to 0 (PyTorch's init), both without weight decay (1-d), both owned by the parameter list. eps is
 * OX_NN_LAYERNORM_EPS (PyTorch's default) unless the caller changes m.eps after init.
 *
 *   ox_nn_layernorm_t ln;
 *   ox_nn_layernorm_init(ctx, &ps, &ln, "transformer.h.0.ln_1", D, 1);   // .weight = 1, .bias = 0
 *   ox_tensor *y = ox_nn_layernorm_forward(ctx, &ln, x);                 // [B, T, D], arena-owned
 */
#ifndef OX_NN_LAYERNORM_H
#define OX_NN_LAYERNORM_H

#include "autograd/tape.h"
#include "nn/param.h"

/* PyTorch's default eps of nn.LayerNorm. */
#define OX_NN_LAYERNORM_EPS 1e-5

typedef struct ox_nn_layernorm_t {
    ox_tensor *weight;      /* [D], borrowed from the parameter list */
    ox_tensor *bias;        /* [D], borrowed; NULL without a bias */
    int64_t dim;
    double eps;
} ox_nn_layernorm_t;

/* Registers "<prefix>.weight" [dim] = 1 and, when bias != 0, "<prefix>.bias" [dim] = 0 in ps; sets
 * eps = OX_NN_LAYERNORM_EPS. Errors: a bad dim or a duplicate name (recorded, returned). */
ox_status ox_nn_layernorm_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_layernorm_t *m, const char *prefix,
                               int64_t dim, int bias);
/* ox_ag_layernorm(ctx, x, m->weight, m->bias, m->eps): x [..., dim] -> [..., dim]. */
ox_tensor *ox_nn_layernorm_forward(ox_ctx *ctx, const ox_nn_layernorm_t *m, ox_tensor *x);

#endif
