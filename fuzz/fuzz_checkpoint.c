/* fuzz_checkpoint.c - libFuzzer harness for the checkpoint loaders (models/oryx/checkpoint.h, train.h): every
 * input is a file given as a model checkpoint to ox_oryx_load and as a training-state file to
 * ox_oryx_train_read_settings, ox_oryx_train_read_user and ox_oryx_train_resume (on a fixed small corpus).
 * Each must return a status without a crash, leak, hang or undefined behaviour; what loads must be usable:
 * a loaded model is freed, a resumed trainer is freed. */
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "models/oryx/checkpoint.h"
#include "models/oryx/train.h"
#include "tensor/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *model_path = fuzz_scratch("ck", ".safetensors");
    char prefix[512], model[512], state[512];
    snprintf(model, sizeof model, "%s", model_path);
    snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(model) - strlen(".safetensors")), model);
    snprintf(state, sizeof state, "%s.state.safetensors", prefix);
    if (fuzz_write(model, data, size) || fuzz_write(state, data, size))
        return 0;
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 0;
    ox_ctx_set_threads(ctx, 1);
    ox_oryx_model m;
    int64_t step, seq;
    ox_oryx_load(ctx, model, &m, &step, &seq);
    ox_oryx_model_free(&m);
    ox_ctx_clear_error(ctx);

    ox_oryx_train_config c;
    ox_oryx_train_read_settings(ctx, prefix, &c, &step);
    ox_ctx_clear_error(ctx);
    ox_free(ox_oryx_train_read_user(ctx, prefix, "history"));
    ox_ctx_clear_error(ctx);

    static uint8_t corpus[4096];
    for (size_t i = 0; i < sizeof corpus; i++)
        corpus[i] = (uint8_t)('a' + i * 7 % 26);
    ox_oryx_data d;
    if (ox_oryx_data_from_bytes(ctx, corpus, sizeof corpus, 8, &d) == OX_OK) {
        ox_oryx_trainer tr;
        ox_oryx_train_resume(ctx, prefix, &m, &d, &tr);
        ox_oryx_trainer_free(&tr);
        ox_oryx_model_free(&m);
    }
    ox_oryx_data_free(&d);
    ox_ctx_free(ctx);
    unlink(model);
    unlink(state);
    return 0;
}
