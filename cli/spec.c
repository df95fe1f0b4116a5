/* spec.c - mode SPEC parsing and mode-map filling for bin/oryx (cli.h): attn, lin, mixed:<f>, every:<N>,
 * prompt-attn, or a file of 'a'/'l' characters. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "models/oryx/modes.h"
#include "tensor/alloc.h"

static int bad_spec(const char *cmd, const char *s, int allow_prompt, const char *why)
{
    return cli_fail(CLI_ERR_USAGE, cmd,
                    "mode SPEC '%s' %s (expected attn, lin, mixed:<f in [0,1]>, every:<N >= 1>,%s or a file of "
                    "'a'/'l' characters)",
                    s, why, allow_prompt ? " prompt-attn," : "");
}

/* Reads a map file: 'a' -> ATTN, 'l' -> LIN, whitespace skipped, anything else an error; a file that is not
 * a regular file (a FIFO, directory or device), is empty or holds no 'a'/'l' is refused. */
static int read_map_file(const char *cmd, const char *path, int allow_prompt, cli_spec *spec)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return bad_spec(cmd, path, allow_prompt, "is not a known schedule nor a readable file");
    uint8_t *text;
    int64_t len;
    int code = cli_read_file(cmd, "mode map file", path, &text, &len);
    if (code)
        return code;
    uint8_t *map = malloc((size_t)len);
    int64_t n = 0;
    for (int64_t i = 0; map && !code && i < len; i++) {
        int c = text[i];
        if (isspace(c))
            continue;
        if (c != 'a' && c != 'l') {
            char why[96];
            snprintf(why, sizeof why, "is a file with '%c' (byte %lld), not only 'a'/'l' and whitespace",
                     isprint(c) ? c : '?', (long long)i + 1);
            code = bad_spec(cmd, path, allow_prompt, why);
            break;
        }
        map[n++] = c == 'a' ? OX_NN_ATTN : OX_NN_LIN;
    }
    ox_free(text);
    if (!map)
        return cli_fail(CLI_ERR_RUN, cmd, "out of memory reading mode map '%s'", path);
    if (!code && n == 0)
        code = bad_spec(cmd, path, allow_prompt, "is a file with no 'a'/'l' character");
    if (code) {
        free(map);
        return code;
    }
    spec->kind = CLI_SPEC_FILE;
    spec->map = map;
    spec->map_len = n;
    return 0;
}

int cli_spec_parse(const char *cmd, const char *s, int allow_prompt, cli_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->text, sizeof spec->text, "%s", s);
    if (!*s)
        return bad_spec(cmd, s, allow_prompt, "is empty");
    if (strcmp(s, "attn") == 0) {
        spec->kind = CLI_SPEC_ATTN;
        return 0;
    }
    if (strcmp(s, "lin") == 0) {
        spec->kind = CLI_SPEC_LIN;
        return 0;
    }
    if (strcmp(s, "prompt-attn") == 0) {
        if (!allow_prompt)
            return bad_spec(cmd, s, allow_prompt, "is for generate only");
        spec->kind = CLI_SPEC_PROMPT_ATTN;
        return 0;
    }
    if (strncmp(s, "mixed:", 6) == 0) {
        char *end;
        errno = 0;
        double f = strtod(s + 6, &end);
        if (!s[6] || *end || errno || !(f >= 0 && f <= 1))
            return bad_spec(cmd, s, allow_prompt, "needs a fraction in [0, 1] after 'mixed:'");
        spec->kind = CLI_SPEC_MIXED;
        spec->fraction = f;
        return 0;
    }
    if (strncmp(s, "every:", 6) == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(s + 6, &end, 10);
        if (!s[6] || *end || errno || n < 1)
            return bad_spec(cmd, s, allow_prompt, "needs an integer N >= 1 after 'every:'");
        spec->kind = CLI_SPEC_EVERY;
        spec->every = n;
        return 0;
    }
    return read_map_file(cmd, s, allow_prompt, spec);
}

void cli_spec_free(cli_spec *spec)
{
    free(spec->map);
    spec->map = NULL;
    spec->map_len = 0;
}

void cli_spec_fill(const cli_spec *spec, uint64_t seed, int64_t seq, int64_t pos0, int64_t n, int64_t n_prompt,
                   int32_t *map)
{
    switch (spec->kind) {
    case CLI_SPEC_ATTN:
    case CLI_SPEC_LIN:
        for (int64_t i = 0; i < n; i++)
            map[i] = spec->kind == CLI_SPEC_ATTN ? OX_NN_ATTN : OX_NN_LIN;
        break;
    case CLI_SPEC_MIXED: {
        int64_t chunk = -1;
        int32_t mode = OX_NN_LIN;
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (pos0 + i) / CLI_SPEC_CHUNK;
            if (c != chunk) {      /* one draw per chunk, from that chunk's own stream */
                ox_rng r = ox_oryx_modes_stream(seed, (uint64_t)seq, c);
                mode = ox_rng_uniform(&r) < spec->fraction ? OX_NN_ATTN : OX_NN_LIN;
                chunk = c;
            }
            map[i] = mode;
        }
        break;
    }
    case CLI_SPEC_EVERY:
        for (int64_t i = 0; i < n; i++)
            map[i] = (pos0 + i) % spec->every == spec->every - 1 ? OX_NN_ATTN : OX_NN_LIN;
        break;
    case CLI_SPEC_PROMPT_ATTN:
        for (int64_t i = 0; i < n; i++)
            map[i] = pos0 + i < n_prompt ? OX_NN_ATTN : OX_NN_LIN;
        break;
    case CLI_SPEC_FILE:
        for (int64_t i = 0; i < n; i++)
            map[i] = pos0 + i < spec->map_len ? spec->map[pos0 + i] : OX_NN_LIN;
        break;
    }
}
