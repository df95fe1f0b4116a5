/* 02_mlp_classifier.c - tutorial 2: train a small MLP classifier on two interleaved spirals.
 *
 * The library is not only for Oryx: any model built from its ops trains the same way. This program
 * teaches the full training loop on a problem small enough to watch:
 *   1. a synthetic dataset made with the explicit RNG (two spirals in 2-D, a train and a held-out set);
 *   2. a model as a parameter list (nn/param.h) plus modules: three Linear layers (nn/linear.h) with
 *      biases added by broadcasting, and ReLU between them;
 *   3. the step: sample a mini-batch (ox_ag_gather_rows), forward, cross-entropy (nn/cross_entropy.h),
 *      backward, clip the gradient norm, AdamW with a warmup + cosine learning-rate schedule, zero the
 *      gradients, reset the arena;
 *   4. evaluation in a no-grad scope: accuracy on the training set and on held-out points.
 * No straight line separates the spirals; the untrained network is at chance (about 50%, printed
 * first) and the trained MLP classifies > 90% of the held-out points correctly.
 *
 * Run it from the repository root (a few seconds):
 *     make && build/examples/02_mlp_classifier            [--quick] [--threads N]
 * --quick trains for fewer steps (what the test suite runs); --threads sets the thread count (default 1).
 * Under AddressSanitizer:
 *     make BUILD=build/asan SAN=1 build/asan/examples/02_mlp_classifier && build/asan/examples/02_mlp_classifier
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"         /* ox_ag_add, ox_ag_relu, ox_ag_gather_rows, no-grad scope */
#include "nn/cross_entropy.h"     /* ox_nn_cross_entropy: fused log-softmax + NLL */
#include "nn/linear.h"            /* ox_nn_linear_t: y = x W^T */
#include "nn/param.h"             /* ox_nn_params: the model's named parameters */
#include "optim/adamw.h"          /* ox_optim_adamw_* */
#include "optim/clip.h"           /* ox_optim_clip_grad_norm */
#include "optim/schedule.h"       /* ox_optim_lr_cosine */
#include "tensor/rng.h"

/* Problem and model sizes. */
enum {
    N_TRAIN = 1024,   /* training points (half per class) */
    N_TEST  = 512,    /* held-out points, drawn from the same distribution */
    HIDDEN  = 64,     /* width of the two hidden layers */
    CLASSES = 2,
    BATCH   = 128     /* points per training step */
};

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "02_mlp_classifier: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* ---- 1. The dataset --------------------------------------------------------------------------------
 * Class k in {0, 1} is the spiral  r = t,  angle = 4 pi t + k pi  (t in [0, 1]: two full turns),
 * scaled by 2 so the inputs are of order one, plus Gaussian noise (std 0.1). The two arms interleave,
 * so no straight line separates them. Points go into x [n, 2] (owned: the data must survive every
 * ox_ctx_reset) and labels into y [n] (I32). */
static void make_spirals(ox_ctx *ctx, ox_rng *rng, int64_t n, ox_tensor **x, ox_tensor **y)
{
    *x = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(n, 2));
    *y = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(n));
    if (!*x || !*y)
        die(ctx, "allocating the dataset");
    float *px = ox_tensor_f32(*x);
    int32_t *py = ox_tensor_i32(*y);
    for (int64_t i = 0; i < n; i++) {
        int k = (int)(i % 2);                                     /* alternate the classes */
        double t = sqrt(ox_rng_uniform(rng));                     /* sqrt: even density along the arm */
        double angle = 4.0 * M_PI * t + k * M_PI;
        px[2 * i + 0] = (float)(2.0 * t * cos(angle) + 0.1 * ox_rng_normal(rng));
        px[2 * i + 1] = (float)(2.0 * t * sin(angle) + 0.1 * ox_rng_normal(rng));
        py[i] = k;
    }
}

/* ---- 2. The model ----------------------------------------------------------------------------------
 *     h1 = relu(x W1^T + b1)      x [n, 2]       W1 [H, 2]    b1 [H]
 *     h2 = relu(h1 W2^T + b2)                    W2 [H, H]    b2 [H]
 *     logits = h2 W3^T + b3       -> [n, C]      W3 [C, H]    b3 [C]
 * The Linear modules register their weights in `ps`, which owns them; the biases are registered
 * directly, without weight decay (decay is for matrices). Adding a bias [H] to [n, H] broadcasts it over
 * the rows: the backward sums the rows' gradients into the bias. */
