/* fuzz_modes.c - libFuzzer harness for the mode SPEC parser (models/oryx/modes.h: ox_oryx_map_parse, what
 * bin/oryx's --modes goes through): the input is tried as a SPEC string (up to its first NUL) and, written to
 * a file, as a map file of 'a'/'l' characters. A SPEC that parses must build maps (ox_oryx_map_build) of
 * modes 0/1 only, at several lengths; everything else must be refused with a status. */
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "models/oryx/modes.h"
#include "tensor/alloc.h"

static void try_spec(ox_ctx *ctx, const char *s)
{
    ox_oryx_map_spec spec;
    int64_t *owned = NULL;
    if (ox_oryx_map_parse(ctx, s, OX_ORYX_MAP_ACCEPT_PROMPT | OX_ORYX_MAP_ACCEPT_FILE, &spec, &owned) == OX_OK) {
        spec.seed = 7;
        spec.n_prompt = 5;
        static const int64_t lengths[] = { 1, 63, 64, 65, 300 };
        for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
            ox_tensor *m = ox_oryx_map_build(ctx, &spec, 3, 2, lengths[i]);
            if (!m)
                __builtin_trap();   /* a parsed SPEC builds */
            for (int64_t j = 0; j < 2 * lengths[i]; j++)
                if (ox_tensor_i32(m)[j] != OX_NN_ATTN && ox_tensor_i32(m)[j] != OX_NN_LIN)
                    __builtin_trap();
        }
    }
    ox_free(owned);
    ox_ctx_clear_error(ctx);
    ox_ctx_reset(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ox_ctx *ctx = ox_ctx_new();
    char *s = ox_malloc(size + 1);
    if (!ctx || !s) {
        ox_free(s);
        if (ctx)
            ox_ctx_free(ctx);
        return 0;
    }
    memcpy(s, data, size);
    s[size] = 0;
    try_spec(ctx, s);
    ox_free(s);
    const char *path = fuzz_scratch("modes", ".txt");
    if (fuzz_write(path, data, size) == 0)
        try_spec(ctx, path);
    unlink(path);
    ox_ctx_free(ctx);
    return 0;
}
