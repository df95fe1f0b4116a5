/* matmul.c - batched matrix product with numpy broadcasting: forward, backward, tape glue.
 *
 *   C[..., M, N] = A[..., M, K] B[..., K, N]          (batch axes "..." broadcast, numpy rules)
 *   dA += dC B^T,   dB += A^T dC                       (summed over the batches an input was broadcast to)
 *
 * Every product goes through ox_sgemm (tensor/gemm.h) with the operands' own strides, so transposed,
 * permuted and narrowed views multiply with no copy: A^T is A with its two matrix strides swapped.
 * The one exception: an operand whose two matrix axes have strides BLIS rejects (a stride 0 from an
 * expand inside the last two axes, or strides that interleave) is first copied to a contiguous arena
 * tensor; that copy is what the forward multiplies and what the backward reads.
 *
 * Ways a product is run (forward and backward alike):
 *  - fold: when b has no batch (2-D, or all its batch axes of size 1) and a's batch axes and M axis form
 *    one evenly strided row axis, the whole batch is ONE GEMM (batch*M) x K x N. The backward then is
 *    one GEMM for dA ((batch*M) x N x K, dA is contiguous so it always folds) and one for dB
 *    (K x (batch*M) x N: the sum over the batch happens inside the GEMM's K loop).
 *  - batch loop: one GEMM per batch item. When each product is big enough for threads
 *    (ox_sgemm_threads > 1) the items run in order, each GEMM using ctx->n_threads; when the products
 *    are small but the batch as a whole is big, items run in an OpenMP loop, one thread per GEMM.
 *  - broadcast gradients: products whose results land in the same gradient matrix (an input that was
 *    broadcast over batch axes) form a group; a group always runs on one thread, in increasing batch
 *    order, with beta = 1, and only different groups run in parallel. So the sums, and the results,
 *    are bit-identical for a fixed thread count.
 * Scratch (offset tables; the copies when nothing is recorded) comes from the arena and is released
 * before returning. */
#include "autograd/ops.h"
#include "tensor/gemm.h"

#include <string.h>

/* ---------------------------------------------------------------- strides BLIS accepts */

/* 1 if an m x n matrix with strides (rs, cs) passes BLIS's stride checks (bli_check_matrix_strides)
 * after ox_sgemm has given its size-1 axes valid strides. Our views never have negative strides. */
static int blis_strides_ok(int64_t m, int64_t n, int64_t rs, int64_t cs)
{
    if (m == 0 || n == 0 || (m == 1 && n == 1))
        return 1;
    if (m == 1)
        return cs > 0;
    if (n == 1)
        return rs > 0;
    if (rs <= 0 || cs <= 0 || rs == cs)
        return 0;
    if (cs == 1)
        return rs >= n;         /* row major */
    if (rs == 1)
        return cs >= m;         /* column major */
    return rs < cs ? m * rs <= cs : n * cs <= rs;   /* general stride: the axes must not interleave */
}

/* t itself when its matrix axes suit BLIS, else a contiguous arena copy. */
static ox_tensor *blis_operand(ox_ctx *ctx, ox_tensor *t)
{
    int nd = t->ndim;
    if (blis_strides_ok(t->shape[nd - 2], t->shape[nd - 1], t->stride[nd - 2], t->stride[nd - 1]))
        return t;
    ox_tensor *c = ox_tensor_empty_like(ctx, t);
    if (!c || ox_tensor_copy(ctx, c, t))
        return NULL;
    return c;
}

/* 1 if t's batch axes (all but the last two) all have size 1. */
static int no_batch(const ox_tensor *t)
{
    for (int d = 0; d < t->ndim - 2; d++)
        if (t->shape[d] != 1)
            return 0;
    return 1;
}

/* If a's batch axes and its M axis form one evenly strided axis of rows (numel / K rows), returns 1
 * and that row stride in *rs, provided the folded rows x K matrix also suits BLIS. */