struct mlp {
    ox_nn_params ps;                /* owns every parameter and gradient */
    ox_nn_linear_t l1, l2, l3;
    ox_tensor *b1, *b2, *b3;        /* borrowed from ps */
};

static void mlp_init(ox_ctx *ctx, struct mlp *m, ox_rng *rng)
{
    ox_nn_params_init(&m->ps);
    /* He initialisation, std = sqrt(2 / fan_in): keeps the activations' scale steady through ReLUs. */
    ox_nn_linear_init(ctx, &m->ps, &m->l1, "l1", 2, HIDDEN, sqrt(2.0 / 2), rng);
    ox_nn_linear_init(ctx, &m->ps, &m->l2, "l2", HIDDEN, HIDDEN, sqrt(2.0 / HIDDEN), rng);
    ox_nn_linear_init(ctx, &m->ps, &m->l3, "l3", HIDDEN, CLASSES, sqrt(1.0 / HIDDEN), rng);
    m->b1 = ox_nn_params_add(ctx, &m->ps, "l1.bias", OX_DIMS(HIDDEN), OX_NN_NO_DECAY);   /* zeros */
    m->b2 = ox_nn_params_add(ctx, &m->ps, "l2.bias", OX_DIMS(HIDDEN), OX_NN_NO_DECAY);
    m->b3 = ox_nn_params_add(ctx, &m->ps, "l3.bias", OX_DIMS(CLASSES), OX_NN_NO_DECAY);
    if (ox_ctx_status(ctx))   /* errors are sticky: one check covers all six calls */
        die(ctx, "model init");
}

/* x [n, 2] -> logits [n, C]. Arena tensors: valid until ox_ctx_reset. NULL on error (sticky). */
static ox_tensor *mlp_forward(ox_ctx *ctx, struct mlp *m, ox_tensor *x)
{
    ox_tensor *h = ox_ag_relu(ctx, ox_ag_add(ctx, ox_nn_linear_forward(ctx, &m->l1, x), m->b1));
    h = ox_ag_relu(ctx, ox_ag_add(ctx, ox_nn_linear_forward(ctx, &m->l2, h), m->b2));
    return ox_ag_add(ctx, ox_nn_linear_forward(ctx, &m->l3, h), m->b3);
}

/* ---- 4. Evaluation: the fraction of points whose largest logit is their label ------------------------
 * In a no-grad scope nothing is recorded on the tape and no gradient buffer is touched. */
static double accuracy(ox_ctx *ctx, struct mlp *m, ox_tensor *x, const ox_tensor *y)
{
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *logits = mlp_forward(ctx, m, x);
    ox_ag_set_grad_enabled(ctx, prev);
    if (!logits)
        die(ctx, "evaluation forward");
    int64_t n = x->shape[0], correct = 0;
    const float *z = ox_tensor_f32(logits);          /* contiguous [n, C]: op results always are */
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (z[i * CLASSES + c] > z[i * CLASSES + best])
                best = c;
        correct += best == ox_tensor_i32(y)[i];
    }
    ox_ctx_reset(ctx);
    return (double)correct / (double)n;
}

