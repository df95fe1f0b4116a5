/* generate.c - `oryx generate --ckpt CKPT --prompt TEXT --tokens N --modes SPEC`: streams bytes sampled from
 * a checkpoint (temperature, top-k, seed) under a mode schedule (default prompt-attn: prompt tokens ATTN,
 * generated tokens LIN), then reports tokens/s and whether a KV cache was kept.
 *
 * Each new byte is sampled from the logits of the last position of a forward pass over the whole sequence
 * so far with the schedule's map (the training semantics of a mode map, MODELS 7.2): exact for every
 * schedule, at O(n) work per token. The context is capped at --context bytes (default: the checkpoint's
 * training length x 4); past it the oldest bytes are dropped. No KV cache is kept by this path. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "cli/cli.h"

static const char gen_help[] =
    "usage: oryx generate --ckpt CKPT --prompt TEXT --tokens N --modes SPEC [options]\n"
    "\n"
    "Streams text sampled from a checkpoint.\n"
    "  --ckpt CKPT         checkpoint (default runs/oryx)\n"
    "  --prompt TEXT       the text to continue (default \"ROMEO:\\n\")\n"
    "  --tokens N          bytes to generate (default 300)\n"
    "  --modes SPEC        prompt-attn | attn | lin | mixed:<f> | every:<N> | file of 'a'/'l' (default\n"
    "                      prompt-attn: attention on the prompt, linear on generated tokens)\n"
    "  --temperature X     softmax temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K           sample among the K most likely bytes, 0 = all (default 40)\n"
    "  --seed S            sampling seed (default 1234)\n"
    "  --context N         longest context fed to the model (default 4 x the training length)\n"
    "  --threads N         threads, 0 = all cores (default 0)\n"
    "  -h, --help          this text\n";

/* Samples a byte from logits z[0..V-1]: greedy when temperature is 0, else softmax(z / temperature)
 * restricted to the top_k largest (all when top_k is 0 or >= V). */
static int sample(const float *z, int64_t V, double temperature, int64_t top_k, ox_rng *rng)
{
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++)
        if (z[v] > z[best])
            best = v;
    if (temperature <= 0)
        return (int)best;
    double thresh = -INFINITY;
    if (top_k > 0 && top_k < V) {  /* the k-th largest value: k passes of "largest below the previous" */
        double prev = INFINITY;
        int64_t taken = 0;
        while (taken < top_k) {
            double cur = -INFINITY;
            int64_t cnt = 0;
            for (int64_t v = 0; v < V; v++)
                if (z[v] < prev && z[v] > cur)
                    cur = z[v];
            for (int64_t v = 0; v < V; v++)
                cnt += z[v] == cur;
            taken += cnt;
            prev = cur;
        }
        thresh = prev;
    }
    double p[1024], sum = 0, zmax = z[best];
    for (int64_t v = 0; v < V; v++) {
        p[v] = z[v] >= thresh ? exp((z[v] - zmax) / temperature) : 0;
        sum += p[v];
    }
    double u = ox_rng_uniform(rng) * sum;
    for (int64_t v = 0; v < V; v++) {
        if (u < p[v])
            return (int)v;
        u -= p[v];
    }
    return (int)best;
}

