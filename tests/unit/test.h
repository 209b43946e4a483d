/* test.h - the unit-test harness: each TEST is a function; CHECK records a failure with file:line and
 * keeps going; RUN prints "PASS name" or "FAIL name" (tests/run.sh counts those lines). A binary exits 1
 * if any test failed. */
#ifndef UMOE_TEST_H
#define UMOE_TEST_H
#include <math.h>
#include <stdio.h>
#include "umoe/common.h"

static int t_fail_cur, t_failed, t_passed;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            t_fail_cur++;                                                        \
        }                                                                        \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol, what)                                                         \
    do {                                                                                            \
        double _a = (double)(a), _b = (double)(b);                                                  \
        CHECK(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b), "%s: got %.9g, want %.9g", what, _a, _b); \
    } while (0)

#define RUN(fn)                                                  \
    do {                                                         \
        t_fail_cur = 0;                                          \
        fn();                                                    \
        if (t_fail_cur) { printf("FAIL %s\n", #fn); t_failed++; } \
        else { printf("PASS %s\n", #fn); t_passed++; }           \
        fflush(stdout);                                          \
    } while (0)

#define TEST_MAIN_END() return t_failed ? 1 : 0
#endif
