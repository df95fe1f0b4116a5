/* score.c - next-byte loss of a model over a text, window by window (cli.h cli_score): what `oryx eval`
 * reports and what `oryx train` uses for its validation loss. */
#include "autograd/tape.h"
#include "cli/cli.h"

/* Loss summed over `nb` windows of n bytes each starting at data + first * T; windows are sequences
 * first .. first+nb-1 of the spec. */
static ox_status score_batch(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *data, int64_t T, int64_t first,
                             int64_t nb, int64_t n, const cli_spec *spec, uint64_t seed, double *nats)
{
    ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(nb, n - 1));
    ox_tensor *tg = ox_tensor_empty(ctx, OX_I32, OX_DIMS(nb, n - 1));
    ox_tensor *mode = ox_tensor_empty(ctx, OX_I32, OX_DIMS(nb, n - 1));
    if (!in || !tg || !mode)
        return ox_ctx_status(ctx);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = data + (first + b) * T;
        int32_t *pi = ox_tensor_i32(in) + b * (n - 1), *pt = ox_tensor_i32(tg) + b * (n - 1);
        for (int64_t t = 0; t < n - 1; t++) {
            pi[t] = w[t];
            pt[t] = w[t + 1];
        }
        cli_spec_fill(spec, seed, first + b, 0, n - 1, 0, ox_tensor_i32(mode) + b * (n - 1));
    }
    ox_tensor *loss = ox_oryx_loss_targets(ctx, m, in, tg, mode, -1, NULL);
    if (!loss)
        return ox_ctx_status(ctx);
    *nats += (double)ox_tensor_f32(loss)[0] * (double)(nb * (n - 1));
    return OX_OK;
}

ox_status cli_score(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *data, int64_t len, int64_t T,
                    const cli_spec *spec, uint64_t seed, int64_t batch, int64_t max_windows, double *nats,
                    int64_t *count)
{
    if (T < 2 || batch < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "score: window length %lld must be >= 2 and batch %lld >= 1",
                           (long long)T, (long long)batch);
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    int64_t n_full = len / T, rest = len % T;
    if (max_windows > 0 && n_full >= max_windows) {
        n_full = max_windows;
        rest = 0;
    }
    ox_status st = OX_OK;
    for (int64_t w = 0; w < n_full && st == OX_OK; w += batch) {
        int64_t nb = n_full - w < batch ? n_full - w : batch;
        st = score_batch(ctx, m, data, T, w, nb, T, spec, seed, nats);
        *count += nb * (T - 1);
        ox_ctx_reset(ctx);
    }
    if (st == OX_OK && rest >= 2) {     /* the shorter last window (a single byte predicts nothing) */
        st = score_batch(ctx, m, data, T, n_full, 1, rest, spec, seed, nats);
        *count += rest - 1;
        ox_ctx_reset(ctx);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    return st;
}
