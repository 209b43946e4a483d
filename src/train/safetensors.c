/* safetensors.c - model weights in the safetensors format (Hugging Face; format description in the
 * safetensors repository README): an unsigned little-endian 64-bit header length N, N bytes of UTF-8 JSON
 * ({"__metadata__": {string: string}, NAME: {"dtype", "shape", "data_offsets": [begin, end]}} with offsets
 * relative to the byte after the header), then the raw tensor bytes. We write F32, little-endian, in the
 * model's tensor-table order with no gaps, and pad the header with spaces to a multiple of 8 bytes.
 * The reader checks every tensor of the model's table (present, F32, same shape, in bounds) and refuses
 * extra ones, so a checkpoint of another model shape is never loaded silently.
 * Does not: convert dtypes (F32 only) or memory-map. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umoe/train.h"

typedef struct { char *p; size_t n, cap; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap) cap *= 2;
        b->p = umoe_realloc(b->p, b->cap, cap, "safetensors header");
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_fmt(sbuf *b, const char *fmt, unsigned long long v) {
    char t[64];
    snprintf(t, sizeof t, fmt, v);
    sb_str(b, t);
}
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char t[8];
        if (c == '"' || c == '\\') { t[0] = '\\'; t[1] = (char)c; sb_put(b, t, 2); }
        else if (c < 0x20) { snprintf(t, sizeof t, "\\u%04x", c); sb_str(b, t); }
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

static int host_is_little_endian(void) {
    uint32_t x = 1;
    return *(uint8_t *)&x == 1;
}

umoe_status train_safetensors_write(train_afile *a, const model_tensor *t, int n, const float *params,
                                    const char *const *meta) {
    UMOE_ASSERT(host_is_little_endian()); /* the data section is written as the host's bytes */
    sbuf h = {0};
    sb_str(&h, "{");
    if (meta && meta[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; meta[i] && meta[i + 1]; i += 2) {
            if (i) sb_str(&h, ",");
            sb_json_str(&h, meta[i]);
            sb_str(&h, ":");
            sb_json_str(&h, meta[i + 1]);
        }
        sb_str(&h, "}");
    }
    unsigned long long off = 0;
    for (int i = 0; i < n; i++) {
        if (i || (meta && meta[0])) sb_str(&h, ",");
        sb_json_str(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) sb_fmt(&h, d ? ",%llu" : "%llu", (unsigned long long)t[i].shape[d]);
        sb_fmt(&h, "],\"data_offsets\":[%llu,", off);
        off += (unsigned long long)t[i].numel * 4;
        sb_fmt(&h, "%llu]}", off);
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " "); /* 8 + N is then a multiple of 8: tensor data stays aligned */
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    umoe_status st = train_afile_write(a, len, 8);
    if (!st) st = train_afile_write(a, h.p, h.n);
    for (int i = 0; i < n && !st; i++) st = train_afile_write(a, params + t[i].offset, t[i].numel * sizeof(float));
    umoe_free(h.p, h.cap);
    return st;
}

static void shape_str(char *out, size_t n, const size_t *shape, int nd) {
    size_t k = (size_t)snprintf(out, n, "[");
    for (int d = 0; d < nd && k < n; d++) k += (size_t)snprintf(out + k, n - k, d ? ", %zu" : "%zu", shape[d]);
    if (k < n) snprintf(out + k, n - k, "]");
}

