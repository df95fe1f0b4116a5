/* tensor.c - tensor headers, creation, views, copies and accumulation (see tensor.h). */
#include "tensor/tensor.h"
#include "tensor/alloc.h"
#include "tensor/iter.h"

#include <stdio.h>
#include <string.h>

static size_t dtype_size(ox_dtype d) { return d == OX_I32 ? sizeof(int32_t) : sizeof(float); }

int64_t ox_tensor_numel(const ox_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

int ox_tensor_is_contiguous(const ox_tensor *t)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            return 0;
        expect *= t->shape[d];
    }
    return 1;
}

int ox_tensor_same_shape(const ox_tensor *a, const ox_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

const char *ox_shape_str(const ox_tensor *t, char *buf)
{
    int n = snprintf(buf, OX_SHAPE_BUF, "[");
    for (int d = 0; d < t->ndim && n < OX_SHAPE_BUF; d++)
        n += snprintf(buf + n, OX_SHAPE_BUF - n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (n < OX_SHAPE_BUF)
        snprintf(buf + n, OX_SHAPE_BUF - n, "]");
    return buf;
}

static void set_contiguous_strides(ox_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

/* Validates a shape; returns its element count or -1 (error recorded). */
static int64_t check_shape(ox_ctx *ctx, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "a tensor has 0 to %d axes, not %d", OX_MAX_DIMS, ndim);
        return -1;
    }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && n > INT64_MAX / 8 / shape[d])) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "bad size %lld for axis %d", (long long)shape[d], d);
            return -1;
        }
        n *= shape[d];
    }
    return n;
}

static ox_tensor *header(ox_ctx *ctx, const ox_tensor *like)
{
    ox_tensor *t = ox_ctx_alloc(ctx, sizeof *t);
    if (!t)
        return NULL;
    if (like) {
        *t = *like;
        t->grad = NULL;
        t->owned = 0;
        t->name = NULL;
    } else {
        memset(t, 0, sizeof *t);
    }
    return t;
}

ox_tensor *ox_tensor_empty(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape)
{
    if (ctx->status)
        return NULL;
    int64_t n = check_shape(ctx, ndim, shape);
    if (n < 0)
        return NULL;
    ox_tensor *t = header(ctx, NULL);
    if (!t)
        return NULL;
    t->data = ox_ctx_alloc(ctx, (size_t)n * dtype_size(dtype));
    if (!t->data)
        return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return t;
}

ox_tensor *ox_tensor_full(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape, double value)
{
    ox_tensor *t = ox_tensor_empty(ctx, dtype, ndim, shape);
    if (t && ox_tensor_fill(ctx, t, value))
        return NULL;
    return t;
}

ox_tensor *ox_tensor_zeros(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape)
{
    ox_tensor *t = ox_tensor_empty(ctx, dtype, ndim, shape);
    if (t)
        memset(t->data, 0, (size_t)ox_tensor_numel(t) * dtype_size(dtype));
    return t;
}

ox_tensor *ox_tensor_ones(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape)
{
    return ox_tensor_full(ctx, dtype, ndim, shape, 1.0);
}

ox_tensor *ox_tensor_arange(ox_ctx *ctx, ox_dtype dtype, int64_t n, double start, double step)
{
    ox_tensor *t = ox_tensor_empty(ctx, dtype, 1, &n);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = start + step * (double)i;
        if (dtype == OX_F32)
            ox_tensor_f32(t)[i] = (float)v;
        else
            ox_tensor_i32(t)[i] = (int32_t)v;
    }
    return t;
}

ox_tensor *ox_tensor_from_buffer(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    if (ctx->status)
        return NULL;
    if (check_shape(ctx, ndim, shape) < 0)
        return NULL;
    ox_tensor *t = header(ctx, NULL);
    if (!t)
        return NULL;
    t->data = data;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return t;
}

ox_tensor *ox_tensor_empty_like(ox_ctx *ctx, const ox_tensor *t)
{
    return t ? ox_tensor_empty(ctx, t->dtype, t->ndim, t->shape) : NULL;
}

