/* args.c - flag value parsing shared by the commands. Bad flags are input errors (exit 2). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cli_is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help"); }

int cli_parse_int(const char *cmd, const char *flag, const char *val, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "umoe %s: %s = \"%s\" is not allowed (an integer in %lld..%lld)\n", cmd, flag, val, lo, hi);
        return UMOE_EXIT_INPUT;
    }
    *out = v;
    return 0;
}

int cli_parse_num(const char *cmd, const char *flag, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "umoe %s: %s = \"%s\" is not allowed (a number in %g..%g)\n", cmd, flag, val, lo, hi);
        return UMOE_EXIT_INPUT;
    }
    *out = v;
    return 0;
}

const char *cli_value(const char *cmd, int argc, char **argv, int i) {
    if (i + 1 >= argc) {
        fprintf(stderr, "umoe %s: %s needs a value\n", cmd, argv[i]);
        return NULL;
    }
    return argv[i + 1];
}

int cli_unknown(const char *cmd, const char *arg) {
    fprintf(stderr, "umoe %s: unknown argument \"%s\" (see umoe %s --help)\n", cmd, arg, cmd);
    return UMOE_EXIT_INPUT;
}

int cli_input_error(void) {
    fprintf(stderr, "umoe: %s\n", umoe_err);
    return UMOE_EXIT_INPUT;
}
