/* 05_train_oryx.c - tutorial 5: the Oryx training loop written out by hand against the library API.
 *
 * `bin/oryx train` (models/oryx/train.h) does all of this for you; here every step is spelled out so you
 * can see, and change, what a training step of a sequence-axis hybrid is:
 *   1. a byte-level corpus (models/oryx/data.h): tokens are bytes, V = 256; the last 10% is held out;
 *   2. a model from a preset (models/oryx/config.h): oryx-gdn, where every layer holds the shared trunk
 *      plus an attention core and a Gated DeltaNet core;
 *   3. the step: sample B windows of T + 1 bytes, draw a mode map (which tokens run attention, which the
 *      linear recurrence: MODELS.md 8, chunks of 64 tokens ATTN with a per-sequence probability), the
 *      next-byte loss, backward, gradient clipping, AdamW with a cosine learning rate, then reset the arena
 *      (every activation of the step lives there; parameters and gradients live on the heap);
 *   4. the held-out loss of the SAME weights with every token in attention mode and with every token in
 *      linear mode: one model, two mixers;
 *   5. decoding: the prompt in attention mode, the continuation in linear mode with the KV cache dropped
 *      (constant memory per token), sampled at temperature 0.8.
 *
 * Run it from the repository root (it reads data/tinyshakespeare.txt; about a minute on one core):
 *     make && build/examples/05_train_oryx            [--quick] [--threads N]
 * --quick trains for fewer steps (what the test suite runs); --threads sets the thread count (default 1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"        /* ox_ag_backward */
#include "models/oryx/generate.h" /* ox_oryx_decoder_*, ox_oryx_sample_generate */
#include "models/oryx/modes.h"    /* ox_oryx_modes_mixed, ox_oryx_modes_fill */
#include "models/oryx/train.h"    /* ox_oryx_evaluate_bytes (the trainer itself is not used here) */
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/ctx.h"

