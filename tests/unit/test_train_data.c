/* test_train_data.c - token data files, token shards and the window loader, on real files in a temp
 * directory: round trips, every documented error (missing, empty, too short, truncated, wrong magic,
 * bad version, ids outside the vocabulary), the split, the per-epoch permutation and resuming a position. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "umoe/train.h"

static char dir[256];

static const char *tmp(const char *name) {
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    UMOE_ASSERT(f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void test_raw_bytes(void) {
    const char *text = "hello, world\n";
    write_bytes(tmp("a.txt"), text, strlen(text));
    train_data d;
    CHECK(train_data_load(&d, tmp("a.txt")) == UMOE_OK, "%s", umoe_err);
    CHECK(!d.is_shard && d.width == 1 && d.n == strlen(text) && d.vocab == 256, "n %llu", (unsigned long long)d.n);
    CHECK(train_data_at(&d, 4) == 'o', "got %u", train_data_at(&d, 4));
    CHECK(d.max_id == 'w', "max %u", d.max_id);
    CHECK(train_data_check_vocab(&d, 256) == UMOE_OK, "%s", umoe_err);
    CHECK(train_data_check_vocab(&d, 105) == UMOE_EINPUT, "ids up to 'w' = 119 must not fit V = 105");
    CHECK(strstr(umoe_err, "token 2 has id 108") != NULL, "names the first bad token: %s", umoe_err);
    train_data_free(&d);
}

static void test_shard_round_trip(void) {
    uint32_t tok[1000];
    for (int i = 0; i < 1000; i++) tok[i] = (uint32_t)(i * 7919u) % 70000u;
    CHECK(train_shard_write(tmp("s.bin"), tok, 1000, 2, 70000) == UMOE_EINPUT, "ids > 65535 refused for u16");
    CHECK(strstr(umoe_err, "u32") != NULL, "suggests u32: %s", umoe_err);
    CHECK(access(tmp("s.bin"), F_OK) != 0, "no file left behind after a refused write");
    CHECK(train_shard_write(tmp("s.bin"), tok, 1000, 4, 70000) == UMOE_OK, "%s", umoe_err);
    train_data d;
    CHECK(train_data_load(&d, tmp("s.bin")) == UMOE_OK, "%s", umoe_err);
    CHECK(d.is_shard && d.width == 4 && d.n == 1000 && d.vocab == 70000, "header read back");
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= train_data_at(&d, (uint64_t)i) == tok[i];
    CHECK(same, "u32 tokens round trip");
    CHECK(train_data_check_vocab(&d, 70000) == UMOE_OK, "%s", umoe_err);
    CHECK(train_data_check_vocab(&d, 256) == UMOE_EINPUT, "ids >= 256 refused for a byte model");
    train_data_free(&d);
    for (int i = 0; i < 1000; i++) tok[i] %= 65536u;
    CHECK(train_shard_write(tmp("s16.bin"), tok, 1000, 2, 0) == UMOE_OK, "%s", umoe_err);
    CHECK(train_data_load(&d, tmp("s16.bin")) == UMOE_OK, "%s", umoe_err);
    same = d.width == 2 && d.n == 1000;
    for (int i = 0; i < 1000 && same; i++) same &= train_data_at(&d, (uint64_t)i) == tok[i];
    CHECK(same, "u16 tokens round trip");
    train_data_free(&d);
    /* the file on disk is exactly header + 2 bytes per token */
    size_t len;
    char *raw = umoe_read_file(tmp("s16.bin"), &len);
    CHECK(raw && len == TRAIN_SHARD_HEADER + 2000 && !memcmp(raw, "UMOETOKS", 8), "layout: %zu bytes", len);
    CHECK(raw && (unsigned char)raw[8] == 1 && (unsigned char)raw[12] == 2, "version 1, width 2");
    if (raw) umoe_free(raw, len + 1);
}

static void expect_load_error(const char *path, const char *what, const char *pattern) {
    train_data d;
    umoe_status st = train_data_load(&d, path);
    CHECK(st == UMOE_EINPUT, "%s: want an input error, got %d", what, (int)st);
    CHECK(strstr(umoe_err, path) != NULL, "%s: message names the file: %s", what, umoe_err);
    CHECK(strstr(umoe_err, pattern) != NULL, "%s: message says \"%s\": %s", what, pattern, umoe_err);
    if (st == UMOE_OK) train_data_free(&d);
}

