/* spec_hardware.c - hardware (one device type + its node and network) and cluster (a hardware spec and a
 * device count) loaders, and the GEMM-efficiency interpolation. JSON keys are the spec_hardware field
 * names; units are SI: FLOP/s, bytes, bytes/s, seconds (docs/formats.md).
 * Does not: ship the hardware numbers (the configs/hardware presets) or model any cost (src/sim). */
#include <math.h>
#include <string.h>
#include "spec_internal.h"

static const char *const hw_keys[] = {
    "name", "peak_bf16", "peak_fp16", "peak_fp32", "peak_fp8", "hbm_bytes", "hbm_bw", "devices_per_node",
    "intra_bw", "intra_lat", "inter_bw", "inter_lat", "gemm_eff", "attn_eff", "mem_eff", "comm_eff_intra",
    "comm_eff_inter", "mem_reserved", "host_bw", "host_mem_bw", "cache_bw", "cache_bytes",
    "adamw_bw", "rank_time_mean", "rank_time_max", "oversub_wait", "attn_eff_seq", NULL};

static umoe_status get_eff_table(const cJSON *o, const char *file, spec_hardware *h) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "gemm_eff");
    if (!t || cJSON_IsNull(t)) return UMOE_OK;
    if (!cJSON_IsArray(t))
        return umoe_fail("%s: field \"gemm_eff\" must be an array of [flops, efficiency] pairs", file);
    int n = cJSON_GetArraySize(t);
    if (n > SPEC_EFF_MAX)
        return umoe_fail("%s: field \"gemm_eff\" has %d points (at most %d)", file, n, SPEC_EFF_MAX);
    int i = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, t) {
        const cJSON *a = cJSON_IsArray(pt) && cJSON_GetArraySize(pt) == 2 ? cJSON_GetArrayItem(pt, 0) : NULL;
        const cJSON *b = a ? cJSON_GetArrayItem(pt, 1) : NULL;
        if (!a || !b || !cJSON_IsNumber(a) || !cJSON_IsNumber(b))
            return umoe_fail("%s: field \"gemm_eff\" point %d must be a pair [flops, efficiency] of numbers", file, i);
        h->gemm_eff_flops[i] = a->valuedouble;
        h->gemm_eff[i] = b->valuedouble;
        i++;
    }
    h->n_gemm_eff = n;
    return UMOE_OK;
}

