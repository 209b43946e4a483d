/* file.c - whole-file reads and atomic writes (temp file + fsync + rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "umoe/common.h"

char *umoe_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        umoe_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); umoe_fail("%s: cannot seek: %s", path, strerror(errno)); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); umoe_fail("%s: not a regular file", path); return NULL; }
    rewind(f);
    char *buf = umoe_malloc((size_t)n + 1, path);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        umoe_free(buf, (size_t)n + 1);
        umoe_fail("%s: short read (%zu of %ld bytes)", path, got, n);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

umoe_status umoe_write_atomic(const char *path, const void *data, size_t len) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return umoe_fail("%s: cannot create temp file %s: %s", path, tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return umoe_fail("%s: write failed: %s (previous file kept)", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return umoe_fail("%s: fsync/close failed: %s (previous file kept)", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return umoe_fail("%s: rename failed: %s (previous file kept)", path, strerror(e));
    }
    return UMOE_OK;
}
