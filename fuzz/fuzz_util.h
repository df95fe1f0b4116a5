/* fuzz_util.h - what the libFuzzer harnesses of fuzz/ share: the library's readers take paths, so each
 * input is written to one scratch file per process (in $TMPDIR or /tmp) and read back from there. */
#ifndef OX_FUZZ_UTIL_H
#define OX_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The scratch path of this process, with `suffix` (e.g. ".state.safetensors"); the same on every call. */
static inline const char *fuzz_scratch(const char *stem, const char *suffix)
{
    static char path[512];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/oryx-fuzz-%ld-%s%s", dir && *dir ? dir : "/tmp", (long)getpid(), stem, suffix);
    return path;
}

/* Writes data[0..n-1] to path (replacing it); 0 on success. */
static inline int fuzz_write(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) != 0 || w != n ? -1 : 0;
}

#endif
