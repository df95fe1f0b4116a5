/* 00_tensor.c - tutorial 0: tensors, views without copies, the arena, ownership, and errors.
 *
 * What it teaches, in order:
 *   1. the context (ox_ctx): where every computation runs, holding the arena, thread count and errors;
 *   2. creating tensors (zeros, arange, from a buffer of yours) and reading their elements;
 *   3. views: transpose, narrow, select, expand and reshape make a new header over the SAME storage
 *      (no copy), by changing the shape and the strides;
 *   4. the two lifetimes: arena tensors (valid until ox_ctx_reset) and owned tensors (yours to free);
 *   5. errors: the library never prints or exits; a failing call returns NULL and leaves one line in
 *      ox_ctx_message(ctx). Errors are sticky until ox_ctx_clear_error.
 *
 * Run it from the repository root:
 *     make && build/examples/00_tensor
 * Under AddressSanitizer (checks that nothing leaks):
 *     make BUILD=build/asan SAN=1 build/asan/examples/00_tensor && build/asan/examples/00_tensor
 */
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"     /* ox_ag_add: used below to show what an error looks like */
#include "tensor/tensor.h"    /* tensors, views, creation (brings tensor/ctx.h too) */

/* Programs (not the library) decide what to do on failure. Here: print one line and exit non-zero. */
static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "00_tensor: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* Prints a 1-D or 2-D F32 tensor by walking its strides, exactly as the library does internally:
 * element [i, j] lives at data[offset + i * stride[0] + j * stride[1]]. This works for every view,
 * contiguous or not, which is the whole point of strides. */
static void show(const char *label, const ox_tensor *t)
{
    char shape[OX_SHAPE_BUF];
    const float *p = ox_tensor_f32(t);     /* = data + offset: element [0, 0] of this view */
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
    int64_t cols = t->ndim == 0 ? 1 : t->shape[t->ndim - 1];
    int64_t rs = t->ndim == 2 ? t->stride[0] : 0;
    int64_t cs = t->ndim == 0 ? 0 : t->stride[t->ndim - 1];
    printf("%-26s shape %-8s strides {", label, ox_shape_str(t, shape));
    for (int d = 0; d < t->ndim; d++)
        printf("%s%lld", d ? ", " : "", (long long)t->stride[d]);
    printf("}%s\n", ox_tensor_is_contiguous(t) ? "  contiguous" : "");
    for (int64_t i = 0; i < rows; i++) {
        printf("    ");
        for (int64_t j = 0; j < cols; j++)
            printf(" %6.1f", p[i * rs + j * cs]);
        printf("\n");
    }
}

