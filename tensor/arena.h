/* arena.h - bump allocator for the activations and temporaries of one training or inference step.
 *
 * Everything a step creates (tensor headers, activation data, tape nodes, gradient buffers of
 * intermediate results) is carved out of an arena and released at once by ox_arena_reset. The arena
 * keeps its memory: after a reset it holds one block as large as everything the largest step used,
 * so from the second step on a step of the same shape allocates nothing.
 *
 *   ox_arena a; ox_arena_init(&a);
 *   float *x = ox_arena_alloc(&a, n * sizeof(float));   // valid until the next reset
 *   ox_arena_reset(&a);
 *   ox_arena_free(&a);
 *
 * Debug aid (the sanitizer build, `make test-asan` / SAN=1, or any build with -fsanitize=address): memory
 * the arena holds but has not handed out is poisoned with ASan's manual poisoning. ox_arena_alloc unpoisons
 * exactly the `size` bytes it returns (the alignment padding after them stays poisoned); ox_arena_reset and
 * ox_arena_rewind poison everything they release, including the blocks merged at a reset. So a pointer or
 * tensor kept past a reset (or a rewind) is reported by ASan as "use-after-poison" at the line that uses it,
 * and so is a read or write past the end of an allocation. The limit: memory handed out again is
 * addressable again, so a stale use after later allocations have covered the same bytes is not seen.
 * In the normal build this compiles to nothing.
 */
#ifndef OX_ARENA_H
#define OX_ARENA_H

#include <stddef.h>

typedef struct ox_arena_block {
    struct ox_arena_block *next;
    size_t size;            /* usable bytes */
    size_t used;            /* bytes handed out */
    unsigned char *data;    /* 64-byte aligned */
} ox_arena_block;

typedef struct ox_arena {
    ox_arena_block *first;  /* blocks in order of creation */
    ox_arena_block *cur;    /* block allocations currently come from */
    size_t used;            /* bytes handed out since the last reset (with alignment padding) */
    size_t high_water;      /* largest `used` ever seen */
} ox_arena;

/* A position in the arena, to release everything allocated after it (scratch inside one op). */
typedef struct ox_arena_mark {
    ox_arena_block *block;
    size_t block_used;
    size_t used;
} ox_arena_mark;

void ox_arena_init(ox_arena *a);
/* 64-byte aligned memory, uninitialised; NULL when out of memory. Owned by the arena. Under ASan exactly
 * [p, p + size) is addressable. */
void *ox_arena_alloc(ox_arena *a, size_t size);
/* Releases everything; if the step spilled over several blocks they are merged into one block of
 * the total size (one free per block and one malloc, only when the step grew). Under ASan the released
 * memory is poisoned (a stale pointer into a merged-away block is reported as heap-use-after-free, or as
 * use-after-poison when malloc hands that memory back for the merged block). */
void ox_arena_reset(ox_arena *a);
ox_arena_mark ox_arena_get_mark(const ox_arena *a);
/* Releases everything allocated after the mark (poisoned under ASan); the next allocation that fits starts
 * where the mark was. */
void ox_arena_rewind(ox_arena *a, ox_arena_mark m);
/* Bytes reserved from the system. */
size_t ox_arena_capacity(const ox_arena *a);
void ox_arena_free(ox_arena *a);

#endif