umoe_status train_safetensors_read(const char *path, const model_tensor *t, int n, float *params,
                                   long long *meta_step) {
    UMOE_ASSERT(host_is_little_endian());
    if (meta_step) *meta_step = -1;
    FILE *f = fopen(path, "rb");
    if (!f) return umoe_fail("%s: cannot open: %s", path, strerror(errno));
    uint8_t len8[8];
    umoe_status st = UMOE_OK;
    char *hdr = NULL;
    uint64_t hn = 0;
    cJSON *root = NULL;
    long long fsize = -1;
    if (fseek(f, 0, SEEK_END) == 0) fsize = ftell(f);
    rewind(f);
    if (fread(len8, 1, 8, f) != 8) {
        st = umoe_fail("%s: not a safetensors file (shorter than the 8-byte header length)", path);
        goto done;
    }
    for (int i = 0; i < 8; i++) hn |= (uint64_t)len8[i] << (8 * i);
    if (hn < 2 || hn > 100u * 1024 * 1024 || (long long)(8 + hn) > fsize) {
        st = umoe_fail("%s: not a safetensors file or truncated (header length %llu, file %lld bytes)", path,
                       (unsigned long long)hn, fsize);
        goto done;
    }
    hdr = umoe_malloc(hn + 1, "safetensors header");
    if (fread(hdr, 1, hn, f) != hn) {
        st = umoe_fail("%s: truncated header", path);
        goto done;
    }
    hdr[hn] = 0;
    root = cJSON_ParseWithLength(hdr, hn);
    if (!root || !cJSON_IsObject(root)) {
        st = umoe_fail("%s: the safetensors header is not a JSON object", path);
        goto done;
    }
    uint64_t data_size = (uint64_t)fsize - 8 - hn;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *ms = meta ? cJSON_GetObjectItemCaseSensitive(meta, "step") : NULL;
    if (meta_step && cJSON_IsString(ms)) *meta_step = atoll(ms->valuestring);
    int n_file = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__")) n_file++;
    }
    for (int i = 0; i < n && !st; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, t[i].name);
        char want[96], got[96];
        shape_str(want, sizeof want, t[i].shape, t[i].ndim);
        if (!e) {
            st = umoe_fail("%s: tensor \"%s\" (shape %s) is missing: the checkpoint is of a different model shape",
                           path, t[i].name, want);
            break;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "F32")) {
            st = umoe_fail("%s: tensor \"%s\" has dtype %s; only F32 is read", path, t[i].name,
                           cJSON_IsString(dt) ? dt->valuestring : "(missing)");
            break;
        }
        size_t shape[8] = {0};
        int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
        int same = nd == t[i].ndim;
        for (int d = 0; d < nd && d < 8; d++) {
            const cJSON *v = cJSON_GetArrayItem(sh, d);
            shape[d] = cJSON_IsNumber(v) && v->valuedouble >= 0 ? (size_t)v->valuedouble : (size_t)-1;
            if (d < t[i].ndim && shape[d] != t[i].shape[d]) same = 0;
        }
        if (!same) {
            shape_str(got, sizeof got, shape, nd < 0 ? 0 : nd > 8 ? 8 : nd);
            st = umoe_fail("%s: tensor \"%s\" has shape %s but this model needs %s: the checkpoint is of a "
                           "different model shape", path, t[i].name, got, want);
            break;
        }
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
            st = umoe_fail("%s: tensor \"%s\" has no valid data_offsets", path, t[i].name);
            break;
        }
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (b < 0 || en < b || en > (double)data_size || (uint64_t)(en - b) != (uint64_t)t[i].numel * 4) {
            st = umoe_fail("%s: tensor \"%s\" data_offsets [%.0f, %.0f] are inconsistent with its shape or the "
                           "file size (%llu data bytes; truncated file?)", path, t[i].name, b, en,
                           (unsigned long long)data_size);
            break;
        }
        if (fseek(f, (long)(8 + hn + (uint64_t)b), SEEK_SET) != 0 ||
            fread(params + t[i].offset, sizeof(float), t[i].numel, f) != t[i].numel) {
            st = umoe_fail("%s: short read of tensor \"%s\" (truncated file?)", path, t[i].name);
            break;
        }
    }
    if (!st && n_file != n) {
        const char *extra = "?";
        cJSON_ArrayForEach(it, root) {
            int known = !strcmp(it->string, "__metadata__");
            for (int i = 0; i < n && !known; i++) known = !strcmp(it->string, t[i].name);
            if (!known) { extra = it->string; break; }
        }
        st = umoe_fail("%s: holds %d tensors, this model has %d (e.g. \"%s\" is not in this model): the "
                       "checkpoint is of a different model shape", path, n_file, n, extra);
    }
done:
    if (root) cJSON_Delete(root);
    if (hdr) umoe_free(hdr, hn + 1);
    fclose(f);
    return st;
}
