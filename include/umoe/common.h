/* common.h - error/check macros, counted allocator, logging and progress, JSON field helpers, RNG.
 * Everything below src/cli prints only through the logging here (stderr), never to stdout directly.
 * Does not: parse command lines (src/cli) or know any spec (src/spec). */
#ifndef UMOE_COMMON_H
#define UMOE_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every command: 0 ok, 1 the run failed, 2 bad input (config, flag, data file). */
enum { UMOE_EXIT_OK = 0, UMOE_EXIT_FAIL = 1, UMOE_EXIT_INPUT = 2 };

/* Recoverable status: loaders return it and leave a message in umoe_err (naming file, field, value and
 * what is allowed). The CLI prints the message and exits with UMOE_EXIT_INPUT. */
typedef enum { UMOE_OK = 0, UMOE_EINPUT = 2, UMOE_EFAIL = 1 } umoe_status;
#define UMOE_ERRLEN 1024
extern char umoe_err[UMOE_ERRLEN];
umoe_status umoe_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Invariants: on in release builds. Fatal, prints file:line. */
void umoe_panic(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
#define UMOE_ASSERT(cond)                                                                     \
    do { if (!(cond)) umoe_panic(__FILE__, __LINE__, "assertion failed: %s", #cond); } while (0)
#define UMOE_CHECK(call, hint)                                                                \
    do { if (!(call)) umoe_panic(__FILE__, __LINE__, "%s failed (%s)", #call, hint); } while (0)

/* Counted allocator: every allocation of the project goes through it. */
void *umoe_malloc(size_t bytes, const char *what);
void *umoe_calloc(size_t n, size_t size, const char *what);
void *umoe_realloc(void *p, size_t old_bytes, size_t new_bytes, const char *what);
void umoe_free(void *p, size_t bytes);
size_t umoe_alloc_current(void);
size_t umoe_alloc_peak(void);

/* Logging (stderr). Level from UMOE_LOG=debug|info|warn|error, default info. */
typedef enum { UMOE_LOG_DEBUG, UMOE_LOG_INFO, UMOE_LOG_WARN, UMOE_LOG_ERROR } umoe_log_level;
void umoe_log(umoe_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void umoe_log_set_level(umoe_log_level lvl);
int umoe_log_enabled(umoe_log_level lvl); /* 1 when a message of this level is printed (skip costly diagnostics) */
#define LOG_DEBUG(...) umoe_log(UMOE_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) umoe_log(UMOE_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) umoe_log(UMOE_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) umoe_log(UMOE_LOG_ERROR, __VA_ARGS__)

/* Progress on stderr for long work: rate-limited, only when stderr is a terminal or UMOE_PROGRESS=1. */
typedef struct { const char *what; double total; double t_start; double t_last; int enabled; } umoe_progress;
void umoe_progress_start(umoe_progress *p, const char *what, double total);
void umoe_progress_update(umoe_progress *p, double done);
void umoe_progress_end(umoe_progress *p);

double umoe_now(void); /* monotonic seconds */
double umoe_median(double *v, int n); /* sorts v in place; 0 when n <= 0 (stats.c) */

/* Files. umoe_read_file: whole file, NUL-terminated, caller frees with umoe_free(p, *len + 1).
 * umoe_write_atomic: temp file + fsync + rename, so a failed write never destroys the previous file. */
char *umoe_read_file(const char *path, size_t *len);
umoe_status umoe_write_atomic(const char *path, const void *data, size_t len);

/* RNG: splitmix64-seeded xoshiro256**. Deterministic across platforms. */
typedef struct { uint64_t s[4]; } umoe_rng;
void umoe_rng_seed(umoe_rng *r, uint64_t seed);
uint64_t umoe_rng_u64(umoe_rng *r);
double umoe_rng_uniform(umoe_rng *r);  /* [0, 1) */
double umoe_rng_normal(umoe_rng *r);   /* N(0, 1), Box-Muller */

/* Small string helpers. */
int umoe_streq_nocase(const char *a, const char *b);
void umoe_strlcpy(char *dst, const char *src, size_t n);
#endif
