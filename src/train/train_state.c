/* train_state.c - train_state.bin: everything besides the weights that a resume needs to continue
 * bit-exactly: optimizer step, AdamW m and v, the data loader position with its generator state, the
 * training options, and the model's shape and spec hashes. Layout (little-endian, docs/formats-engine.md):
 *   0 magic "UMOESTAT" | 8 u32 version | 12 u32 header bytes (216) | 16 u64 shape hash | 24 u64 spec hash |
 *   32 i64 step | 40 u64 n_params | 48 u64 epoch | 56 u64 cursor | 64 u64 rng[4] |
 *   96 i32 B, T, accum, 0 | 112 i64 steps, warmup |
 *   128 f64 lr, min_lr, wd, clip, beta1, beta2, eps, val_frac, bias_rate | 200 u64 seed, data_tokens |
 *   216 f32 m[n_params] | f32 v[n_params] | u64 FNV-1a of every byte before it.
 * Does not: write the weights (safetensors.c) or decide when to save (train_loop.c). */
#include <errno.h>
#include <string.h>
#include "umoe/train.h"

#define HDR 216

typedef struct { uint8_t b[HDR]; size_t k; } bytes;
static void p64(bytes *o, uint64_t v) {
    for (int i = 0; i < 8; i++) o->b[o->k++] = (uint8_t)(v >> (8 * i));
}
static void p32(bytes *o, uint32_t v) {
    for (int i = 0; i < 4; i++) o->b[o->k++] = (uint8_t)(v >> (8 * i));
}
static void pf64(bytes *o, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    p64(o, v);
}
static uint64_t g64(bytes *o) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)o->b[o->k++] << (8 * i);
    return v;
}
static uint32_t g32(bytes *o) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)o->b[o->k++] << (8 * i);
    return v;
}
static double gf64(bytes *o) {
    uint64_t v = g64(o);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static void encode(bytes *o, const train_state_header *h) {
    o->k = 0;
    memcpy(o->b, TRAIN_STATE_MAGIC, 8);
    o->k = 8;
    p32(o, TRAIN_STATE_VERSION);
    p32(o, HDR);
    p64(o, h->shape_hash);
    p64(o, h->spec_hash);
    p64(o, (uint64_t)h->step);
    p64(o, h->n_params);
    p64(o, h->pos.epoch);
    p64(o, h->pos.cursor);
    for (int i = 0; i < 4; i++) p64(o, h->pos.rng.s[i]);
    const train_opts *t = &h->opts;
    p32(o, (uint32_t)t->B);
    p32(o, (uint32_t)t->T);
    p32(o, (uint32_t)t->accum);
    p32(o, 0);
    p64(o, (uint64_t)t->steps);
    p64(o, (uint64_t)t->warmup);
    const double d[9] = {t->lr, t->min_lr, t->wd, t->clip, t->beta1, t->beta2, t->eps, t->val_frac, t->bias_rate};
    for (int i = 0; i < 9; i++) pf64(o, d[i]);
    p64(o, t->seed);
    p64(o, t->data_tokens);
    UMOE_ASSERT(o->k == HDR);
}

static void decode(bytes *o, train_state_header *h) {
    o->k = 16;
    h->shape_hash = g64(o);
    h->spec_hash = g64(o);
    h->step = (long)g64(o);
    h->n_params = (size_t)g64(o);
    h->pos.epoch = g64(o);
    h->pos.cursor = g64(o);
    for (int i = 0; i < 4; i++) h->pos.rng.s[i] = g64(o);
    train_opts *t = &h->opts;
    t->B = (int)g32(o);
    t->T = (int)g32(o);
    t->accum = (int)g32(o);
    (void)g32(o);
    t->steps = (long)g64(o);
    t->warmup = (long)g64(o);
    double *d[9] = {&t->lr, &t->min_lr, &t->wd, &t->clip, &t->beta1, &t->beta2, &t->eps, &t->val_frac, &t->bias_rate};
    for (int i = 0; i < 9; i++) *d[i] = gf64(o);
    t->seed = g64(o);
    t->data_tokens = g64(o);
}

umoe_status train_state_write(train_afile *a, const train_state_header *h, const train_adamw *o) {
    UMOE_ASSERT(o->n == h->n_params);
    bytes b;
    encode(&b, h);
    uint64_t sum = train_fnv1a(TRAIN_FNV_INIT, b.b, HDR);
    sum = train_fnv1a(sum, o->m, o->n * sizeof(float));
    sum = train_fnv1a(sum, o->v, o->n * sizeof(float));
    uint8_t s8[8];
    for (int i = 0; i < 8; i++) s8[i] = (uint8_t)(sum >> (8 * i));
    umoe_status st = train_afile_write(a, b.b, HDR);
    if (!st) st = train_afile_write(a, o->m, o->n * sizeof(float));
    if (!st) st = train_afile_write(a, o->v, o->n * sizeof(float));
    if (!st) st = train_afile_write(a, s8, 8);
    return st;
}

umoe_status train_state_read(const char *path, train_state_header *h, train_adamw *o) {
    FILE *f = fopen(path, "rb");
    if (!f) return umoe_fail("%s: cannot open: %s", path, strerror(errno));
    bytes b;
    umoe_status st = UMOE_OK;
    long long fsize = -1;
    if (fseek(f, 0, SEEK_END) == 0) fsize = ftell(f);
    rewind(f);
    if (fread(b.b, 1, HDR, f) != HDR || memcmp(b.b, TRAIN_STATE_MAGIC, 8)) {
        fclose(f);
        return umoe_fail("%s: not a training state file (wrong magic or shorter than its %d-byte header)", path,
                         HDR);
    }
    b.k = 8;
    uint32_t ver = g32(&b), hb = g32(&b);
    if (ver != TRAIN_STATE_VERSION || hb != HDR) {
        fclose(f);
        return umoe_fail("%s: training state version %u (header %u bytes); this build reads version %u", path,
                         ver, hb, TRAIN_STATE_VERSION);
    }
    decode(&b, h);
    long long want = HDR + 8LL * (long long)h->n_params + 8;
    if (fsize != want) {
        fclose(f);
        return umoe_fail("%s: truncated or corrupt: %lld bytes, expected %lld for %zu parameters", path, fsize,
                         want, h->n_params);
    }
    if (o) {
        if (o->n != h->n_params) {
            fclose(f);
            return umoe_fail("%s: holds optimizer state for %zu parameters, this model has %zu: the checkpoint is "
                             "of a different model shape", path, h->n_params, o->n);
        }
        uint8_t s8[8];
        if (fread(o->m, sizeof(float), o->n, f) != o->n || fread(o->v, sizeof(float), o->n, f) != o->n ||
            fread(s8, 1, 8, f) != 8) {
            st = umoe_fail("%s: short read (truncated file?)", path);
        } else {
            uint64_t sum = train_fnv1a(TRAIN_FNV_INIT, b.b, HDR), got = 0;
            sum = train_fnv1a(sum, o->m, o->n * sizeof(float));
            sum = train_fnv1a(sum, o->v, o->n * sizeof(float));
            for (int i = 0; i < 8; i++) got |= (uint64_t)s8[i] << (8 * i);
            if (got != sum) st = umoe_fail("%s: checksum mismatch (the file is corrupt)", path);
        }
    }
    fclose(f);
    return st;
}
