/* common.c - helpers shared by the bin/oryx subcommands: one-line errors, strict flag-value parsing, the
 * data file reader, checkpoint file names and loading, time formatting (see cli.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "models/oryx/checkpoint.h"
#include "tensor/alloc.h"
#include "tensor/io.h"

int cli_fail(int code, const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "oryx%s%s: %s\n", *cmd ? " " : "", cmd, msg);   /* "" = no subcommand: "oryx: ..." */
    return code;
}

int cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        cli_fail(CLI_ERR_USAGE, cmd, "--%s '%s' is not an integer in [%lld, %lld]", flag, s, (long long)lo,
                 (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_f64(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        cli_fail(CLI_ERR_USAGE, cmd, "--%s '%s' is not a number in [%g, %g]", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == ':')
        return cli_fail(CLI_ERR_USAGE, cmd, "option '%s' needs a value (see oryx %s --help)", arg, cmd);
    if (optopt && optopt != '?')
        return cli_fail(CLI_ERR_USAGE, cmd, "unknown option '-%c' (see oryx %s --help)", optopt, cmd);
    return cli_fail(CLI_ERR_USAGE, cmd, "unknown option '%s' (see oryx %s --help)", arg, cmd);
}

int cli_read_file(const char *cmd, const char *what, const char *path, uint8_t **data, int64_t *len)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return cli_fail(CLI_ERR_RUN, cmd, "out of memory");
    int code = 0;
    if (ox_io_read_file(ctx, path, what, 0, data, len))
        code = cli_fail(ox_ctx_status(ctx) == OX_ERR_NOMEM ? CLI_ERR_RUN : CLI_ERR_INPUT, cmd, "%s",
                        ox_ctx_message(ctx));
    ox_ctx_free(ctx);
    return code;
}

int cli_ckpt_paths(const char *ckpt, char *prefix, char *model, char *state, char *csv, size_t n)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(ckpt), el = sizeof ext - 1;
    size_t stem = len >= el && strcmp(ckpt + len - el, ext) == 0 ? len - el : len;
    if (stem == 0 || stem + 24 >= n)
        return -1;
    snprintf(prefix, n, "%.*s", (int)stem, ckpt);
    if (model)
        snprintf(model, n, "%s%s", prefix, ext);
    if (state)
        snprintf(state, n, "%s.state%s", prefix, ext);
    if (csv)
        snprintf(csv, n, "%s.loss.csv", prefix);
    return 0;
}

int cli_load_model(ox_ctx *ctx, const char *cmd, const char *ckpt, ox_oryx_model *m, int64_t *step,
                   int64_t *train_seq_len)
{
    char prefix[4096], model[4096];
    memset(m, 0, sizeof *m);
    if (cli_ckpt_paths(ckpt, prefix, model, NULL, NULL, sizeof model))
        return cli_fail(CLI_ERR_INPUT, cmd, "checkpoint name '%s' is empty or too long", ckpt);
    if (ox_oryx_load(ctx, model, m, step, train_seq_len)) {
        int code = cli_fail(CLI_ERR_INPUT, cmd, "cannot load checkpoint '%s': %s", model, ox_ctx_message(ctx));
        ox_ctx_clear_error(ctx);
        return code;
    }
    return 0;
}

void cli_format_duration(double seconds, char *buf, size_t n)
{
    if (!(seconds >= 0) || seconds > 1e7)
        seconds = 0;
    long s = lround(seconds);
    if (s >= 3600)
        snprintf(buf, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%lds", s);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_make_parent_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) && access(buf, F_OK))
            return -1;
        *p = '/';
    }
    return 0;
}
