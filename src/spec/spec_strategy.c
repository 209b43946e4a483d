/* spec_strategy.c - the parallel strategy: defaults, JSON loader (keys = spec_strategy field names, see
 * docs/formats.md), the recompute policy parser/formatter and the layer split over pipeline chunks.
 * Does not: check the strategy against a model and a device count (spec_strategy_check.c). */
#include <ctype.h>
#include <string.h>
#include "spec_internal.h"

const char *const spec_recompute_names[] = {"norm", "activation", "attn_core", "mla_up", "expert_fc1", "permute",
                                            "full", NULL};
const char *const spec_schedule_names[] = {"1f1b", "interleaved", "zb1p", "dualpipe", NULL};
const char *const spec_a2a_names[] = {"flat", "hierarchical", NULL};
const char *const spec_precision_names[] = {"bf16", "fp16", "fp8", NULL};

static const char *const strategy_keys[] = {
    "name", "tp", "sp", "cp", "pp", "vpp", "ep", "etp", "dp", "zero1", "mbs", "gbs", "recompute",
    "offload_optimizer", "offload_activations", "schedule", "a2a", "overlap_tp", "overlap_ep", "overlap_dp",
    "overlap_pp", "imbalance", "hist", "precision", "pad_layers", NULL};

void spec_strategy_defaults(spec_strategy *s) {
    memset(s, 0, sizeof *s);
    s->tp = s->cp = s->pp = s->vpp = s->ep = s->etp = 1;
    s->dp = 0; /* derive from the device count */
    s->mbs = 1;
    s->gbs = 0; /* must be given (file or command line) before spec_strategy_check */
    s->schedule = SPEC_SCHED_1F1B;
    s->a2a = SPEC_A2A_FLAT;
    s->imbalance = 1.0;
    s->precision = SPEC_PREC_BF16;
    s->precision_bits = 16;
}

static int rc_bit(const char *w) {
    if (!strcmp(w, "selective")) return SPEC_RC_SELECTIVE;
    for (int i = 0; spec_recompute_names[i]; i++)
        if (!strcmp(w, spec_recompute_names[i])) return 1 << i;
    return 0;
}

umoe_status spec_recompute_parse(const char *text, const char *file, const char *field, unsigned *out) {
    char buf[512], word[64];
    umoe_strlcpy(buf, text, sizeof buf);
    unsigned rc = 0;
    int n = 0;
    for (const char *p = buf;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && isspace((unsigned char)t[-1])) t--;
        size_t len = (size_t)(t - p);
        if (len == 0 || len >= sizeof word) goto bad;
        memcpy(word, p, len);
        word[len] = 0;
        for (char *c = word; *c; c++) *c = (char)tolower((unsigned char)*c);
        if (!strcmp(word, "none")) {
            if (n || *e) goto bad; /* "none" only alone */
        } else {
            int b = rc_bit(word);
            if (!b) goto bad;
            rc |= (unsigned)b;
        }
        n++;
        if (!*e) break;
        p = e + 1;
    }
    *out = rc;
    return UMOE_OK;
bad:;
    char list[256] = "";
    for (int i = 0; spec_recompute_names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, spec_recompute_names[i], sizeof list - strlen(list) - 1);
    }
    return umoe_fail("%s: field \"%s\" = \"%s\" is not allowed (none, selective, full, or a comma list of: %s)",
                     file, field, text, list);
}

void spec_recompute_format(unsigned rc, char *out, size_t n) {
    if (!n) return;
    out[0] = 0;
    if (rc == 0) { umoe_strlcpy(out, "none", n); return; }
    if (rc & SPEC_RC_FULL) { umoe_strlcpy(out, "full", n); return; }
    if (rc == SPEC_RC_SELECTIVE) { umoe_strlcpy(out, "selective", n); return; }
    size_t len = 0;
    for (int i = 0; spec_recompute_names[i]; i++) {
        if (!(rc & (1u << i))) continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", spec_recompute_names[i]);
        if (w < 0 || (size_t)w >= n - len) { out[len] = 0; return; }
        len += (size_t)w;
    }
}

static umoe_status get_recompute(const cJSON *o, const char *file, unsigned *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "recompute");
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    if (cJSON_IsString(it)) return spec_recompute_parse(it->valuestring, file, "recompute", out);
    if (!cJSON_IsArray(it))
        return umoe_fail("%s: field \"recompute\" must be a string (none, selective, full, a comma list) or an "
                         "array of module names", file);
    unsigned rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        unsigned b = 0;
        if (!cJSON_IsString(e))
            return umoe_fail("%s: field \"recompute\": every array element must be a module name string", file);
        umoe_status s = spec_recompute_parse(e->valuestring, file, "recompute", &b);
        if (s) return s;
        rc |= b;
    }
    *out = rc;
    return UMOE_OK;
}