ox_tensor *ox_tensor_zeros_like(ox_ctx *ctx, const ox_tensor *t)
{
    return t ? ox_tensor_zeros(ctx, t->dtype, t->ndim, t->shape) : NULL;
}

/* ---- heap tensors ---- */

static ox_tensor *owned_new(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape)
{
    int64_t n = check_shape(ctx, ndim, shape);
    if (n < 0)
        return NULL;
    ox_tensor *t = ox_calloc(1, sizeof *t);
    void *data = ox_calloc((size_t)n, dtype_size(dtype));
    if (!t || !data) {
        ox_free(t);
        ox_free(data);
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "out of memory allocating a tensor of %lld elements", (long long)n);
        return NULL;
    }
    t->data = data;
    t->dtype = dtype;
    t->ndim = ndim;
    t->owned = 1;
    if (ndim)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return t;
}

ox_tensor *ox_tensor_new_owned(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape)
{
    if (ctx->status)
        return NULL;
    return owned_new(ctx, dtype, ndim, shape);
}

void ox_tensor_free(ox_tensor *t)
{
    if (!t || !t->owned)
        return;
    ox_tensor_free(t->grad);
    ox_free(t->data);
    ox_free(t);
}

ox_status ox_tensor_require_grad(ox_ctx *ctx, ox_tensor *t)
{
    if (ctx->status)
        return ctx->status;
    if (ox_check_f32(ctx, "require_grad", t))
        return ctx->status;
    t->requires_grad = 1;
    if (t->grad)
        return OX_OK;
    t->grad = t->owned ? owned_new(ctx, OX_F32, t->ndim, t->shape)
                       : ox_tensor_zeros(ctx, OX_F32, t->ndim, t->shape);
    return t->grad ? OX_OK : ctx->status;
}

/* ---- views ---- */

ox_tensor *ox_tensor_view_reshape(ox_ctx *ctx, const ox_tensor *t, int ndim, const int64_t *shape)
{
    if (ctx->status || !t)
        return NULL;
    char b1[OX_SHAPE_BUF];
    if (ndim < 0 || ndim > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "reshape: %d axes (at most %d)", ndim, OX_MAX_DIMS);
        return NULL;
    }
    int64_t n = ox_tensor_numel(t), known = 1;
    int infer = -1;
    int64_t s[OX_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (shape[d] == -1 && infer < 0) {
            infer = d;
        } else if (shape[d] < 0) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "reshape: bad size %lld for axis %d", (long long)shape[d], d);
            return NULL;
        } else {
            known *= shape[d];
        }
    }
    if (infer >= 0)
        s[infer] = known ? n / known : 0;
    int64_t m = 1;
    for (int d = 0; d < ndim; d++)
        m *= s[d];
    if (m != n) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "reshape: %s has %lld elements, the new shape has %lld",
                    ox_shape_str(t, b1), (long long)n, (long long)m);
        return NULL;
    }
    if (!ox_tensor_is_contiguous(t)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "reshape: input %s is not contiguous (make it contiguous first)",
                    ox_shape_str(t, b1));
        return NULL;
    }
    ox_tensor *v = header(ctx, t);
    if (!v)
        return NULL;
    v->ndim = ndim;
    if (ndim)
        memcpy(v->shape, s, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(v);
    return v;
}

ox_tensor *ox_tensor_view_permute(ox_ctx *ctx, const ox_tensor *t, const int *perm)
{
    if (ctx->status || !t)
        return NULL;
    int seen[OX_MAX_DIMS] = { 0 };
    for (int d = 0; d < t->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]]++) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "permute: not a permutation of %d axes", t->ndim);
            return NULL;
        }
    }
    ox_tensor *v = header(ctx, t);
    if (!v)
        return NULL;
    for (int d = 0; d < t->ndim; d++) {
        v->shape[d] = t->shape[perm[d]];
        v->stride[d] = t->stride[perm[d]];
    }
    return v;
}

int ox_check_axis(ox_ctx *ctx, const char *op, const ox_tensor *t, int axis)
{
    int a = axis < 0 ? axis + t->ndim : axis;
    if (a < 0 || a >= t->ndim) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: axis %d out of range for shape %s", op, axis, ox_shape_str(t, b));
        return -1;
    }
    return a;
}

