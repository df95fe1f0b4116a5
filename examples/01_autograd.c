/* 01_autograd.c - tutorial 1: reverse-mode automatic differentiation.
 *
 * What it teaches, in order:
 *   1. leaves: tensors you want gradients for (ox_tensor_require_grad);
 *   2. ops record themselves on a tape as they run; ox_ag_backward walks the tape backwards and ADDS
 *      d loss / d leaf into each leaf's ->grad; we check the result against the derivative by hand;
 *   3. gradients accumulate across backward calls until you zero them (ox_ag_zero_grad);
 *   4. ox_gradcheck: compare an analytic gradient with finite differences (how every op is tested),
 *      here through a transposed view and a broadcast;
 *   5. the no-grad scope (evaluation: nothing recorded) and ox_ag_detach (stop the gradient).
 *
 * Run it from the repository root:
 *     make && build/examples/01_autograd
 * Under AddressSanitizer:
 *     make BUILD=build/asan SAN=1 build/asan/examples/01_autograd && build/asan/examples/01_autograd
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/gradcheck.h"   /* ox_gradcheck, ox_gradcheck_defaults */
#include "autograd/ops.h"         /* the differentiable ops ox_ag_* (brings autograd/tape.h) */
#include "tensor/rng.h"           /* ox_rng: explicit, seeded random numbers */

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "01_autograd: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

static void show_vec(const char *label, const ox_tensor *t)
{
    printf("%-34s", label);
    for (int64_t i = 0; i < ox_tensor_numel(t); i++)
        printf(" %9.5f", ox_tensor_f32(t)[i]);
    printf("\n");
}

/* The function gradcheck differentiates (section 4). It receives the leaves in `in` and may build any
 * views of them inside: here A is used transposed (a strided view, no copy) and the bias c [3] is
 * broadcast over the rows of the product, so the check covers the backward of transpose, matmul,
 * broadcasting add and tanh together:
 *     f(A, B, c) = tanh(A^T B + c),  A [4, 2] (used as [2, 4]), B [4, 3], c [3]  ->  [2, 3] */
