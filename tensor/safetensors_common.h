/* safetensors_common.h - helpers shared by the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c). Internal to the library: not installed as API documentation. */
#ifndef OX_SAFETENSORS_COMMON_H
#define OX_SAFETENSORS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

#define OX_ST_META_KEY "__metadata__"
#define OX_ST_ELEM 4   /* bytes per element of F32 and I32 */

/* 1 if s[0..n-1] is well-formed UTF-8; else 0 and *bad = the offset of the first bad byte. */
int ox_st_utf8_valid(const unsigned char *s, size_t n, size_t *bad);
/* Product of the sizes, or -1 on overflow. */
int64_t ox_st_shape_numel(int ndim, const int64_t *shape);
/* Copies t's logical row-major contents to buf (to_buf = 1) or buf into t (to_buf = 0), 4-byte elements. */
void ox_st_copy_strided(const ox_tensor *t, uint32_t *buf, int to_buf);
/* strcmp: byte order, the order names are written in. */
int ox_st_cmp_str(const char *a, const char *b);

#endif
