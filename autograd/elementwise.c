/* elementwise.c - elementwise ops with broadcasting: forward kernels, backward kernels, tape glue.
 *
 * Forward: y = f(a, b) or y = f(x), walked in segments by ox_iter (tensor/iter.h); the switch on the
 * op is outside each inner loop, so every inner loop is a plain vectorisable C loop.
 * Backward: each input's gradient g (contiguous, the input's shape) is expanded to the output's shape
 * and updated in place, g += dy * df/dinput; where the input was broadcast the expanded g has stride-0
 * axes, and those updates run on one thread, in order, so sums never depend on thread timing.
 * Kinks (semantics in ops.h): relu and abs take the gradient 0 at 0, clamp passes it strictly inside the
 * bounds, maximum / minimum send all of it to the first argument on a tie. */
#include "autograd/ops.h"
#include "tensor/iter.h"
#include "tensor/vmath.h"

#include <math.h>

enum ew {
    EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_MINIMUM, EW_MAXIMUM,
    EW_NEG, EW_SCALE, EW_ADD_SCALAR, EW_EXP, EW_LOG, EW_SQRT, EW_RSQRT, EW_SQUARE,
    EW_TANH, EW_SIGMOID, EW_SILU, EW_SOFTPLUS, EW_RELU, EW_CLAMP, EW_ABS, EW_POW
};

static inline float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

/* maximum / minimum pick a when it wins, ties included, or when it is NaN; b otherwise (so a NaN on
 * either side gives NaN). The gradient follows the pick: all of it to a on ties. */
static inline int max_takes_a(float a, float b) { return a >= b || a != a; }
static inline int min_takes_a(float a, float b) { return a <= b || a != a; }

/* ---------------------------------------------------------------- forward kernels */

struct ew_args {
    enum ew op;
    float *y;
    const float *a, *b;     /* b unused by unary ops */
    float p0, p1;           /* scale / constant / clamp bounds */
};

static void binary_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct ew_args *e = arg;
    float *y = e->y + off[0];
    const float *a = e->a + off[1], *b = e->b + off[2];
    int64_t sy = st[0], sa = st[1], sb = st[2];
    switch (e->op) {
    case EW_ADD: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] + b[i * sb]; break;
    case EW_SUB: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] - b[i * sb]; break;
    case EW_MUL: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] * b[i * sb]; break;
    case EW_DIV: for (int64_t i = 0; i < n; i++) y[i * sy] = a[i * sa] / b[i * sb]; break;
    case EW_MAXIMUM:
        for (int64_t i = 0; i < n; i++) y[i * sy] = max_takes_a(a[i * sa], b[i * sb]) ? a[i * sa] : b[i * sb];
        break;
    case EW_MINIMUM:
        for (int64_t i = 0; i < n; i++) y[i * sy] = min_takes_a(a[i * sa], b[i * sb]) ? a[i * sa] : b[i * sb];
        break;
    default: break;
    }
}

