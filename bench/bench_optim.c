/* bench_optim.c - the optimizer step on a toy-Oryx-sized parameter list (3.8M parameters: an embedding
 * [6656, 256] and 4 layers of four [256, 256] and two [512, 256] matrices plus two [256] norm weights).
 * Prints the median (and the fastest) of 21 steps of AdamW, SGD (Nesterov) and grad norm (clip_grad_norm
 * with a max_norm that is never reached) at 1 and 2 threads, in ms, and the memory traffic in GB/s at the
 * median (AdamW reads w, g, m, v and writes w, m, v: 28 bytes per parameter; SGD 20; the norm 4). The
 * machine's two cores may be shared: the fastest run shows what the code does when nothing competes. */
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/sgd.h"
#include "tensor/rng.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RUNS 21

static int add(ox_ctx *ctx, ox_nn_params *ps, ox_rng *rng, const char *name, int64_t r, int64_t c)
{
    ox_tensor *t = c ? ox_nn_params_add(ctx, ps, name, OX_DIMS(r, c), OX_NN_DECAY)
                     : ox_nn_params_add(ctx, ps, name, OX_DIMS(r), OX_NN_NO_DECAY);
    if (!t)
        return 1;
    ox_tensor *w = ox_tensor_randn(ctx, rng, t->ndim, t->shape, 0, 0.02);
    ox_tensor *g = ox_tensor_randn(ctx, rng, t->ndim, t->shape, 0, 1e-3);
    int bad = !w || !g || ox_tensor_copy(ctx, t, w) || ox_tensor_copy(ctx, t->grad, g);
    ox_ctx_reset(ctx);
    return bad;
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_rng rng = ox_rng_seed(1);
    ox_nn_params ps;
    ox_nn_params_init(&ps);
    int bad = add(ctx, &ps, &rng, "embed.weight", 6656, 256);
    static const char *mats[6] = { "q", "k", "v", "o", "up", "down" };
    for (int l = 0; l < 4 && !bad; l++) {
        char name[64];
        for (int j = 0; j < 6; j++) {
            snprintf(name, sizeof name, "layers.%d.%s.weight", l, mats[j]);
            bad |= add(ctx, &ps, &rng, name, j < 4 ? 256 : 512, 256);
        }
        snprintf(name, sizeof name, "layers.%d.norm1.weight", l);
        bad |= add(ctx, &ps, &rng, name, 256, 0);
        snprintf(name, sizeof name, "layers.%d.norm2.weight", l);
        bad |= add(ctx, &ps, &rng, name, 256, 0);
    }
    ox_optim_adamw *adamw = bad ? NULL : ox_optim_adamw_new(ctx, &ps, ox_optim_adamw_defaults());
    ox_optim_sgd *sgd = bad ? NULL
                            : ox_optim_sgd_new(ctx, &ps, (ox_optim_sgd_config){ .momentum = 0.9f, .wd = 0.0f,
                                                                                  .nesterov = 1 });
    if (!adamw || !sgd) {
        fprintf(stderr, "bench_optim: %s\n", ox_ctx_message(ctx));
        return 1;
    }
    double n = (double)ox_nn_params_numel(&ps);
    printf("optim step on %.2fM parameters (%d tensors), median of %d:\n", n / 1e6, ps.n, RUNS);
    for (int nt = 1; nt <= 2; nt++) {
        ox_ctx_set_threads(ctx, nt);
        double ta[RUNS], ts[RUNS], tc[RUNS], norm = 0;
        for (int r = 0; r < RUNS && !bad; r++) {
            double t0 = now();
            bad |= ox_optim_adamw_step(ctx, adamw, 1e-4f) != OX_OK;
            double t1 = now();
            bad |= ox_optim_sgd_step(ctx, sgd, 1e-4f) != OX_OK;
            double t2 = now();
            bad |= ox_optim_clip_grad_norm(ctx, &ps, 1e9, &norm) != OX_OK;   /* measure only: no clip */
            double t3 = now();
            ta[r] = t1 - t0;
            ts[r] = t2 - t1;
            tc[r] = t3 - t2;
        }
        if (bad) {
            fprintf(stderr, "bench_optim: %s\n", ox_ctx_message(ctx));
            return 1;
        }
        /* median() sorts: [0] is then the min */
        double a = median(ta, RUNS), s = median(ts, RUNS), c = median(tc, RUNS);
        printf("  %d thread%s: adamw %6.2f ms (min %5.2f) %5.1f GB/s | sgd %6.2f ms (min %5.2f) %5.1f GB/s | "
               "grad_norm %6.2f ms (min %5.2f) %5.1f GB/s\n", nt, nt > 1 ? "s" : " ", 1e3 * a, 1e3 * ta[0],
               28 * n / a / 1e9, 1e3 * s, 1e3 * ts[0], 20 * n / s / 1e9, 1e3 * c, 1e3 * tc[0], 4 * n / c / 1e9);
    }
    ox_optim_adamw_free(adamw);
    ox_optim_sgd_free(sgd);
    ox_nn_params_free(&ps);
    ox_ctx_free(ctx);
    return 0;
}