static int fold_rows(const ox_tensor *a, int64_t *rs)
{
    int nd = a->ndim;
    int64_t row_stride = a->stride[nd - 2], expect = 0, rows = 1;
    int found = 0;
    for (int d = nd - 2; d >= 0; d--) {
        rows *= a->shape[d];
        if (a->shape[d] == 1)
            continue;
        if (!found) {
            row_stride = a->stride[d];
            found = 1;
        } else if (a->stride[d] != expect) {
            return 0;
        }
        expect = a->stride[d] * a->shape[d];
    }
    if (!blis_strides_ok(rows, a->shape[nd - 1], row_stride, a->stride[nd - 1]))
        return 0;
    *rs = row_stride;
    return 1;
}

/* ---------------------------------------------------------------- batch bookkeeping */

/* The output's batch axes: rank, sizes and item count (product of the sizes). */
struct batch {
    int rank;
    int64_t shape[OX_MAX_DIMS];
    int64_t n;
};

/* Element stride of operand x along each output batch axis: 0 where x is broadcast (missing axis or
 * size 1). With `contig` the strides are those of a contiguous tensor of x's shape (x's gradient). */
static void batch_strides(const struct batch *bt, const ox_tensor *x, int contig, int64_t *st)
{
    int rx = x->ndim - 2;
    int64_t cst[OX_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        cst[d] = s;
        s *= x->shape[d];
    }
    for (int d = 0; d < bt->rank; d++) {
        int dx = d - (bt->rank - rx);
        st[d] = dx < 0 || x->shape[dx] == 1 ? 0 : contig ? cst[dx] : x->stride[dx];
    }
}

/* Arena table of the element offset of each batch item (row-major over the output batch). */
static int64_t *item_offsets(ox_ctx *ctx, const struct batch *bt, const int64_t *st)
{
    int64_t *off = ox_ctx_alloc(ctx, sizeof(int64_t) * (size_t)bt->n);
    if (!off)
        return NULL;
    int64_t idx[OX_MAX_DIMS] = { 0 }, o = 0;
    for (int64_t i = 0; i < bt->n; i++) {
        off[i] = o;
        for (int d = bt->rank - 1; d >= 0; d--) {      /* odometer step */
            o += st[d];
            if (++idx[d] < bt->shape[d])
                break;
            o -= st[d] * bt->shape[d];
            idx[d] = 0;
        }
    }
    return off;
}

/* A list of same-sized products C_i (beta)= A_i B_i, with per-item offsets into a, b and c.
 * Items whose C is the same matrix form a group: order[group_start[g] .. group_start[g+1]) lists the
 * items of group g in increasing order. group_start == NULL: every item is its own group. */
struct gemm_list {
    int64_t m, n, k;
    const float *a; int64_t rsa, csa; const int64_t *offa;
    const float *b; int64_t rsb, csb; const int64_t *offb;
    float beta;
    float *c; int64_t rsc, csc; const int64_t *offc;
    int64_t n_items, n_groups;
    const int64_t *group_start, *order;
};

static void run_group(const struct gemm_list *g, int64_t grp, int n_threads)
{
    int64_t lo = g->group_start ? g->group_start[grp] : grp;
    int64_t hi = g->group_start ? g->group_start[grp + 1] : grp + 1;
    for (int64_t j = lo; j < hi; j++) {
        int64_t i = g->order ? g->order[j] : j;
        ox_sgemm(n_threads, g->m, g->n, g->k, 1.0f, g->a + g->offa[i], g->rsa, g->csa,
                 g->b + g->offb[i], g->rsb, g->csb, g->beta, g->c + g->offc[i], g->rsc, g->csc);
    }
}

/* Work (in flops) below which a batch of small products stays on one thread. Each BLIS call also
 * has a fixed cost of ~2 us, worth ~1e5 flops (bench_matmul section 3: 64 products of 16x16x16,
 * 0.5 MFLOP in all, take 135 us on one thread), so a call counts as at least that much. The loop
 * pays off from ~20 us of work, as for one product (tensor/gemm.c, ox_sgemm_threads). */
#define BATCH_PARALLEL_MIN_FLOPS 1.5e6
#define CALL_COST_FLOPS 1e5