static void unary_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct ew_args *e = arg;
    float *y = e->y + off[0];
    const float *x = e->a + off[1];
    int64_t sy = st[0], sx = st[1];
    float p0 = e->p0, p1 = e->p1;
    switch (e->op) {
    case EW_NEG: for (int64_t i = 0; i < n; i++) y[i * sy] = -x[i * sx]; break;
    case EW_SCALE: for (int64_t i = 0; i < n; i++) y[i * sy] = p0 * x[i * sx]; break;
    case EW_ADD_SCALAR: for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx] + p0; break;
    case EW_EXP: for (int64_t i = 0; i < n; i++) y[i * sy] = expf(x[i * sx]); break;
    case EW_LOG: for (int64_t i = 0; i < n; i++) y[i * sy] = logf(x[i * sx]); break;
    case EW_SQRT: for (int64_t i = 0; i < n; i++) y[i * sy] = sqrtf(x[i * sx]); break;
    case EW_RSQRT: for (int64_t i = 0; i < n; i++) y[i * sy] = 1.0f / sqrtf(x[i * sx]); break;
    case EW_SQUARE: for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx] * x[i * sx]; break;
    case EW_TANH: for (int64_t i = 0; i < n; i++) y[i * sy] = tanhf(x[i * sx]); break;
    case EW_SIGMOID: for (int64_t i = 0; i < n; i++) y[i * sy] = sigmoidf(x[i * sx]); break;
    case EW_SILU:
        for (int64_t i = 0; i < n; i++) {
            float z = x[i * sx];
            y[i * sy] = z * sigmoidf(z);
        }
        break;
    case EW_SOFTPLUS:   /* max(z, 0) + log1p(exp(-|z|)): never overflows */
        for (int64_t i = 0; i < n; i++) {
            float z = x[i * sx];
            y[i * sy] = fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z)));
        }
        break;
    case EW_RELU: for (int64_t i = 0; i < n; i++) y[i * sy] = fmaxf(x[i * sx], 0.0f); break;
    case EW_CLAMP: for (int64_t i = 0; i < n; i++) y[i * sy] = fminf(fmaxf(x[i * sx], p0), p1); break;
    case EW_ABS: for (int64_t i = 0; i < n; i++) y[i * sy] = fabsf(x[i * sx]); break;
    case EW_POW:        /* exponents with an exact cheap form skip powf (which does not vectorise) */
        if (p0 == 0.0f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = 1.0f;
        else if (p0 == 1.0f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx];
        else if (p0 == 2.0f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx] * x[i * sx];
        else if (p0 == 3.0f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = x[i * sx] * x[i * sx] * x[i * sx];
        else if (p0 == 0.5f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = sqrtf(x[i * sx]);
        else if (p0 == -1.0f)
            for (int64_t i = 0; i < n; i++) y[i * sy] = 1.0f / x[i * sx];
        else
            for (int64_t i = 0; i < n; i++) y[i * sy] = powf(x[i * sx], p0);
        break;
    default: break;
    }
}

/* ---------------------------------------------------------------- backward kernels */

struct ew_grad_args {
    enum ew op;
    int wrt;                /* binary ops: 0 = gradient of a, 1 = of b */
    float *g;               /* gradient being accumulated (expanded to the output's shape) */
    const float *dy, *a, *b, *y;
    float p0, p1;
    int fresh;              /* binary ops: g was just created (ox_ag_grad_fresh), write '=' not '+=' */
};

/* g[i] += v (or g[i] = v on a fresh gradient: the same value as 0 + v) for i < n; v uses i */
#define GRAD_LOOP(v)                                                         \
    do {                                                                     \
        if (fresh)                                                           \
            for (int64_t i = 0; i < n; i++) g[i * sg] = (v);                 \
        else                                                                 \
            for (int64_t i = 0; i < n; i++) g[i * sg] += (v);                \
    } while (0)

/* g += dy * d(a op b)/d(a or b) (g = ... when e->fresh; subtractions then write the negated term) */
static void binary_grad_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct ew_grad_args *e = arg;
    float *g = e->g + off[0];
    const float *dy = e->dy + off[1], *a = e->a + off[2], *b = e->b + off[3];
    int64_t sg = st[0], sd = st[1], sa = st[2], sb = st[3];
    int wa = e->wrt == 0, fresh = e->fresh;
    switch (e->op) {
    case EW_ADD:
        GRAD_LOOP(dy[i * sd]);
        break;
    case EW_SUB:
        if (wa) GRAD_LOOP(dy[i * sd]);
        else if (fresh) for (int64_t i = 0; i < n; i++) g[i * sg] = -dy[i * sd];
        else    for (int64_t i = 0; i < n; i++) g[i * sg] -= dy[i * sd];
        break;
    case EW_MUL:
        if (wa) GRAD_LOOP(dy[i * sd] * b[i * sb]);
        else    GRAD_LOOP(dy[i * sd] * a[i * sa]);
        break;
    case EW_DIV:        /* d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2 */
        if (wa) GRAD_LOOP(dy[i * sd] / b[i * sb]);
        else if (fresh)
            for (int64_t i = 0; i < n; i++) {
                float bi = b[i * sb];
                g[i * sg] = -(dy[i * sd] * a[i * sa] / (bi * bi));
            }
        else
            for (int64_t i = 0; i < n; i++) {
                float bi = b[i * sb];
                g[i * sg] -= dy[i * sd] * a[i * sa] / (bi * bi);
            }
        break;
    case EW_MAXIMUM:
        if (wa) GRAD_LOOP(max_takes_a(a[i * sa], b[i * sb]) ? dy[i * sd] : 0.0f);
        else    GRAD_LOOP(max_takes_a(a[i * sa], b[i * sb]) ? 0.0f : dy[i * sd]);
        break;
    case EW_MINIMUM:
        if (wa) GRAD_LOOP(min_takes_a(a[i * sa], b[i * sb]) ? dy[i * sd] : 0.0f);
        else    GRAD_LOOP(min_takes_a(a[i * sa], b[i * sb]) ? 0.0f : dy[i * sd]);
        break;
    default: break;
    }
}

