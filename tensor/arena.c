/* arena.c - bump allocator with block chaining and merge-on-reset (see arena.h), and its ASan poisoning
 * in the sanitizer build. */
#include "tensor/arena.h"
#include "tensor/alloc.h"

#define MIN_BLOCK ((size_t)1 << 20)

/* Sanitizer build (gcc defines __SANITIZE_ADDRESS__, clang has __has_feature): memory the arena holds but
 * has not handed out is poisoned, so a tensor used after ox_arena_reset / ox_ctx_reset (or after a rewind
 * past it) is reported by ASan as a use-after-poison at the faulty line. The invariant, per block: bytes
 * [used, size) are poisoned; in [0, used) each allocation's `size` bytes are addressable and its alignment
 * padding (up to the next multiple of 64) stays poisoned. Allocations start 64-byte aligned, so every
 * poisoned range starts on an 8-byte ASan granule; the last granule of an allocation whose size is not a
 * multiple of 8 is partly addressable, which ASan records exactly. In the normal build POISON and UNPOISON
 * compile to nothing. */
#if defined(__SANITIZE_ADDRESS__)
#define OX_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OX_ARENA_ASAN 1
#endif
#endif

#ifdef OX_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static ox_arena_block *block_new(size_t size)
{
    ox_arena_block *b = ox_malloc(sizeof *b);
    if (!b)
        return NULL;
    b->data = ox_malloc(size);
    if (!b->data) {
        ox_free(b);
        return NULL;
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    POISON(b->data, size);      /* fresh from malloc (maybe where a freed block was): nothing handed out */
    return b;
}

void ox_arena_init(ox_arena *a)
{
    a->first = a->cur = NULL;
    a->used = a->high_water = 0;
}

void *ox_arena_alloc(ox_arena *a, size_t size)
{
    size_t need = (size + 63) & ~(size_t)63;
    if (need < size)
        return NULL;
    /* current block, then any later (already reserved) block that fits */
    for (ox_arena_block *b = a->cur; b; b = b->next) {
        if (b->size - b->used >= need) {
            void *p = b->data + b->used;
            UNPOISON(p, size);  /* exactly what is asked for: the padding stays poisoned */
            b->used += need;
            a->cur = b;
            a->used += need;
            if (a->used > a->high_water)
                a->high_water = a->used;
            return p;
        }
    }
    size_t cap = ox_arena_capacity(a);
    size_t size_new = need > cap ? need : cap;   /* grow geometrically */
    if (size_new < MIN_BLOCK)
        size_new = MIN_BLOCK;
    ox_arena_block *b = block_new(size_new);
    if (!b)
        return NULL;
    if (!a->first) {
        a->first = b;
    } else {
        ox_arena_block *last = a->first;
        while (last->next)
            last = last->next;
        last->next = b;
    }
    a->cur = b;
    b->used = need;
    UNPOISON(b->data, size);
    a->used += need;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return b->data;
}

size_t ox_arena_capacity(const ox_arena *a)
{
    size_t c = 0;
    for (ox_arena_block *b = a->first; b; b = b->next)
        c += b->size;
    return c;
}

void ox_arena_reset(ox_arena *a)
{
    if (a->first && a->first->next) {
        size_t total = ox_arena_capacity(a);
        size_t hw = a->high_water;
        ox_arena_free(a);
        a->first = block_new(total);   /* poisoned; on failure the next alloc retries with small blocks */
        a->high_water = hw;
    }
    for (ox_arena_block *b = a->first; b; b = b->next) {
        POISON(b->data, b->used);
        b->used = 0;
    }
    a->cur = a->first;
    a->used = 0;
}

ox_arena_mark ox_arena_get_mark(const ox_arena *a)
{
    ox_arena_mark m = { a->cur, a->cur ? a->cur->used : 0, a->used };
    return m;
}

void ox_arena_rewind(ox_arena *a, ox_arena_mark m)
{
    if (!m.block) {             /* nothing was allocated when the mark was taken */
        for (ox_arena_block *b = a->first; b; b = b->next) {
            POISON(b->data, b->used);
            b->used = 0;
        }
        a->cur = a->first;
        a->used = 0;
        return;
    }
    for (ox_arena_block *b = m.block->next; b; b = b->next) {
        POISON(b->data, b->used);
        b->used = 0;
    }
    if (m.block->used > m.block_used)
        POISON(m.block->data + m.block_used, m.block->used - m.block_used);
    m.block->used = m.block_used;
    a->cur = m.block;
    a->used = m.used;
}

void ox_arena_free(ox_arena *a)
{
    ox_arena_block *b = a->first;
    while (b) {
        ox_arena_block *n = b->next;
        UNPOISON(b->data, b->size);     /* back to malloc as it came from it */
        ox_free(b->data);
        ox_free(b);
        b = n;
    }
    ox_arena_init(a);
}
