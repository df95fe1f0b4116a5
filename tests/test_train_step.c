/* test_train_step.c - a small model built from the foundation's ops trains without allocating:
 * after the first step, the arena is large enough and nothing calls malloc (ox_alloc_count is flat).
 * Also: same seed and thread count give a bit-identical loss curve, and the loss goes down. */
#include "test_util.h"

#include <string.h>

/* A two-layer MLP classifier on a fixed synthetic dataset: logits = tanh(x W1 + b1) W2. */
struct mlp {
    ox_tensor *w1, *b1, *w2;        /* [D, Hd], [Hd], [Hd, C]: owned leaves */
};

enum { N = 64, D = 16, HD = 32, C = 4 };

static void mlp_init(ox_ctx *ctx, struct mlp *m, ox_rng *rng)
{
    m->w1 = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(D, HD));
    m->b1 = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(HD));
    m->w2 = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(HD, C));
    assert_ok(ctx, ox_tensor_fill_normal(ctx, m->w1, rng, 0, 1 / sqrt(D)));
    assert_ok(ctx, ox_tensor_fill_normal(ctx, m->w2, rng, 0, 1 / sqrt(HD)));
    ox_tensor *ps[3] = { m->w1, m->b1, m->w2 };
    for (int i = 0; i < 3; i++)
        assert_ok(ctx, ox_tensor_require_grad(ctx, ps[i]));
}

static void mlp_free(struct mlp *m)
{
    ox_tensor_free(m->w1);
    ox_tensor_free(m->b1);
    ox_tensor_free(m->w2);
}

/* One step: forward, backward, SGD update, arena reset. Returns the loss. */
static float train_step(ox_ctx *ctx, struct mlp *m, const ox_tensor *x, const ox_tensor *y, float lr)
{
    ox_tensor *xin = (ox_tensor *)x;
    ox_tensor *h = ox_ag_tanh(ctx, ox_ag_add(ctx, ox_ag_matmul(ctx, xin, m->w1), m->b1));
    ox_tensor *logp = ox_ag_log_softmax(ctx, ox_ag_matmul(ctx, h, m->w2));
    ox_tensor *loss = ox_ag_neg(ctx, ox_ag_mean_all(ctx, ox_ag_take_last(ctx, logp, y)));
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    float value = ox_tensor_f32(loss)[0];
    ox_tensor *ps[3] = { m->w1, m->b1, m->w2 };
    ox_ag_zero_grad(ps, 3);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    for (int i = 0; i < 3; i++) {
        float *w = ox_tensor_f32(ps[i]), *g = ox_tensor_f32(ps[i]->grad);
        for (int64_t j = 0; j < ox_tensor_numel(ps[i]); j++)
            w[j] -= lr * g[j];
    }
    ox_ctx_reset(ctx);
    return value;
}

/* inputs: N points in D dims; label = index of the largest of the first C coordinates */
static void make_data(ox_ctx *ctx, ox_rng *rng, ox_tensor **x, ox_tensor **y)
{
    *x = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(N, D));
    *y = ox_tensor_new_owned(ctx, OX_I32, OX_DIMS(N));
    assert_ok(ctx, ox_tensor_fill_normal(ctx, *x, rng, 0, 1));
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (ox_tensor_f32(*x)[i * D + c] > ox_tensor_f32(*x)[i * D + best])
                best = c;
        ox_tensor_i32(*y)[i] = best;
    }
}

static void run(int threads, float *losses, int steps, uint64_t *allocs_after_step1)
{
    ox_ctx *ctx = test_ctx();
    ox_ctx_set_threads(ctx, threads);
    ox_rng rng = ox_rng_seed(11);
    ox_tensor *x, *y;
    make_data(ctx, &rng, &x, &y);
    struct mlp m;
    mlp_init(ctx, &m, &rng);
    uint64_t mark = 0;
    for (int s = 0; s < steps; s++) {
        losses[s] = train_step(ctx, &m, x, y, 0.5f);
        if (s == 0)
            mark = ox_alloc_count();
    }
    *allocs_after_step1 = ox_alloc_count() - mark;
    mlp_free(&m);
    ox_tensor_free(x);
    ox_tensor_free(y);
    ox_ctx_free(ctx);
}

Test(train_step, no_allocation_after_the_first_step)
{
    float losses[30];
    uint64_t extra;
    run(2, losses, 30, &extra);
    cr_assert_eq(extra, 0, "steps 2..30 made %llu allocations", (unsigned long long)extra);
    cr_assert_lt(losses[29], 0.7f * losses[0], "the loss went down: %g -> %g", losses[0], losses[29]);
}

Test(train_step, same_seed_same_threads_bit_identical_losses)
{
    float a[10], b[10];
    uint64_t e;
    run(2, a, 10, &e);
    run(2, b, 10, &e);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
}
