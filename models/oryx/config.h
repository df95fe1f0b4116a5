/* config.h - the configuration of an Oryx-family model: sizes, linear mixer, per-layer kind, conv activation;
 * the named presets (MODELS.md 7, 9), validation, and conversion to/from the checkpoint metadata strings of
 * MODELS.md 12.3.
 *
 * One configuration describes the whole family; every preset is just a setting of these fields:
 *   transformer     every layer ATTN, no linear mixer, identity conv activation
 *   gdn / mamba2    every layer LIN (that linear mixer); SiLU convs for GDN, identity for Mamba-2
 *   hybrid-gdn      layer l is ATTN iff l % 4 == 3, else LIN (MODELS 9; so no ATTN layer when L < 4)
 *   hybrid-mamba2   the same pattern with Mamba-2
 *   oryx-gdn        every layer holds attention + GDN and picks per token (mode map, MODELS 7)
 *   oryx-mamba2     the same with Mamba-2
 * Defaults (MODELS 1): V = 256, D = 256, L = 4, H = 4, dk = dv = 64, F = 32 * ceil(8D / 96) = 704.
 * Every preset has logit_bias_scale = 0 (no logit bias); setting it > 0 adds the learned logit bias of
 * model.h (lm_head.bias, issue 14: it lets attention above layer 0 learn recall).
 *
 *   ox_oryx_config cfg;
 *   ox_oryx_config_preset(ctx, "oryx-gdn", 4, &cfg);          // L = 4
 *   cfg.d_model = 128; cfg.mlp_hidden = ox_oryx_default_mlp_hidden(128);
 *   if (ox_oryx_config_validate(ctx, &cfg)) puts(ox_ctx_message(ctx));
 */
#ifndef OX_ORYX_CONFIG_H
#define OX_ORYX_CONFIG_H

#include "nn/shortconv.h"
#include "tensor/safetensors.h"

#define OX_ORYX_MAX_LAYERS 64

/* The linear mixer of the family (MODELS 5, 6); NONE for a pure Transformer. */
typedef enum ox_oryx_linear {
    OX_ORYX_LINEAR_NONE = 0,
    OX_ORYX_LINEAR_GDN = 1,
    OX_ORYX_LINEAR_MAMBA2 = 2
} ox_oryx_linear;

/* What a layer can run: both cores with a per-token choice (ORYX), attention only (ATTN), the linear mixer
 * only (LIN). A layer carries only the parameters of the cores it can run (MODELS 9). */
typedef enum ox_oryx_kind { OX_ORYX_KIND_ORYX = 0, OX_ORYX_KIND_ATTN = 1, OX_ORYX_KIND_LIN = 2 } ox_oryx_kind;

typedef struct ox_oryx_config {
    int64_t vocab;          /* V */
    int64_t d_model;        /* D */
    int64_t n_layers;       /* L, 1 .. OX_ORYX_MAX_LAYERS */
    int64_t n_heads;        /* H */
    int64_t d_k, d_v;       /* dk (even: RoPE pairs halves), dv */
    int64_t mlp_hidden;     /* F */
    ox_oryx_linear linear;
    ox_nn_act conv_act;     /* activation after the k/v (and Mamba-2 q) convs: SiLU for the GDN family */
    ox_oryx_kind kinds[OX_ORYX_MAX_LAYERS];  /* kinds[0 .. n_layers-1] */
    double logit_bias_scale;    /* s: 0 = no logit bias (every preset); s > 0: logits += s * lm_head.bias, a
                                   learned [V] bias initialised to 0 (model.h); OX_ORYX_LOGIT_BIAS_SCALE is the
                                   value measured to work */
} ox_oryx_config;

/* The logit-bias multiplier s that lets a layer-axis hybrid's upper attention layer learn MQAR (issue 14):
 * with Adam every entry of lm_head.bias moves about lr per step, so the logits move s * lr; s = 100 lets
 * the bias take the "the answer is a value token" prior before the lower layers write it into the residual
 * stream as a vector shared by every position (s = 1, 10 and 30 are too slow; see model.h). */
#define OX_ORYX_LOGIT_BIAS_SCALE 100.0

/* F = 32 * ceil(8D / (3 * 32)) (MODELS 1). */
int64_t ox_oryx_default_mlp_hidden(int64_t d_model);

/* Fills cfg with the named preset at the default sizes and n_layers layers (n_layers <= 0: the default 4).
 * Names: transformer, gdn, mamba2, hybrid-gdn, hybrid-mamba2, oryx-gdn, oryx-mamba2. OX_ERR_ARG on an
 * unknown name (the message lists the known ones) or n_layers > OX_ORYX_MAX_LAYERS. */
ox_status ox_oryx_config_preset(ox_ctx *ctx, const char *name, int64_t n_layers, ox_oryx_config *cfg);

/* Checks every field: sizes > 0, dk even, L in 1..OX_ORYX_MAX_LAYERS, known enums, that no layer needs
 * a linear mixer when linear is NONE, and logit_bias_scale finite and >= 0. OX_OK, or OX_ERR_ARG with a
 * message naming the field and value. */
ox_status ox_oryx_config_validate(ox_ctx *ctx, const ox_oryx_config *cfg);

/* The checkpoint "arch" string (MODELS 12.3) of a configuration: "transformer" when every layer is ATTN,
 * "gdn"/"mamba2" when every layer is LIN, "oryx" when every layer is ORYX, "hybrid" otherwise. */
const char *ox_oryx_config_arch(const ox_oryx_config *cfg);

/* Names of the enum values as used in the metadata: "none"/"gdn"/"mamba2", "oryx"/"attn"/"lin". */
const char *ox_oryx_linear_name(ox_oryx_linear l);
const char *ox_oryx_kind_name(ox_oryx_kind k);

/* The metadata strings of MODELS 12.3 for a configuration: kv[0 .. n-1] point into store (the struct
 * owns everything; no allocation). */
#define OX_ORYX_META_KEYS 17
typedef struct ox_oryx_meta {
    ox_st_kv kv[OX_ORYX_META_KEYS];
    int n;
    char store[OX_ORYX_META_KEYS * 24 + OX_ORYX_MAX_LAYERS * 5];
} ox_oryx_meta;

/* Validates cfg, then fills out. The key logit_bias_scale (the shortest "%.17g" text of s) is written only
 * when s > 0, so a model without the bias has exactly the keys of MODELS 12.3. */
ox_status ox_oryx_config_to_meta(ox_ctx *ctx, const ox_oryx_config *cfg, ox_oryx_meta *out);

/* Reads a configuration from metadata strings (n pairs kv[0..n-1]; other keys are ignored). Every key of
 * MODELS 12.3 must be present and well formed: format_version "1", integers in decimal, layer_kinds with
 * n_layers entries, conv_kernel 4, rope_base 10000, norm_eps 1e-6, chunk_size 64 (the values this library
 * implements), and arch equal to the one the layer kinds imply. logit_bias_scale is optional: absent means
 * 0, present it must be a whole decimal number, finite and >= 0. The result is validated.
 * OX_ERR_FORMAT naming the key and value on any mismatch. */
ox_status ox_oryx_config_from_meta(ox_ctx *ctx, const ox_st_kv *kv, int64_t n, ox_oryx_config *cfg);

#endif