static ox_tensor *f_checked(ox_ctx *ctx, ox_tensor *const *in, void *arg)
{
    (void)arg;
    ox_tensor *at = ox_ag_transpose(ctx, in[0], 0, 1);
    return ox_ag_tanh(ctx, ox_ag_add(ctx, ox_ag_matmul(ctx, at, in[1]), in[2]));
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    ox_rng rng = ox_rng_seed(42);   /* every random number comes from an explicit generator */

    /* ---- 1. Leaves ----------------------------------------------------------------------------------
     * x and w are the "parameters" of this example. Owned tensors (heap) survive ox_ctx_reset;
     * ox_tensor_require_grad marks them as leaves and gives each a zeroed ->grad of the same shape. */
    enum { N = 4 };
    ox_tensor *x = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(N));
    ox_tensor *w = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(N));
    if (!x || !w || ox_tensor_fill_uniform(ctx, x, &rng, -1.0, 1.0) || ox_tensor_fill_uniform(ctx, w, &rng, 0.5, 2.0)
        || ox_tensor_require_grad(ctx, x) || ox_tensor_require_grad(ctx, w))
        die(ctx, "creating the leaves");
    printf("== 1. leaves\n");
    show_vec("x", x);
    show_vec("w", w);

    /* ---- 2. Forward, backward, read the gradients ----------------------------------------------------
     *     loss = sum_i w_i x_i^2  +  mean_i exp(x_i)
     * Each op runs at once (eager) and, since an input requires a gradient, appends a node to the tape.
     * Error checking: ops return NULL on error and every later op then returns NULL too (sticky), so
     * one check on the final result covers the whole expression. */
    ox_tensor *loss = ox_ag_add(ctx, ox_ag_sum_all(ctx, ox_ag_mul(ctx, w, ox_ag_square(ctx, x))),
                                ox_ag_mean_all(ctx, ox_ag_exp(ctx, x)));
    if (!loss)
        die(ctx, "forward");
    printf("\n== 2. forward and backward\nloss = %.6f, %lld nodes on the tape\n", ox_tensor_f32(loss)[0],
           (long long)ctx->tape_len);
    /* backward seeds d loss / d loss = 1 and walks the tape from the newest node to the oldest; each
     * node adds its inputs' share (chain rule) into their gradients. The tape is emptied afterwards. */
    if (ox_ag_backward(ctx, loss) != OX_OK)
        die(ctx, "backward");
    show_vec("x->grad (autograd)", x->grad);
    /* The same derivatives by hand: d/dx_i = 2 w_i x_i + exp(x_i) / N, d/dw_i = x_i^2. */
    double worst = 0;
    printf("%-34s", "x->grad (by hand: 2wx + e^x/N)");
    for (int i = 0; i < N; i++) {
        double xi = ox_tensor_f32(x)[i], wi = ox_tensor_f32(w)[i];
        double gx = 2 * wi * xi + exp(xi) / N, gw = xi * xi;
        printf(" %9.5f", gx);
        worst = fmax(worst, fmax(fabs(gx - ox_tensor_f32(x->grad)[i]), fabs(gw - ox_tensor_f32(w->grad)[i])));
    }
    printf("\n");
    show_vec("w->grad (autograd; by hand: x^2)", w->grad);
    printf("largest difference from the hand derivatives: %.2e\n", worst);
    /* float32 arithmetic: agreement to ~1e-6 is what to expect (a wrong formula would differ by O(1)) */
    if (worst > 1e-5) {
        fprintf(stderr, "01_autograd: autograd disagrees with the hand derivatives by %.2e\n", worst);
        return 1;
    }
    ox_ctx_reset(ctx);   /* drop the activations; x, w and their gradients are owned and survive */

    /* ---- 3. Gradients accumulate ---------------------------------------------------------------------
     * backward ADDS into ->grad. That is what makes a tensor used twice get both contributions, and it
     * lets you sum gradients over several micro-batches. The flip side: zero them before each step. */
    printf("\n== 3. accumulation\n");
    float g0 = ox_tensor_f32(w->grad)[0];
    loss = ox_ag_sum_all(ctx, ox_ag_mul(ctx, w, ox_ag_square(ctx, x)));        /* d/dw_0 = x_0^2 again */
    if (!loss || ox_ag_backward(ctx, loss))
        die(ctx, "second backward");
    printf("w->grad[0]: %.5f after the first backward, %.5f after a second one (added)\n", g0,
           ox_tensor_f32(w->grad)[0]);
    ox_ag_zero_grad((ox_tensor *[]){ x, w }, 2);
    printf("after ox_ag_zero_grad: %.5f\n", ox_tensor_f32(w->grad)[0]);
    ox_ctx_reset(ctx);

    /* ---- 4. Gradient check ------------------------------------------------------------------------------
     * ox_gradcheck perturbs every input element by +-eps, measures how L = sum(R * f) changes (R is a
     * fixed random weighting), and compares with what backward says. The inputs are contiguous leaves;
     * the views (transpose, broadcast) are made inside f_checked so their backward is checked too.
     * Scale inputs so the gradients are of order one: tiny gradients would hide inside the tolerance. */
    printf("\n== 4. gradcheck of tanh(A^T B + c) with A transposed and c broadcast\n");
    ox_tensor *A = ox_tensor_randn(ctx, &rng, OX_DIMS(4, 2), 0.0, 0.5);
    ox_tensor *B = ox_tensor_randn(ctx, &rng, OX_DIMS(4, 3), 0.0, 0.5);
    ox_tensor *c = ox_tensor_randn(ctx, &rng, OX_DIMS(3), 0.0, 0.5);
    if (!A || !B || !c || ox_tensor_require_grad(ctx, A) || ox_tensor_require_grad(ctx, B)
        || ox_tensor_require_grad(ctx, c))
        die(ctx, "gradcheck inputs");
    ox_gradcheck_opts opts = ox_gradcheck_defaults();   /* eps 1e-3, rtol 1e-2, atol 1e-3 (float32) */
    if (ox_gradcheck(ctx, f_checked, NULL, 3, (ox_tensor *[]){ A, B, c }, &opts) != OX_OK)
        die(ctx, "gradcheck");
    printf("gradcheck: ok (eps %g, rtol %g, atol %g)\n", opts.eps, opts.rtol, opts.atol);
    ox_ctx_reset(ctx);

    /* ---- 5. No-grad scope and detach ----------------------------------------------------------------
     * Evaluation needs no tape: switch recording off, compute, and restore the previous setting.
     * The results do not require gradients and nothing is appended to the tape. */
    printf("\n== 5. no-grad scope and detach\n");
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *eval = ox_ag_sum_all(ctx, ox_ag_mul(ctx, w, x));
    ox_ag_set_grad_enabled(ctx, prev);
    if (!eval)
        die(ctx, "no-grad forward");
    printf("inside no-grad: value %.5f, requires_grad %d, tape length %lld\n", ox_tensor_f32(eval)[0],
           eval->requires_grad, (long long)ctx->tape_len);
    /* detach returns a view that does not require a gradient: backward stops there. Here
     * loss = sum(detach(w) * x), so x gets a gradient (= w) but w gets none. */
    loss = ox_ag_sum_all(ctx, ox_ag_mul(ctx, ox_ag_detach(ctx, w), x));
    if (!loss || ox_ag_backward(ctx, loss))
        die(ctx, "detached backward");
    show_vec("x->grad (= w)", x->grad);
    show_vec("w->grad (detached: stays 0)", w->grad);
    for (int i = 0; i < N; i++)
        if (ox_tensor_f32(w->grad)[i] != 0.0f || ox_tensor_f32(x->grad)[i] != ox_tensor_f32(w)[i]) {
            fprintf(stderr, "01_autograd: detach did not stop the gradient at element %d\n", i);
            return 1;
        }

    ox_tensor_free(x);   /* frees x and x->grad */
    ox_tensor_free(w);
    ox_ctx_free(ctx);
    printf("\nok\n");
    return 0;
}