int main(void)
{
    /* ---- 1. The context ----------------------------------------------------------------------------
     * Everything takes a ctx. It owns the "step arena" (a bump allocator that every op and every
     * ox_tensor_zeros/arange/... call takes memory from), the thread count, and the error state.
     * There is no global state: you could have two contexts side by side. */
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    printf("== 1. context: %d thread(s)\n", ox_ctx_threads(ctx));

    /* ---- 2. Creating tensors ------------------------------------------------------------------------
     * OX_DIMS(2, 3) is a shape literal. arange gives [n] values start, start + step, ...; reshape turns
     * the 6 values into a 2 x 3 matrix. Both results live in the arena: never free them yourself. */
    printf("\n== 2. creation\n");
    ox_tensor *v = ox_tensor_arange(ctx, OX_F32, 6, 0.0, 1.0);                /* [0 1 2 3 4 5] */
    ox_tensor *a = ox_tensor_view_reshape(ctx, v, OX_DIMS(2, 3));              /* a view, no copy */
    if (!a)
        die(ctx, "arange/reshape");
    show("a = arange(6) as [2, 3]", a);
    /* Row-major layout: a[i, j] is at i * 3 + j, so the strides (in elements) are {3, 1}. a and v
     * share storage: writing through one is visible through the other. */
    ox_tensor_f32(a)[1 * a->stride[0] + 2 * a->stride[1]] = 50.0f;             /* a[1, 2] = 50 */
    printf("    after a[1, 2] = 50, v[5] = %.1f (same storage)\n", ox_tensor_f32(v)[5]);
    ox_tensor_f32(v)[5] = 5.0f;

    /* Your own memory can be wrapped without copying: the tensor borrows the buffer, which must
     * outlive it. Useful for data you loaded or generated yourself. */
    float mine[4] = { 1, 2, 3, 4 };
    ox_tensor *b = ox_tensor_from_buffer(ctx, OX_F32, OX_DIMS(2, 2), mine);
    if (!b)
        die(ctx, "from_buffer");
    show("b = from_buffer(mine)", b);

    /* ---- 3. Views: new shape and strides over the same storage ---------------------------------------
     * A view only writes a new header; no element is copied, so views are O(1) whatever the size.
     * Every op accepts views directly (ops.h: "inputs may be any strided view"). */
    printf("\n== 3. views (all share a's storage)\n");
    ox_tensor *at = ox_tensor_view_transpose(ctx, a, 0, 1);    /* [3, 2]: strides swapped to {1, 3} */
    ox_tensor *col = ox_tensor_view_narrow(ctx, a, 1, 1, 2);   /* columns 1..2 of a: [2, 2], offset 1 */
    ox_tensor *row = ox_tensor_view_select(ctx, a, 0, 1);      /* row 1 of a: [3], axis 0 removed */
    ox_tensor *bias = ox_tensor_arange(ctx, OX_F32, 3, 10.0, 10.0);            /* [10 20 30] */
    /* expand broadcasts [3] to [4, 3] by giving the new axis stride 0: every row reads the same 3
     * floats. This is how a bias is added to every row without materialising copies. */
    ox_tensor *rep = ox_tensor_view_expand(ctx, bias, OX_DIMS(4, 3));
    if (!at || !col || !row || !rep)
        die(ctx, "views");
    show("transpose(a, 0, 1)", at);
    show("narrow(a, dim 1, 1, 2)", col);
    printf("    narrow's offset: %lld (it starts at a[0, 1])\n", (long long)col->offset);
    show("select(a, dim 0, 1)", row);
    show("expand([10 20 30], [4,3])", rep);
    printf("    same storage? transpose %s, narrow %s, select %s\n", at->data == a->data ? "yes" : "no",
           col->data == a->data ? "yes" : "no", row->data == a->data ? "yes" : "no");

    /* A non-contiguous view is fine as an op input, but some things need contiguous memory (reshape,
     * handing a pointer to other code). ox_tensor_contiguous copies only when needed. */
    ox_tensor *atc = ox_tensor_contiguous(ctx, at);
    if (!atc)
        die(ctx, "contiguous");
    show("contiguous(transpose(a))", atc);
    printf("    a copy was made: %s\n", atc->data != a->data ? "yes" : "no");

    /* ---- 4. Ownership: arena tensors and owned tensors ----------------------------------------------
     * Everything above lives in the arena. ox_ctx_reset frees it all at once (after each training
     * step, typically); the arena keeps its memory, so the next step of the same size mallocs nothing.
     * Parameters and optimizer state must survive resets: they are owned tensors, freed with
     * ox_tensor_free. */
    printf("\n== 4. arena and ownership\n");
    ox_tensor *w = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(2, 3));   /* heap, zero-filled, yours */
    if (!w || ox_tensor_copy(ctx, w, a) != OX_OK)                     /* copy a's values into w */
        die(ctx, "new_owned/copy");
    printf("arena: %zu bytes used in this step, %zu reserved\n", ctx->arena.used,
           ox_arena_capacity(&ctx->arena));
    ox_ctx_reset(ctx);     /* a, at, col, row, rep, atc, b (the header, not `mine`) are now invalid */
    printf("after ox_ctx_reset: %zu bytes used, %zu still reserved for the next step\n", ctx->arena.used,
           ox_arena_capacity(&ctx->arena));
    show("w (owned) survives", w);

    /* ---- 5. Errors ----------------------------------------------------------------------------------
     * A [2, 3] plus a [4] does not broadcast. The op returns NULL and records why; the message names
     * both shapes. Nothing is printed by the library: printing is the program's choice. */
    printf("\n== 5. errors\n");
    ox_tensor *bad = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(4));
    ox_tensor *sum = ox_ag_add(ctx, w, bad);
    if (sum == NULL)
        printf("ox_ag_add returned NULL: status \"%s\", message: %s\n", ox_status_string(ox_ctx_status(ctx)),
               ox_ctx_message(ctx));
    else
        die(ctx, "the shape check (it accepted [2, 3] + [4])");
    /* Sticky errors: until cleared, every op returns NULL at once. So a long forward pass can be a
     * straight sequence of calls with a single check at the end, like this one: */
    ox_tensor *later = ox_ag_exp(ctx, w);
    printf("the next op also returned %s (sticky); after ox_ctx_clear_error: ", later ? "a tensor" : "NULL");
    ox_ctx_clear_error(ctx);
    later = ox_ag_exp(ctx, w);
    printf("%s\n", later ? "a tensor again" : "still NULL");
    if (!later)
        die(ctx, "exp after clearing the error");

    /* ---- Cleanup: owned tensors first, then the context (which frees the arena). */
    ox_tensor_free(w);
    ox_ctx_free(ctx);
    printf("\nok\n");
    return 0;
}
