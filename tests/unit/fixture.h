/* fixture.h - reader of the reference fixtures (.umfx) written by tools/twin/gen_fixtures.py, for the unit
 * tests only. Format (little-endian): "UMFX" | u32 version 1 | u32 n | n x { u32 name_len | name | u32 dtype
 * (0 f32, 1 i32) | u32 ndim | u64 shape[ndim] | numel x 4 bytes }. The whole file stays in memory.
 * Does not: write fixtures (the PyTorch twin does). */
#ifndef UMOE_TEST_FIXTURE_H
#define UMOE_TEST_FIXTURE_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/spec.h"

typedef struct {
    char name[128];
    int dtype; /* 0 f32, 1 i32 */
    int ndim;
    uint64_t shape[4];
    size_t numel;
    const void *data;
} fx_tensor;

typedef struct {
    char *buf;
    size_t len;
    fx_tensor *t;
    int n;
} fx_file;

/* 0 on success; on failure a message on stderr. */
static int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->buf = umoe_read_file(path, &f->len);
    if (!f->buf) {
        fprintf(stderr, "fixture %s: cannot read (%s)\n", path, umoe_err);
        return -1;
    }
    size_t p = 0;
#define FX_NEED(k) do { if (p + (k) > f->len) { fprintf(stderr, "fixture %s: truncated\n", path); return -1; } } while (0)
    uint32_t u32;
    FX_NEED(12);
    if (memcmp(f->buf, "UMFX", 4) != 0) {
        fprintf(stderr, "fixture %s: bad magic\n", path);
        return -1;
    }
    memcpy(&u32, f->buf + 4, 4);
    if (u32 != 1) {
        fprintf(stderr, "fixture %s: version %u, want 1\n", path, u32);
        return -1;
    }
    memcpy(&u32, f->buf + 8, 4);
    f->n = (int)u32;
    f->t = umoe_calloc((size_t)f->n, sizeof *f->t, "fixture table");
    p = 12;
    for (int i = 0; i < f->n; i++) {
        fx_tensor *t = &f->t[i];
        FX_NEED(4);
        memcpy(&u32, f->buf + p, 4);
        p += 4;
        FX_NEED(u32);
        if (u32 >= sizeof t->name) return -1;
        memcpy(t->name, f->buf + p, u32);
        t->name[u32] = 0;
        p += u32;
        FX_NEED(8);
        memcpy(&u32, f->buf + p, 4);
        t->dtype = (int)u32;
        memcpy(&u32, f->buf + p + 4, 4);
        t->ndim = (int)u32;
        p += 8;
        if (t->ndim > 4) return -1;
        FX_NEED(8 * (size_t)t->ndim);
        t->numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            memcpy(&t->shape[d], f->buf + p, 8);
            p += 8;
            t->numel *= (size_t)t->shape[d];
        }
        FX_NEED(4 * t->numel);
        void *own = umoe_malloc(4 * t->numel, "fixture tensor"); /* aligned copy */
        memcpy(own, f->buf + p, 4 * t->numel);
        t->data = own;
        p += 4 * t->numel;
    }
#undef FX_NEED
    return 0;
}

static void fx_free(fx_file *f) {
    if (f->buf) umoe_free(f->buf, f->len + 1);
    if (f->t) {
        for (int i = 0; i < f->n; i++)
            if (f->t[i].data) umoe_free((void *)f->t[i].data, 4 * f->t[i].numel);
        umoe_free(f->t, (size_t)f->n * sizeof *f->t);
    }
    memset(f, 0, sizeof *f);
}

static const fx_tensor *fx_get(const fx_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static const float *fx_f32(const fx_file *f, const char *name, size_t *numel) {
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != 0) return NULL;
    if (numel) *numel = t->numel;
    return (const float *)t->data;
}

static const int32_t *fx_i32(const fx_file *f, const char *name, size_t *numel) {
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != 1) return NULL;
    if (numel) *numel = t->numel;
    return (const int32_t *)t->data;
}

/* scalar config value (int or float), -1e30 when absent */
static double fx_scalar(const fx_file *f, const char *name) {
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->numel < 1) return -1e30;
    if (t->dtype == 1) return ((const int32_t *)t->data)[0];
    return ((const float *)t->data)[0];
}

/* The model spec a fixture was generated for (its cfg.* scalars); 0 when the config is unusable. */
static int fx_build_spec(const fx_file *f, spec_model *s) {
    memset(s, 0, sizeof *s);
    umoe_strlcpy(s->name, "fixture", sizeof s->name);
#define I(field) s->field = (int)fx_scalar(f, "cfg." #field)
#define D(field) s->field = fx_scalar(f, "cfg." #field)
    I(L); I(C); I(H); I(H_kv); I(head_dim); I(q_lora); I(kv_lora); I(qk_nope); I(qk_rope); I(v_head); I(F);
    I(first_k_dense); I(E); I(E_shared); I(K); I(F_expert); I(V); I(tied); I(mtp); I(T); I(qkv_bias);
    I(norm_topk); I(score_bias);
    D(norm_eps); D(rope_theta); D(routed_scale); D(aux_alpha); D(z_loss); D(mtp_weight); D(init_std);
#undef I
#undef D
    s->attn = (spec_attn_kind)(int)fx_scalar(f, "cfg.attn");
    s->norm = (spec_norm_kind)(int)fx_scalar(f, "cfg.norm");
    s->score = (spec_score_kind)(int)fx_scalar(f, "cfg.score");
    s->ffn = SPEC_FFN_SWIGLU;
    s->aux_scope = SPEC_AUX_MICRO;
    return s->L > 0 && s->C > 0 && s->V > 0;
}

#endif
