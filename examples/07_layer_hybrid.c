/* 07_layer_hybrid.c - tutorial 7: a layer-axis hybrid language model wired from nn/ directly (no models/oryx).
 *
 * A layer-axis hybrid stacks layers of different kinds: here three Gated DeltaNet layers (a linear
 * recurrence: constant memory per token) under one softmax-attention layer (exact recall over the whole
 * context), the layout of the `hybrid-gdn` preset (layer l is attention iff l % 4 == 3). Every layer is
 * the one pre-norm residual block of nn/block.h with a one-core mixer (nn/mixer.h), so the model is
 *     h = E[tokens]                                      nn/embedding.h, E [256, D]: bytes are tokens
 *     for l in 0..3:  h += Mixer_l(RMSNorm(h))           core GDN for l = 0, 1, 2; attention for l = 3
 *                     h += SwiGLU_l(RMSNorm(h))          (ox_nn_block_forward does both lines)
 *     logits = RMSNorm(h) E^T                            nn/rmsnorm.h; the head is tied to E
 * trained with the next-byte cross-entropy (nn/cross_entropy.h), gradient clipping, AdamW and a cosine
 * learning rate with warmup (optim/). A layer with one core needs no mode map (the NULL below).
 *
 * The steps:
 *   1. the text: data/tinyshakespeare.txt as bytes; the last 10% is held out;
 *   2. the model, its parameters registered and initialised in order (embedding, blocks, final norm);
 *   3. the training loop: random windows of T + 1 bytes (inputs and next bytes), loss, backward, clip,
 *      AdamW, then the arena is reset (activations live there, parameters and gradients on the heap);
 *   4. the held-out loss: the first N windows of T + 1 bytes of the held-out part, in nats per byte;
 *   5. the same budget through `bin/oryx train --preset hybrid-gdn`: the same sizes, steps, batches,
 *      learning rates, seed and held-out windows. `oryx train` builds this very model in models/oryx from the
 *      same nn/ pieces, draws the initial weights and the training windows in the same order from the same
 *      seed and scores the same windows the same way, so the two held-out losses agree (bit for bit on
 *      one machine with the same thread count); a difference means the wiring here is not the preset's.
 *
 * Run it from the repository root (2 minutes on one core, 4 with --compare; --quick: 4 s, 8 s with --compare):
 *     make && build/examples/07_layer_hybrid        [--quick] [--threads N] [--compare bin/oryx]
 * --quick trains a smaller model for fewer steps (what the test suite runs); --threads sets the thread count
 * (default 1); --compare ORYX runs the program ORYX (bin/oryx) with the same budget in a temporary folder
 * and prints its held-out loss next to ours. Without --compare the command is printed for you to run.
 * Measured: held-out 1.6479 nats/byte here and through bin/oryx (--quick: 2.4699 both); a uniform guess
 * scores ln 256 = 5.55 and the byte frequencies alone ~3.3.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autograd/tape.h"        /* ox_ag_backward, the no-grad scope */
#include "nn/block.h"             /* ox_nn_block: RMSNorm, mixer, RMSNorm, SwiGLU, two residual adds */
#include "nn/cross_entropy.h"     /* ox_nn_cross_entropy */
#include "nn/embedding.h"         /* ox_nn_embedding_t: the byte table and the tied head */
#include "nn/rmsnorm.h"           /* ox_nn_rmsnorm_t: the final norm */
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/ctx.h"
#include "tensor/rng.h"
#include "tensor/alloc.h"
#include "tensor/io.h"

enum { V = 256, L = 4, EVAL_ROWS = 8 };

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "07_layer_hybrid: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* The budget, shared with the bin/oryx command of step 5 (its flags have the same names). */
struct budget {
    int64_t d_model, heads, mlp_hidden, batch, seq, steps, warmup, eval_windows;
    double lr, lr_min, clip, wd;
    uint64_t seed;
};

/* ---- 1. The text -------------------------------------------------------------------------------------- */

struct text {
    unsigned char *bytes;
    int64_t n, n_train;         /* the first n_train bytes train, the rest (n / 10) is held out */
};

