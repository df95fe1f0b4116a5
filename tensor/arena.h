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
/* 64-byte aligned memory, uninitialised; NULL when out of memory. Owned by the arena. */
void *ox_arena_alloc(ox_arena *a, size_t size);
/* Releases everything; if the step spilled over several blocks they are merged into one block of
 * the total size (one free per block and one malloc, only when the step grew). */
void ox_arena_reset(ox_arena *a);
ox_arena_mark ox_arena_get_mark(const ox_arena *a);
void ox_arena_rewind(ox_arena *a, ox_arena_mark m);
/* Bytes reserved from the system. */
size_t ox_arena_capacity(const ox_arena *a);
void ox_arena_free(ox_arena *a);

#endif