/* g += dy * f'(x), using the saved input x (operand a) or output y */
static void unary_grad_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st)
{
    const struct ew_grad_args *e = arg;
    float *g = e->g + off[0];
    const float *dy = e->dy + off[1], *x = e->a + off[2], *y = e->y + off[3];
    int64_t sg = st[0], sd = st[1], sx = st[2], sy = st[3];
    float p0 = e->p0, p1 = e->p1;
    switch (e->op) {
    case EW_NEG: for (int64_t i = 0; i < n; i++) g[i * sg] -= dy[i * sd]; break;
    case EW_SCALE: for (int64_t i = 0; i < n; i++) g[i * sg] += p0 * dy[i * sd]; break;
    case EW_ADD_SCALAR: for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd]; break;
    case EW_EXP: for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd] * y[i * sy]; break;
    case EW_LOG: for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd] / x[i * sx]; break;
    case EW_SQRT: for (int64_t i = 0; i < n; i++) g[i * sg] += 0.5f * dy[i * sd] / y[i * sy]; break;
    case EW_RSQRT:      /* d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3 */
        for (int64_t i = 0; i < n; i++) {
            float yi = y[i * sy];
            g[i * sg] -= 0.5f * dy[i * sd] * yi * yi * yi;
        }
        break;
    case EW_SQUARE: for (int64_t i = 0; i < n; i++) g[i * sg] += 2.0f * x[i * sx] * dy[i * sd]; break;
    case EW_TANH:
        for (int64_t i = 0; i < n; i++) {
            float yi = y[i * sy];
            g[i * sg] += dy[i * sd] * (1.0f - yi * yi);
        }
        break;
    case EW_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float yi = y[i * sy];
            g[i * sg] += dy[i * sd] * yi * (1.0f - yi);
        }
        break;
    case EW_SILU:       /* silu'(z) = s (1 + z (1 - s)) */
        for (int64_t i = 0; i < n; i++) {
            float z = x[i * sx], s = sigmoidf(z);
            g[i * sg] += dy[i * sd] * s * (1.0f + z * (1.0f - s));
        }
        break;
    case EW_SOFTPLUS: for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd] * sigmoidf(x[i * sx]); break;
    case EW_RELU:
        for (int64_t i = 0; i < n; i++) g[i * sg] += x[i * sx] > 0.0f ? dy[i * sd] : 0.0f;
        break;
    case EW_CLAMP:
        for (int64_t i = 0; i < n; i++) {
            float xi = x[i * sx];
            g[i * sg] += (xi > p0 && xi < p1) ? dy[i * sd] : 0.0f;
        }
        break;
    case EW_ABS:        /* sign(x), 0 at x = 0 */
        for (int64_t i = 0; i < n; i++) {
            float xi = x[i * sx];
            g[i * sg] += xi > 0.0f ? dy[i * sd] : xi < 0.0f ? -dy[i * sd] : 0.0f;
        }
        break;
    case EW_POW:        /* p x^(p-1); 0 for p = 0 (y = 1 everywhere, also at x = 0) */
        if (p0 == 0.0f)
            break;
        else if (p0 == 1.0f)
            for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd];
        else if (p0 == 2.0f)
            for (int64_t i = 0; i < n; i++) g[i * sg] += 2.0f * x[i * sx] * dy[i * sd];
        else if (p0 == 3.0f)
            for (int64_t i = 0; i < n; i++) g[i * sg] += 3.0f * (x[i * sx] * x[i * sx]) * dy[i * sd];
        else if (p0 == 0.5f)
            for (int64_t i = 0; i < n; i++) g[i * sg] += 0.5f * dy[i * sd] / y[i * sy];
        else if (p0 == -1.0f)
            for (int64_t i = 0; i < n; i++) g[i * sg] -= dy[i * sd] * (y[i * sy] * y[i * sy]);
        else
            for (int64_t i = 0; i < n; i++) g[i * sg] += dy[i * sd] * p0 * powf(x[i * sx], p0 - 1.0f);
        break;
    default: break;
    }
}