umoe_status spec_hardware_from_json(const void *obj, const char *file, spec_hardware *h) {
    const cJSON *o = obj;
    memset(h, 0, sizeof *h);
    umoe_status s = json_check_known(o, file, hw_keys);
    if (s) return s;
    if ((s = spec_json_check_dups(o, file))) return s;
    spec_name_from_path(file, h->name, sizeof h->name);
    h->attn_eff = h->mem_eff = h->comm_eff_intra = h->comm_eff_inter = 1.0;
    h->peak_fp16 = h->peak_fp32 = h->peak_fp8 = -1; /* -1: not given */
    if ((s = json_get_str_opt(o, file, "name", h->name, sizeof h->name))) return s;
    if ((s = json_get_num(o, file, "peak_bf16", 1e6, 1e18, &h->peak_bf16))) return s;
    if ((s = json_get_num_opt(o, file, "peak_fp16", 0, 1e18, &h->peak_fp16))) return s;
    if ((s = json_get_num_opt(o, file, "peak_fp32", 0, 1e18, &h->peak_fp32))) return s;
    if ((s = json_get_num_opt(o, file, "peak_fp8", 0, 1e18, &h->peak_fp8))) return s;
    if ((s = json_get_num(o, file, "hbm_bytes", 1e6, 1e14, &h->hbm_bytes))) return s;
    if ((s = json_get_num(o, file, "hbm_bw", 1e6, 1e15, &h->hbm_bw))) return s;
    long long dpn = 0;
    if ((s = json_get_int(o, file, "devices_per_node", 1, 1 << 20, &dpn))) return s;
    h->devices_per_node = (int)dpn;
    if ((s = json_get_num(o, file, "intra_bw", 1e3, 1e15, &h->intra_bw))) return s;
    if ((s = json_get_num(o, file, "intra_lat", 0, 1, &h->intra_lat))) return s;
    if ((s = json_get_num(o, file, "inter_bw", 1e3, 1e15, &h->inter_bw))) return s;
    if ((s = json_get_num(o, file, "inter_lat", 0, 1, &h->inter_lat))) return s;
    if ((s = get_eff_table(o, file, h))) return s;
    if ((s = json_get_num_opt(o, file, "attn_eff", 1e-3, 1, &h->attn_eff))) return s;
    if ((s = json_get_num_opt(o, file, "mem_eff", 1e-3, 1, &h->mem_eff))) return s;
    if ((s = json_get_num_opt(o, file, "comm_eff_intra", 1e-3, 1, &h->comm_eff_intra))) return s;
    if ((s = json_get_num_opt(o, file, "comm_eff_inter", 1e-3, 1, &h->comm_eff_inter))) return s;
    if ((s = json_get_num_opt(o, file, "mem_reserved", 0, 1e14, &h->mem_reserved))) return s;
    if ((s = json_get_num_opt(o, file, "host_bw", 0, 1e15, &h->host_bw))) return s;
    if ((s = json_get_num_opt(o, file, "host_mem_bw", 0, 1e15, &h->host_mem_bw))) return s;
    if ((s = json_get_num_opt(o, file, "cache_bw", 0, 1e15, &h->cache_bw))) return s;
    if ((s = json_get_num_opt(o, file, "cache_bytes", 0, 1e12, &h->cache_bytes))) return s;
    if ((s = json_get_num_opt(o, file, "adamw_bw", 0, 1e15, &h->adamw_bw))) return s;
    if ((s = json_get_num_opt(o, file, "rank_time_mean", 0, 100, &h->rank_time_mean))) return s;
    if ((s = json_get_num_opt(o, file, "rank_time_max", 0, 100, &h->rank_time_max))) return s;
    if ((s = json_get_num_opt(o, file, "oversub_wait", 0, 1, &h->oversub_wait))) return s;
    if ((s = spec_attn_seq_from_json(o, file, h))) return s;
    /* Defaults: fp16 runs at the bf16 rate (true of A100/H100/910B tensor cores); fp32 and fp8 absent = 0,
     * meaning "not supported / unknown" (a strategy asking for fp8 on such a device is rejected by the sim). */
    if (h->peak_fp16 < 0) h->peak_fp16 = h->peak_bf16;
    if (h->peak_fp32 < 0) h->peak_fp32 = 0;
    if (h->peak_fp8 < 0) h->peak_fp8 = 0;
    if ((s = spec_hardware_validate(h, file))) return s;
    spec_hardware_prepare(h);
    return UMOE_OK;
}

void spec_hardware_prepare(spec_hardware *h) {
    int n = h->n_gemm_eff < SPEC_EFF_MAX ? h->n_gemm_eff : SPEC_EFF_MAX;
    for (int i = 0; i < n; i++) {
        h->gemm_eff_lnr_src[i] = h->gemm_eff_flops[i];
        h->gemm_eff_lnr[i] = i ? log(h->gemm_eff_flops[i] / h->gemm_eff_flops[i - 1]) : 0;
    }
}

umoe_status spec_hardware_validate(const spec_hardware *h, const char *file) {
    if (!(h->peak_bf16 > 0)) return umoe_fail("%s: field \"peak_bf16\" = %g must be > 0 (FLOP/s)", file, h->peak_bf16);
    if (!(h->hbm_bytes > 0)) return umoe_fail("%s: field \"hbm_bytes\" = %g must be > 0 (bytes)", file, h->hbm_bytes);
    if (!(h->hbm_bw > 0)) return umoe_fail("%s: field \"hbm_bw\" = %g must be > 0 (bytes/s)", file, h->hbm_bw);
    if (h->devices_per_node < 1)
        return umoe_fail("%s: field \"devices_per_node\" = %d must be >= 1", file, h->devices_per_node);
    if (!(h->intra_bw > 0) || !(h->inter_bw > 0))
        return umoe_fail("%s: fields \"intra_bw\" and \"inter_bw\" must be > 0 (bytes/s per device per direction)",
                         file);
    if (h->mem_reserved >= h->hbm_bytes)
        return umoe_fail("%s: field \"mem_reserved\" = %g must be below hbm_bytes = %g", file, h->mem_reserved,
                         h->hbm_bytes);
    for (int i = 0; i < h->n_gemm_eff; i++) {
        if (!(h->gemm_eff_flops[i] > 0) || !isfinite(h->gemm_eff_flops[i]))
            return umoe_fail("%s: field \"gemm_eff\" point %d: flops = %g must be > 0", file, i, h->gemm_eff_flops[i]);
        if (!(h->gemm_eff[i] > 0 && h->gemm_eff[i] <= 1))
            return umoe_fail("%s: field \"gemm_eff\" point %d: efficiency = %g out of range (allowed (0, 1])", file, i,
                             h->gemm_eff[i]);
        if (i && !(h->gemm_eff_flops[i] > h->gemm_eff_flops[i - 1]))
            return umoe_fail("%s: field \"gemm_eff\" point %d: flops = %g must be larger than the previous point's %g "
                             "(points sorted by flops)", file, i, h->gemm_eff_flops[i], h->gemm_eff_flops[i - 1]);
    }
    return UMOE_OK;
}

