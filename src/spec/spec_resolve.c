/* spec_resolve.c - where presets live and how a name becomes a file.
 * The configs/ directory is, in order: $UMOE_CONFIG_DIR; configs/ next to the running binary (found via
 * /proc/self/exe, also one level up for binaries under build/); ./configs. It is resolved once.
 * A MODEL/CLUSTER/STRATEGY argument that is an existing file is used as is; otherwise it is looked up as
 * configs/<kind>/<name>.json.
 * Does not: read or parse the files (the loaders do). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "umoe/spec.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *spec_config_dir(void) {
    static char dir[4096];
    static int done;
    if (done) return dir;
    done = 1;
    const char *env = getenv("UMOE_CONFIG_DIR");
    if (env && *env) {
        umoe_strlcpy(dir, env, sizeof dir);
        return dir;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        /* Up to three levels up: ./umoe, build/tests/x, build/asan/tests/x. */
        for (int up = 0; slash && up < 4; up++) {
            *slash = 0;
            char cand[4096 + 16];
            snprintf(cand, sizeof cand, "%s/configs", exe[0] ? exe : "/");
            if (is_dir(cand)) {
                umoe_strlcpy(dir, cand, sizeof dir);
                return dir;
            }
            slash = strrchr(exe, '/');
        }
    }
    umoe_strlcpy(dir, "configs", sizeof dir);
    return dir;
}

int spec_resolve(const char *path_or_name, const char *kind, char *out, size_t n) {
    if (!path_or_name || !*path_or_name) {
        umoe_fail("empty %s name (give a path to a JSON file or a preset name from configs/%s/)", kind, kind);
        return 0;
    }
    if (is_file(path_or_name)) {
        umoe_strlcpy(out, path_or_name, n);
        return 1;
    }
    /* A name with a slash or a .json suffix was meant as a path. */
    size_t len = strlen(path_or_name);
    int looks_path = strchr(path_or_name, '/') || (len > 5 && !strcmp(path_or_name + len - 5, ".json"));
    if (!looks_path) {
        char cand[4096 * 2];
        snprintf(cand, sizeof cand, "%s/%s/%s.json", spec_config_dir(), kind, path_or_name);
        if (is_file(cand)) {
            umoe_strlcpy(out, cand, n);
            return 1;
        }
        umoe_fail("%s \"%s\": no such file and no preset %s/%s/%s.json (presets live in %s/%s/; "
                  "set UMOE_CONFIG_DIR to use another configs directory)",
                  kind, path_or_name, spec_config_dir(), kind, path_or_name, spec_config_dir(), kind);
        return 0;
    }
    umoe_fail("%s: no such file (a %s is a JSON file or a preset name from %s/%s/)", path_or_name, kind,
              spec_config_dir(), kind);
    return 0;
}