static void run_list(const ox_ctx *ctx, const struct gemm_list *g)
{
    int nt = ctx->n_threads;
    double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k;
    double work = (double)g->n_items * (flops > CALL_COST_FLOPS ? flops : CALL_COST_FLOPS);
    /* Threads inside BLIS when each product is big enough for them; otherwise threads across groups
     * when all the products together are. */
    int across = nt > 1 && g->n_groups > 1 && ox_sgemm_threads(nt, g->m, g->n, g->k) == 1 &&
                 work >= BATCH_PARALLEL_MIN_FLOPS;
    if (!across) {
        for (int64_t grp = 0; grp < g->n_groups; grp++)
            run_group(g, grp, nt);
        return;
    }
    /* Each group writes its own C matrix, on one thread, in a fixed item order: safe and deterministic. */
#pragma omp parallel for num_threads(nt) schedule(guided)
    for (int64_t grp = 0; grp < g->n_groups; grp++)
        run_group(g, grp, 1);
}

/* Groups the items of g by target matrix (offc[i] / mat_size, n_targets of them) with a stable
 * counting sort, so each group lists its items in increasing order. Returns nonzero on error. */
static int group_by_target(ox_ctx *ctx, struct gemm_list *g, int64_t mat_size, int64_t n_targets)
{
    int64_t *start = ox_ctx_alloc(ctx, sizeof(int64_t) * (size_t)(n_targets + 1));
    int64_t *order = ox_ctx_alloc(ctx, sizeof(int64_t) * (size_t)g->n_items);
    if (!start || !order)
        return 1;
    memset(start, 0, sizeof(int64_t) * (size_t)(n_targets + 1));
    for (int64_t i = 0; i < g->n_items; i++)
        start[g->offc[i] / mat_size + 1]++;
    for (int64_t t = 0; t < n_targets; t++)
        start[t + 1] += start[t];
    for (int64_t i = 0; i < g->n_items; i++)   /* start[t] runs ahead as group t is filled ... */
        order[start[g->offc[i] / mat_size]++] = i;
    for (int64_t t = n_targets; t > 0; t--)    /* ... then is shifted back to its beginning */
        start[t] = start[t - 1];
    start[0] = 0;
    g->n_groups = n_targets;
    g->group_start = start;
    g->order = order;
    return 0;
}

/* ---------------------------------------------------------------- backward */

/* The operands as multiplied: the inputs, or their contiguous copies (see blis_operand). */
struct matmul_saved {
    ox_tensor *a, *b;
};

