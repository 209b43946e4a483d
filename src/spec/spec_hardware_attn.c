/* spec_hardware_attn.c - the hardware spec's attention-by-sequence-length table ("attn_eff_seq": an array of
 * [T, efficiency, backward/forward time] triples, T ascending; written by `umoe bench`, docs/formats.md) and
 * its lookup. The attention core's efficiency depends mostly on the sequence length (the kernel works in
 * blocks of rows: at T = 128 one block, small GEMMs) and its backward/forward ratio too (measured here 1.6
 * at T = 128, 2.2 at T = 1024, against the 2.5 of FlashAttention-2's FLOP count), so one attn_eff measured at
 * T = 1024 mis-states short sequences (docs/bench.md).
 * Does not: read any other field (spec_hardware.c) or model a cost (src/sim). */
#include <math.h>
#include "spec_internal.h"

umoe_status spec_attn_seq_from_json(const void *obj, const char *file, spec_hardware *h) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, "attn_eff_seq");
    h->n_attn_seq = 0;
    if (!t || cJSON_IsNull(t)) return UMOE_OK;
    if (!cJSON_IsArray(t))
        return umoe_fail("%s: field \"attn_eff_seq\" must be an array of [T, efficiency, backward/forward] triples",
                         file);
    int n = cJSON_GetArraySize(t);
    if (n > SPEC_EFF_MAX)
        return umoe_fail("%s: field \"attn_eff_seq\" has %d points (at most %d)", file, n, SPEC_EFF_MAX);
    int i = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, t) {
        double v[3];
        int ok = cJSON_IsArray(pt) && cJSON_GetArraySize(pt) == 3;
        for (int k = 0; ok && k < 3; k++) {
            const cJSON *x = cJSON_GetArrayItem(pt, k);
            ok = cJSON_IsNumber(x) && isfinite(x->valuedouble);
            if (ok) v[k] = x->valuedouble;
        }
        if (!ok)
            return umoe_fail("%s: field \"attn_eff_seq\" point %d must be a triple [T, efficiency, backward/forward] "
                             "of numbers", file, i);
        if (!(v[0] >= 1) || (i && !(v[0] > h->attn_seq_T[i - 1])))
            return umoe_fail("%s: field \"attn_eff_seq\" point %d: T = %g must be >= 1 and larger than the previous "
                             "point's (points sorted by T)", file, i, v[0]);
        if (!(v[1] >= 1e-3 && v[1] <= 1))
            return umoe_fail("%s: field \"attn_eff_seq\" point %d: efficiency = %g out of range (allowed [0.001, 1])",
                             file, i, v[1]);
        if (!(v[2] > 0 && v[2] <= 20))
            return umoe_fail("%s: field \"attn_eff_seq\" point %d: backward/forward = %g out of range (allowed (0, 20])",
                             file, i, v[2]);
        h->attn_seq_T[i] = v[0];
        h->attn_seq_eff[i] = v[1];
        h->attn_seq_bwd[i] = v[2];
        i++;
    }
    h->n_attn_seq = n;
    return UMOE_OK;
}

int spec_attn_at(const spec_hardware *h, double T, double default_bwd_over_fwd, double *eff, double *bwd_over_fwd) {
    int n = h->n_attn_seq;
    if (n <= 0) {
        *eff = h->attn_eff;
        *bwd_over_fwd = default_bwd_over_fwd;
        return 0;
    }
    if (n == 1 || T <= h->attn_seq_T[0]) {
        *eff = h->attn_seq_eff[0];
        *bwd_over_fwd = h->attn_seq_bwd[0];
        return 1;
    }
    if (T >= h->attn_seq_T[n - 1]) {
        *eff = h->attn_seq_eff[n - 1];
        *bwd_over_fwd = h->attn_seq_bwd[n - 1];
        return 1;
    }
    int i = 1;
    while (h->attn_seq_T[i] < T) i++;
    double f = log(T / h->attn_seq_T[i - 1]) / log(h->attn_seq_T[i] / h->attn_seq_T[i - 1]);
    *eff = h->attn_seq_eff[i - 1] + f * (h->attn_seq_eff[i] - h->attn_seq_eff[i - 1]);
    *bwd_over_fwd = h->attn_seq_bwd[i - 1] + f * (h->attn_seq_bwd[i] - h->attn_seq_bwd[i - 1]);
    return 1;
}