static void test_bad_files(void) {
    expect_load_error(tmp("missing.txt"), "missing", "cannot open");
    write_bytes(tmp("empty.txt"), "", 0);
    expect_load_error(tmp("empty.txt"), "empty", "empty");
    write_bytes(tmp("raw.bin"), "just some bytes here", 20);
    expect_load_error(tmp("raw.bin"), "wrong magic", "magic");
    uint32_t tok[100];
    for (int i = 0; i < 100; i++) tok[i] = (uint32_t)i;
    CHECK(train_shard_write(tmp("t.bin"), tok, 100, 2, 256) == UMOE_OK, "%s", umoe_err);
    size_t len;
    char *raw = umoe_read_file(tmp("t.bin"), &len);
    write_bytes(tmp("trunc.bin"), raw, len - 3);
    expect_load_error(tmp("trunc.bin"), "truncated data", "truncated");
    write_bytes(tmp("trunch.bin"), raw, 20);
    expect_load_error(tmp("trunch.bin"), "truncated header", "truncated");
    raw[8] = 9;
    write_bytes(tmp("ver.bin"), raw, len);
    expect_load_error(tmp("ver.bin"), "version", "version 9");
    raw[8] = 1;
    raw[12] = 3;
    write_bytes(tmp("width.bin"), raw, len);
    expect_load_error(tmp("width.bin"), "width", "bytes per token = 3");
    umoe_free(raw, len + 1);
    CHECK(train_shard_write(tmp("zero.bin"), tok, 0, 2, 256) == UMOE_OK, "%s", umoe_err);
    expect_load_error(tmp("zero.bin"), "no tokens", "no tokens");
}

static void test_loader_split_and_errors(void) {
    char text[1000];
    for (int i = 0; i < 1000; i++) text[i] = (char)('a' + i % 26);
    write_bytes(tmp("l.txt"), text, sizeof text);
    train_data d;
    CHECK(train_data_load(&d, tmp("l.txt")) == UMOE_OK, "%s", umoe_err);
    train_loader l;
    /* T = 16, mtp 1: W = 18; val = ceil(1000 * 0.1) = 100 tokens, train = 900 */
    CHECK(train_loader_init(&l, &d, 4, 16, 1, 0.1, 7) == UMOE_OK, "%s", umoe_err);
    CHECK(l.W == 18 && l.train_end == 900 && l.val_begin == 900 && l.val_end == 1000, "split %llu",
          (unsigned long long)l.train_end);
    CHECK(l.n_train_win == (900 - 18) / 16 + 1 && l.n_val_win == (100 - 18) / 16 + 1, "windows %llu %llu",
          (unsigned long long)l.n_train_win, (unsigned long long)l.n_val_win);
    /* the windows are the file's contents at multiples of T */
    int32_t b[4 * 18];
    train_loader_next(&l, b);
    int ok = 1;
    for (int r = 0; r < 4; r++) {
        int start = -1;
        for (uint64_t w = 0; w < l.n_train_win; w++)
            if (b[r * 18] == text[w * 16] && b[r * 18 + 17] == text[w * 16 + 17]) start = (int)w;
        ok &= start >= 0;
    }
    CHECK(ok, "every row is a training window");
    train_loader_free(&l);
    /* too short: 1000 tokens cannot hold a 600-token training window plus a 600-token validation window */
    CHECK(train_loader_init(&l, &d, 1, 599, 0, 0.1, 1) == UMOE_EINPUT, "too short refused");
    CHECK(strstr(umoe_err, "too short") && strstr(umoe_err, tmp("l.txt")), "message: %s", umoe_err);
    CHECK(train_loader_init(&l, &d, 1, 999, 0, 0.0, 1) == UMOE_OK, "exactly one window without validation: %s",
          umoe_err);
    CHECK(l.n_train_win == 1 && l.n_val_win == 0, "one window");
    train_loader_free(&l);
    train_data_free(&d);
}