static ox_status matmul_backward(ox_ctx *ctx, ox_ag_node *node)
{
    const struct matmul_saved *s = node->saved;
    const ox_tensor *a = s->a, *b = s->b, *c = node->out[0], *dc = c->grad;
    ox_tensor *ga = ox_ag_grad(ctx, node->in[0]);
    ox_tensor *gb = ox_ag_grad(ctx, node->in[1]);
    if (ctx->status)
        return ctx->status;
    int nd = c->ndim, na = a->ndim, nb = b->ndim;
    int64_t M = c->shape[nd - 2], N = c->shape[nd - 1], K = a->shape[na - 1];
    if (!dc || ox_tensor_numel(dc) == 0 || K == 0)
        return OX_OK;           /* no gradient reached C, or both gradients are empty sums / empty */
    const float *pa = ox_tensor_f32(a), *pb = ox_tensor_f32(b), *pdc = ox_tensor_f32(dc);
    int64_t rsa = a->stride[na - 2], csa = a->stride[na - 1];
    int64_t rsb = b->stride[nb - 2], csb = b->stride[nb - 1];
    int nt = ctx->n_threads;
    int64_t rows_fold;

    if (no_batch(b)) {
        /* dA_folded [batch*M, K] += dC_folded [batch*M, N] B^T: dA and dC are contiguous */
        if (ga)
            ox_sgemm(nt, ox_tensor_numel(ga) / K, K, N, 1.0f, pdc, N, 1, pb, csb, rsb,
                     1.0f, ox_tensor_f32(ga), K, 1);
        /* dB [K, N] += A_folded^T dC_folded: the batch sum is part of the GEMM's inner loop */
        if (gb && fold_rows(a, &rows_fold)) {
            ox_sgemm(nt, K, N, ox_tensor_numel(dc) / N, 1.0f, pa, csa, rows_fold, pdc, N, 1,
                     1.0f, ox_tensor_f32(gb), N, 1);
            gb = NULL;
        }
        ga = NULL;          /* done; gb, if still set, needs the batch loop below */
        if (!gb)
            return OX_OK;
    }

    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);
    struct batch bt = { nd - 2, { 0 }, 1 };
    for (int d = 0; d < bt.rank; d++) {
        bt.shape[d] = c->shape[d];
        bt.n *= c->shape[d];
    }
    int64_t st[OX_MAX_DIMS] = { 0 };
    batch_strides(&bt, a, 0, st);
    int64_t *off_a = item_offsets(ctx, &bt, st);
    batch_strides(&bt, b, 0, st);
    int64_t *off_b = item_offsets(ctx, &bt, st);
    batch_strides(&bt, c, 1, st);
    int64_t *off_c = item_offsets(ctx, &bt, st);
    if (!off_a || !off_b || !off_c)
        return ctx->status;

    if (ga) {
        /* dA_i += dC_i B_i^T for every item i, grouped by the dA matrix it lands in */
        batch_strides(&bt, a, 1, st);
        int64_t *off_ga = item_offsets(ctx, &bt, st);
        struct gemm_list g = { .m = M, .n = K, .k = N,
                               .a = pdc, .rsa = N, .csa = 1, .offa = off_c,
                               .b = pb, .rsb = csb, .csb = rsb, .offb = off_b,
                               .beta = 1.0f, .c = ox_tensor_f32(ga), .rsc = K, .csc = 1, .offc = off_ga,
                               .n_items = bt.n };
        if (!off_ga || group_by_target(ctx, &g, M * K, ox_tensor_numel(ga) / (M * K)))
            return ctx->status;
        run_list(ctx, &g);
    }
    if (gb) {
        /* dB_i += A_i^T dC_i, grouped by the dB matrix it lands in */
        batch_strides(&bt, b, 1, st);
        int64_t *off_gb = item_offsets(ctx, &bt, st);
        struct gemm_list g = { .m = K, .n = N, .k = M,
                               .a = pa, .rsa = csa, .csa = rsa, .offa = off_a,
                               .b = pdc, .rsb = N, .csb = 1, .offb = off_c,
                               .beta = 1.0f, .c = ox_tensor_f32(gb), .rsc = N, .csc = 1, .offc = off_gb,
                               .n_items = bt.n };
        if (!off_gb || group_by_target(ctx, &g, K * N, ox_tensor_numel(gb) / (K * N)))
            return ctx->status;
        run_list(ctx, &g);
    }
    ox_arena_rewind(&ctx->arena, mark);
    return OX_OK;
}

static const ox_ag_op matmul_op = { "matmul", matmul_backward };

/* ---------------------------------------------------------------- forward */

