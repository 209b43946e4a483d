/* spec_json.c - small typed JSON readers the spec loaders share (int fields into int, 0/1 flags) and the
 * default name of a spec taken from its file path. Does not: know any particular spec. */
#include <string.h>
#include "spec_internal.h"

umoe_status spec_json_int(const cJSON *o, const char *file, const char *field, long long lo, long long hi, int *out) {
    long long v = *out;
    umoe_status s = json_get_int_opt(o, file, field, lo, hi, &v);
    if (s) return s;
    *out = (int)v;
    return UMOE_OK;
}

umoe_status spec_json_flag(const cJSON *o, const char *file, const char *field, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    if (cJSON_IsBool(it)) {
        *out = cJSON_IsTrue(it);
        return UMOE_OK;
    }
    if (cJSON_IsNumber(it) && (it->valuedouble == 0 || it->valuedouble == 1)) {
        *out = it->valuedouble != 0;
        return UMOE_OK;
    }
    return umoe_fail("%s: field \"%s\" must be true or false (or 0/1)", file, field);
}

void spec_name_from_path(const char *file, char *name, size_t n) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char buf[4096];
    umoe_strlcpy(buf, base, sizeof buf);
    if (!strcmp(buf, "config.json") && base != file) {
        /* HuggingFace layout: .../<model-name>/config.json -> <model-name> */
        size_t dl = (size_t)(base - 1 - file);
        char dir[4096];
        if (dl >= sizeof dir) dl = sizeof dir - 1;
        memcpy(dir, file, dl);
        dir[dl] = 0;
        const char *d = strrchr(dir, '/');
        umoe_strlcpy(buf, d ? d + 1 : dir, sizeof buf);
    }
    size_t l = strlen(buf);
    if (l > 5 && !strcmp(buf + l - 5, ".json")) buf[l - 5] = 0;
    umoe_strlcpy(name, buf, n);
}

umoe_status spec_json_check_dups(const cJSON *o, const char *file) {
    for (const cJSON *a = o->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && !strcmp(a->string, b->string))
                return umoe_fail("%s: field \"%s\" is given twice (give each field once)", file, a->string);
    return UMOE_OK;
}
