/* report.h - the parameter report of MODELS.md 7.6: how many parameters are shared by every mode and how
 * many belong to each mixer core, and the sharing fractions.
 *
 *   shared       embed, norm_f and per layer norm1, norm2, the mixer trunk (k/v/g/o projections, k/v convs,
 *                mixer.norm) and the MLP: everything every mode uses
 *   attn / gdn / mamba2   the mixer-specific parameters (layers.{i}.mixer.attn.*, .gdn.*, .mamba2.*)
 *   r_m          = shared / (shared + specific_m) for each mode m the model can run (0 when it cannot)
 *   whole        = shared / total (the tied head adds nothing)
 *
 * Two ways to get it: from a model's parameter list (classified by name), or from a configuration alone
 * with the per-layer formulas of MODELS 7.6 (no allocation); the two agree (tested).
 *
 *   ox_oryx_report r;
 *   ox_oryx_report_model(&model, &r);
 *   char buf[512];
 *   ox_oryx_report_format(&r, buf, sizeof buf);      // the caller prints buf
 */
#ifndef OX_ORYX_REPORT_H
#define OX_ORYX_REPORT_H

#include <stddef.h>

#include "models/oryx/model.h"

typedef struct ox_oryx_report {
    int64_t total;          /* every parameter */
    int64_t shared;         /* used by every mode */
    int64_t attn, gdn, mamba2;              /* mixer-specific, summed over layers */
    double r_attn, r_gdn, r_mamba2;         /* per-mode sharing fraction r_m; 0 if the model has no such core */
    double whole;                           /* shared / total */
} ox_oryx_report;

/* Classifies m's parameters by name. */
void ox_oryx_report_model(const ox_oryx_model *m, ox_oryx_report *r);
/* The same numbers from the configuration (MODELS 7.6 formulas, conv kernel 4). cfg must be valid. */
void ox_oryx_report_config(const ox_oryx_config *cfg, ox_oryx_report *r);

/* Writes a multi-line human-readable report into buf (at most n bytes, NUL-terminated when n > 0). Returns
 * the length the full text needs (excluding the NUL), like snprintf. */
int ox_oryx_report_format(const ox_oryx_report *r, char *buf, size_t n);

#endif
