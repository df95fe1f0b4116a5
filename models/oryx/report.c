/* report.c - the parameter report of MODELS.md 7.6 (see report.h). */
#include "models/oryx/report.h"

#include <stdio.h>
#include <string.h>

static void finish(ox_oryx_report *r)
{
    r->total = r->shared + r->attn + r->gdn + r->mamba2;
    r->r_attn = r->attn ? (double)r->shared / (double)(r->shared + r->attn) : 0.0;
    r->r_gdn = r->gdn ? (double)r->shared / (double)(r->shared + r->gdn) : 0.0;
    r->r_mamba2 = r->mamba2 ? (double)r->shared / (double)(r->shared + r->mamba2) : 0.0;
    r->whole = r->total ? (double)r->shared / (double)r->total : 0.0;
}

void ox_oryx_report_model(const ox_oryx_model *m, ox_oryx_report *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < m->params.n; i++) {
        const char *name = m->params.items[i].name;
        int64_t n = ox_tensor_numel(m->params.items[i].t);
        if (strstr(name, ".mixer.attn."))
            r->attn += n;
        else if (strstr(name, ".mixer.gdn."))
            r->gdn += n;
        else if (strstr(name, ".mixer.mamba2."))
            r->mamba2 += n;
        else
            r->shared += n;
    }
    finish(r);
}

void ox_oryx_report_config(const ox_oryx_config *c, ox_oryx_report *r)
{
    memset(r, 0, sizeof *r);
    const int64_t D = c->d_model, H = c->n_heads, dk = c->d_k, dv = c->d_v, F = c->mlp_hidden, K = 4;
    /* per layer (MODELS 7.6) */
    const int64_t shared = 2 * D + D * H * dk + 2 * D * H * dv + H * dv * D + K * H * (dk + dv) + H * dv + 3 * D * F;
    const int64_t attn = H * dk * D;
    const int64_t gdn = H * dk * D + K * H * dk + 2 * H * D + 2 * H;
    const int64_t mamba2 = H * dk * D + K * H * dk + H * D + 3 * H;
    r->shared = c->vocab * D + D;     /* global: embed + norm_f (+ lm_head.bias) */
    if (c->logit_bias_scale > 0)
        r->shared += c->vocab;
    for (int64_t l = 0; l < c->n_layers; l++) {
        unsigned cores = ox_oryx_layer_cores(c, l);
        r->shared += shared;
        r->attn += cores & OX_NN_CORE_ATTN ? attn : 0;
        r->gdn += cores & OX_NN_CORE_GDN ? gdn : 0;
        r->mamba2 += cores & OX_NN_CORE_MAMBA2 ? mamba2 : 0;
    }
    finish(r);
}

int ox_oryx_report_format(const ox_oryx_report *r, char *buf, size_t n)
{
    char modes[256] = "";
    size_t k = 0;
    const struct { const char *name; int64_t spec; double frac; } m[] = {
        { "attention", r->attn, r->r_attn }, { "gdn", r->gdn, r->r_gdn }, { "mamba2", r->mamba2, r->r_mamba2 },
    };
    for (int i = 0; i < 3; i++)
        if (m[i].spec)
            k += (size_t)snprintf(modes + k, sizeof modes - k, "  %-10s specific %12lld   r = %.4f\n", m[i].name,
                                  (long long)m[i].spec, m[i].frac);
    return snprintf(buf, n,
                    "parameters: total %lld, shared %lld (whole-model fraction %.4f)\n"
                    "%s",
                    (long long)r->total, (long long)r->shared, r->whole, modes);
}