static void text_load(ox_ctx *ctx, struct text *tx, const char *path)
{
    uint8_t *data;
    int64_t len;
    if (ox_io_read_file(ctx, path, "text", 0, &data, &len) || len < 100000) {
        fprintf(stderr, "07_layer_hybrid: %s\n",
                ctx->status ? ox_ctx_message(ctx) : "the text is shorter than 100000 bytes");
        exit(1);
    }
    tx->bytes = data;
    tx->n = len;
    tx->n_train = len - len / 10;
}

/* B random windows of T + 1 training bytes into rows I32 [B, T + 1]: one uniform start per row, drawn with
 * ox_rng_below (the order and the draws of models/oryx/data.h, so bin/oryx sees the same windows). */
static void sample_windows(const struct text *tx, ox_rng *rng, ox_tensor *rows)
{
    const int64_t B = rows->shape[0], W = rows->shape[1];
    int32_t *r = ox_tensor_i32(rows);
    for (int64_t b = 0; b < B; b++) {
        int64_t start = (int64_t)ox_rng_below(rng, (uint64_t)(tx->n_train - W + 1));
        for (int64_t t = 0; t < W; t++)
            r[b * W + t] = tx->bytes[start + t];
    }
}

/* ---- 2. The model ------------------------------------------------------------------------------------- */

struct hybrid {
    ox_nn_params ps;            /* owns every parameter and its gradient */
    ox_nn_embedding_t embed;    /* "embed.weight" [V, D] */
    ox_nn_block layers[L];      /* "layers.<l>.*": norm1, mixer, norm2, mlp */
    ox_nn_rmsnorm_t norm_f;     /* "norm_f.weight" [D] */
};

/* Registers and initialises the parameters in order, drawing from rng (the names and order of the Oryx
 * checkpoint format, docs/MODELS.md 12.2 and 13). */
static void hybrid_init(ox_ctx *ctx, struct hybrid *m, const struct budget *b, ox_rng *rng)
{
    ox_nn_params_init(&m->ps);
    ox_nn_embedding_init(ctx, &m->ps, &m->embed, "embed", V, b->d_model, 0.02, rng);
    for (int l = 0; l < L; l++) {
        ox_nn_mixer_config mc = {
            .d_model = b->d_model, .n_heads = b->heads, .d_k = b->d_model / b->heads, .d_v = b->d_model / b->heads,
            .cores = l % 4 == 3 ? OX_NN_CORE_ATTN : OX_NN_CORE_GDN,   /* one core: the layer's kind */
            .conv_act = OX_NN_ACT_SILU,     /* the GDN family's short-conv activation, in every layer */
            .n_layers = L,                  /* scales the output projections' init: 0.02 / sqrt(2 L) */
        };
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d", l);
        ox_nn_block_init(ctx, &m->ps, &m->layers[l], prefix, &mc, b->mlp_hidden, rng);
    }
    ox_nn_rmsnorm_init(ctx, &m->ps, &m->norm_f, "norm_f", b->d_model);
    if (ox_ctx_status(ctx))
        die(ctx, "model init");
}

/* Mean next-byte loss (0-d, nats) of rows I32 [B, T + 1]: the inputs are columns 0..T-1, the targets
 * columns 1..T (two views of the same buffer, no copy). */
static ox_tensor *hybrid_loss(ox_ctx *ctx, const struct hybrid *m, ox_tensor *rows)
{
    const int64_t T = rows->shape[1] - 1;
    ox_tensor *inputs = ox_tensor_view_narrow(ctx, rows, 1, 0, T);
    ox_tensor *targets = ox_tensor_view_narrow(ctx, rows, 1, 1, T);
    ox_tensor *h = ox_nn_embedding_forward(ctx, &m->embed, inputs);          /* [B, T, D] */
    for (int l = 0; l < L; l++)
        h = ox_nn_block_forward(ctx, &m->layers[l], h, NULL, NULL);          /* one core: no mode map */
    ox_tensor *logits = ox_nn_embedding_logits(ctx, &m->embed, ox_nn_rmsnorm_forward(ctx, &m->norm_f, h));
    return ox_nn_cross_entropy(ctx, logits, targets, -1);                   /* (errors are sticky: one check) */
}

/* ---- 4. Held-out loss --------------------------------------------------------------------------------- */

/* Mean loss per predicted byte over the first `windows` windows of T + 1 bytes of the held-out part, scored
 * EVAL_ROWS windows at a time without gradients (how `oryx train` scores its validation windows). */