int main(int argc, char **argv)
{
    /* Threads: 1 by default. This model is tiny (every op touches a few thousand floats), so a step is
     * a chain of small ops; splitting them across cores costs more in synchronisation than it
     * saves, and on a busy machine much more. ox_ctx_set_threads is the one knob: try --threads 2. */
    int quick = 0, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    /* Hyper-parameters. The learning rate warms up linearly for `warmup` steps (Adam's moment
     * estimates are poor at first) and then follows a half cosine down to lr_min by the last step. */
    const int64_t steps = quick ? 800 : 2000, warmup = 50, log_every = quick ? 100 : 200;
    const double lr_max = 1e-2, lr_min = 1e-4, clip = 5.0;

    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    ox_ctx_set_threads(ctx, threads);
    ox_rng rng = ox_rng_seed(2024);

    ox_tensor *xtr, *ytr, *xte, *yte;
    make_spirals(ctx, &rng, N_TRAIN, &xtr, &ytr);
    make_spirals(ctx, &rng, N_TEST, &xte, &yte);   /* fresh draws: never seen in training */

    struct mlp m;
    mlp_init(ctx, &m, &rng);
    printf("two spirals: %d training and %d held-out points; MLP 2-%d-%d-%d, %lld parameters\n", N_TRAIN,
           N_TEST, HIDDEN, HIDDEN, CLASSES, (long long)ox_nn_params_numel(&m.ps));
    printf("before training: held-out accuracy %.4f (chance is 0.5)\n", accuracy(ctx, &m, xte, yte));

    /* AdamW keeps two moments per parameter (owned by the optimizer). b2 = 0.999 and a small weight
     * decay suit a tiny model trained on a fixed dataset (the defaults are tuned for language models). */
    ox_optim_adamw_config cfg = ox_optim_adamw_defaults();
    cfg.b2 = 0.999f;
    cfg.wd = 1e-4f;
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &m.ps, cfg);
    if (!opt)
        die(ctx, "ox_optim_adamw_new");

    /* ---- 3. The training loop ------------------------------------------------------------------- */
    double loss_sum = 0;
    for (int64_t step = 0; step < steps; step++) {
        /* A mini-batch: BATCH random row indices (I32 arena tensor). gather_rows picks those rows of
         * the dataset; targets are picked the same way by hand. */
        ox_tensor *idx = ox_tensor_empty(ctx, OX_I32, OX_DIMS(BATCH));
        ox_tensor *yb = ox_tensor_empty(ctx, OX_I32, OX_DIMS(BATCH));
        if (!idx || !yb)
            die(ctx, "batch allocation");
        for (int b = 0; b < BATCH; b++) {
            int32_t r = (int32_t)ox_rng_below(&rng, N_TRAIN);
            ox_tensor_i32(idx)[b] = r;
            ox_tensor_i32(yb)[b] = ox_tensor_i32(ytr)[r];
        }
        ox_tensor *xb = ox_ag_gather_rows(ctx, xtr, idx);                  /* [BATCH, 2] */

        /* Forward to the mean cross-entropy over the batch (-1: no target is ignored). */
        ox_tensor *loss = ox_nn_cross_entropy(ctx, mlp_forward(ctx, &m, xb), yb, -1);
        if (!loss)
            die(ctx, "forward");
        loss_sum += ox_tensor_f32(loss)[0];

        /* Backward fills every parameter's ->grad (they were zero: see below). */
        if (ox_ag_backward(ctx, loss) != OX_OK)
            die(ctx, "backward");
        /* Clip: if the global gradient norm exceeds `clip`, scale all gradients down to it. It also
         * fails on a NaN/Inf gradient, before anything is modified. */
        double norm;
        if (ox_optim_clip_grad_norm(ctx, &m.ps, clip, &norm) != OX_OK)
            die(ctx, "gradient clipping");
        float lr = (float)ox_optim_lr_cosine(step, warmup, steps, lr_max, lr_min);
        if (ox_optim_adamw_step(ctx, opt, lr) != OX_OK)
            die(ctx, "AdamW step");
        /* Gradients accumulate, so zero them for the next step; and free this step's activations
         * and tape. From the second step on the arena is big enough: the loop allocates nothing. */
        ox_nn_params_zero_grad(&m.ps);
        ox_ctx_reset(ctx);

        if ((step + 1) % log_every == 0) {
            printf("step %5lld  loss %.4f  lr %.2e  grad norm %.3f\n", (long long)(step + 1),
                   loss_sum / (double)log_every, lr, norm);
            loss_sum = 0;
        }
    }

    /* ---- 4. Evaluate ------------------------------------------------------------------------------ */
    double acc_train = accuracy(ctx, &m, xtr, ytr);
    double acc_test = accuracy(ctx, &m, xte, yte);
    printf("train accuracy: %.4f\n", acc_train);
    printf("held-out accuracy: %.4f\n", acc_test);

    /* Cleanup: the optimizer (its moments), the parameters, the data, then the context. */
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&m.ps);
    ox_tensor_free(xtr);
    ox_tensor_free(ytr);
    ox_tensor_free(xte);
    ox_tensor_free(yte);
    ox_ctx_free(ctx);
    return 0;
}
