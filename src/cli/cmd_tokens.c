/* cmd_tokens.c - `umoe tokens`. Scaffold: being built (see the open issues); exits 1 until then. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

int cmd_tokens(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: umoe tokens ...\n(not built yet)\n");
        return UMOE_EXIT_OK;
    }
    fprintf(stderr, "umoe tokens: not built yet\n");
    return UMOE_EXIT_FAIL;
}
