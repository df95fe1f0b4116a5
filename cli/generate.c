/* generate.c - `oryx generate --ckpt CKPT --prompt TEXT --tokens N --modes SPEC`: streams bytes sampled from
 * a checkpoint (temperature, top-k, seed) under a mode schedule (default prompt-attn: prompt tokens ATTN,
 * generated tokens LIN), then reports tokens/s and whether the KV cache was kept.
 *
 * Decoding uses models/oryx/generate.h: the prompt is prefilled with its part of the schedule, then each
 * sampled byte is stepped with the mode of its position. The KV cache is the memory the schedule needs:
 * never allocated when no position is ATTN (and no layer is attention-only), dropped right after the prompt
 * when no generated position is ATTN (prompt-attn, lin), kept otherwise. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "cli/cli.h"
#include "tensor/alloc.h"
#include "models/oryx/generate.h"

static const char gen_help[] =
    "usage: oryx generate --ckpt CKPT --prompt TEXT --tokens N --modes SPEC [options]\n"
    "\n"
    "Streams text sampled from a checkpoint.\n"
    "  --ckpt CKPT         checkpoint (default runs/oryx)\n"
    "  --prompt TEXT       the text to continue (default \"ROMEO:\\n\")\n"
    "  --tokens N          bytes to generate (default 300)\n"
    "  --modes SPEC        prompt-attn | attn | lin | mixed | chunks:<f> | every:<N> | file of 'a'/'l' (default\n"
    "                      prompt-attn: attention on the prompt, linear on generated tokens)\n"
    "  --temperature X     softmax temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K           sample among the K most likely bytes, 0 = all (default 40)\n"
    "  --top-p P           then only the most likely of those holding P of their probability, 0 = off\n"
    "                      (default 0)\n"
    "  --seed S            sampling seed (default 1234)\n"
    "  --threads N         threads, 0 = all cores (default 0)\n"
    "  --mode-map-png FILE also draw the mode map of the whole sequence (positions x layers; layers of one\n"
    "                      kind show that kind) as a PNG\n"
    "  -h, --help          this text\n";

typedef struct gen_opts {
    const char *ckpt, *prompt, *modes, *map_png;
    int64_t tokens, top_k, seed, threads;
    double temperature, top_p;
} gen_opts;

static const char *const G = "generate";

static int parse_opts(int argc, char **argv, gen_opts *o)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' },        { "prompt", required_argument, 0, 'p' },
        { "tokens", required_argument, 0, 'n' },      { "modes", required_argument, 0, 'm' },
        { "temperature", required_argument, 0, 't' }, { "top-k", required_argument, 0, 'k' },
        { "seed", required_argument, 0, 's' },        { "threads", required_argument, 0, 'j' },
        { "mode-map-png", required_argument, 0, 'M' }, { "top-p", required_argument, 0, 'P' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    *o = (gen_opts){ .ckpt = "runs/oryx", .prompt = "ROMEO:\n", .modes = "prompt-attn", .tokens = 300,
                     .top_k = 40, .seed = 1234, .temperature = 0.8 };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': o->ckpt = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'm': o->modes = optarg; break;
        case 'M': o->map_png = optarg; break;
        case 'n': bad = cli_parse_i64(G, "tokens", optarg, 0, 1 << 24, &o->tokens); break;
        case 't': bad = cli_parse_f64(G, "temperature", optarg, 0, 100, &o->temperature); break;
        case 'k': bad = cli_parse_i64(G, "top-k", optarg, 0, 1 << 20, &o->top_k); break;
        case 'P': bad = cli_parse_f64(G, "top-p", optarg, 0, 1, &o->top_p); break;
        case 's': bad = cli_parse_i64(G, "seed", optarg, 0, INT64_MAX, &o->seed); break;
        case 'j': bad = cli_parse_i64(G, "threads", optarg, 0, 1024, &o->threads); break;
        case 'h': fputs(gen_help, stdout); return -1;
        default: return cli_bad_option(G, c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, G, "unexpected argument '%s' (see oryx generate --help)", argv[optind]);
    if (!*o->prompt)
        return cli_fail(CLI_ERR_USAGE, G, "--prompt is empty: give at least one byte to continue");
    if (o->map_png && (int64_t)strlen(o->prompt) + o->tokens > 16000)
        return cli_fail(CLI_ERR_USAGE, G, "--mode-map-png draws at most 16000 positions (prompt + --tokens)");
    return 0;
}

/* The KV cache the schedule needs (see the top of this file): decoder flags and a note for the report. */
static unsigned kv_plan(const ox_oryx_model *m, const int32_t *map, int64_t n_prompt, int64_t total,
                        int *attn_later, const char **note)
{
    int attn_layer = 0, attn_any = 0;
    *attn_later = 0;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        attn_layer |= m->cfg.kinds[l] == OX_ORYX_KIND_ATTN;
    for (int64_t p = 0; p < total; p++) {
        attn_any |= map[p] == OX_NN_ATTN;
        *attn_later |= p >= n_prompt && map[p] == OX_NN_ATTN;
    }
    *note = "yes (generated tokens use attention)";
    if (!attn_any && !attn_layer) {
        *note = "no (never allocated: no token uses attention)";
        return OX_ORYX_DECODE_NO_KV;
    }
    if (!*attn_later)
        *note = attn_layer ? "partly (dropped after the prompt in mixed layers; attention-only layers keep theirs)"
                           : "no (dropped after the prompt: generated tokens are linear)";
    return 0;
}

