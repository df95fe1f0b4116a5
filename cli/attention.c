/* attention.c - `oryx attention`: a heatmap of one attention head's probabilities for a prompt (rows =
 * query positions, columns = key positions, colour = softmax probability), computed by
 * ox_oryx_attention_probs (models/oryx/inspect.h) with the model's own trunk. Rows whose token runs the
 * linear mixer under the mode SPEC attend nowhere and are drawn grey. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "cli/cli.h"
#include "tensor/alloc.h"
#include "models/oryx/inspect.h"
#include "plot/chart.h"

#define ATTN_MAX_T 512

static const char attn_help[] =
    "usage: oryx attention --ckpt CKPT --prompt TEXT --out FILE.png [options]\n"
    "\n"
    "Draws the attention probabilities of one head for a prompt: row t = query position t, column s = key\n"
    "position s, colour = P[t, s] (s <= t). Rows of linear-mode tokens attend nowhere and are grey.\n"
    "  --ckpt CKPT         checkpoint (default runs/oryx)\n"
    "  --prompt TEXT       the token sequence, 1 to 512 bytes (default: a line of Shakespeare)\n"
    "  --layer L           layer, 0-based (default: the last layer with attention)\n"
    "  --head H            head, 0-based (default 0)\n"
    "  --modes SPEC        attn | lin | mixed | chunks:<f> | every:<N> | file of 'a'/'l' (default attn)\n"
    "  --seed S            seed of the random maps (mixed, chunks:<f>) (default 1234)\n"
    "  --out FILE.png      the picture to write (required)\n"
    "  --threads N         threads, 0 = all cores (default 0)\n"
    "  -h, --help          this text\n";

int cli_attention(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' },  { "prompt", required_argument, 0, 'p' },
        { "layer", required_argument, 0, 'l' }, { "head", required_argument, 0, 'H' },
        { "modes", required_argument, 0, 'm' }, { "seed", required_argument, 0, 's' },
        { "out", required_argument, 0, 'o' },  { "threads", required_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },        { 0, 0, 0, 0 }
    };
    const char *A = "attention", *ckpt = "runs/oryx", *modes = "attn", *out = NULL;
    const char *prompt = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    int64_t layer = -1, head = 0, seed = 1234, threads = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'p': prompt = optarg; break;
        case 'm': modes = optarg; break;
        case 'o': out = optarg; break;
        case 'l': bad = cli_parse_i64(A, "layer", optarg, 0, OX_ORYX_MAX_LAYERS - 1, &layer); break;
        case 'H': bad = cli_parse_i64(A, "head", optarg, 0, 1 << 20, &head); break;
        case 's': bad = cli_parse_i64(A, "seed", optarg, 0, INT64_MAX, &seed); break;
        case 'j': bad = cli_parse_i64(A, "threads", optarg, 0, 1024, &threads); break;
        case 'h': fputs(attn_help, stdout); return CLI_OK;
        default: return cli_bad_option(A, c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, A, "unexpected argument '%s' (see oryx attention --help)", argv[optind]);
    if (!out || !*out)
        return cli_fail(CLI_ERR_USAGE, A, "--out FILE.png is required (see oryx attention --help)");
    int64_t T = (int64_t)strlen(prompt);
    if (T < 1 || T > ATTN_MAX_T)
        return cli_fail(CLI_ERR_USAGE, A, "--prompt has %lld bytes; give 1 to %d", (long long)T, ATTN_MAX_T);
    ox_oryx_map_spec spec;
    int64_t *spec_pos = NULL;
    int code = cli_map_parse(A, modes, 0, &spec, &spec_pos);
    if (code)
        return code;
    spec.seed = (uint64_t)seed;

    ox_ctx *ctx = ox_ctx_new();
    ox_oryx_model m;
    memset(&m, 0, sizeof m);
    int32_t *map = malloc(sizeof *map * (size_t)T);
    float *vals = malloc(sizeof *vals * (size_t)(T * T));
    if (!ctx || !map || !vals)
        code = cli_fail(CLI_ERR_RUN, A, "out of memory");
    if (!code)
        code = cli_load_model(ctx, A, ckpt, &m, NULL, NULL);
    if (code)
        goto done;
    ox_ctx_set_threads(ctx, (int)threads);
    const ox_oryx_config *cfg = &m.cfg;
    if (layer < 0)
        for (int64_t l = 0; l < cfg->n_layers; l++)
            if (cfg->kinds[l] != OX_ORYX_KIND_LIN)
                layer = l;
    if (layer < 0 || layer >= cfg->n_layers || cfg->kinds[layer] == OX_ORYX_KIND_LIN || head >= cfg->n_heads) {
        code = cli_fail(CLI_ERR_USAGE, A, "%s has %lld layers (%s) and %lld heads; layer %lld head %lld has no "
                        "attention", ckpt, (long long)cfg->n_layers, ox_oryx_config_arch(cfg),
                        (long long)cfg->n_heads, (long long)layer, (long long)head);
        goto done;
    }
    if ((code = cli_map_row(ctx, A, &spec, 0, T, map)))
        goto done;
    ox_tensor *tok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, T));
    ox_tensor *mode = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, T));
    if (tok && mode)
        for (int64_t t = 0; t < T; t++) {
            ox_tensor_i32(tok)[t] = (uint8_t)prompt[t] < cfg->vocab ? (uint8_t)prompt[t] : 0;
            ox_tensor_i32(mode)[t] = map[t];
        }
    ox_tensor *rows = NULL;
    ox_tensor *P = ox_oryx_attention_probs(ctx, &m, tok, mode, layer, head, &rows);
    if (!P) {
        code = cli_fail(CLI_ERR_RUN, A, "%s", ox_ctx_message(ctx));
        goto done;
    }
    int64_t n_rows = 0;
    for (int64_t t = 0; t < T; t++) {
        int on = ox_tensor_i32(rows)[t];
        n_rows += on;
        for (int64_t s = 0; s < T; s++)
            vals[t * T + s] = on ? ox_tensor_f32(P)[t * T + s] : NAN;
    }
    char title[128];
    snprintf(title, sizeof title, "attention: layer %lld, head %lld (%s, modes %s)", (long long)layer,
             (long long)head, ox_oryx_config_arch(cfg), modes);
    ox_plot_heatmap hm = { .title = title, .xlabel = "key position", .ylabel = "query position", .values = vals,
                           .rows = T, .cols = T };
    if (ox_plot_heatmap_png(ctx, &hm, out)) {
        code = cli_fail(CLI_ERR_RUN, A, "%s", ox_ctx_message(ctx));
        goto done;
    }
    printf("wrote %s: layer %lld head %lld, %lld tokens, %lld attending rows (%s)\n", out, (long long)layer,
           (long long)head, (long long)T, (long long)n_rows, modes);
done:
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    free(map);
    free(vals);
    ox_free(spec_pos);
    return code;
}
