/* token_data.c - training data files: token shards (magic + version header, u16 or u32 ids) and raw byte
 * files (one token per byte, vocabulary 256). Loads a file whole, validates it, and checks token ids
 * against the model's vocabulary. Every problem is UMOE_EINPUT with a message naming the file and what is
 * wrong. Format: docs/formats-engine.md ("Token shards").
 * Does not: tokenize text beyond bytes, split or batch (loader.c). */
#include <string.h>
#include "umoe/train.h"

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

umoe_status train_shard_write(const char *path, const uint32_t *tok, uint64_t n, int width, uint32_t vocab) {
    if (width != 2 && width != 4) return umoe_fail("%s: token width %d not allowed (2 or 4 bytes)", path, width);
    for (uint64_t i = 0; i < n; i++)
        if (width == 2 && tok[i] > 0xffff)
            return umoe_fail("%s: token %llu has id %u, too large for u16 (at most 65535; use --dtype u32)", path,
                             (unsigned long long)i, tok[i]);
    uint8_t h[TRAIN_SHARD_HEADER] = {0};
    memcpy(h, TRAIN_SHARD_MAGIC, 8);
    put_u32(h + 8, TRAIN_SHARD_VERSION);
    put_u32(h + 12, (uint32_t)width);
    put_u64(h + 16, n);
    put_u32(h + 24, vocab);
    train_afile a;
    umoe_status st = train_afile_open(&a, path);
    if (st) return st;
    st = train_afile_write(&a, h, sizeof h);
    uint8_t buf[4096];
    size_t fill = 0;
    for (uint64_t i = 0; i < n && !st; i++) {
        for (int b = 0; b < width; b++) buf[fill++] = (uint8_t)(tok[i] >> (8 * b));
        if (fill + 4 > sizeof buf) {
            st = train_afile_write(&a, buf, fill);
            fill = 0;
        }
    }
    if (!st) st = train_afile_write(&a, buf, fill);
    if (!st) st = train_afile_sync(&a);
    if (!st) st = train_afile_rename(&a);
    if (st) train_afile_abort(&a);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && umoe_streq_nocase(s + a - b, suffix);
}

umoe_status train_data_load(train_data *d, const char *path) {
    memset(d, 0, sizeof *d);
    umoe_strlcpy(d->path, path, sizeof d->path);
    size_t len = 0;
    char *buf = umoe_read_file(path, &len);
    if (!buf) {
        char why[UMOE_ERRLEN];
        umoe_strlcpy(why, umoe_err, sizeof why);
        return umoe_fail("data file %s", why); /* "data file PATH: cannot open: ..." */
    }
    d->buf = buf;
    d->buf_len = len;
    const uint8_t *p = (const uint8_t *)buf;
    umoe_status st = UMOE_OK;
    if (len == 0) {
        st = umoe_fail("data file %s is empty (need at least one window of tokens)", path);
    } else if (len >= 8 && !memcmp(p, TRAIN_SHARD_MAGIC, 8)) {
        d->is_shard = 1;
        if (len < TRAIN_SHARD_HEADER) {
            st = umoe_fail("token shard %s is truncated: %zu bytes, shorter than its %d-byte header", path, len,
                           TRAIN_SHARD_HEADER);
        } else {
            uint32_t ver = get_u32(p + 8), width = get_u32(p + 12);
            uint64_t n = get_u64(p + 16);
            d->vocab = get_u32(p + 24);
            if (ver != TRAIN_SHARD_VERSION)
                st = umoe_fail("token shard %s has version %u; this build reads version %u", path, ver,
                               TRAIN_SHARD_VERSION);
            else if (width != 2 && width != 4)
                st = umoe_fail("token shard %s: bytes per token = %u is not allowed (2 or 4)", path, width);
            else if (n > (len - TRAIN_SHARD_HEADER) / width || (len - TRAIN_SHARD_HEADER) != n * width)
                st = umoe_fail("token shard %s is truncated or corrupt: its header says %llu tokens of %u bytes "
                               "(%llu bytes of data) but the file holds %zu bytes of data",
                               path, (unsigned long long)n, width, (unsigned long long)n * width,
                               len - TRAIN_SHARD_HEADER);
            else if (n == 0)
                st = umoe_fail("token shard %s holds no tokens", path);
            else {
                d->width = (int)width;
                d->n = n;
                d->tok = p + TRAIN_SHARD_HEADER;
            }
        }
    } else if (ends_with(path, ".bin")) {
        st = umoe_fail("data file %s is named .bin but does not start with the token-shard magic \"%s\" "
                       "(make shards with `umoe tokens`; rename the file to train on its raw bytes)",
                       path, TRAIN_SHARD_MAGIC);
    } else {
        d->width = 1;
        d->n = len;
        d->vocab = 256;
        d->tok = p;
    }
    if (st) {
        train_data_free(d);
        return st;
    }
    uint32_t mx = 0;
    for (uint64_t i = 0; i < d->n; i++) {
        uint32_t v = train_data_at(d, i);
        if (v > mx) mx = v;
    }
    d->max_id = mx;
    return UMOE_OK;
}

umoe_status train_data_check_vocab(const train_data *d, int V) {
    if (d->max_id < (uint32_t)V) return UMOE_OK;
    for (uint64_t i = 0; i < d->n; i++) {
        uint32_t v = train_data_at(d, i);
        if (v >= (uint32_t)V)
            return umoe_fail("data file %s: token %llu has id %u, outside the model's vocabulary (ids 0..%d; "
                             "the model has V = %d)", d->path, (unsigned long long)i, v, V - 1, V);
    }
    return UMOE_OK;
}

void train_data_free(train_data *d) {
    if (d->buf) umoe_free(d->buf, d->buf_len + 1);
    d->buf = NULL;
    d->tok = NULL;
    d->n = 0;
}
