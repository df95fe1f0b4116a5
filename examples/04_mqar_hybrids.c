/* 04_mqar_hybrids.c - tutorial 4: two ways to mix attention with a linear recurrence, compared on recall.
 *
 * MQAR (multi-query associative recall, MODELS.md 10) shows key-value pairs, then asks for the values of
 * some keys again: "k1 v1 k2 v2 ... | ... k2 ? ... k1 ? ...". Attention looks the pair up exactly; a linear
 * recurrence must squeeze every pair into its fixed-size state. Hybrids mix the two in different ways:
 *   - layer axis (Olmo Hybrid style, preset hybrid-gdn): layers 0-2 are Gated DeltaNet, layer 3 attention,
 *     for every token;
 *   - sequence axis (Oryx, preset oryx-gdn): every layer holds both mixers and a mode map picks one per
 *     token. Trained with random mixed maps (MODELS 8), it is scored here with attention ONLY on the query
 *     tokens, a few percent of the sequence, and with all tokens linear for contrast.
 * What it teaches: the MQAR generator and its query positions (models/oryx/mqar.h), the MQAR trainer
 * (fresh batches each step, loss on the queries only), per-token mode maps, and held-out accuracy.
 *
 * Run it from the repository root (about 40 s on one core; --quick: 60 steps, a few seconds, what the tests
 * run, enough to leave chance but not to learn recall):
 *     make && build/examples/04_mqar_hybrids            [--quick] [--threads N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/oryx/mqar.h"

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "04_mqar_hybrids: %s failed: %s\n", what, ox_ctx_message(ctx));
    exit(1);
}

/* Held-out accuracy of m on task under one map kind (512 examples of seed 99, the same for every model). */
static double accuracy(ox_ctx *ctx, const ox_oryx_model *m, const ox_oryx_mqar_task *task, ox_oryx_map_kind k)
{
    ox_oryx_map_spec spec = { .kind = k };
    int64_t correct, n;
    if (ox_oryx_mqar_evaluate(ctx, m, task, 512, 99, &spec, &correct, &n))
        die(ctx, "evaluation");
    return (double)correct / (double)n;
}

int main(int argc, char **argv)
{
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
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_ctx_set_threads(ctx, threads);

    /* 1. The task: V = 32 (keys 1..15, values 16..31), 4 pairs in 32 tokens; training alternates with a
     *    shorter slice (16 tokens, 2 pairs), as zoology mixes (T, N) slices. */
    ox_oryx_mqar_train_config tc = ox_oryx_mqar_train_defaults();
    tc.n_slices = 2;
    tc.slices[0] = ox_oryx_mqar_task_make(32, 32, 4);
    tc.slices[1] = ox_oryx_mqar_task_make(32, 16, 2);
    tc.batch = 32;
    tc.warmup = 30;
    tc.total_steps = quick ? 60 : 400;
    tc.map.chunk = 8;       /* oryx training maps: each 8-token chunk ATTN or LIN (MODELS 8 mixed maps) */
    const ox_oryx_mqar_task *task = &tc.slices[0];
    printf("MQAR: V %lld, T %lld, N %lld pairs; chance %.4f; %lld training steps per model\n",
           (long long)task->vocab, (long long)task->seq_len, (long long)task->n_pairs, 2.0 / (double)task->vocab,
           (long long)tc.total_steps);

    const char *presets[2] = { "hybrid-gdn", "oryx-gdn" };
    for (int p = 0; p < 2; p++) {
        /* 2. The model: 4 layers, D 64, 2 heads of 32; the preset decides what each layer can run. */
        ox_oryx_config cfg;
        if (ox_oryx_config_preset(ctx, presets[p], 4, &cfg))
            die(ctx, "preset");
        cfg.vocab = 32;
        cfg.d_model = 64;
        cfg.n_heads = 2;
        cfg.d_k = cfg.d_v = 32;
        cfg.mlp_hidden = ox_oryx_default_mlp_hidden(64);
        ox_oryx_model m;
        ox_rng rng = ox_rng_seed(1);
        if (ox_oryx_model_init(ctx, &m, &cfg, &rng))
            die(ctx, "model init");

        /* 3. Training: fresh MQAR batches every step, cross entropy on the query positions only. */
        ox_oryx_mqar_trainer tr;
        if (ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc) || ox_oryx_mqar_train_run(ctx, &tr, 0, NULL, NULL))
            die(ctx, "training");

        /* 4. Held-out recall. The hybrid has no per-token choice (its map is ignored); Oryx is scored with
         *    attention on the N query tokens only (N / T of the tokens), and all-linear for contrast. */
        if (p == 0)
            printf("hybrid-gdn (layer axis: 3 GDN layers + 1 attention layer): accuracy %.4f\n",
                   accuracy(ctx, &m, task, OX_ORYX_MAP_LIN));
        else {
            printf("oryx-gdn (sequence axis), ATTN on the queries only (%.1f%% of tokens): accuracy %.4f\n",
                   100.0 * (double)task->n_pairs / (double)task->seq_len,
                   accuracy(ctx, &m, task, OX_ORYX_MAP_QUERIES));
            printf("oryx-gdn (sequence axis), every token LIN: accuracy %.4f\n",
                   accuracy(ctx, &m, task, OX_ORYX_MAP_LIN));
        }
        ox_oryx_mqar_trainer_free(&tr);
        ox_oryx_model_free(&m);
    }
    ox_ctx_free(ctx);
    printf("ok\n");
    return 0;
}
