/* safetensors_common.c - helpers shared by the safetensors reader and writer (safetensors_common.h). */
#include "tensor/safetensors_common.h"

#include <string.h>

/* 1 if s[0..n-1] is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF); else 0
 * and *bad = the offset of the first bad byte. */
int ox_st_utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
        if (c < 0x80)
            len = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else {
            *bad = i;
            return 0;
        }
        if (i + len > n) {
            *bad = i;
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            unsigned b = s[i + k];
            unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (b < l || b > h) {
                *bad = i + k;
                return 0;
            }
        }
        i += len;
    }
    return 1;
}


/* Element count of a shape, or -1 if it does not fit in int64 bytes. */
int64_t ox_st_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] > 0 && n > INT64_MAX / OX_ST_ELEM / shape[d])
            return -1;
        n *= shape[d];
    }
    return n;
}

/* Copies the logical row-major contents between a strided tensor view and a contiguous buffer:
 * to_buf = 1: buf[i] = t[i]; to_buf = 0: t[i] = buf[i]. Bit patterns are copied (F32 and I32 alike). */
void ox_st_copy_strided(const ox_tensor *t, uint32_t *buf, int to_buf)
{
    uint32_t *base = (uint32_t *)t->data + t->offset;
    int64_t n = ox_tensor_numel(t);
    if (n == 0)
        return;
    if (t->ndim == 0) {
        if (to_buf)
            buf[0] = base[0];
        else
            base[0] = buf[0];
        return;
    }
    int last = t->ndim - 1;
    int64_t inner = t->shape[last], st = t->stride[last];
    int64_t idx[OX_MAX_DIMS] = { 0 };
    for (int64_t done = 0; done < n; done += inner) {
        int64_t off = 0;
        for (int d = 0; d < last; d++)
            off += idx[d] * t->stride[d];
        uint32_t *p = base + off, *q = buf + done;
        if (to_buf)
            for (int64_t i = 0; i < inner; i++)
                q[i] = p[i * st];
        else
            for (int64_t i = 0; i < inner; i++)
                p[i * st] = q[i];
        for (int d = last - 1; d >= 0; d--) {   /* advance the outer multi-index */
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}


int ox_st_cmp_str(const char *a, const char *b) { return strcmp(a, b); }   /* byte order (unsigned char) */