int cli_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' },        { "prompt", required_argument, 0, 'p' },
        { "tokens", required_argument, 0, 'n' },      { "modes", required_argument, 0, 'm' },
        { "temperature", required_argument, 0, 't' }, { "top-k", required_argument, 0, 'k' },
        { "seed", required_argument, 0, 's' },        { "context", required_argument, 0, 'x' },
        { "threads", required_argument, 0, 'j' },     { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    const char *ckpt = "runs/oryx", *prompt = "ROMEO:\n", *modes = "prompt-attn";
    int64_t tokens = 300, top_k = 40, seed = 1234, context = 0, threads = 0;
    double temperature = 0.8;
    const char *G = "generate";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'p': prompt = optarg; break;
        case 'm': modes = optarg; break;
        case 'n': bad = cli_parse_i64(G, "tokens", optarg, 0, 1 << 24, &tokens); break;
        case 't': bad = cli_parse_f64(G, "temperature", optarg, 0, 100, &temperature); break;
        case 'k': bad = cli_parse_i64(G, "top-k", optarg, 0, 1 << 20, &top_k); break;
        case 's': bad = cli_parse_i64(G, "seed", optarg, 0, INT64_MAX, &seed); break;
        case 'x': bad = cli_parse_i64(G, "context", optarg, 2, 1 << 20, &context); break;
        case 'j': bad = cli_parse_i64(G, "threads", optarg, 0, 1024, &threads); break;
        case 'h': fputs(gen_help, stdout); return CLI_OK;
        default: return cli_bad_option(G, c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, G, "unexpected argument '%s' (see oryx generate --help)", argv[optind]);
    if (!*prompt)
        return cli_fail(CLI_ERR_USAGE, G, "--prompt is empty: give at least one byte to continue");
    cli_spec spec;
    if (cli_spec_parse(G, modes, 1, &spec))
        return CLI_ERR_USAGE;

    ox_ctx *ctx = ox_ctx_new();
    ox_oryx_model m;
    memset(&m, 0, sizeof m);
    int64_t n_prompt = (int64_t)strlen(prompt), total = n_prompt + tokens, step = -1, train_seq = -1;
    uint8_t *seq = malloc((size_t)total);
    int32_t *map = malloc(sizeof *map * (size_t)total);
    int code = 0;
    if (!ctx || !seq || !map)
        code = cli_fail(CLI_ERR_RUN, G, "out of memory");
    if (!code)
        code = cli_load_model(ctx, G, ckpt, &m, &step, &train_seq);
    if (!code && m.cfg.vocab > 1024)
        code = cli_fail(CLI_ERR_INPUT, G, "checkpoint '%s' has vocab %lld; byte sampling supports up to 1024", ckpt,
                        (long long)m.cfg.vocab);
    if (code)
        goto done;
    if (!context)
        context = 4 * (train_seq >= 2 ? train_seq : 256);
    ox_ctx_set_threads(ctx, (int)threads);
    ox_ag_set_grad_enabled(ctx, 0);
    memcpy(seq, prompt, (size_t)n_prompt);
    cli_spec_fill(&spec, (uint64_t)seed, 0, 0, total, n_prompt, map);
    ox_rng rng = ox_rng_seed((uint64_t)seed);
    fwrite(prompt, 1, (size_t)n_prompt, stdout);
    fflush(stdout);
    double t0 = cli_now();
    int64_t V = m.cfg.vocab;
    for (int64_t n = n_prompt; n < total; n++) {
        int64_t first = n > context ? n - context : 0, len = n - first;
        ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, len));
        ox_tensor *mode = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, len));
        if (in && mode) {
            for (int64_t t = 0; t < len; t++) {
                ox_tensor_i32(in)[t] = seq[first + t] < V ? seq[first + t] : 0;
                ox_tensor_i32(mode)[t] = map[first + t];
            }
        }
        ox_tensor *logits = in && mode ? ox_oryx_forward(ctx, &m, in, mode) : NULL;
        if (!logits) {
            code = cli_fail(CLI_ERR_RUN, G, "%s", ox_ctx_message(ctx));
            goto done;
        }
        int b = sample(ox_tensor_f32(logits) + (len - 1) * V, V, temperature, top_k, &rng);
        seq[n] = (uint8_t)b;
        putchar(b);
        fflush(stdout);
        ox_ctx_reset(ctx);
    }
    double el = cli_now() - t0;
    int64_t n_attn = 0;
    for (int64_t i = n_prompt; i < total; i++)
        n_attn += map[i] == 1;
    printf("\n-- %lld tokens in %.2f s (%.1f tokens/s); modes %s, %lld of %lld generated tokens ATTN; KV cache "
           "kept: no (each token recomputes the window of up to %lld bytes)\n",
           (long long)tokens, el, el > 0 ? (double)tokens / el : 0.0, spec.text, (long long)n_attn,
           (long long)tokens, (long long)context);
done:
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    free(seq);
    free(map);
    cli_spec_free(&spec);
    return code;
}
