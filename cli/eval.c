/* eval.c - `oryx eval --ckpt CKPT --data FILE --modes SPEC [--seq T]`: the next-byte loss of a checkpoint
 * on a whole text file, as consecutive non-overlapping windows of T bytes (default: the checkpoint's
 * training length; the shorter last window is scored too), each predicting its bytes 2..n from the previous
 * ones, averaged over every predicted byte. The last stdout line is exactly
 *   val_loss <nats/token> bpb <bits/byte>
 * (tokens are bytes, so bpb = val_loss / ln 2). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tensor/alloc.h"

static const char eval_help[] =
    "usage: oryx eval --ckpt CKPT --data FILE --modes SPEC [--seq T] [--batch B] [--seed S] [--threads N]\n"
    "\n"
    "Scores a text file: consecutive windows of T bytes (last one shorter), loss averaged over every predicted\n"
    "byte. Last output line: val_loss <nats/token> bpb <bits/byte>\n"
    "  --ckpt CKPT     checkpoint (default runs/oryx)\n"
    "  --data FILE     text file to score (default data/tinyshakespeare.txt)\n"
    "  --modes SPEC    attn | lin | mixed:<f> | every:<N> | file of 'a'/'l' (default attn)\n"
    "  --seq T         window length in bytes, >= 2 (default: the checkpoint's training length)\n"
    "  --batch B       windows per forward pass (default 8)\n"
    "  --seed S        seed of mixed:<f> draws (default 1234)\n"
    "  --threads N     threads, 0 = all cores (default 0)\n"
    "  -h, --help      this text\n";

int cli_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' },    { "data", required_argument, 0, 'd' },
        { "modes", required_argument, 0, 'm' },   { "seq", required_argument, 0, 'T' },
        { "batch", required_argument, 0, 'b' },   { "seed", required_argument, 0, 's' },
        { "threads", required_argument, 0, 'j' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    const char *ckpt = "runs/oryx", *data_path = "data/tinyshakespeare.txt", *modes = "attn";
    int64_t seq = 0, batch = 8, seed = 1234, threads = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'd': data_path = optarg; break;
        case 'm': modes = optarg; break;
        case 'T': bad = cli_parse_i64("eval", "seq", optarg, 2, 1 << 20, &seq); break;
        case 'b': bad = cli_parse_i64("eval", "batch", optarg, 1, 4096, &batch); break;
        case 's': bad = cli_parse_i64("eval", "seed", optarg, 0, INT64_MAX, &seed); break;
        case 'j': bad = cli_parse_i64("eval", "threads", optarg, 0, 1024, &threads); break;
        case 'h': fputs(eval_help, stdout); return CLI_OK;
        default: return cli_bad_option("eval", c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, "eval", "unexpected argument '%s' (see oryx eval --help)", argv[optind]);
    cli_spec spec;
    if (cli_spec_parse("eval", modes, 0, &spec))
        return CLI_ERR_USAGE;

    uint8_t *data = NULL;
    int64_t len = 0;
    ox_ctx *ctx = NULL;
    ox_oryx_model m;
    memset(&m, 0, sizeof m);
    int code = cli_read_file("eval", "data file", data_path, &data, &len);
    if (!code && !(ctx = ox_ctx_new()))
        code = cli_fail(CLI_ERR_RUN, "eval", "out of memory");
    int64_t step = -1, train_seq = -1;
    if (!code)
        code = cli_load_model(ctx, "eval", ckpt, &m, &step, &train_seq);
    if (!code && seq == 0) {
        if (train_seq < 2)
            code = cli_fail(CLI_ERR_USAGE, "eval", "checkpoint '%s' records no training length: give --seq T", ckpt);
        seq = train_seq;
    }
    if (!code && len < 2)
        code = cli_fail(CLI_ERR_INPUT, "eval", "data file '%s' has %lld byte(s): nothing to predict", data_path,
                        (long long)len);
    if (!code) {
        ox_ctx_set_threads(ctx, (int)threads);
        printf("eval %s on %s: %lld bytes, windows of %lld bytes, modes %s\n", ckpt, data_path, (long long)len,
               (long long)seq, spec.text);
        fflush(stdout);
        double nats = 0;
        int64_t count = 0;
        if (cli_score(ctx, &m, data, len, seq, &spec, (uint64_t)seed, batch, 0, &nats, &count))
            code = cli_fail(CLI_ERR_RUN, "eval", "%s", ox_ctx_message(ctx));
        else {
            double loss = nats / (double)count;
            printf("scored %lld predicted bytes\n", (long long)count);
            printf("val_loss %.6f bpb %.6f\n", loss, loss / log(2.0));
        }
    }
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    ox_free(data);
    cli_spec_free(&spec);
    return code;
}
