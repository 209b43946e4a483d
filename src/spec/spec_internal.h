/* spec_internal.h - helpers shared by the src/spec files only (not part of the public API). */
#ifndef UMOE_SPEC_INTERNAL_H
#define UMOE_SPEC_INTERNAL_H
#include "umoe/json.h"
#include "umoe/spec.h"

/* Read an optional int field into an int (range-checked). */
umoe_status spec_json_int(const cJSON *o, const char *file, const char *field, long long lo, long long hi, int *out);
/* Optional flag: true/false or 0/1. */
umoe_status spec_json_flag(const cJSON *o, const char *file, const char *field, int *out);
/* A field given twice is an error (cJSON would silently use the first). */
umoe_status spec_json_check_dups(const cJSON *o, const char *file);
/* HuggingFace config.json -> spec_model (spec_model_hf.c). `o` has a "model_type" field. */
umoe_status spec_model_from_hf(const cJSON *o, const char *file, spec_model *m);
/* Set m->name from a file path: basename without ".json" (or the parent directory name for config.json). */
void spec_name_from_path(const char *file, char *name, size_t n);
/* spec_hardware_attn.c: the "attn_eff_seq" table of a hardware object (absent = 0 points) */
umoe_status spec_attn_seq_from_json(const void *obj, const char *file, spec_hardware *h);
#endif
