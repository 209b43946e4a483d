/* json.h - typed, range-checked field access on cJSON objects for spec loaders.
 * Every getter fails with a message naming the file, the field, the value and what is allowed.
 * `present` style: the _opt getters leave *out untouched when the field is absent. */
#ifndef UMOE_JSON_H
#define UMOE_JSON_H
#include <cjson/cJSON.h>
#include "umoe/common.h"

/* Parse a whole file; on failure umoe_err says where (file, approximate line). Free with cJSON_Delete. */
cJSON *json_load_file(const char *path);

umoe_status json_get_int(const cJSON *o, const char *file, const char *field, long long lo, long long hi, long long *out);
umoe_status json_get_int_opt(const cJSON *o, const char *file, const char *field, long long lo, long long hi, long long *out);
umoe_status json_get_num(const cJSON *o, const char *file, const char *field, double lo, double hi, double *out);
umoe_status json_get_num_opt(const cJSON *o, const char *file, const char *field, double lo, double hi, double *out);
umoe_status json_get_bool_opt(const cJSON *o, const char *file, const char *field, int *out);
umoe_status json_get_str(const cJSON *o, const char *file, const char *field, char *out, size_t n);
umoe_status json_get_str_opt(const cJSON *o, const char *file, const char *field, char *out, size_t n);
/* One of `allowed` (NULL-terminated list, case-insensitive); *out is its index. */
umoe_status json_get_enum_opt(const cJSON *o, const char *file, const char *field, const char *const *allowed, int *out);
/* Fields of `o` not in `known` (NULL-terminated) are an error: a typo must never silently use a default. */
umoe_status json_check_known(const cJSON *o, const char *file, const char *const *known);

/* Output: a tiny streaming JSON writer to a FILE* with correct string escaping. */
typedef struct { FILE *f; int depth; int first[32]; } json_writer;
void jw_begin(json_writer *w, FILE *f);
void jw_obj_open(json_writer *w, const char *key);   /* key NULL inside arrays / at top */
void jw_obj_close(json_writer *w);
void jw_arr_open(json_writer *w, const char *key);
void jw_arr_close(json_writer *w);
void jw_num(json_writer *w, const char *key, double v);  /* non-finite -> null */
void jw_int(json_writer *w, const char *key, long long v);
void jw_str(json_writer *w, const char *key, const char *v); /* NULL -> null */
void jw_bool(json_writer *w, const char *key, int v);
void jw_null(json_writer *w, const char *key);
void jw_end(json_writer *w); /* newline */
#endif
