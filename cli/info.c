/* info.c - `oryx info --ckpt CKPT`: a checkpoint's configuration, parameter report (shared vs
 * mixer-specific, models/oryx/report.h), step, training length and file sizes. The model file is loaded
 * strictly, so a file that is not an Oryx-family checkpoint is an error. */
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "models/oryx/report.h"

static const char info_help[] =
    "usage: oryx info --ckpt CKPT\n"
    "\n"
    "Prints a checkpoint's configuration, parameter report (shared vs mixer-specific parameters) and size.\n"
    "  --ckpt CKPT   checkpoint (CKPT or CKPT.safetensors; default runs/oryx)\n"
    "  -h, --help    this text\n";

static void print_size(const char *label, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        printf("%-14s %s (%lld bytes, %.2f MiB)\n", label, path, (long long)st.st_size,
               (double)st.st_size / (1024.0 * 1024.0));
    else
        printf("%-14s %s (absent)\n", label, path);
}

int cli_info(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *ckpt = "runs/oryx";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'c')
            ckpt = optarg;
        else if (c == 'h') {
            fputs(info_help, stdout);
            return CLI_OK;
        } else
            return cli_bad_option("info", c, argv);
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, "info", "unexpected argument '%s' (see oryx info --help)", argv[optind]);

    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return cli_fail(CLI_ERR_RUN, "info", "out of memory");
    ox_oryx_model m;
    int64_t step, seq;
    int code = cli_load_model(ctx, "info", ckpt, &m, &step, &seq);
    if (code) {
        ox_ctx_free(ctx);
        return code;
    }
    const ox_oryx_config *cfg = &m.cfg;
    char prefix[4096], model[4096], state[4096], csv[4096];
    cli_ckpt_paths(ckpt, prefix, model, state, csv, sizeof model);
    printf("checkpoint     %s\n", model);
    printf("arch           %s (linear mixer %s, conv act %s)\n", ox_oryx_config_arch(cfg),
           ox_oryx_linear_name(cfg->linear), cfg->conv_act == OX_NN_ACT_SILU ? "silu" : "none");
    printf("sizes          V %lld  D %lld  L %lld  H %lld  dk %lld  dv %lld  F %lld\n", (long long)cfg->vocab,
           (long long)cfg->d_model, (long long)cfg->n_layers, (long long)cfg->n_heads, (long long)cfg->d_k,
           (long long)cfg->d_v, (long long)cfg->mlp_hidden);
    printf("layer kinds    ");
    for (int64_t l = 0; l < cfg->n_layers; l++)
        printf("%s%s", l ? "," : "", ox_oryx_kind_name(cfg->kinds[l]));
    printf("\n");
    printf("step           %lld\n", (long long)step);
    printf("train_seq_len  %lld\n", (long long)seq);
    ox_oryx_report r;
    ox_oryx_report_model(&m, &r);
    char buf[1024];
    ox_oryx_report_format(&r, buf, sizeof buf);
    fputs(buf, stdout);
    print_size("model file", model);
    print_size("training state", state);
    print_size("loss history", csv);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
    return CLI_OK;
}
