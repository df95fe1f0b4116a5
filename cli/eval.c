/* eval.c - `oryx eval`: the next-byte loss of a checkpoint, through the one evaluator of the library
 * (ox_oryx_evaluate_bytes, models/oryx/train.h: consecutive non-overlapping windows of T + 1 bytes, each
 * predicting its bytes 1.. from the bytes before them, the shorter last window scored too, averaged over
 * every predicted byte).
 *   --split val    the checkpoint's own validation split: its data file (or --data, the same corpus), its
 *                  T, its number of validation windows (or --windows N), all ATTN: exactly the quantity
 *                  `oryx train` logs as val_loss.
 *   --data FILE    (without --split) the whole file, windows of T + 1 bytes (T: --seq or the checkpoint's).
 * The last stdout line is exactly
 *   val_loss <nats/token> bpb <bits/byte>
 * with 9 significant digits (tokens are bytes, so bpb = val_loss / ln 2). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "models/oryx/train.h"
#include "tensor/alloc.h"

static const char eval_help[] =
    "usage: oryx eval --ckpt CKPT --split val [--windows N] [--data FILE]\n"
    "       oryx eval --ckpt CKPT --data FILE [--modes SPEC] [--seq T]\n"
    "\n"
    "Scores text with the training run's evaluator: consecutive windows of T + 1 bytes (the last one shorter),\n"
    "each predicting its bytes after the first, loss averaged over every predicted byte.\n"
    "Last output line: val_loss <nats/token> bpb <bits/byte>\n"
    "  --ckpt CKPT     checkpoint (default runs/oryx)\n"
    "  --split val     the checkpoint's validation split (its data file, T and window count): the val_loss\n"
    "                  that oryx train logs\n"
    "  --windows N     with --split val: score the first N windows (default: the checkpoint's --eval-windows)\n"
    "  --data FILE     text file: with --split val, the checkpoint's corpus moved elsewhere; alone, a whole\n"
    "                  file to score (default data/tinyshakespeare.txt)\n"
    "  --modes SPEC    attn | lin | mixed | chunks:<f> | every:<N> | file of 'a'/'l' (default attn)\n"
    "  --seq T         predicted bytes per window, >= 1 (default: the checkpoint's training length)\n"
    "  --seed S        seed of the random maps (mixed, chunks:<f>) (default 1234)\n"
    "  --threads N     threads, 0 = all cores (default 0)\n"
    "  -h, --help      this text\n";

typedef struct eval_opts {
    const char *ckpt, *data, *modes, *split;
    int64_t seq, seed, threads, windows;
    int data_given;
} eval_opts;

static int parse_opts(int argc, char **argv, eval_opts *o)
{
    static const struct option opts[] = {
        { "ckpt", required_argument, 0, 'c' },    { "data", required_argument, 0, 'd' },
        { "modes", required_argument, 0, 'm' },   { "seq", required_argument, 0, 'T' },
        { "split", required_argument, 0, 'p' },   { "windows", required_argument, 0, 'w' },
        { "seed", required_argument, 0, 's' },    { "threads", required_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },          { 0, 0, 0, 0 }
    };
    *o = (eval_opts){ .ckpt = "runs/oryx", .data = "data/tinyshakespeare.txt", .modes = "attn", .seed = 1234 };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': o->ckpt = optarg; break;
        case 'd': o->data = optarg; o->data_given = 1; break;
        case 'm': o->modes = optarg; break;
        case 'p': o->split = optarg; break;
        case 'T': bad = cli_parse_i64("eval", "seq", optarg, 1, 1 << 20, &o->seq); break;
        case 'w': bad = cli_parse_i64("eval", "windows", optarg, 1, 1 << 24, &o->windows); break;
        case 's': bad = cli_parse_i64("eval", "seed", optarg, 0, INT64_MAX, &o->seed); break;
        case 'j': bad = cli_parse_i64("eval", "threads", optarg, 0, 1024, &o->threads); break;
        case 'h': fputs(eval_help, stdout); return -1;
        default: return cli_bad_option("eval", c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, "eval", "unexpected argument '%s' (see oryx eval --help)", argv[optind]);
    if (o->split && strcmp(o->split, "val") != 0)
        return cli_fail(CLI_ERR_USAGE, "eval", "--split '%s': the only split is val", o->split);
    if (!o->split && o->windows)
        return cli_fail(CLI_ERR_USAGE, "eval", "--windows applies to --split val only");
    if (o->split && o->seq)
        return cli_fail(CLI_ERR_USAGE, "eval", "--seq cannot be given with --split val: the split's windows are "
                        "the checkpoint's");
    return 0;
}

/* The bytes to score, their window length T and what to print about them. */
typedef struct eval_input {
    uint8_t *file;              /* ox_free */
    ox_oryx_data split;         /* --split val: the checkpoint's corpus, split as in training */
    const uint8_t *bytes;
    int64_t n, T;
    char what[4200];
} eval_input;

