/* spec.c - mode SPECs for bin/oryx (cli.h): the library's parser and builder (models/oryx/modes.h:
 * ox_oryx_map_parse, ox_oryx_map_build) with one line on stderr and an exit code on error. */
#include <string.h>

#include "cli/cli.h"
#include "models/oryx/modes.h"

int cli_map_parse(const char *cmd, const char *text, unsigned accept, ox_oryx_map_spec *spec, int64_t **owned)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return cli_fail(CLI_ERR_RUN, cmd, "out of memory");
    int code = 0;
    if (ox_oryx_map_parse(ctx, text, accept | OX_ORYX_MAP_ACCEPT_FILE, spec, owned))
        code = cli_fail(ox_ctx_status(ctx) == OX_ERR_ARG ? CLI_ERR_USAGE : CLI_ERR_INPUT, cmd, "%s",
                        ox_ctx_message(ctx));
    ox_ctx_free(ctx);
    return code;
}

int cli_map_row(ox_ctx *ctx, const char *cmd, const ox_oryx_map_spec *spec, uint64_t seq, int64_t n, int32_t *map)
{
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    ox_tensor *m = ox_oryx_map_build(ctx, spec, seq, 1, n);
    if (m)
        memcpy(map, ox_tensor_i32(m), sizeof *map * (size_t)n);
    ox_arena_rewind(&ctx->arena, mark);
    return m ? 0 : cli_fail(CLI_ERR_USAGE, cmd, "%s", ox_ctx_message(ctx));
}
