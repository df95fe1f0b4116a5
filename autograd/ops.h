/* ops.h - the differentiable ops: everything a model is built from.
 *
 * Each op computes its result at once (eager), returns a new arena tensor (valid until ox_ctx_reset)
 * and, when gradients are enabled and an input requires one, records itself on the tape (tape.h).
 * Each op's forward and backward live side by side in one file of autograd/ (named in the groups below).
 *
 * Conventions for every op:
 *  - Inputs may be any strided view (transposed, sliced, broadcast); results are contiguous, except
 *    for the view ops, which return views.
 *  - Binary elementwise ops broadcast with numpy's rules.
 *  - A NULL input, or an error already recorded in ctx, makes an op return NULL at once; an invalid
 *    argument records an error naming the shapes and returns NULL. No op aborts or prints.
 *  - Axes may be negative (counted from the end).
 *  - F32 only, except the index arguments of the gather/scatter ops and the indices that argmax and
 *    topk return (I32). Comparisons return F32 0/1 masks.
 *  - Results are bit-identical for the same inputs and thread count (no float atomics, no OpenMP
 *    reductions; partial sums are combined in a fixed order).
 *
 *   ox_tensor *h = ox_ag_silu(ctx, ox_ag_matmul(ctx, x, w));      // [B, T, F]
 *   ox_tensor *loss = ox_ag_mean_all(ctx, ox_ag_square(ctx, h));  // []
 */
#ifndef OX_OPS_H
#define OX_OPS_H

#include "autograd/tape.h"
#include "tensor/rng.h"

/* ---- elementwise (autograd/elementwise.c) -------------------------------------------------------- */

ox_tensor *ox_ag_add(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);   /* a + b */
ox_tensor *ox_ag_sub(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);   /* a - b */
ox_tensor *ox_ag_mul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);   /* a * b */
ox_tensor *ox_ag_div(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);   /* a / b */
/* max(a, b) and min(a, b) elementwise (torch.maximum / torch.minimum): a NaN on either side gives NaN.
 * The gradient goes to the operand that was picked; on a tie (a == b) all of it goes to a, the first
 * argument (PyTorch splits a tie half and half). */
