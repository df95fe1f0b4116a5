/* params_io.h - saving and loading a whole parameter list (param.h) as one safetensors file, matched by name.
 *
 * What any model built from nn/ needs to checkpoint itself: the file holds one F32 tensor per parameter
 * under the parameter's name, plus the caller's metadata strings; it is written by atomic replacement
 * (tensor/io.h: a failed or killed save leaves the previous file). Loading fills an already built list (the
 * model's constructor made the tensors): every parameter must be in the file with its exact shape; a
 * tensor of the file that no parameter names is an error unless the caller's filter accepts it (e.g. the
 * causal-mask buffers another framework stores beside the weights).
 *
 *   ox_st_kv meta[] = { { "arch", "gpt" } };
 *   ox_nn_params_save(ctx, &ps, "gpt.safetensors", meta, 1);
 *   ox_st_meta *m = NULL;
 *   if (ox_nn_params_load(ctx, &ps, "gpt.safetensors", NULL, NULL, &m)) puts(ox_ctx_message(ctx));
 *   ox_st_meta_free(m);
 */
#ifndef OX_NN_PARAMS_IO_H
#define OX_NN_PARAMS_IO_H

#include "nn/param.h"
#include "tensor/safetensors.h"

/* Writes every parameter of ps (F32, its shape, under its name) and meta[0..n_meta-1] to path, atomically.
 * Errors: those of ox_safetensors_write (OX_ERR_IO naming the path, OX_ERR_ARG ...). */
ox_status ox_nn_params_save(ox_ctx *ctx, const ox_nn_params *ps, const char *path, const ox_st_kv *meta,
                            int64_t n_meta);

/* Which tensors of a file that are not parameters may be ignored: nonzero = ignore `name`. */
typedef int (*ox_nn_params_filter)(const char *name, void *user);

/* Fills every parameter of ps from path. allow_extra (may be NULL: none allowed) decides about tensors of the
 * file that no parameter names. *meta_out (may be NULL) receives the file's metadata (ox_st_meta_free).
 * Errors (OX_ERR_FORMAT, the message naming the file and the first mismatch in the parameter list's order:
 * "missing tensor 'x'", "tensor 'x' has shape [2, 3], the parameter [3, 2]", "unexpected tensor 'y'"), or
 * those of the reader. On error the parameters may be partly filled. */
ox_status ox_nn_params_load(ox_ctx *ctx, ox_nn_params *ps, const char *path, ox_nn_params_filter allow_extra,
                            void *user, ox_st_meta **meta_out);

#endif
