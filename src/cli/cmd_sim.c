/* cmd_sim.c - `umoe sim`. Scaffold: being built (see the open issues); exits 1 until then. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

int cmd_sim(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: umoe sim ...\n(not built yet)\n");
        return UMOE_EXIT_OK;
    }
    fprintf(stderr, "umoe sim: not built yet\n");
    return UMOE_EXIT_FAIL;
}