static umoe_status get_hist(const cJSON *o, const char *file, spec_strategy *s) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "hist");
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    if (!cJSON_IsArray(it)) return umoe_fail("%s: field \"hist\" must be an array of per-expert loads", file);
    int n = cJSON_GetArraySize(it);
    int max = (int)(sizeof s->hist / sizeof s->hist[0]);
    if (n < 1 || n > max)
        return umoe_fail("%s: field \"hist\" has %d entries (allowed 1..%d, one per routed expert)", file, n, max);
    int i = 0;
    double sum = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0) || e->valuedouble > 1e300)
            return umoe_fail("%s: field \"hist\" entry %d must be a number >= 0 (a relative expert load)", file, i);
        s->hist[i++] = e->valuedouble;
        sum += e->valuedouble;
    }
    if (!(sum > 0)) return umoe_fail("%s: field \"hist\" sums to 0 (at least one expert must get load)", file);
    s->n_hist = n;
    return UMOE_OK;
}

umoe_status spec_strategy_from_json(const void *obj, const char *file, spec_strategy *s) {
    const cJSON *o = obj;
    spec_strategy_defaults(s);
    umoe_status st = json_check_known(o, file, strategy_keys);
    if (st) return st;
    if ((st = spec_json_check_dups(o, file))) return st;
    spec_name_from_path(file, s->name, sizeof s->name);
    const int M = 1 << 24;
    int sched = SPEC_SCHED_1F1B, a2a = SPEC_A2A_FLAT, prec = SPEC_PREC_BF16;
    if ((st = json_get_str_opt(o, file, "name", s->name, sizeof s->name))) return st;
    if ((st = spec_json_int(o, file, "tp", 1, M, &s->tp))) return st;
    if ((st = spec_json_flag(o, file, "sp", &s->sp))) return st;
    if ((st = spec_json_int(o, file, "cp", 1, M, &s->cp))) return st;
    if ((st = spec_json_int(o, file, "pp", 1, M, &s->pp))) return st;
    if ((st = spec_json_int(o, file, "vpp", 1, M, &s->vpp))) return st;
    if ((st = spec_json_int(o, file, "ep", 1, M, &s->ep))) return st;
    if ((st = spec_json_int(o, file, "etp", 1, M, &s->etp))) return st;
    if ((st = spec_json_int(o, file, "dp", 0, M, &s->dp))) return st;
    if ((st = spec_json_flag(o, file, "zero1", &s->zero1))) return st;
    if ((st = spec_json_int(o, file, "mbs", 1, M, &s->mbs))) return st;
    if ((st = spec_json_int(o, file, "gbs", 0, 1 << 30, &s->gbs))) return st;
    if ((st = get_recompute(o, file, &s->recompute))) return st;
    if ((st = spec_json_flag(o, file, "offload_optimizer", &s->offload_optimizer))) return st;
    if ((st = spec_json_flag(o, file, "offload_activations", &s->offload_activations))) return st;
    if ((st = json_get_enum_opt(o, file, "schedule", spec_schedule_names, &sched))) return st;
    if ((st = json_get_enum_opt(o, file, "a2a", spec_a2a_names, &a2a))) return st;
    if ((st = spec_json_flag(o, file, "overlap_tp", &s->overlap_tp))) return st;
    if ((st = spec_json_flag(o, file, "overlap_ep", &s->overlap_ep))) return st;
    if ((st = spec_json_flag(o, file, "overlap_dp", &s->overlap_dp))) return st;
    if ((st = spec_json_flag(o, file, "overlap_pp", &s->overlap_pp))) return st;
    if ((st = json_get_num_opt(o, file, "imbalance", 1.0, 1e6, &s->imbalance))) return st;
    if ((st = get_hist(o, file, s))) return st;
    if ((st = json_get_enum_opt(o, file, "precision", spec_precision_names, &prec))) return st;
    if ((st = spec_json_flag(o, file, "pad_layers", &s->pad_layers))) return st;
    s->schedule = (spec_schedule)sched;
    s->a2a = (spec_a2a)a2a;
    s->precision = (spec_precision)prec;
    s->precision_bits = prec == SPEC_PREC_FP8 ? 8 : 16;
    return UMOE_OK;
}

umoe_status spec_strategy_load(const char *path_or_name, spec_strategy *s) {
    char path[4096];
    if (!spec_resolve(path_or_name, "strategies", path, sizeof path)) return UMOE_EINPUT;
    cJSON *o = json_load_file(path);
    if (!o) return UMOE_EINPUT;
    umoe_status st = spec_strategy_from_json(o, path, s);
    cJSON_Delete(o);
    return st;
}

int spec_chunk_layers(const spec_strategy *s, const spec_model *m, int c) {
    int n = s->pp * s->vpp;
    if (n < 1 || c < 0 || c >= n) return 0;
    int ceil_l = (m->L + n - 1) / n;
    int r = n * ceil_l - m->L; /* chunks holding one layer fewer */
    /* position of chunk c in the order last, first, second-to-last, second, ... */
    int from_end = n - 1 - c;
    int rank = from_end <= c ? 2 * from_end : 2 * c + 1;
    return rank < r ? ceil_l - 1 : ceil_l;
}
