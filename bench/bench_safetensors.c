/* bench_safetensors.c - throughput of the safetensors writer (atomic, with fsync), the strict reader and
 * the lenient loader on a 64 MiB checkpoint (64 tensors of [512, 512] F32) in a temp directory.
 * Prints the median of 5 runs of each, in MiB/s. The file system cache is warm for the reads. */
#include "tensor/safetensors.h"
#include "tensor/rng.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NT 64
#define RUNS 5

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_rng rng = ox_rng_seed(1);
    /* a fresh private directory named after the process (mkdir fails if it exists) */
    char dir[64], path[128], names[NT][32];
    snprintf(dir, sizeof dir, "/tmp/ox_st_bench_%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    ox_st_entry src[NT], dst[NT];
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], sizeof names[i], "layers.%d.weight", i);
        src[i].name = dst[i].name = names[i];
        src[i].tensor = ox_tensor_randn(ctx, &rng, OX_DIMS(512, 512), 0, 1);
        dst[i].tensor = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(512, 512));
    }
    double mib = NT * 512.0 * 512.0 * 4 / (1 << 20), tw[RUNS], ts[RUNS], tl[RUNS];
    int bad = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        bad |= ox_safetensors_write(ctx, path, src, NT, NULL, 0) != OX_OK;
        double t1 = now();
        bad |= ox_safetensors_read_strict(ctx, path, dst, NT, NULL) != OX_OK;
        double t2 = now();
        ox_st_file *f = ox_safetensors_load(ctx, path);
        double t3 = now();
        bad |= f == NULL;
        ox_st_file_free(f);
        tw[r] = t1 - t0;
        ts[r] = t2 - t1;
        tl[r] = t3 - t2;
    }
    for (int i = 0; i < NT && !bad; i++)
        bad |= memcmp(ox_tensor_f32(src[i].tensor), ox_tensor_f32(dst[i].tensor), 512 * 512 * 4) != 0;
    if (bad) {
        fprintf(stderr, "bench_safetensors: %s\n", ox_ctx_status(ctx) ? ox_ctx_message(ctx) : "round trip differs");
        return 1;
    }
    printf("safetensors %.0f MiB (%d tensors [512, 512] F32), median of %d:\n", mib, NT, RUNS);
    printf("  write (tmp + fsync + rename) %8.1f ms  %7.0f MiB/s\n", 1e3 * median(tw, RUNS), mib / median(tw, RUNS));
    printf("  read_strict                  %8.1f ms  %7.0f MiB/s\n", 1e3 * median(ts, RUNS), mib / median(ts, RUNS));
    printf("  load (lenient, allocates)    %8.1f ms  %7.0f MiB/s\n", 1e3 * median(tl, RUNS), mib / median(tl, RUNS));
    for (int i = 0; i < NT; i++)
        ox_tensor_free(dst[i].tensor);
    unlink(path);
    rmdir(dir);
    ox_ctx_free(ctx);
    return 0;
}
