/* tape.h - reverse-mode automatic differentiation on a tape (a Wengert list).
 *
 * Every differentiable op appends one node to the context's tape as it runs, in execution order.
 * ox_ag_backward walks the tape from the newest node to the oldest and calls each node's backward
 * function, which reads the gradients of the node's outputs and ADDS (+=) into the gradients of its
 * inputs. No graph search is needed: execution order is already a topological order. Gradients
 * accumulate into each leaf's grad until the caller zeroes them, so several backward passes (micro-
 * batches) add up, and a tensor used twice (a tied embedding, a shared trunk) gets both contributions.
 *
 *   ox_tensor_require_grad(ctx, w);                 // a leaf
 *   ox_tensor *loss = ox_ag_mean(ctx, ox_ag_square(ctx, ox_ag_matmul(ctx, x, w)));
 *   ox_ag_backward(ctx, loss);                      // w->grad += d loss / d w
 *   ox_ctx_reset(ctx);                              // drop the tape and activations
 *
 * Registering a fused op (nn/ does this for attention, SSD and GatedDelta): compute the outputs, then
 *
 *   ox_ag_node *n = ox_ag_record(ctx, &my_op, 2, (ox_tensor *[]){ q, k }, 1, &out);
 *   if (n) n->saved = my_saved_struct;              // NULL: nothing needs a gradient (or an error)
 *
 * where my_op = { "my_op", my_backward } and my_backward(ctx, node) uses ox_ag_grad(ctx, node->in[i])
 * to get each input's gradient buffer (NULL when that input needs none) and node->out[j]->grad
 * (NULL when no gradient reached that output). docs/writing_an_op.md walks through a whole fast op (the
 * iterator and vectorised math, recording, backward, gradcheck, the profiler) on autograd/gelu.c. */
#ifndef OX_TAPE_H
#define OX_TAPE_H

#include "tensor/tensor.h"

#define OX_AG_MAX_IO 12

typedef struct ox_ag_node ox_ag_node;

/* Adds the node's contribution to its inputs' gradients. Returns OX_OK or a recorded error. */
typedef ox_status (*ox_ag_backward_fn)(ox_ctx *ctx, ox_ag_node *node);

typedef struct ox_ag_op {
    const char *name;
    ox_ag_backward_fn backward;
} ox_ag_op;

struct ox_ag_node {
    const ox_ag_op *op;
    ox_ag_node *prev;                 /* older node */
    int n_in, n_out;
    ox_tensor *in[OX_AG_MAX_IO];      /* inputs as the op saw them (views included) */
    ox_tensor *out[OX_AG_MAX_IO];
    void *saved;                      /* op-specific saved state, arena-owned */
    double f[4];                      /* small float parameters of the op (scale, bounds, ...) */
    int64_t i[OX_MAX_DIMS + 2];       /* small integer parameters (axis, permutation, start, ...) */
};

/* Appends a node for an op that has produced `out` from `in`, if gradients are enabled and some input
 * requires one; the outputs are then marked requires_grad. Returns the node (to fill `saved`, `f`, `i`),
 * or NULL when nothing was recorded: either no gradient is needed (not an error) or the arena is full
 * (an error is recorded; check ox_ctx_status). */
ox_ag_node *ox_ag_record(ox_ctx *ctx, const ox_ag_op *op, int n_in, ox_tensor *const *in,
                         int n_out, ox_tensor *const *out);
/* 1 if an op with these inputs would be recorded (so it should save what its backward needs). */
int ox_ag_needs_grad(const ox_ctx *ctx, int n_in, ox_tensor *const *in);

/* The gradient buffer of t (contiguous, t's shape), created zeroed on first use; NULL if t does not
 * require a gradient. For use inside backward functions. */
ox_tensor *ox_ag_grad(ox_ctx *ctx, ox_tensor *t);
/* Like ox_ag_grad, for a backward that writes EVERY element of t's gradient: when the buffer does not exist
 * yet it is created uninitialised and *fresh is set to 1, and the caller must then write (=) all its
 * elements instead of accumulating (+=); otherwise *fresh = 0 and the caller accumulates as usual. Saves
 * the zero fill and the read of zeros on first touch. NULL if t does not require a gradient. */
ox_tensor *ox_ag_grad_fresh(ox_ctx *ctx, ox_tensor *t, int *fresh);

/* Backpropagates from a scalar (one-element) tensor with seed 1, then empties the tape. */
ox_status ox_ag_backward(ox_ctx *ctx, ox_tensor *loss);
/* Same from any tensor, with the given seed gradient (out's shape). */
ox_status ox_ag_backward_seeded(ox_ctx *ctx, ox_tensor *out, const ox_tensor *seed);

/* Sets the gradients of these leaves to zero (for the next accumulation). */
void ox_ag_zero_grad(ox_tensor *const *leaves, int n);

/* No-grad scope: ops record nothing while disabled. Returns the previous setting.
 *   int prev = ox_ag_set_grad_enabled(ctx, 0); ... ; ox_ag_set_grad_enabled(ctx, prev); */
int ox_ag_set_grad_enabled(ox_ctx *ctx, int enabled);

/* A view of t that does not require a gradient: backward stops here. */
ox_tensor *ox_ag_detach(ox_ctx *ctx, ox_tensor *t);

#endif