double spec_gemm_eff(const spec_hardware *h, double flops) {
    int n = h->n_gemm_eff;
    if (n == 0) return 1.0;
    if (flops <= h->gemm_eff_flops[0]) return h->gemm_eff[0];
    if (flops >= h->gemm_eff_flops[n - 1]) return h->gemm_eff[n - 1];
    int i = 1;
    while (h->gemm_eff_flops[i] < flops) i++;
    /* position between the points in log(flops): ln(flops / x0) / ln(x1 / x0) (the base cancels) */
    double t = log(flops / h->gemm_eff_flops[i - 1]) / spec_gemm_eff_lnr(h, i);
    return h->gemm_eff[i - 1] + t * (h->gemm_eff[i] - h->gemm_eff[i - 1]);
}

umoe_status spec_hardware_load(const char *path_or_name, spec_hardware *h) {
    char path[4096];
    if (!spec_resolve(path_or_name, "hardware", path, sizeof path)) return UMOE_EINPUT;
    cJSON *o = json_load_file(path);
    if (!o) return UMOE_EINPUT;
    umoe_status s = spec_hardware_from_json(o, path, h);
    cJSON_Delete(o);
    return s;
}

/* ---- cluster ---- */
static const char *const cluster_keys[] = {"name", "hardware", "devices", NULL};

umoe_status spec_cluster_load(const char *path_or_name, spec_cluster *c) {
    char path[4096];
    memset(c, 0, sizeof *c);
    if (!spec_resolve(path_or_name, "clusters", path, sizeof path)) return UMOE_EINPUT;
    cJSON *o = json_load_file(path);
    if (!o) return UMOE_EINPUT;
    umoe_status s = json_check_known(o, path, cluster_keys);
    if (!s) s = spec_json_check_dups(o, path);
    long long dev = 0;
    if (!s) {
        spec_name_from_path(path, c->name, sizeof c->name);
        s = json_get_str_opt(o, path, "name", c->name, sizeof c->name);
    }
    if (!s) s = json_get_int(o, path, "devices", 1, 100000000, &dev);
    const cJSON *hw = cJSON_GetObjectItemCaseSensitive(o, "hardware");
    if (!s && cJSON_IsObject(hw)) {
        s = spec_hardware_from_json(hw, path, &c->hw); /* inline hardware spec */
    } else if (!s && cJSON_IsString(hw)) {
        /* A preset name or a path; a relative path is tried as given, then next to the cluster file. */
        char hwref[4096];
        umoe_strlcpy(hwref, hw->valuestring, sizeof hwref);
        const char *slash = strrchr(path, '/');
        if (strchr(hwref, '/') && hwref[0] != '/' && slash) {
            FILE *f = fopen(hwref, "rb");
            if (f) fclose(f);
            else snprintf(hwref, sizeof hwref, "%.*s/%s", (int)(slash - path), path, hw->valuestring);
        }
        s = spec_hardware_load(hwref, &c->hw);
        if (s) {
            char inner[UMOE_ERRLEN];
            umoe_strlcpy(inner, umoe_err, sizeof inner);
            s = umoe_fail("%s: field \"hardware\" = \"%s\": %s", path, hw->valuestring, inner);
        }
    } else if (!s) {
        s = umoe_fail("%s: field \"hardware\" is %s (required: a hardware preset name, a path to a hardware "
                      "JSON file, or an inline hardware object)", path, hw ? "not a string or object" : "missing");
    }
    c->devices = (int)dev;
    cJSON_Delete(o);
    return s;
}