/* ---------------------------------------------------------------- tape glue */

static int has_broadcast(const ox_tensor *g)
{
    for (int d = 0; d < g->ndim; d++)
        if (g->stride[d] == 0 && g->shape[d] > 1)
            return 1;
    return 0;
}

static ox_status binary_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *y = node->out[0], *dy = y->grad;
    ox_tensor *a = ox_tensor_view_expand(ctx, node->in[0], y->ndim, y->shape);
    ox_tensor *b = ox_tensor_view_expand(ctx, node->in[1], y->ndim, y->shape);
    if (!a || !b)
        return ctx->status;
    for (int k = 0; k < 2; k++) {
        /* an input of the output's shape (no broadcast, so every element of its gradient is written once)
         * whose gradient does not exist yet gets it uninitialised and written with '=' */
        int fresh = 0;
        ox_tensor *g = ox_tensor_same_shape(node->in[k], y) ? ox_ag_grad_fresh(ctx, node->in[k], &fresh)
                                                            : ox_ag_grad(ctx, node->in[k]);
        if (!g)
            continue;
        ox_tensor *ge = ox_tensor_view_expand(ctx, g, y->ndim, y->shape);
        if (!ge)
            return ctx->status;
        struct ew_grad_args e = { (enum ew)node->i[0], k, ox_tensor_f32(ge), ox_tensor_f32(dy),
                                  ox_tensor_f32(a), ox_tensor_f32(b), NULL, 0, 0, fresh };
        ox_iter it;
        ox_iter_init(&it, 4, (const ox_tensor *[]){ ge, dy, a, b });
        ox_iter_run(&it, has_broadcast(ge) ? 1 : ctx->n_threads, binary_grad_seg, &e);
    }
    return OX_OK;
}

static const ox_ag_op binary_op = { "elementwise binary", binary_backward };

static const char *binary_name(enum ew op)
{
    return op == EW_ADD ? "add" : op == EW_SUB ? "sub" : op == EW_MUL ? "mul" : op == EW_DIV ? "div"
         : op == EW_MAXIMUM ? "maximum" : "minimum";
}

static ox_tensor *binary(ox_ctx *ctx, enum ew op, ox_tensor *a, ox_tensor *b)
{
    if (ctx->status || !a || !b)
        return NULL;
    if (ox_check_f32(ctx, binary_name(op), a) || ox_check_f32(ctx, binary_name(op), b))
        return NULL;
    int64_t shape[OX_MAX_DIMS];
    int nd = ox_broadcast_shape(a, b, shape);
    if (nd < 0) {
        char b1[OX_SHAPE_BUF], b2[OX_SHAPE_BUF];
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", binary_name(op),
                    ox_shape_str(a, b1), ox_shape_str(b, b2));
        return NULL;
    }
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, nd, shape);
    ox_tensor *ae = ox_tensor_view_expand(ctx, a, nd, shape);
    ox_tensor *be = ox_tensor_view_expand(ctx, b, nd, shape);
    if (!y || !ae || !be)
        return NULL;
    struct ew_args e = { op, ox_tensor_f32(y), ox_tensor_f32(ae), ox_tensor_f32(be), 0, 0 };
    ox_iter it;
    ox_iter_init(&it, 3, (const ox_tensor *[]){ y, ae, be });
    ox_iter_run(&it, ctx->n_threads, binary_seg, &e);
    ox_ag_node *n = ox_ag_record(ctx, &binary_op, 2, (ox_tensor *[]){ a, b }, 1, &y);
    if (n)
        n->i[0] = op;
    return ctx->status ? NULL : y;
}

