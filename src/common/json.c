/* json.c - range-checked field getters over cJSON for the spec loaders, and a streaming JSON writer.
 * Error messages always name the file, the field, the value found and what is allowed. */
#include <math.h>
#include <string.h>
#include "umoe/json.h"

cJSON *json_load_file(const char *path) {
    size_t len;
    char *text = umoe_read_file(path, &len);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!o) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : len;
        int line = 1;
        for (size_t i = 0; i < off; i++) line += text[i] == '\n';
        umoe_fail("%s: invalid JSON near line %d", path, line);
    } else if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
        umoe_fail("%s: top level must be a JSON object", path);
    }
    umoe_free(text, len + 1);
    return o;
}

static umoe_status num_field(const cJSON *o, const char *file, const char *field, int required, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!it || cJSON_IsNull(it)) {
        if (required) return umoe_fail("%s: field \"%s\" is missing (required)", file, field);
        return UMOE_EFAIL; /* absent: not an error for _opt */
    }
    if (!cJSON_IsNumber(it)) return umoe_fail("%s: field \"%s\" must be a number", file, field);
    *v = it->valuedouble;
    return UMOE_OK;
}

static umoe_status get_int(const cJSON *o, const char *file, const char *field, long long lo, long long hi,
                           long long *out, int required) {
    double v = 0;
    umoe_status s = num_field(o, file, field, required, &v);
    if (s == UMOE_EFAIL) return UMOE_OK;
    if (s) return s;
    if (v != floor(v) || !isfinite(v))
        return umoe_fail("%s: field \"%s\" = %g must be an integer", file, field, v);
    if (v < (double)lo || v > (double)hi)
        return umoe_fail("%s: field \"%s\" = %.0f out of range (allowed %lld..%lld)", file, field, v, lo, hi);
    *out = (long long)v;
    return UMOE_OK;
}

umoe_status json_get_int(const cJSON *o, const char *file, const char *field, long long lo, long long hi, long long *out) {
    return get_int(o, file, field, lo, hi, out, 1);
}
umoe_status json_get_int_opt(const cJSON *o, const char *file, const char *field, long long lo, long long hi, long long *out) {
    return get_int(o, file, field, lo, hi, out, 0);
}

static umoe_status get_num(const cJSON *o, const char *file, const char *field, double lo, double hi, double *out,
                           int required) {
    double v = 0;
    umoe_status s = num_field(o, file, field, required, &v);
    if (s == UMOE_EFAIL) return UMOE_OK;
    if (s) return s;
    if (!isfinite(v) || v < lo || v > hi)
        return umoe_fail("%s: field \"%s\" = %g out of range (allowed %g..%g)", file, field, v, lo, hi);
    *out = v;
    return UMOE_OK;
}

umoe_status json_get_num(const cJSON *o, const char *file, const char *field, double lo, double hi, double *out) {
    return get_num(o, file, field, lo, hi, out, 1);
}
umoe_status json_get_num_opt(const cJSON *o, const char *file, const char *field, double lo, double hi, double *out) {
    return get_num(o, file, field, lo, hi, out, 0);
}

umoe_status json_get_bool_opt(const cJSON *o, const char *file, const char *field, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    if (!cJSON_IsBool(it)) return umoe_fail("%s: field \"%s\" must be true or false", file, field);
    *out = cJSON_IsTrue(it);
    return UMOE_OK;
}

static umoe_status get_str(const cJSON *o, const char *file, const char *field, char *out, size_t n, int required) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!it || cJSON_IsNull(it)) {
        if (required) return umoe_fail("%s: field \"%s\" is missing (required)", file, field);
        return UMOE_OK;
    }
    if (!cJSON_IsString(it)) return umoe_fail("%s: field \"%s\" must be a string", file, field);
    if (strlen(it->valuestring) >= n)
        return umoe_fail("%s: field \"%s\" is too long (at most %zu characters)", file, field, n - 1);
    umoe_strlcpy(out, it->valuestring, n);
    return UMOE_OK;
}

umoe_status json_get_str(const cJSON *o, const char *file, const char *field, char *out, size_t n) {
    return get_str(o, file, field, out, n, 1);
}
umoe_status json_get_str_opt(const cJSON *o, const char *file, const char *field, char *out, size_t n) {
    return get_str(o, file, field, out, n, 0);
}

umoe_status json_get_enum_opt(const cJSON *o, const char *file, const char *field, const char *const *allowed, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    char list[512] = "";
    for (int i = 0; allowed[i]; i++) {
        if (cJSON_IsString(it) && umoe_streq_nocase(it->valuestring, allowed[i])) {
            *out = i;
            return UMOE_OK;
        }
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
    }
    return umoe_fail("%s: field \"%s\" = %s%s%s is not allowed (one of: %s)", file, field,
                     cJSON_IsString(it) ? "\"" : "", cJSON_IsString(it) ? it->valuestring : "(not a string)",
                     cJSON_IsString(it) ? "\"" : "", list);
}

umoe_status json_check_known(const cJSON *o, const char *file, const char *const *known) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        int ok = it->string && it->string[0] == '_'; /* "_comment", "_source" ... are free text */
        for (int i = 0; !ok && known[i]; i++) ok = !strcmp(it->string, known[i]);
        if (!ok) return umoe_fail("%s: unknown field \"%s\" (check the spelling; see docs/formats.md)", file, it->string);
    }
    return UMOE_OK;
}

/* ---- writer ---- */
void jw_begin(json_writer *w, FILE *f) {
    w->f = f;
    w->depth = 0;
    w->first[0] = 1;
}

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void key(json_writer *w, const char *k) {
    if (!w->first[w->depth]) fputc(',', w->f);
    w->first[w->depth] = 0;
    if (k) {
        put_str(w->f, k);
        fputc(':', w->f);
    }
}

void jw_obj_open(json_writer *w, const char *k) {
    key(w, k);
    fputc('{', w->f);
    w->first[++w->depth] = 1;
}
void jw_obj_close(json_writer *w) {
    fputc('}', w->f);
    w->depth--;
}
void jw_arr_open(json_writer *w, const char *k) {
    key(w, k);
    fputc('[', w->f);
    w->first[++w->depth] = 1;
}
void jw_arr_close(json_writer *w) {
    fputc(']', w->f);
    w->depth--;
}
void jw_num(json_writer *w, const char *k, double v) {
    key(w, k);
    if (isfinite(v)) fprintf(w->f, "%.10g", v);
    else fputs("null", w->f);
}
void jw_int(json_writer *w, const char *k, long long v) {
    key(w, k);
    fprintf(w->f, "%lld", v);
}
void jw_str(json_writer *w, const char *k, const char *v) {
    key(w, k);
    if (v) put_str(w->f, v);
    else fputs("null", w->f);
}
void jw_bool(json_writer *w, const char *k, int v) {
    key(w, k);
    fputs(v ? "true" : "false", w->f);
}
void jw_null(json_writer *w, const char *k) {
    key(w, k);
    fputs("null", w->f);
}
void jw_end(json_writer *w) { fputc('\n', w->f); }