static int load_input(ox_ctx *ctx, const eval_opts *o, int64_t train_seq, eval_input *in)
{
    int64_t len = 0;
    if (!o->split) {
        in->T = o->seq ? o->seq : train_seq;
        if (in->T < 1)
            return cli_fail(CLI_ERR_USAGE, "eval", "checkpoint '%s' records no training length: give --seq T", o->ckpt);
        int code = cli_read_file("eval", "data file", o->data, &in->file, &len);
        if (code)
            return code;
        if (len < 2)
            return cli_fail(CLI_ERR_INPUT, "eval", "data file '%s' has %lld byte(s): nothing to predict", o->data,
                            (long long)len);
        in->bytes = in->file;
        in->n = len;
        snprintf(in->what, sizeof in->what, "%s: %lld bytes", o->data, (long long)len);
        return 0;
    }
    char prefix[4096];
    if (cli_ckpt_paths(o->ckpt, prefix, NULL, NULL, NULL, sizeof prefix))
        return cli_fail(CLI_ERR_USAGE, "eval", "--ckpt name is empty or too long");
    ox_oryx_train_config saved;
    if (ox_oryx_train_read_settings(ctx, prefix, &saved, NULL))
        return cli_fail(CLI_ERR_INPUT, "eval", "--split val needs the checkpoint's training state: %s",
                        ox_ctx_message(ctx));
    const char *path = o->data_given || !saved.data_path[0] ? o->data : saved.data_path;
    int code = cli_read_file("eval", "data file", path, &in->file, &len);
    if (code)
        return code;
    in->T = saved.seq_len;
    if (ox_oryx_data_from_bytes(ctx, in->file, len, in->T, &in->split))
        return cli_fail(CLI_ERR_INPUT, "eval", "data file '%s': %s", path, ox_ctx_message(ctx));
    int64_t windows = o->windows ? o->windows : saved.eval_windows > 0 ? saved.eval_windows : 32;
    in->bytes = in->split.bytes + in->split.n_train;
    in->n = windows * (in->T + 1) < in->split.n_val ? windows * (in->T + 1) : in->split.n_val;
    snprintf(in->what, sizeof in->what, "the validation split of %s (%lld windows, %lld bytes)", path,
             (long long)windows, (long long)in->n);
    return 0;
}

int cli_eval(int argc, char **argv)
{
    eval_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_OK : code;
    ox_oryx_map_spec spec;
    int64_t *spec_pos = NULL;
    if ((code = cli_map_parse("eval", o.modes, 0, &spec, &spec_pos)))
        return code;
    spec.seed = (uint64_t)o.seed;

    ox_ctx *ctx = ox_ctx_new();
    ox_oryx_model m;
    eval_input in;
    memset(&m, 0, sizeof m);
    memset(&in, 0, sizeof in);
    int64_t step = -1, train_seq = -1;
    if (!ctx)
        code = cli_fail(CLI_ERR_RUN, "eval", "out of memory");
    if (!code)
        code = cli_load_model(ctx, "eval", o.ckpt, &m, &step, &train_seq);
    if (!code)
        code = load_input(ctx, &o, train_seq, &in);
    if (!code) {
        ox_ctx_set_threads(ctx, (int)o.threads);
        printf("eval %s on %s, windows of %lld + 1 bytes, modes %s\n", o.ckpt, in.what, (long long)in.T, o.modes);
        fflush(stdout);
        ox_oryx_eval ev;
        if (ox_oryx_evaluate_bytes(ctx, &m, in.bytes, in.n, in.T, &spec, &ev))
            code = cli_fail(CLI_ERR_RUN, "eval", "%s", ox_ctx_message(ctx));
        else {
            printf("scored %lld predicted bytes\n", (long long)ev.n_predicted);
            printf("val_loss %.9g bpb %.9g\n", ev.nats, ev.bits_per_byte);
        }
    }
    ox_oryx_data_free(&in.split);
    ox_free(in.file);
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    ox_free(spec_pos);
    return code;
}
