/* test_oryx_golden.c - whole Oryx models (L = 2, attention + GDN or Mamba-2 in each layer, a mixed mode map
 * shared by both layers) against the golden vectors of an independent PyTorch implementation
 * (tests/data/golden/README.md): the checkpoint is loaded with ox_oryx_load, the tokens are run with the
 * file's mode map, and
 *   - the logits at every position and the loss: rel <= 1e-4,
 *   - the gradient of the loss w.r.t. every checkpoint tensor: rel <= 1e-3,
 * the README's tolerances (fp32 rounding is ~1e-7 per op; gradients are sums over many tokens and lose more
 * to cancellation; a missing term or a wrong convention shows up as 1e-2 or worse). The golden loss is
 * over a row of T tokens: inputs 0..T-2, targets 1..T-1, which is ox_oryx_loss on the stored row. */
#include "test_util.h"

#include "models/oryx/checkpoint.h"
#include "tensor/safetensors.h"

#include <stdio.h>
#include <string.h>

static void run_model_golden(const char *data_file)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/golden/%s", data_file);
    ox_ctx *ctx = test_ctx();
    ox_st_file *f = ox_safetensors_load(ctx, path);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    const char *ckpt = ox_st_file_meta(f, "checkpoint");
    cr_assert_not_null(ckpt);
    snprintf(path, sizeof path, "tests/data/golden/%s", ckpt);
    ox_oryx_model m;
    int64_t step = 0, seq = 0;
    assert_ok(ctx, ox_oryx_load(ctx, path, &m, &step, &seq));
    cr_assert_eq(step, -1, "the golden checkpoint has no step");
    cr_assert_eq(m.cfg.n_layers, 2);
    cr_assert_eq(m.cfg.kinds[0], OX_ORYX_KIND_ORYX);

    ox_tensor *tokens = ox_st_file_get(f, "tokens"), *mode = ox_st_file_get(f, "mode_map");
    cr_assert_not_null(tokens);
    cr_assert_not_null(mode);
    /* logits at every position of the stored row (no tape) */
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *logits = ox_oryx_forward(ctx, &m, tokens, mode);
    ox_ag_set_grad_enabled(ctx, prev);
    assert_rel(ctx, data_file, "logits", logits, ox_st_file_get(f, "logits"), 1e-4);
    if (ox_st_file_get(f, "step.logits"))   /* equal to logits in the file; checks our reading of it */
        assert_rel(ctx, data_file, "step.logits", logits, ox_st_file_get(f, "step.logits"), 1e-4);

    /* the loss over the row and its gradients */
    ox_tensor *loss = ox_oryx_loss(ctx, &m, tokens, mode, NULL);
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    assert_rel(ctx, data_file, "loss", loss, ox_st_file_get(f, "loss"), 1e-4);
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    int n_grad = 0;
    for (int i = 0; i < m.params.n; i++) {
        char gname[300];
        snprintf(gname, sizeof gname, "grad.%s", m.params.items[i].name);
        assert_rel(ctx, data_file, gname, m.params.items[i].t->grad, ox_st_file_get(f, gname), 1e-3);
        n_grad++;
    }
    /* and the file has no gradient the model lacks */
    int n_file = 0;
    for (int64_t i = 0; i < f->n; i++)
        n_file += strncmp(f->entries[i].name, "grad.", 5) == 0;
    cr_assert_eq(n_grad, n_file, "%s: %d model gradients vs %d in the file", data_file, n_grad, n_file);
    ox_oryx_model_free(&m);
    ox_st_file_free(f);
    ox_ctx_free(ctx);
}

Test(oryx_golden, gdn_T37) { run_model_golden("model_oryx-gdn.data.safetensors"); }
Test(oryx_golden, gdn_T150) { run_model_golden("model_oryx-gdn_T150.data.safetensors"); }
Test(oryx_golden, mamba2_T37) { run_model_golden("model_oryx-mamba2.data.safetensors"); }
Test(oryx_golden, mamba2_T150) { run_model_golden("model_oryx-mamba2_T150.data.safetensors"); }