enum { B = 8, T = 128, CHUNK = 64 };

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "05_train_oryx: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* Streams each sampled byte to stdout as soon as it exists. */
static int print_token(void *user, int64_t i, const int32_t *tokens, int64_t n)
{
    (void)user, (void)i, (void)n;
    putchar(tokens[0]);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
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
    const int64_t steps = quick ? 60 : 400, warmup = steps / 10;
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    ox_ctx_set_threads(ctx, threads);

    /* ---- 1. data ---- */
    ox_oryx_data data;
    if (ox_oryx_data_load(ctx, "data/tinyshakespeare.txt", T, &data))
        die(ctx, "loading the text");

    /* ---- 2. the model: a small oryx-gdn (D 64, 2 layers, 2 heads of 32) ---- */
    ox_oryx_config cfg;
    if (ox_oryx_config_preset(ctx, "oryx-gdn", 2, &cfg))
        die(ctx, "preset");
    cfg.d_model = 64;
    cfg.n_heads = 2;
    cfg.d_k = cfg.d_v = 32;
    cfg.mlp_hidden = ox_oryx_default_mlp_hidden(64);
    ox_rng rng = ox_rng_seed(7);
    ox_oryx_model model;
    if (ox_oryx_model_init(ctx, &model, &cfg, &rng))
        die(ctx, "model init");
    printf("oryx-gdn: %lld parameters, %lld train bytes, %lld held-out bytes\n",
           (long long)ox_nn_params_numel(&model.params), (long long)data.n_train, (long long)data.n_val);

    /* The optimizer keeps its moments beside the parameters (AdamW decays only matrices). */
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &model.params, ox_optim_adamw_defaults());
    /* The batch buffer is a heap tensor reused by every step: rows of T + 1 bytes (inputs + next byte). */
    ox_tensor *rows = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(B, T + 1));
    if (!opt || !rows)
        die(ctx, "optimizer / batch buffer");

    /* ---- 3. the training loop ---- */
    for (int64_t step = 0; step < steps; step++) {
        if (ox_oryx_data_sample(ctx, &data, &rng, rows))
            die(ctx, "sampling");
        /* Per sequence a ratio r in {0, 1/4, 1/2, 3/4, 1}, then each 64-token chunk ATTN with probability
         * r: the model learns to work in both modes and across switches. I32 [B, T], in the arena. */
        ox_tensor *mode = ox_oryx_modes_mixed(ctx, 99, (uint64_t)step, B, T, CHUNK, NULL, 0);
        ox_tensor *loss = ox_oryx_loss(ctx, &model, rows, mode, NULL);      /* 0-d, mean nats per byte */
        if (!loss || ox_ag_backward(ctx, loss))                             /* grads accumulate (+=) */
            die(ctx, "forward / backward");
        double l = ox_tensor_f32(loss)[0], norm;
        double lr = ox_optim_lr_cosine(step + 1, warmup, steps, 3e-3, 3e-4);
        if (ox_optim_clip_grad_norm(ctx, &model.params, 1.0, &norm) || ox_optim_adamw_step(ctx, opt, (float)lr))
            die(ctx, "optimizer step");
        ox_nn_params_zero_grad(&model.params);      /* gradients are heap buffers: clear for the next step */
        ox_ctx_reset(ctx);                          /* drop the step's activations and tape */
        if (step == 0 || (step + 1) % (steps / 5) == 0)
            printf("step %4lld  loss %.4f  grad norm %.3f  lr %.2e\n", (long long)step + 1, l, norm, lr);
    }

    /* ---- 4. held-out loss, same weights, two mixers ---- */
    ox_oryx_map_spec all_attn = { .kind = OX_ORYX_MAP_ATTN }, all_lin = { .kind = OX_ORYX_MAP_LIN };
    ox_oryx_eval ea, el;
    const uint8_t *val = data.bytes + data.n_train;         /* the held-out part (--quick: its first 16 KB) */
    const int64_t n_val = quick && data.n_val > 16384 ? 16384 : data.n_val;
    if (ox_oryx_evaluate_bytes(ctx, &model, val, n_val, T, &all_attn, &ea) ||
        ox_oryx_evaluate_bytes(ctx, &model, val, n_val, T, &all_lin, &el))
        die(ctx, "evaluation");
    printf("held-out loss: all-attention %.4f nats/byte, all-linear %.4f (uniform guess: %.4f)\n", ea.nats,
           el.nats, log(256.0));

    /* ---- 5. decode: prompt in attention mode, continuation linear with the KV cache dropped ---- */
    const char *prompt = "ROMEO:\n";
    const int64_t n_prompt = (int64_t)strlen(prompt), n_new = quick ? 40 : 200;
    ox_tensor *ptok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n_prompt));
    ox_tensor *pmode = ox_oryx_modes_fill(ctx, 1, n_prompt, OX_NN_ATTN);
    if (!ptok || !pmode)
        die(ctx, "prompt");
    for (int64_t t = 0; t < n_prompt; t++)
        ox_tensor_i32(ptok)[t] = (unsigned char)prompt[t];
    ox_oryx_decoder dec;
    if (ox_oryx_decoder_init(ctx, &dec, &model, 1, n_prompt, 0) || ox_oryx_decoder_prefill(ctx, &dec, ptok, pmode, NULL) ||
        ox_oryx_decoder_drop_kv(ctx, &dec, -1))     /* no later token uses attention: free the cache */
        die(ctx, "prefill");
    const int32_t lin = OX_NN_LIN;
    ox_nn_sampler sampler = { .temperature = 0.8, .top_k = 0 };
    printf("sample (prompt in attention mode, the rest linear):\n%s", prompt);
    if (ox_oryx_sample_generate(ctx, &dec, NULL, NULL, &lin, 1, n_new, &sampler, &rng, print_token, NULL, NULL,
                                NULL))
        die(ctx, "generation");
    printf("\n");

    ox_oryx_decoder_free(&dec);
    ox_tensor_free(rows);
    ox_optim_adamw_free(opt);
    ox_oryx_model_free(&model);
    ox_oryx_data_free(&data);
    ox_ctx_free(ctx);
    return 0;
}