ox_tensor *ox_tensor_view_transpose(ox_ctx *ctx, const ox_tensor *t, int d0, int d1)
{
    if (ctx->status || !t)
        return NULL;
    int a = ox_check_axis(ctx, "transpose", t, d0), b = ox_check_axis(ctx, "transpose", t, d1);
    if (a < 0 || b < 0)
        return NULL;
    int perm[OX_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
        perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return ox_tensor_view_permute(ctx, t, perm);
}

ox_tensor *ox_tensor_view_narrow(ox_ctx *ctx, const ox_tensor *t, int dim, int64_t start, int64_t len)
{
    if (ctx->status || !t)
        return NULL;
    int a = ox_check_axis(ctx, "narrow", t, dim);
    if (a < 0)
        return NULL;
    if (start < 0 || len < 0 || start + len > t->shape[a]) {
        char b[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_ARG, "narrow: elements %lld..%lld of axis %d do not fit shape %s",
                    (long long)start, (long long)(start + len - 1), a, ox_shape_str(t, b));
        return NULL;
    }
    ox_tensor *v = header(ctx, t);
    if (!v)
        return NULL;
    v->offset += start * t->stride[a];
    v->shape[a] = len;
    return v;
}

ox_tensor *ox_tensor_view_select(ox_ctx *ctx, const ox_tensor *t, int dim, int64_t index)
{
    ox_tensor *v = ox_tensor_view_narrow(ctx, t, dim, index, 1);
    if (!v)
        return NULL;
    int a = dim < 0 ? dim + t->ndim : dim;
    for (int d = a; d < v->ndim - 1; d++) {
        v->shape[d] = v->shape[d + 1];
        v->stride[d] = v->stride[d + 1];
    }
    v->ndim--;
    return v;
}

ox_tensor *ox_tensor_view_expand(ox_ctx *ctx, const ox_tensor *t, int ndim, const int64_t *shape)
{
    if (ctx->status || !t)
        return NULL;
    char b[OX_SHAPE_BUF];
    if (ndim < t->ndim || ndim > OX_MAX_DIMS) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "expand: cannot broadcast %s to %d axes", ox_shape_str(t, b), ndim);
        return NULL;
    }
    ox_tensor *v = header(ctx, t);
    if (!v)
        return NULL;
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t src = d < lead ? 1 : t->shape[d - lead];
        int64_t st = d < lead ? 0 : t->stride[d - lead];
        if (src == shape[d]) {
            v->stride[d] = src == 1 ? 0 : st;
        } else if (src == 1) {
            v->stride[d] = 0;
        } else {
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "expand: cannot broadcast %s: axis %d has size %lld, not 1 or %lld",
                        ox_shape_str(t, b), d - lead, (long long)src, (long long)shape[d]);
            return NULL;
        }
        v->shape[d] = shape[d];
    }
    v->ndim = ndim;
    return v;
}

int ox_broadcast_shape(const ox_tensor *a, const ox_tensor *b, int64_t *out)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < n; d++) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return -1;
        out[d] = sa == 1 ? sb : sa;
    }
    return n;
}

/* ---- copies, fills, accumulation ---- */

int ox_check_f32(ox_ctx *ctx, const char *op, const ox_tensor *t)
{
    if (t->dtype == OX_F32)
        return 0;
    char b[OX_SHAPE_BUF];
    ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: expected an F32 tensor, got I32 %s", op, ox_shape_str(t, b));
    return 1;
}

int ox_check_i32(ox_ctx *ctx, const char *op, const ox_tensor *t)
{
    if (t->dtype == OX_I32)
        return 0;
    char b[OX_SHAPE_BUF];
    ox_ctx_fail(ctx, OX_ERR_DTYPE, "%s: expected an I32 tensor, got F32 %s", op, ox_shape_str(t, b));
    return 1;
}

struct copy_args { void *dst; const void *src; };

