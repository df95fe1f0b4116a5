/* state.h - what the optimizers of optim/ share: named per-parameter state tensors and the element walk.
 *
 * An optimizer keeps, for every parameter of an ox_nn_params list, one or more state tensors of the same
 * shape (AdamW: m and v; SGD: the momentum buffer). ox_optim_state holds one such set: owned, zeroed,
 * allocated once at init, each tensor named "<prefix><param name>" (e.g. "optim.m.embed.weight", the
 * checkpoint name of MODELS.md 12.3), so a checkpoint writes t->name / t pairs and a reader finds the
 * receiving tensor with ox_optim_state_find.
 *
 *   ox_optim_state m;
 *   ox_optim_state_init(ctx, &m, &params, "optim.m.");    // m.t[i] has the shape of params.items[i].t
 *   ox_tensor *mi = ox_optim_state_find(&m, "optim.m.embed.weight");
 *   ox_optim_state_free(&m);
 *
 * ox_optim_run_segments is the one parallel loop of the element-wise updates: the parameters are taken
 * as one concatenated vector and split into equal contiguous ranges, one per thread. */
#ifndef OX_OPTIM_STATE_H
#define OX_OPTIM_STATE_H

#include "nn/param.h"

typedef struct ox_optim_state {
    int n;              /* number of parameters at init */
    ox_tensor **t;      /* n owned tensors, zero-filled, t[i] of the shape of parameter i */
    char **names;       /* n owned strings "<prefix><param name>"; t[i]->name points at names[i] */
} ox_optim_state;

/* Allocates the set for every parameter of ps (ps is not kept). OX_ERR_NOMEM / OX_ERR_DTYPE on failure,
 * in which case nothing stays allocated. Free with ox_optim_state_free. */
ox_status ox_optim_state_init(ox_ctx *ctx, ox_optim_state *st, const ox_nn_params *ps, const char *prefix);
/* The state tensor whose name is `name` (e.g. "optim.v.norm_f.weight"), or NULL. Borrowed. */
ox_tensor *ox_optim_state_find(const ox_optim_state *st, const char *name);
/* Frees every tensor and name; the struct is left empty. Safe on an empty or failed-init set. */
void ox_optim_state_free(ox_optim_state *st);

/* Checks what every optimizer and gradient function needs of ps: F32 parameters, contiguous, each with a
 * contiguous gradient of the same shape; and, when st is not NULL, that the list still has the
 * parameters st was made for (same count and shapes). Records OX_ERR_DTYPE / OX_ERR_SHAPE / OX_ERR_ARG /
 * OX_ERR_STATE with a message that starts with `op` and names the parameter; returns the status. */
ox_status ox_optim_check_params(ox_ctx *ctx, const char *op, const ox_nn_params *ps, const ox_optim_state *st);

/* fn(arg, i, begin, end) handles elements [begin, end) of parameter i. */
typedef void (*ox_optim_seg_fn)(void *arg, int i, int64_t begin, int64_t end);

/* Calls fn over every element of every parameter of ps exactly once. With n_threads > 1 and at least
 * OX_PARALLEL_MIN elements in all, the concatenation of the parameters is split into n_threads equal
 * contiguous ranges (boundaries on multiples of 16 elements) run in parallel, so fn must only update
 * elements independently of each other. */
void ox_optim_run_segments(const ox_nn_params *ps, int n_threads, ox_optim_seg_fn fn, void *arg);

#endif
