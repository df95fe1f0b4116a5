/* ctx.c - context life cycle, error state and thread settings (see ctx.h). */
#include "tensor/ctx.h"
#include "tensor/alloc.h"
#include "tensor/gemm.h"
#include "tensor/profile.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ox_cores_available(void)
{
    int n = omp_get_num_procs();   /* honours the affinity mask */
    return n > 0 ? n : 1;
}

int ox_omp_bound_spin(char *const argv[])
{
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return 0;
    if (setenv("GOMP_SPINCOUNT", OX_OMP_SPINCOUNT, 1) != 0)
        return -1;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT");     /* exec failed: carry on as we are */
    return -1;
}

ox_ctx *ox_ctx_new(void)
{
    ox_gemm_setup();
    ox_ctx *ctx = ox_calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ox_arena_init(&ctx->arena);
    ctx->grad_enabled = 1;
    ctx->n_threads = ox_cores_available();
    /* our parallel regions never nest (BLIS is called with an explicit thread count) */
    omp_set_max_active_levels(1);
    return ctx;
}

void ox_ctx_free(ox_ctx *ctx)
{
    if (!ctx)
        return;
    ox_profile_enable(ctx, 0);
    ox_arena_free(&ctx->arena);
    ox_free(ctx);
}

void ox_ctx_reset(ox_ctx *ctx)
{
    ox_arena_reset(&ctx->arena);
    ctx->tape = NULL;
    ctx->tape_len = 0;
}

void ox_ctx_set_threads(ox_ctx *ctx, int n)
{
    ctx->n_threads = n > 0 ? n : ox_cores_available();
}

int ox_ctx_threads(const ox_ctx *ctx) { return ctx->n_threads; }

ox_status ox_ctx_fail(ox_ctx *ctx, ox_status s, const char *fmt, ...)
{
    if (ctx->status != OX_OK)
        return s;
    ctx->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    return s;
}

ox_status ox_ctx_status(const ox_ctx *ctx) { return ctx->status; }
const char *ox_ctx_message(const ox_ctx *ctx) { return ctx->status ? ctx->message : ""; }

void ox_ctx_clear_error(ox_ctx *ctx)
{
    ctx->status = OX_OK;
    ctx->message[0] = 0;
}

void *ox_ctx_alloc(ox_ctx *ctx, size_t size)
{
    void *p = ox_arena_alloc(&ctx->arena, size);
    if (!p)
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "out of memory allocating %zu bytes from the step arena", size);
    return p;
}
