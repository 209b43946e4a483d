/* atomic_file.c - streaming atomic writes for checkpoints: bytes go to a temp file beside the target;
 * sync = flush + fsync + close; rename = rename over the target + fsync of the directory (so the rename
 * itself survives a crash). Several files can be synced first and renamed together (checkpoint.c).
 * Also the FNV-1a hash used for config hashes and file checksums.
 * Does not: retry, lock, or decide file names (callers do). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "umoe/train.h"

int train_afile_fail_countdown;

/* FNV-1a 64-bit: h = (h ^ byte) * 0x100000001b3 (Fowler, Noll, Vo; IETF draft-eastlake-fnv). */
uint64_t train_fnv1a(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

umoe_status train_afile_open(train_afile *a, const char *path) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path) return umoe_fail("%s: path too long", path);
    umoe_strlcpy(a->path, path, sizeof a->path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return umoe_fail("%s: cannot create temp file %s: %s", path, a->tmp, strerror(errno));
    return UMOE_OK;
}

umoe_status train_afile_write(train_afile *a, const void *data, size_t n) {
    if (a->failed) return UMOE_EFAIL;
    if (n && fwrite(data, 1, n, a->f) != n) {
        a->failed = 1;
        return umoe_fail("%s: write failed: %s", a->tmp, strerror(errno)), UMOE_EFAIL;
    }
    return UMOE_OK;
}

umoe_status train_afile_sync(train_afile *a) {
    if (!a->f) return umoe_fail("%s: not open", a->path), UMOE_EFAIL;
    int bad = a->failed || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int e = errno;
    if (train_afile_fail_countdown > 0 && --train_afile_fail_countdown == 0) {
        bad = 1;
        e = ENOSPC; /* injected by a test */
    }
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    a->f = NULL;
    if (bad) {
        unlink(a->tmp);
        a->failed = 1;
        return umoe_fail("%s: writing failed: %s (the previous file is kept)", a->path, strerror(e)), UMOE_EFAIL;
    }
    return UMOE_OK;
}

umoe_status train_afile_rename(train_afile *a) {
    if (a->failed || a->f) return umoe_fail("%s: not synced", a->path), UMOE_EFAIL;
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        unlink(a->tmp);
        return umoe_fail("%s: rename failed: %s (the previous file is kept)", a->path, strerror(e)), UMOE_EFAIL;
    }
    char dir[4096];
    umoe_strlcpy(dir, a->path, sizeof dir);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    return UMOE_OK;
}

void train_afile_abort(train_afile *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) unlink(a->tmp);
    a->failed = 1;
}