static ox_status unary_backward(ox_ctx *ctx, ox_ag_node *node)
{
    ox_tensor *x = node->in[0], *y = node->out[0];
    ox_tensor *g = ox_ag_grad(ctx, x);
    if (!g)
        return ctx->status;
    struct ew_grad_args e = { (enum ew)node->i[0], 0, ox_tensor_f32(g), ox_tensor_f32(y->grad),
                              ox_tensor_f32(x), NULL, ox_tensor_f32(y), (float)node->f[0], (float)node->f[1], 0 };
    ox_iter it;
    ox_iter_init(&it, 4, (const ox_tensor *[]){ g, y->grad, x, y });
    ox_iter_run(&it, ctx->n_threads, unary_grad_seg, &e);
    return OX_OK;
}

static const ox_ag_op unary_op = { "elementwise unary", unary_backward };

static ox_tensor *unary(ox_ctx *ctx, enum ew op, ox_tensor *x, double p0, double p1)
{
    if (ctx->status || !x)
        return NULL;
    if (ox_check_f32(ctx, "elementwise op", x))
        return NULL;
    ox_tensor *y = ox_tensor_empty(ctx, OX_F32, x->ndim, x->shape);
    if (!y)
        return NULL;
    struct ew_args e = { op, ox_tensor_f32(y), ox_tensor_f32(x), NULL, (float)p0, (float)p1 };
    ox_iter it;
    ox_iter_init(&it, 2, (const ox_tensor *[]){ y, x });
    ox_iter_run(&it, ctx->n_threads, unary_seg, &e);
    ox_ag_node *n = ox_ag_record(ctx, &unary_op, 1, &x, 1, &y);
    if (n) {
        n->i[0] = op;
        n->f[0] = p0;
        n->f[1] = p1;
    }
    return ctx->status ? NULL : y;
}

ox_tensor *ox_ag_add(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_ADD, a, b); }
ox_tensor *ox_ag_sub(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_SUB, a, b); }
ox_tensor *ox_ag_mul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_MUL, a, b); }
ox_tensor *ox_ag_div(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_DIV, a, b); }
ox_tensor *ox_ag_maximum(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_MAXIMUM, a, b); }
ox_tensor *ox_ag_minimum(ox_ctx *ctx, ox_tensor *a, ox_tensor *b) { return binary(ctx, EW_MINIMUM, a, b); }
ox_tensor *ox_ag_neg(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_NEG, x, 0, 0); }
ox_tensor *ox_ag_scale(ox_ctx *ctx, ox_tensor *x, double s) { return unary(ctx, EW_SCALE, x, s, 0); }
ox_tensor *ox_ag_add_scalar(ox_ctx *ctx, ox_tensor *x, double c) { return unary(ctx, EW_ADD_SCALAR, x, c, 0); }
ox_tensor *ox_ag_exp(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_EXP, x, 0, 0); }
ox_tensor *ox_ag_log(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_LOG, x, 0, 0); }
ox_tensor *ox_ag_sqrt(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_SQRT, x, 0, 0); }
ox_tensor *ox_ag_rsqrt(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_RSQRT, x, 0, 0); }
ox_tensor *ox_ag_square(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_SQUARE, x, 0, 0); }
ox_tensor *ox_ag_tanh(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_TANH, x, 0, 0); }
ox_tensor *ox_ag_sigmoid(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_SIGMOID, x, 0, 0); }
ox_tensor *ox_ag_silu(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_SILU, x, 0, 0); }
ox_tensor *ox_ag_softplus(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_SOFTPLUS, x, 0, 0); }
ox_tensor *ox_ag_relu(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_RELU, x, 0, 0); }
ox_tensor *ox_ag_abs(ox_ctx *ctx, ox_tensor *x) { return unary(ctx, EW_ABS, x, 0, 0); }

ox_tensor *ox_ag_clamp(ox_ctx *ctx, ox_tensor *x, double lo, double hi)
{
    if (!ctx->status && !(lo <= hi)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "clamp: lower bound %g is above upper bound %g", lo, hi);
        return NULL;
    }
    return unary(ctx, EW_CLAMP, x, lo, hi);
}

ox_tensor *ox_ag_pow(ox_ctx *ctx, ox_tensor *x, double p)
{
    if (!ctx->status && !isfinite((float)p)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "pow: the exponent must be a finite float, got %g", p);
        return NULL;
    }
    return unary(ctx, EW_POW, x, p, 0);
}