static void test_loader_epochs_and_seek(void) {
    uint32_t tok[4000];
    for (int i = 0; i < 4000; i++) tok[i] = (uint32_t)i; /* token = its position: windows are identifiable */
    CHECK(train_shard_write(tmp("e.bin"), tok, 4000, 4, 0) == UMOE_OK, "%s", umoe_err);
    train_data d;
    CHECK(train_data_load(&d, tmp("e.bin")) == UMOE_OK, "%s", umoe_err);
    train_loader l, l2;
    CHECK(train_loader_init(&l, &d, 3, 10, 0, 0.0, 42) == UMOE_OK, "%s", umoe_err);
    uint64_t nw = l.n_train_win; /* (4000 - 11) / 10 + 1 = 399 */
    CHECK(nw == 399, "windows %llu", (unsigned long long)nw);
    /* one epoch visits every window exactly once; the next epoch is a different order */
    int *seen = calloc(nw, sizeof *seen);
    int32_t b[3 * 11];
    uint64_t order0[399], order1[399];
    for (uint64_t k = 0; k < 2 * nw; k += 3) {
        train_loader_next(&l, b);
        for (int r = 0; r < 3 && k + (uint64_t)r < 2 * nw; r++) {
            uint64_t w = (uint64_t)b[r * 11] / 10;
            if (k + (uint64_t)r < nw) { seen[w]++; order0[k + (uint64_t)r] = w; }
            else order1[k + (uint64_t)r - nw] = w;
        }
    }
    int once = 1;
    for (uint64_t w = 0; w < nw; w++) once &= seen[w] == 1;
    CHECK(once, "each window once per epoch");
    CHECK(memcmp(order0, order1, sizeof order0) != 0, "a fresh permutation each epoch");
    CHECK(l.pos.epoch == 1, "epoch %llu", (unsigned long long)l.pos.epoch);
    /* resume: a second loader seeked to a saved position continues identically */
    train_loader_pos saved = l.pos;
    int32_t want[5][33], got[5][33];
    for (int s = 0; s < 5; s++) train_loader_next(&l, want[s]);
    CHECK(train_loader_init(&l2, &d, 3, 10, 0, 0.0, 42) == UMOE_OK, "%s", umoe_err);
    train_loader_seek(&l2, &saved);
    for (int s = 0; s < 5; s++) train_loader_next(&l2, got[s]);
    CHECK(!memcmp(want, got, sizeof want), "seek reproduces the stream");
    /* another seed gives another order */
    train_loader l3;
    CHECK(train_loader_init(&l3, &d, 3, 10, 0, 0.0, 43) == UMOE_OK, "%s", umoe_err);
    int differ = 0;
    for (uint64_t w = 0; w < nw; w++) differ += l3.perm[w] != order0[w];
    CHECK(differ > (int)nw / 2, "seed changes the order (%d of %d windows moved)", differ, (int)nw);
    free(seen);
    train_loader_free(&l);
    train_loader_free(&l2);
    train_loader_free(&l3);
    train_data_free(&d);
}

static void test_loader_shards(void) {
    uint32_t tok[3000];
    for (int i = 0; i < 3000; i++) tok[i] = (uint32_t)i;
    CHECK(train_shard_write(tmp("sh.bin"), tok, 3000, 4, 0) == UMOE_OK, "%s", umoe_err);
    train_data d;
    CHECK(train_data_load(&d, tmp("sh.bin")) == UMOE_OK, "%s", umoe_err);
    /* one process with 3 x 4 rows vs 3 ranks with 4 rows each, over several epochs (99 windows) */
    train_loader one, r[3];
    CHECK(train_loader_init(&one, &d, 12, 30, 1, 0.0, 5) == UMOE_OK, "%s", umoe_err);
    for (int k = 0; k < 3; k++) CHECK(train_loader_init(&r[k], &d, 4, 30, 1, 0.0, 5) == UMOE_OK, "%s", umoe_err);
    int same = 1, pos_same = 1;
    for (int step = 0; step < 30; step++) {
        int32_t all[12 * 32], part[4 * 32];
        train_loader_next(&one, all);
        for (int k = 0; k < 3; k++) {
            train_loader_next_shard(&r[k], part, k, 3);
            same &= !memcmp(part, all + k * 4 * 32, sizeof part);
            pos_same &= r[k].pos.cursor == one.pos.cursor && r[k].pos.epoch == one.pos.epoch;
        }
    }
    CHECK(one.pos.epoch >= 3, "several epochs crossed (%llu)", (unsigned long long)one.pos.epoch);
    CHECK(same, "the ranks' rows together are the single process's batch");
    CHECK(pos_same, "every rank is at the same position");
    train_loader_free(&one);
    for (int k = 0; k < 3; k++) train_loader_free(&r[k]);
    train_data_free(&d);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/umoe_test_train_data_XXXXXX");
    UMOE_ASSERT(mkdtemp(dir));
    RUN(test_raw_bytes);
    RUN(test_shard_round_trip);
    RUN(test_bad_files);
    RUN(test_loader_split_and_errors);
    RUN(test_loader_epochs_and_seek);
    RUN(test_loader_shards);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
