/* alloc.h - the one allocation wrapper every allocation of the library goes through.
 *
 * It counts calls so that tests can assert that a steady-state training step allocates nothing
 * (allocations made inside BLIS or libgomp are not counted). The counters are process-wide
 * statistics, read-only for the library's computations.
 *
 *   uint64_t before = ox_alloc_count();
 *   ... a training step ...
 *   assert(ox_alloc_count() == before);        // no malloc in the step
 */
#ifndef OX_ALLOC_H
#define OX_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* malloc/calloc/free with counting; memory is 64-byte aligned (cache line, AVX-512 vector).
 * ox_malloc(0) returns a valid unique pointer. Returns NULL when out of memory. */
void *ox_malloc(size_t size);
void *ox_calloc(size_t count, size_t size);
void  ox_free(void *p);

/* Number of successful ox_malloc/ox_calloc calls since the process started. */
uint64_t ox_alloc_count(void);
/* Bytes currently allocated through the wrapper, and the peak. */
uint64_t ox_alloc_bytes_live(void);
uint64_t ox_alloc_bytes_peak(void);

#endif
