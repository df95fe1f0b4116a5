/* checkpoint.h - saving and loading an Oryx-family model as safetensors (MODELS.md 12).
 *
 * The file holds exactly the tensor names of MODELS 12.2 (the model's parameter list) as F32, and the
 * configuration as the "__metadata__" strings of MODELS 12.3, plus "step" and "train_seq_len". Writing is
 * atomic (ox_safetensors_write: temp file, fsync, rename). Loading reads the metadata first, builds the
 * configuration from it, and then reads the tensors with ox_safetensors_read_strict against the list that
 * configuration implies, so a file for another model (wrong arch, sizes, a missing or extra tensor, a wrong
 * shape) fails with a message naming the difference and the file.
 *
 *   ox_oryx_save(ctx, &model, "run/model.safetensors", step, T);
 *   ox_oryx_model loaded; int64_t step, seq;
 *   if (ox_oryx_load(ctx, "run/model.safetensors", &loaded, &step, &seq)) puts(ox_ctx_message(ctx));
 *   ox_oryx_model_free(&loaded);
 */
#ifndef OX_ORYX_CHECKPOINT_H
#define OX_ORYX_CHECKPOINT_H

#include "models/oryx/model.h"

/* Writes every parameter of m and its configuration to path. step and train_seq_len (>= 0) go into the
 * metadata as decimal strings. Returns OX_OK or the recorded error (OX_ERR_IO, OX_ERR_ARG ...). */
ox_status ox_oryx_save(ox_ctx *ctx, const ox_oryx_model *m, const char *path, int64_t step, int64_t train_seq_len);

/* Reads only the "__metadata__" strings of a safetensors file (ox_safetensors_read_meta: the whole header
 * is validated, no tensor data is read) and converts them to a configuration (ox_oryx_config_from_meta). OX_ERR_IO / OX_ERR_FORMAT on failure. */
ox_status ox_oryx_read_config(ox_ctx *ctx, const char *path, ox_oryx_config *cfg);

/* Builds *m from the configuration in the file's metadata and fills its parameters from the file (strict:
 * exactly the expected names, F32, expected shapes). step / train_seq_len (may be NULL) receive the
 * metadata values, or -1 when the file has none (e.g. a checkpoint written by another tool). On error *m
 * is left empty (safe to free) and the error names the file. The model is owned by the caller
 * (ox_oryx_model_free). */
ox_status ox_oryx_load(ox_ctx *ctx, const char *path, ox_oryx_model *m, int64_t *step, int64_t *train_seq_len);

#endif
