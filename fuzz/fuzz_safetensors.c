/* fuzz_safetensors.c - libFuzzer harness for the safetensors readers (tensor/safetensors.h): every input is
 * a file given to ox_safetensors_read_meta and ox_safetensors_load; each must return a status (any) without
 * a crash, leak, hang or undefined behaviour, and a file that loads must have a consistent header. */
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "tensor/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch("st", ".safetensors");
    if (fuzz_write(path, data, size))
        return 0;
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 0;
    ox_st_meta *meta = NULL;
    if (ox_safetensors_read_meta(ctx, path, &meta) == OX_OK)
        for (int64_t i = 0; i < meta->n; i++)
            if (!meta->kv[i].key || !meta->kv[i].value || ox_st_meta_get(meta, meta->kv[i].key) == NULL)
                __builtin_trap();   /* every key read back must be found */
    ox_st_meta_free(meta);
    ox_ctx_clear_error(ctx);
    ox_st_file *f = ox_safetensors_load(ctx, path);
    if (f)
        for (int64_t i = 0; i < f->n; i++)
            if (ox_st_file_get(f, f->entries[i].name) != f->entries[i].tensor)
                __builtin_trap();   /* every tensor loaded must be found under its name */
    ox_st_file_free(f);
    ox_ctx_free(ctx);
    unlink(path);
    return 0;
}
