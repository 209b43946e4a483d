/* str.c - tiny string helpers. */
#include <ctype.h>
#include <string.h>
#include "umoe/common.h"

int umoe_streq_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

void umoe_strlcpy(char *dst, const char *src, size_t n) {
    if (!n) return;
    size_t l = strlen(src);
    if (l >= n) l = n - 1;
    memcpy(dst, src, l);
    dst[l] = 0;
}