static double held_out_loss(ox_ctx *ctx, const struct hybrid *m, const struct text *tx, int64_t T, int64_t windows)
{
    const int64_t W = T + 1, n_val = tx->n - tx->n_train;
    if (windows > n_val / W)
        windows = n_val / W;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    double total = 0;
    for (int64_t i = 0; i < windows; i += EVAL_ROWS) {
        const int64_t nr = windows - i < EVAL_ROWS ? windows - i : EVAL_ROWS;
        ox_tensor *rows = ox_tensor_empty(ctx, OX_I32, OX_DIMS(nr, W));
        if (!rows)
            die(ctx, "evaluation");
        for (int64_t j = 0; j < nr * W; j++)
            ox_tensor_i32(rows)[j] = tx->bytes[tx->n_train + i * W + j];
        ox_tensor *loss = hybrid_loss(ctx, m, rows);
        if (!loss)
            die(ctx, "evaluation");
        total += (double)ox_tensor_f32(loss)[0] * (double)(nr * T);
        ox_ctx_reset(ctx);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    return total / (double)(windows * T);
}

/* ---- 5. The same budget through bin/oryx -------------------------------------------------------------- */

/* The `oryx train` command line with this budget (out: its checkpoint name). */
static void oryx_command(char *cmd, size_t n, const char *oryx, const struct budget *b, int threads,
                         const char *out)
{
    snprintf(cmd, n,
             "'%s' train --preset hybrid-gdn --layers %d --d-model %lld --heads %lld --d-k %lld --d-v %lld "
             "--mlp-hidden %lld --batch %lld --seq %lld --steps %lld --warmup %lld --lr %g --lr-min %g --clip %g "
             "--wd %g --seed %llu --eval-every 0 --eval-windows %lld --save-every 0 --threads %d --out '%s'",
             oryx, L, (long long)b->d_model, (long long)b->heads, (long long)(b->d_model / b->heads),
             (long long)(b->d_model / b->heads), (long long)b->mlp_hidden, (long long)b->batch, (long long)b->seq,
             (long long)b->steps, (long long)b->warmup, b->lr, b->lr_min, b->clip, b->wd,
             (unsigned long long)b->seed, (long long)b->eval_windows, threads, out);
}

/* Removes the folder `dir` and the files `oryx train` wrote into it (checkpoint, history, picture, lock). */
static void remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[4200];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Runs `oryx train` with the budget in a temporary folder; returns the val_loss of its last line ("done:
 * step N, loss X, val_loss Y; ..."), or exits with its output when it fails. */
static double run_oryx(const char *oryx, const struct budget *b, int threads)
{
    char dir[] = "/tmp/07_layer_hybrid.XXXXXX", out[64], cmd[4096];
    if (!mkdtemp(dir)) {
        fprintf(stderr, "07_layer_hybrid: cannot make a temporary folder: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(out, sizeof out, "%s/run", dir);
    oryx_command(cmd, sizeof cmd - 8, oryx, b, threads, out);
    strcat(cmd, " 2>&1");
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    char line[1024], last[1024] = "";
    double val = NAN;
    while (p && fgets(line, sizeof line, p)) {
        const char *at = strstr(line, "val_loss ");
        if (!strncmp(line, "done:", 5) && at)
            val = atof(at + 9);
        snprintf(last, sizeof last, "%s", line);
    }
    int st = p ? pclose(p) : -1;
    remove_folder(dir);
    if (!p || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !isfinite(val)) {
        fprintf(stderr, "07_layer_hybrid: '%s train' failed (exit status %d); its last line: %s", oryx,
                p && WIFEXITED(st) ? WEXITSTATUS(st) : -1, last[0] ? last : "(none)\n");
        exit(1);
    }
    return val;
}

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
    int quick = 0, threads = 1;
    const char *compare = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--compare") && i + 1 < argc)
            compare = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] [--compare PATH_TO_ORYX]\n", argv[0]);
            return 2;
        }
    }
    /* Full: `oryx train`'s default sizes (D 128, 4 heads, batch 16 x 128 bytes) for 300 steps; --quick: D 64,
     * 2 heads, batch 8 x 64 bytes, 100 steps. The SwiGLU width is the default 32 * ceil(8 D / 96). */
    struct budget b = quick ? (struct budget){ .d_model = 64, .heads = 2, .batch = 8, .seq = 64, .steps = 100,
                                               .warmup = 10 }
                            : (struct budget){ .d_model = 128, .heads = 4, .batch = 16, .seq = 128, .steps = 300,
                                               .warmup = 50 };
    b.mlp_hidden = 32 * ((8 * b.d_model + 95) / 96);
    b.eval_windows = 32;
    b.lr = 3e-3, b.lr_min = 3e-4, b.clip = 1.0, b.wd = 0.1, b.seed = 1234;

    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    ox_ctx_set_threads(ctx, threads);

    /* ---- 1. data ---- */
    struct text tx;
    text_load(ctx, &tx, "data/tinyshakespeare.txt");

    /* ---- 2. the model: GDN, GDN, GDN, attention ---- */
    ox_rng init_rng = ox_rng_seed(b.seed), data_rng = ox_rng_seed(b.seed);
    struct hybrid m;
    hybrid_init(ctx, &m, &b, &init_rng);
    printf("layer-axis hybrid (GDN, GDN, GDN, attention; D %lld, %lld heads): %lld parameters; %lld train bytes, "
           "%lld held-out bytes\n", (long long)b.d_model, (long long)b.heads, (long long)ox_nn_params_numel(&m.ps),
           (long long)tx.n_train, (long long)(tx.n - tx.n_train));
    printf("%lld steps of %lld x %lld bytes; a uniform guess scores ln 256 = %.4f\n", (long long)b.steps,
           (long long)b.batch, (long long)b.seq, log(256.0));

    /* AdamW keeps its moments beside the parameters (it decays the matrices, not the norms' weights). */
    ox_optim_adamw_config ac = ox_optim_adamw_defaults();
    ac.wd = (float)b.wd;
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &m.ps, ac);
    ox_tensor *rows = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(b.batch, b.seq + 1));   /* reused every step */
    if (!opt || !rows)
        die(ctx, "optimizer / batch buffer");

    /* ---- 3. training ---- */
    for (int64_t step = 0; step < b.steps; step++) {
        sample_windows(&tx, &data_rng, rows);
        ox_tensor *loss = hybrid_loss(ctx, &m, rows);
        if (!loss || ox_ag_backward(ctx, loss))                             /* grads accumulate (+=) */
            die(ctx, "forward / backward");
        double l = ox_tensor_f32(loss)[0], norm;
        double lr = ox_optim_lr_cosine(step + 1, b.warmup, b.steps, b.lr, b.lr_min);
        if (ox_optim_clip_grad_norm(ctx, &m.ps, b.clip, &norm) || ox_optim_adamw_step(ctx, opt, (float)lr))
            die(ctx, "optimizer step");
        ox_nn_params_zero_grad(&m.ps);
        ox_ctx_reset(ctx);
        if (step == 0 || (step + 1) % (b.steps / 5) == 0)
            printf("step %4lld  loss %.4f  grad norm %.3f  lr %.2e\n", (long long)step + 1, l, norm, lr);
    }

    /* ---- 4. held-out loss ---- */
    double held = held_out_loss(ctx, &m, &tx, b.seq, b.eval_windows);
    printf("held-out loss: %.4f nats/byte (the first %lld windows of %lld bytes of the held-out part)\n", held,
           (long long)b.eval_windows, (long long)b.seq + 1);

    /* ---- 5. the same budget through bin/oryx ---- */
    if (compare) {
        double oryx = run_oryx(compare, &b, threads);
        printf("oryx train --preset hybrid-gdn, same budget: held-out loss %.4f nats/byte (this program - oryx: "
               "%+.2e)\n", oryx, held - oryx);
    } else {
        char cmd[4096];
        oryx_command(cmd, sizeof cmd, "bin/oryx", &b, threads, "runs/07_hybrid_gdn");
        printf("the same budget through the preset (its last line prints val_loss; --compare bin/oryx runs it):\n"
               "  %s\n", cmd);
    }

    ox_tensor_free(rows);
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&m.ps);
    ox_free(tx.bytes);
    ox_ctx_free(ctx);
    return 0;
}
