/* alloc.c - counted, aligned allocation. A 64-byte header in front of every block records its size. */
#include "tensor/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 64

static _Atomic uint64_t n_allocs;
static _Atomic uint64_t bytes_live;
static _Atomic uint64_t bytes_peak;

void *ox_malloc(size_t size)
{
    if (size > SIZE_MAX - 2 * HEADER)
        return NULL;
    size_t total = (size + HEADER + 63) & ~(size_t)63;
    unsigned char *p = aligned_alloc(64, total);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    atomic_fetch_add(&n_allocs, 1);
    uint64_t live = atomic_fetch_add(&bytes_live, size) + size;
    uint64_t peak = atomic_load(&bytes_peak);
    while (live > peak && !atomic_compare_exchange_weak(&bytes_peak, &peak, live))
        ;
    return p + HEADER;
}

void *ox_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = ox_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void ox_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HEADER;
    size_t size;
    memcpy(&size, base, sizeof size);
    atomic_fetch_sub(&bytes_live, size);
    free(base);
}

uint64_t ox_alloc_count(void) { return atomic_load(&n_allocs); }
uint64_t ox_alloc_bytes_live(void) { return atomic_load(&bytes_live); }
uint64_t ox_alloc_bytes_peak(void) { return atomic_load(&bytes_peak); }