ox_tensor *ox_ag_maximum(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);
ox_tensor *ox_ag_minimum(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);
ox_tensor *ox_ag_neg(ox_ctx *ctx, ox_tensor *x);                 /* -x */
ox_tensor *ox_ag_scale(ox_ctx *ctx, ox_tensor *x, double s);     /* s * x */
ox_tensor *ox_ag_add_scalar(ox_ctx *ctx, ox_tensor *x, double c);/* x + c */
ox_tensor *ox_ag_exp(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_log(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_sqrt(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_rsqrt(ox_ctx *ctx, ox_tensor *x);               /* 1 / sqrt(x) */
ox_tensor *ox_ag_square(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_tanh(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_sigmoid(ox_ctx *ctx, ox_tensor *x);             /* 1 / (1 + e^-x) */
ox_tensor *ox_ag_silu(ox_ctx *ctx, ox_tensor *x);                /* x sigmoid(x) */
ox_tensor *ox_ag_softplus(ox_ctx *ctx, ox_tensor *x);            /* log(1 + e^x), stable form */
ox_tensor *ox_ag_relu(ox_ctx *ctx, ox_tensor *x);                /* max(x, 0); gradient 0 at 0 */
/* min(max(x, lo), hi); the gradient passes where lo < x < hi. */
ox_tensor *ox_ag_clamp(ox_ctx *ctx, ox_tensor *x, double lo, double hi);
/* |x|; the gradient is sign(x) dy, taken as 0 at x = 0 (the subgradient PyTorch uses). */
ox_tensor *ox_ag_abs(ox_ctx *ctx, ox_tensor *x);
/* x^p for a scalar exponent p (used as a float; must be finite), elementwise, as powf.
 * Domain: any x when p is an integer; x > 0 when it is not (x < 0 gives NaN, as PyTorch, and x = 0 an
 * infinite gradient when p < 1). Gradient: dx += p x^(p-1) dy, except p = 0: y = 1 and the gradient is 0
 * everywhere, x = 0 included. p = 0, 1, 2, 3, 0.5 and -1 use exact cheap forms instead of powf. */
ox_tensor *ox_ag_pow(ox_ctx *ctx, ox_tensor *x, double p);

/* ---- GELU (autograd/gelu.c) ----------------------------------------------------------------------- */

/* The two forms of torch.nn.functional.gelu: approximate='none' and approximate='tanh'. */
typedef enum ox_ag_gelu_approx { OX_AG_GELU_ERF = 0, OX_AG_GELU_TANH = 1 } ox_ag_gelu_approx;

/* GELU elementwise (Hendrycks & Gimpel 2016), one fused op; y has x's shape. With Phi the standard normal
 * CDF, phi its density, u = sqrt(2/pi) (x + 0.044715 x^3) and s = sigmoid(2u) = (1 + tanh u) / 2:
 *     OX_AG_GELU_ERF:   y = x Phi(x) = x erfc(-x/sqrt 2) / 2      dx += dy (Phi(x) + x phi(x))
 *     OX_AG_GELU_TANH:  y = x (1 + tanh u) / 2 = x s               dx += dy (s + 2 x s (1 - s) u'(x))
 * (GPT-2 / nanoGPT use the erf form through nn.GELU(); the tanh form is GPT-2's original code.) Each value
 * is within a few float ulp of the formula; a non-finite x gives what the formula does (NaN at -inf, as
 * in PyTorch). Any other approx is an OX_ERR_ARG. Vectorised: see autograd/gelu.c.
 *   ox_tensor *h = ox_ag_gelu(ctx, ox_nn_linear(ctx, x, w_fc), OX_AG_GELU_ERF);     // [B, T, 4D] */
ox_tensor *ox_ag_gelu(ox_ctx *ctx, ox_tensor *x, ox_ag_gelu_approx approx);

/* ---- dropout (autograd/dropout.c) ----------------------------------------------------------------- */

/* Inverted dropout (torch.nn.functional.dropout(x, p, training)). training and p in [0, 1) are explicit:
 *  - !training or p = 0: the identity; returns x itself (no copy, no node, rng untouched; may be NULL).
 *  - otherwise: y = x * keep / (1 - p), keep_i = (u_i >= p) with u_i the i-th number (row-major over x's
 *    shape) of ox_tensor_fill_uniform(rng, 0, 1); rng advances by numel(x). Same rng state, same mask,
 *    at any thread count. Backward: dx += dy * keep / (1 - p), with the forward's mask (saved, x's size).
 * Errors: p outside [0, 1) or NaN (also when not training), a NULL rng when it is needed.
 *   ox_tensor *h = ox_ag_dropout(ctx, ox_ag_gelu(ctx, a, OX_AG_GELU_ERF), 0.1, &rng, training); */
ox_tensor *ox_ag_dropout(ox_ctx *ctx, ox_tensor *x, double p, ox_rng *rng, int training);

/* ---- comparisons (autograd/compare.c): masks, no gradient ----------------------------------------- */

/* y = (a OP b) ? 1 : 0 elementwise, a and b F32 and broadcast (numpy rules) to y's shape; y is F32.
 * IEEE semantics as in PyTorch: any comparison with a NaN is 0, except ne, which is 1. The result is a
 * constant mask: never recorded, never requires a gradient (no gradient reaches a or b through it).
 * Use it as the cond of ox_ag_where / the mask of ox_ag_masked_fill, or multiply it in.
 *   ox_tensor *pos = ox_ag_gt(ctx, x, ox_tensor_zeros(ctx, OX_F32, 0, NULL));   // x > 0 */
ox_tensor *ox_ag_eq(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a == b */
ox_tensor *ox_ag_ne(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a != b */
ox_tensor *ox_ag_lt(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a <  b */
ox_tensor *ox_ag_le(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a <= b */
ox_tensor *ox_ag_gt(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a >  b */
ox_tensor *ox_ag_ge(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);    /* a >= b */

/* ---- selection by a mask (autograd/where.c) ------------------------------------------------------- */

/* y = cond != 0 ? a : b elementwise; cond, a and b are F32 and broadcast together (numpy rules) to y's
 * shape. cond is a mask (the comparisons give 0/1; any nonzero value, NaN included, picks a) and gets no
 * gradient. Backward: da += dy where cond != 0, db += dy where cond == 0, each summed over the axes along
 * which that input was broadcast. cond must stay valid until backward.
 *   ox_tensor *y = ox_ag_where(ctx, ox_ag_gt(ctx, x, zero), x, ox_ag_scale(ctx, x, 0.1));  // leaky relu */
ox_tensor *ox_ag_where(ox_ctx *ctx, const ox_tensor *cond, ox_tensor *a, ox_tensor *b);
/* y = mask != 0 ? value : x elementwise (PyTorch's masked_fill); x and mask are F32 and broadcast
 * together to y's shape; value may be +-INFINITY (a score mask). Backward: dx += dy where mask == 0,
 * summed over x's broadcast axes; the mask gets no gradient and must stay valid until backward. */
ox_tensor *ox_ag_masked_fill(ox_ctx *ctx, ox_tensor *x, const ox_tensor *mask, double value);

/* ---- reductions (autograd/reduce.c) -------------------------------------------------------------- */

/* Over one axis; keepdim keeps it with size 1. Max: the gradient goes to the first maximal element. */
ox_tensor *ox_ag_sum(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim);
ox_tensor *ox_ag_mean(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim);
ox_tensor *ox_ag_max(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim);
ox_tensor *ox_ag_logsumexp(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim);
/* Over all elements, to a scalar (shape []). */
ox_tensor *ox_ag_sum_all(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_mean_all(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_max_all(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_logsumexp_all(ox_ctx *ctx, ox_tensor *x);

/* ---- moments (autograd/moments.c) ----------------------------------------------------------------- */

/* Variance and standard deviation over one axis (torch.var / torch.std with `correction`), keepdim as
 * the reductions above. With n the axis length, m = (1/n) sum_i x_i and d = max(n - correction, 0):
 *     var = sum_i (x_i - m)^2 / d                 dx_i += dy 2 (x_i - m) / d
 *     std = sqrt(var)                             dx_i += dy (x_i - m) / (d std)
 * correction >= 0: 0 is the population variance, 1 the sample (Bessel) variance. d = 0 gives inf or NaN
 * as in PyTorch, an empty axis NaN. The std gradient is 0 where std = 0 (a constant row; PyTorch: NaN).
 *   ox_tensor *v = ox_ag_var(ctx, x, -1, 0, 1);            // [B, T, 1], LayerNorm's biased variance */
ox_tensor *ox_ag_var(ox_ctx *ctx, ox_tensor *x, int axis, int64_t correction, int keepdim);
ox_tensor *ox_ag_std(ox_ctx *ctx, ox_tensor *x, int axis, int64_t correction, int keepdim);

/* ---- LayerNorm (autograd/layernorm.c) ------------------------------------------------------------- */

/* LayerNorm over the last axis (torch.nn.functional.layer_norm(x, [D], w, b, eps)), one fused op:
 * x [..., D], w [D], b [D] or NULL (no bias) -> y [..., D]. Per row, with the biased variance:
 *     m = mean_j x_j,  v = mean_j (x_j - m)^2,  r = 1 / sqrt(v + eps),  y_j = (x_j - m) r w_j + b_j
 *     dx_j += r (gh_j - mean_k gh_k - xh_j mean_k gh_k xh_k),  gh = dy w,  xh = (x - m) r
 *     dw += sum over rows of dy xh,  db += sum over rows of dy
 * eps: finite, >= 0 (PyTorch's default 1e-5; nn/layernorm.h's module uses it). With eps = 0 a constant
 * row gives NaN, as in PyTorch. The variance is two-pass (accurate for rows with a large mean).
 *   ox_tensor *h = ox_ag_layernorm(ctx, x, ln_w, ln_b, 1e-5);         // [B, T, D] */
ox_tensor *ox_ag_layernorm(ox_ctx *ctx, ox_tensor *x, ox_tensor *w, ox_tensor *b, double eps);

/* ---- the largest elements (autograd/topk.c) ------------------------------------------------------- */

/* Order used by both: descending values, ties by the lowest index first, NaN above every number (several
 * NaNs: the lowest index first). It is total, so results are unique and thread-count independent. */

/* The index (I32) of the largest element along `axis`, i.e. of the first NaN if there is one, else of the
 * first maximal element (as torch.argmax: NaN counts as the largest, the first of several maxima).
 * Result: x's shape without the axis, or with it as size 1 when keepdim. An empty axis is an error.
 * No gradient (an index; never recorded); the element it points at is the one ox_ag_max picks. */
ox_tensor *ox_ag_argmax(ox_ctx *ctx, ox_tensor *x, int axis, int keepdim);
/* The k largest elements along `axis`, in the order above (torch.topk with largest = sorted = true):
 * *values (F32) and *indices (I32), both x's shape with the axis of size k (0 <= k <= its length), both
 * arena tensors. Pass NULL for an output that is not wanted. The values carry a gradient:
 * dx[..., indices[j], ...] += dvalues[..., j, ...] (the indices get none); outputs are NULL on error.
 *   ox_tensor *v, *i;  ox_ag_topk(ctx, logits, 40, -1, &v, &i);    // [B, V] -> [B, 40] each */
ox_status ox_ag_topk(ox_ctx *ctx, ox_tensor *x, int64_t k, int axis, ox_tensor **values, ox_tensor **indices);

/* ---- softmax (autograd/softmax.c), over the last axis -------------------------------------------- */

ox_tensor *ox_ag_softmax(ox_ctx *ctx, ox_tensor *x);
ox_tensor *ox_ag_log_softmax(ox_ctx *ctx, ox_tensor *x);

/* ---- scans and masks (autograd/cumsum.c, autograd/tril.c) ---------------------------------------- */

/* y_i = x_0 + ... + x_i along `axis`. */
ox_tensor *ox_ag_cumsum(ox_ctx *ctx, ox_tensor *x, int axis);
/* Over the last two axes [.., R, C]: keeps x[r, c] where c <= r + diagonal and puts `fill` elsewhere
 * (0 for a lower-triangular matrix, -INFINITY for a causal score mask). The gradient passes where kept. */
ox_tensor *ox_ag_tril(ox_ctx *ctx, ox_tensor *x, int64_t diagonal, double fill);

/* ---- indexing (autograd/index.c) ----------------------------------------------------------------- */

/* Rows of table [N, D] picked by idx (I32, any shape): result [idx..., D]. An embedding lookup.
 * Backward scatter-adds into table's gradient (an index may repeat). Out-of-range ids are an error. */
ox_tensor *ox_ag_gather_rows(ox_ctx *ctx, ox_tensor *table, const ox_tensor *idx);
/* dst [N, D] + scatter-add of src [M, D] into rows idx [M] (I32): out[idx[m]] += src[m]. */
ox_tensor *ox_ag_scatter_add_rows(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *idx, ox_tensor *src);
/* One element per row along the last axis: x [..., V], idx [...] (I32) -> [...] with x[..., idx]. */
ox_tensor *ox_ag_take_last(ox_ctx *ctx, ox_tensor *x, const ox_tensor *idx);

/* ---- joining and splitting (autograd/concat.c) --------------------------------------------------- */

/* Concatenation of n tensors along `axis` (all other sizes equal). */
ox_tensor *ox_ag_concat(ox_ctx *ctx, int n, ox_tensor *const *xs, int axis);
/* n tensors of one shape S [d_0, ..., d_{r-1}] stacked along a new axis (torch.stack): y has rank r + 1,
 * y.shape[axis] = n and select(y, axis, k) = xs[k]; axis in -(r+1) .. r (negative: counted from the end
 * of y). y is contiguous. Backward: xs[k]'s gradient += select(dy, axis, k).
 *   ox_tensor *h = ox_ag_stack(ctx, T, steps, 1);          // T tensors [B, D] -> [B, T, D] */
ox_tensor *ox_ag_stack(ox_ctx *ctx, int n, ox_tensor *const *xs, int axis);
/* n views of consecutive pieces of x along `axis`, of the given sizes (which must add up to the axis
 * length), written to outs[0..n-1]. */
ox_status ox_ag_split(ox_ctx *ctx, ox_tensor *x, int axis, int n, const int64_t *sizes, ox_tensor **outs);

/* ---- views (autograd/views.c): no data is copied, except by ox_ag_contiguous ------------------------ */

ox_tensor *ox_ag_reshape(ox_ctx *ctx, ox_tensor *x, int ndim, const int64_t *shape); /* x contiguous */
ox_tensor *ox_ag_permute(ox_ctx *ctx, ox_tensor *x, const int *perm);
ox_tensor *ox_ag_transpose(ox_ctx *ctx, ox_tensor *x, int d0, int d1);
ox_tensor *ox_ag_narrow(ox_ctx *ctx, ox_tensor *x, int axis, int64_t start, int64_t len);
ox_tensor *ox_ag_select(ox_ctx *ctx, ox_tensor *x, int axis, int64_t index);
ox_tensor *ox_ag_expand(ox_ctx *ctx, ox_tensor *x, int ndim, const int64_t *shape);
/* A contiguous copy (x itself, unrecorded, when it already is contiguous). */
ox_tensor *ox_ag_contiguous(ox_ctx *ctx, ox_tensor *x);

/* ---- linear algebra (autograd/matmul.c, autograd/solve.c) ---------------------------------------- */

/* a [..., M, K] times b [..., K, N] -> [..., M, N]; batch axes broadcast. Transposed views multiply
 * without a copy (BLIS takes the strides). A 2-D b shared by a whole batch is one GEMM of
 * (batch*M) x K x N when a's rows allow it. */
ox_tensor *ox_ag_matmul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b);
/* X = L^-1 B for unit lower triangular L [..., n, n] (only the part strictly below the diagonal is
 * read; the diagonal is taken as 1) and B [..., n, m]; batch axes must match. Backward:
 * dB = L^-T dX, dL = -strictly_lower(dB X^T). */
ox_tensor *ox_ag_solve_tril_unit(ox_ctx *ctx, ox_tensor *l, ox_tensor *b);

#endif
