/* test_grad_fresh.c - ox_ag_grad_fresh (autograd/tape.h): a gradient buffer created on first touch is
 * written with '=' by the backwards that use it (linear dx, silu_mul, shortconv dx, reshape / permute,
 * elementwise binary ops, rope, l2norm, rmsnorm, gated_rmsnorm) instead of being
 * zero-filled and accumulated into.
 *
 * Each op's input gradient taken through the fresh path is compared with the same gradient taken through
 * the accumulate path (the buffer created zeroed before backward). The two must be bit-identical (exact
 * equality, no tolerance: writing a is the same as 0 + a, and no other sum changes order). Also the
 * reshape / permute views, the elementwise binary ops (a same-shape operand, both sides), rope, l2norm,
 * rmsnorm and gated_rmsnorm (both inputs). The arena
 * memory the fresh buffers land in is first filled with NaN, so an element the fresh path forgot to write
 * shows up as a NaN / mismatch. An input used twice (two linears) checks that the second use accumulates
 * onto the first. */
#include "nn_modules_util.h"

#include <math.h>

#include "nn/gated_rmsnorm.h"
#include "nn/l2norm.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "nn/rope.h"
#include "nn/shortconv.h"
#include "nn/swiglu.h"

enum { B = 2, T = 9, C = 24, O = 13 };

Test(grad_fresh, semantics)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    ox_tensor *h = ox_ag_scale(ctx, x, 2.0);          /* requires a gradient, has none yet */
    ox_tensor *c = randn(ctx, &rng, OX_DIMS(3, 4), 0, 1);
    cr_assert_not_null(h);
    int fresh = -1;
    cr_assert_null(ox_ag_grad_fresh(ctx, c, &fresh));  /* no gradient wanted */
    cr_assert_eq(fresh, 0);
    ox_tensor *g = ox_ag_grad_fresh(ctx, h, &fresh);
    cr_assert_not_null(g);
    cr_assert_eq(fresh, 1);
    cr_assert(g->ndim == 2 && g->shape[0] == 3 && g->shape[1] == 4 && ox_tensor_is_contiguous(g));
    cr_assert_eq(ox_ag_grad_fresh(ctx, h, &fresh), g);   /* second touch: the same buffer, accumulate */
    cr_assert_eq(fresh, 0);
    cr_assert_eq(ox_ag_grad(ctx, h), g);
    int fx = -1;
    cr_assert_eq(ox_ag_grad_fresh(ctx, x, &fx), x->grad);  /* a leaf's gradient exists already */
    cr_assert_eq(fx, 0);
    ox_ctx_free(ctx);
}

/* The gradient of h = 0.5 x (x [B, T, C]) under loss = sum(r * f(h)), f one of the ops; preseed = 1 makes
 * h's gradient (zeroed) before backward so the op accumulates; otherwise the op creates it. Copied to out. */
static void grad_of_h(int op, int preseed, float *out)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    ox_tensor *x = leaf(ctx, &rng, OX_DIMS(B, T, C), 0, 1);
    ox_tensor *x2 = leaf(ctx, &rng, OX_DIMS(B, T, C), 0, 1);
    ox_tensor *w1 = leaf(ctx, &rng, OX_DIMS(O, C), 0, 0.3);
    ox_tensor *w2 = leaf(ctx, &rng, OX_DIMS(O, C), 0, 0.3);
    ox_tensor *wc = leaf(ctx, &rng, OX_DIMS(C, 4), 0, 0.5);
    ox_tensor *wn = leaf(ctx, &rng, OX_DIMS(C), 1, 0.2);
    ox_tensor *h = ox_ag_scale(ctx, x, 0.5), *h2 = ox_ag_scale(ctx, x2, 0.5);
    ox_tensor *y = NULL;
    switch (op) {
    case 0: y = ox_nn_linear(ctx, h, w1); break;
    case 1: y = ox_ag_add(ctx, ox_nn_linear(ctx, h, w1), ox_nn_linear(ctx, h, w2)); break;
    case 2: y = ox_nn_silu_mul(ctx, h, h2); break;
    case 3: y = ox_nn_shortconv(ctx, h, wc, OX_NN_ACT_SILU); break;
    case 4: y = ox_ag_reshape(ctx, h, OX_DIMS(B * T, C)); break;
    case 5: y = ox_ag_permute(ctx, h, (const int[]){ 2, 0, 1 }); break;
    case 6: y = ox_ag_add(ctx, ox_ag_mul(ctx, h, h2), ox_ag_sub(ctx, h2, h)); break;
    case 7: y = ox_ag_div(ctx, h2, h); break;     /* h the divisor: the -a / b^2 path */
    case 8: y = ox_nn_rope(ctx, ox_ag_reshape(ctx, h, OX_DIMS(B, T, 2, C / 2)), 3); break;
    case 9: y = ox_nn_l2norm(ctx, h); break;
    case 10: y = ox_nn_rmsnorm(ctx, h, wn); break;
    case 11: y = ox_nn_gated_rmsnorm(ctx, h, h2, wn, C / 2); break;   /* h: the output being normed */
    default: y = ox_nn_gated_rmsnorm(ctx, h2, h, wn, C / 2); break;   /* h: the gate */
    }
    cr_assert_not_null(y, "%s", ox_ctx_message(ctx));
    ox_tensor *r = randn(ctx, &rng, y->ndim, y->shape, 0, 1);
    ox_tensor *loss = ox_ag_sum_all(ctx, ox_ag_mul(ctx, y, r));
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    if (preseed)
        cr_assert_not_null(ox_ag_grad(ctx, h));
    /* poison the arena memory the backward will allocate from */
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    size_t n_poison = (size_t)1 << 16;
    float *p = ox_ctx_alloc(ctx, sizeof(float) * n_poison);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n_poison; i++)
        p[i] = NAN;
    ox_arena_rewind(&ctx->arena, mark);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    cr_assert_not_null(h->grad);
    memcpy(out, ox_tensor_f32(h->grad), sizeof(float) * B * T * C);
    ox_ctx_free(ctx);
}

Test(grad_fresh, written_whole_and_equal_to_accumulated)
{
    const char *names[] = { "linear",  "linear used twice", "silu_mul",           "shortconv",
                            "reshape", "permute",           "mul + sub (b side)", "div (b side)",
                            "rope",    "l2norm",            "rmsnorm",            "gated_rmsnorm (o)",
                            "gated_rmsnorm (g)" };
    for (int op = 0; op < 13; op++) {
        float fresh[B * T * C], acc[B * T * C];
        grad_of_h(op, 0, fresh);
        grad_of_h(op, 1, acc);
        for (int i = 0; i < B * T * C; i++)
            cr_assert(isfinite(fresh[i]), "%s: element %d of the fresh gradient not written", names[op], i);
        cr_assert(memcmp(fresh, acc, sizeof fresh) == 0, "%s: fresh and accumulated gradients differ", names[op]);
    }
}
