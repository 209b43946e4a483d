/* cmd_params.c - `umoe params`. Scaffold: being built (see the open issues); exits 1 until then. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

int cmd_params(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: umoe params ...\n(not built yet)\n");
        return UMOE_EXIT_OK;
    }
    fprintf(stderr, "umoe params: not built yet\n");
    return UMOE_EXIT_FAIL;
}