static void copy_seg32(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    struct copy_args *a = arg;
    uint32_t *y = (uint32_t *)a->dst + off[0];
    const uint32_t *x = (const uint32_t *)a->src + off[1];
    int64_t sy = st[0], sx = st[1];
    if (sy == 1 && sx == 1)
        memcpy(y, x, (size_t)n * 4);
    else
        for (int64_t i = 0; i < n; i++)
            y[i * sy] = x[i * sx];
}

ox_status ox_tensor_copy(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src)
{
    if (ctx->status)
        return ctx->status;
    if (dst->dtype != src->dtype)
        return ox_ctx_fail(ctx, OX_ERR_DTYPE, "copy: source and destination dtypes differ");
    const ox_tensor *s = ox_tensor_view_expand(ctx, src, dst->ndim, dst->shape);
    if (!s)
        return ctx->status;
    ox_iter it;
    ox_iter_init(&it, 2, (const ox_tensor *[]){ dst, s });
    struct copy_args a = { (uint32_t *)dst->data + dst->offset, (const uint32_t *)s->data + s->offset };
    ox_iter_run(&it, ctx->n_threads, copy_seg32, &a);
    return OX_OK;
}

ox_tensor *ox_tensor_contiguous(ox_ctx *ctx, ox_tensor *t)
{
    if (ctx->status || !t)
        return NULL;
    if (ox_tensor_is_contiguous(t))
        return t;
    ox_tensor *c = ox_tensor_empty_like(ctx, t);
    if (!c || ox_tensor_copy(ctx, c, t))
        return NULL;
    return c;
}

struct fill_args { void *dst; uint32_t bits; };

static void fill_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    struct fill_args *a = arg;
    uint32_t *y = (uint32_t *)a->dst + off[0];
    for (int64_t i = 0; i < n; i++)
        y[i * st[0]] = a->bits;
}

ox_status ox_tensor_fill(ox_ctx *ctx, ox_tensor *t, double value)
{
    if (ctx->status)
        return ctx->status;
    struct fill_args a = { (uint32_t *)t->data + t->offset, 0 };
    if (t->dtype == OX_F32) {
        float f = (float)value;
        memcpy(&a.bits, &f, 4);
    } else {
        int32_t i = (int32_t)value;
        memcpy(&a.bits, &i, 4);
    }
    ox_iter it;
    ox_iter_init(&it, 1, (const ox_tensor *[]){ t });
    ox_iter_run(&it, ctx->n_threads, fill_seg, &a);
    return OX_OK;
}

struct acc_args { float *dst; const float *src; };

static void acc_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    struct acc_args *a = arg;
    float *y = a->dst + off[0];
    const float *x = a->src + off[1];
    int64_t sy = st[0], sx = st[1];
    if (sy == 1 && sx == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] += x[i];
    } else if (sy == 0) {       /* reduce a run into one element, in order */
        float s = y[0];
        for (int64_t i = 0; i < n; i++)
            s += x[i * sx];
        y[0] = s;
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i * sy] += x[i * sx];
    }
}

ox_status ox_tensor_add_into(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src)
{
    if (ctx->status)
        return ctx->status;
    if (ox_check_f32(ctx, "add_into", dst) || ox_check_f32(ctx, "add_into", src))
        return ctx->status;
    const ox_tensor *s = ox_tensor_view_expand(ctx, src, dst->ndim, dst->shape);
    if (!s)
        return ctx->status;
    int overlap = 0;
    for (int d = 0; d < dst->ndim; d++)
        overlap |= dst->stride[d] == 0 && dst->shape[d] > 1;
    ox_iter it;
    ox_iter_init(&it, 2, (const ox_tensor *[]){ dst, s });
    struct acc_args a = { ox_tensor_f32(dst), ox_tensor_f32(s) };
    ox_iter_run(&it, overlap ? 1 : ctx->n_threads, acc_seg, &a);
    return OX_OK;
}

ox_status ox_tensor_sum_into(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src)
{
    if (ctx->status)
        return ctx->status;
    ox_tensor *d = ox_tensor_view_expand(ctx, dst, src->ndim, src->shape);
    if (!d)
        return ctx->status;
    return ox_tensor_add_into(ctx, d, src);
}