/* Prefill the prompt, then sample and step `tokens` bytes, streaming them to stdout; *t_prompt / *t_gen: the
 * seconds of each part; *note: the KV-cache note of kv_plan. */
static int decode(ox_ctx *ctx, const gen_opts *o, const ox_oryx_model *m, ox_oryx_decoder *d, int32_t *map,
                  int64_t n_prompt, double *t_prompt, double *t_gen, const char **note)
{
    int attn_later;
    int64_t total = n_prompt + o->tokens, V = m->cfg.vocab;
    unsigned flags = kv_plan(m, map, n_prompt, total, &attn_later, note);
    ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n_prompt));
    ox_tensor *pm = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n_prompt));
    if (in && pm)
        for (int64_t t = 0; t < n_prompt; t++) {
            ox_tensor_i32(in)[t] = (uint8_t)o->prompt[t] < V ? (uint8_t)o->prompt[t] : 0;
            ox_tensor_i32(pm)[t] = map[t];
        }
    double t0 = cli_now();
    if (!in || !pm || ox_oryx_decoder_init(ctx, d, m, 1, total, flags) ||
        ox_oryx_decoder_prefill(ctx, d, in, pm, NULL) || (!attn_later && ox_oryx_decoder_drop_kv(ctx, d, -1)))
        return cli_fail(CLI_ERR_RUN, G, "%s", ox_ctx_message(ctx));
    double t1 = cli_now();
    fwrite(o->prompt, 1, (size_t)n_prompt, stdout);
    fflush(stdout);
    ox_nn_sampler smp = { .temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p };
    ox_rng rng = ox_rng_seed((uint64_t)o->seed);
    for (int64_t i = 0; i < o->tokens; i++) {
        int32_t tok = ox_nn_sample(ctx, ox_tensor_f32(d->logits), V, &smp, &rng);
        if (tok < 0)
            return cli_fail(CLI_ERR_RUN, G, "%s", ox_ctx_message(ctx));
        putchar(tok);
        fflush(stdout);
        if (i + 1 < o->tokens && ox_oryx_decoder_step(ctx, d, &tok, &map[n_prompt + i], 1))
            return cli_fail(CLI_ERR_RUN, G, "%s", ox_ctx_message(ctx));
    }
    *t_prompt = t1 - t0;
    *t_gen = cli_now() - t1;
    printf("\n");
    return 0;
}

int cli_generate(int argc, char **argv)
{
    gen_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_OK : code;
    ox_oryx_map_spec spec;
    int64_t *spec_pos = NULL;
    if ((code = cli_map_parse(G, o.modes, OX_ORYX_MAP_ACCEPT_PROMPT, &spec, &spec_pos)))
        return code;
    int64_t n_prompt = (int64_t)strlen(o.prompt), total = n_prompt + o.tokens;
    spec.seed = (uint64_t)o.seed;
    spec.n_prompt = n_prompt;
    ox_ctx *ctx = ox_ctx_new();
    ox_oryx_model m;
    ox_oryx_decoder d;
    memset(&m, 0, sizeof m);
    memset(&d, 0, sizeof d);
    int32_t *map = malloc(sizeof *map * (size_t)total);
    if (!ctx || !map)
        code = cli_fail(CLI_ERR_RUN, G, "out of memory");
    if (!code)
        code = cli_load_model(ctx, G, o.ckpt, &m, NULL, NULL);
    if (!code) {
        ox_ctx_set_threads(ctx, (int)o.threads);
        ox_ag_set_grad_enabled(ctx, 0);
        code = cli_map_row(ctx, G, &spec, 0, total, map);
    }
    double tp = 0, tg = 0;
    const char *note = "";
    if (!code)
        code = decode(ctx, &o, &m, &d, map, n_prompt, &tp, &tg, &note);
    if (!code) {
        int64_t n_attn = 0;
        for (int64_t i = n_prompt; i < total; i++)
            n_attn += map[i] == OX_NN_ATTN;
        printf("-- %lld tokens in %.2f s (%.1f tokens/s; prompt of %lld in %.2f s); modes %s, %lld of %lld generated "
               "tokens ATTN; KV cache kept: %s\n", (long long)o.tokens, tg, tg > 0 ? (double)o.tokens / tg : 0.0,
               (long long)n_prompt, tp, o.modes, (long long)n_attn, (long long)o.tokens, note);
        if (o.map_png && !(code = cli_mode_map_png(G, &m.cfg, map, total, n_prompt, o.modes, o.map_png)))
            printf("mode map picture: %s\n", o.map_png);
    }
    ox_oryx_decoder_free(&d);
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    free(map);
    ox_free(spec_pos);
    return code;
}