ox_tensor *ox_ag_matmul(ox_ctx *ctx, ox_tensor *a, ox_tensor *b)
{
    if (ctx->status || !a || !b)
        return NULL;
    if (ox_check_f32(ctx, "matmul", a) || ox_check_f32(ctx, "matmul", b))
        return NULL;
    char sa[OX_SHAPE_BUF], sb[OX_SHAPE_BUF];
    int na = a->ndim, nb = b->ndim;
    if (na < 2 || nb < 2) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "matmul: both operands need at least 2 axes, got %s and %s",
                    ox_shape_str(a, sa), ox_shape_str(b, sb));
        return NULL;
    }
    int64_t M = a->shape[na - 2], K = a->shape[na - 1], N = b->shape[nb - 1];
    if (b->shape[nb - 2] != K) {
        ox_ctx_fail(ctx, OX_ERR_SHAPE, "matmul: shapes %s and %s do not fit: a has K = %lld columns, "
                    "b has %lld rows", ox_shape_str(a, sa), ox_shape_str(b, sb), (long long)K,
                    (long long)b->shape[nb - 2]);
        return NULL;
    }
    /* output batch shape: numpy broadcast of the batch axes */
    struct batch bt = { (na > nb ? na : nb) - 2, { 0 }, 1 };
    for (int d = 0; d < bt.rank; d++) {
        int da = d - (bt.rank - (na - 2)), db = d - (bt.rank - (nb - 2));
        int64_t xa = da >= 0 ? a->shape[da] : 1, xb = db >= 0 ? b->shape[db] : 1;
        if (xa != xb && xa != 1 && xb != 1) {
            ox_ctx_fail(ctx, OX_ERR_SHAPE, "matmul: batch axes of %s and %s do not broadcast",
                        ox_shape_str(a, sa), ox_shape_str(b, sb));
            return NULL;
        }
        bt.shape[d] = xa == 1 ? xb : xa;
        bt.n *= bt.shape[d];
    }
    int64_t shape[OX_MAX_DIMS];
    memcpy(shape, bt.shape, sizeof(int64_t) * (size_t)bt.rank);
    shape[bt.rank] = M;
    shape[bt.rank + 1] = N;
    ox_tensor *c = ox_tensor_empty(ctx, OX_F32, bt.rank + 2, shape);
    if (!c)
        return NULL;

    int needs_grad = ox_ag_needs_grad(ctx, 2, (ox_tensor *[]){ a, b });
    ox_arena_mark mark = ox_arena_get_mark(&ctx->arena);   /* scratch from here on (unless recorded) */
    ox_tensor *au = blis_operand(ctx, a), *bu = blis_operand(ctx, b);
    if (!au || !bu)
        return NULL;
    float *pc = ox_tensor_f32(c);
    const float *pa = ox_tensor_f32(au), *pb = ox_tensor_f32(bu);
    int64_t csa = au->stride[na - 1], rsb = bu->stride[nb - 2], csb = bu->stride[nb - 1];
    int64_t rows_fold;

    if (K == 0) {
        memset(pc, 0, sizeof(float) * (size_t)ox_tensor_numel(c));   /* an empty sum */
    } else if (ox_tensor_numel(c) == 0) {
        /* nothing to compute */
    } else if (no_batch(bu) && fold_rows(au, &rows_fold)) {
        /* C_folded [batch*M, N] = A_folded [batch*M, K] B [K, N] */
        ox_sgemm(ctx->n_threads, bt.n * M, N, K, 1.0f, pa, rows_fold, csa, pb, rsb, csb, 0.0f, pc, N, 1);
    } else {
        int64_t st[OX_MAX_DIMS] = { 0 };
        batch_strides(&bt, au, 0, st);
        int64_t *off_a = item_offsets(ctx, &bt, st);
        batch_strides(&bt, bu, 0, st);
        int64_t *off_b = item_offsets(ctx, &bt, st);
        batch_strides(&bt, c, 0, st);
        int64_t *off_c = item_offsets(ctx, &bt, st);
        if (!off_a || !off_b || !off_c)
            return NULL;
        struct gemm_list g = { .m = M, .n = N, .k = K,
                               .a = pa, .rsa = au->stride[na - 2], .csa = csa, .offa = off_a,
                               .b = pb, .rsb = rsb, .csb = csb, .offb = off_b,
                               .beta = 0.0f, .c = pc, .rsc = N, .csc = 1, .offc = off_c,
                               .n_items = bt.n, .n_groups = bt.n };
        run_list(ctx, &g);
    }

    if (!needs_grad) {
        ox_arena_rewind(&ctx->arena, mark);     /* copies and offset tables; c was allocated before */
        return c;
    }
    struct matmul_saved *s = ox_ctx_alloc(ctx, sizeof *s);
    if (!s)
        return NULL;
    s->a = au;
    s->b = bu;
    ox_ag_node *n = ox_ag_record(ctx, &matmul_op, 2, (ox_tensor *[]){ a, b }, 1, &c);
    if (n)
        n->saved = s;
    return ctx->status ? NULL : c;
}
