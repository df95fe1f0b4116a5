/* fuzz_modes.c - libFuzzer harness for the mode SPEC parser of bin/oryx (cli/spec.c): the input is tried as
 * a SPEC string (up to its first NUL) and, written to a file, as a map file of 'a'/'l' characters. A SPEC
 * that parses must fill maps of any length without a crash; everything else must be refused with a status.
 * Its error lines go to stderr (run with -close_fd_mask=2 to hide them). */
#include <string.h>

#include "cli/cli.h"
#include "fuzz/fuzz_util.h"
#include "tensor/alloc.h"

static void try_spec(const char *s)
{
    cli_spec spec;
    for (int allow_prompt = 0; allow_prompt < 2; allow_prompt++) {
        if (cli_spec_parse("fuzz", s, allow_prompt, &spec) == 0) {
            int32_t map[300];
            cli_spec_fill(&spec, 7, 3, 0, 300, 5, map);
            for (int i = 0; i < 300; i++)
                if (map[i] != 0 && map[i] != 1)
                    __builtin_trap();   /* a mode is ATTN (1) or LIN (0) */
            cli_spec_fill(&spec, 7, 3, 1000, 1, 0, map);
        }
        cli_spec_free(&spec);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = ox_malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    try_spec(s);
    ox_free(s);
    const char *path = fuzz_scratch("modes", ".txt");
    if (fuzz_write(path, data, size) == 0)
        try_spec(path);
    unlink(path);
    return 0;
}
