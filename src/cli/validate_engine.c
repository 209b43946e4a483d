/* validate_engine.c - `umoe validate --engine [--hw FILE] [--quick] [--set FILE] [--json]`: predicted vs
 * measured step time and peak memory of real `umoe train` runs on this machine.
 *   1. the hardware spec (default configs/hardware/local.json) is measured first with `umoe bench --out`
 *      (under `mpirun -np 2`, for the MPI figures) when it does not exist;
 *   2. every run of the set (configs/engine-validation/{quick,full}.json) trains for warm-up + measured
 *      steps, as a plain process (ranks 1) or under `mpirun --oversubscribe` with OMP_NUM_THREADS=1 and
 *      OPENBLAS_NUM_THREADS=1 per rank, logging JSONL; measured = the median step time over the steps
 *      after warm-up, and the engine's own memory report (counted-allocator peak, peak RSS) of rank 0;
 *   3. each run is simulated (src/sim/cost_engine*.c) with the spec, ranks sharing this host's cores;
 *   4. the report (validate_engine_report.c) prints both and the errors.
 * Inputs the simulator takes from the run itself (documented in docs/engine-validation.md): the routing
 * imbalance across EP ranks (the strategy's `imbalance`, as the published-point rows give theirs) and the
 * data file's size. Nothing is fitted: every constant is the spec's.
 * Does not: change the engine or the simulator; keep the runs' files (a temporary directory, removed). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"
#include "umoe/json.h"
#include "validate_engine.h"

#define VE_MAX_RUNS 64
#define VE_MAX_STEPS 64
#define VE_MAX_LAYERS 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe validate --engine [--hw FILE] [--bench | --bench-each] [--quick] [--set FILE] [--repeat N] [--json]\n"
            "                             [--no-pin]\n\n"
            "Runs real training configurations of the engine on this machine (umoe train, under mpirun for\n"
            "EP 2 and 4, one thread per rank), simulates each with the measured hardware spec, and prints\n"
            "predicted vs measured step time and peak memory with the error per row and the median absolute\n"
            "errors. Method and figures: docs/engine-validation.md.\n\n"
            "  --hw FILE   hardware spec measured by `umoe bench` (configs/hardware/local.json; measured first\n"
            "              with `mpirun -np 2 umoe bench --out FILE` when missing)\n"
            "  --bench     measure the spec again first (same load as the runs that follow)\n"
            "  --bench-each  measure it again before every run (the load of each run's minute)\n"
            "  --quick     the short set (configs/engine-validation/quick.json, about a minute on 2 cores)\n"
            "  --set FILE  another set of runs (format in docs/engine-validation.md)\n"
            "  --repeat N  run the whole set N times (1..16; 1); a row's measured and predicted step times are\n"
            "              the medians over the rounds, and each round's median error is printed too\n"
            "  --json      machine-readable output\n"
            "  --no-pin    with --bench/--bench-each or a missing spec: leave the bench's ranks and the\n"
            "              single-process runs unbound (predicted with the mean over cores, rank_time_mean)\n");
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const char *self_exe(void) {
    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "umoe";
    buf[n] = 0;
    return buf;
}

/* cores this process may run on (its affinity mask: taskset / cgroup cpusets), else the online count */
static double cpu_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (double)n : 1;
}

static int have_mpirun(void) {
    static int known = -1;
    if (known < 0) known = system("command -v mpirun >/dev/null 2>&1") == 0;
    return known;
}

/* The CPU a pinned single-process run is bound to: the lowest in this process's affinity mask, the core
 * `mpirun --bind-to core` binds rank 0 of the bench to (whose figures the spec's rates are). -1: unknown. */
static int pin_cpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) return c;
    return -1;
}

/* Runs argv with stdout+stderr to `out_path`; environment adds one thread per rank; bound to CPU `cpu` when
 * cpu >= 0. Returns the exit status (-1 when it could not start); cpu_s = user + system seconds of the child
 * and every descendant it reaped. */
static int spawn(char *const argv[], const char *out_path, double *cpu_s, double *wall_s, int ranks,
                 const char *log, double *cpu_at_line, int max_lines, int *lines, int cpu) {
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        if (cpu >= 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(126);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (log) {
        *lines = ve_watch(pid, ranks, log, cpu_at_line, max_lines, &status, &ru);
    } else {
        while (wait4(pid, &status, 0, &ru) < 0)
            if (errno != EINTR) return -1;
    }
    gettimeofday(&t1, NULL);
    if (cpu_s)
        *cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    if (wall_s) *wall_s = (t1.tv_sec - t0.tv_sec) + (t1.tv_usec - t0.tv_usec) * 1e-6;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* argv building */
typedef struct { char *v[64]; char buf[64][4200]; int n; } argvec;
static void arg(argvec *a, const char *fmt, const char *s) {
    snprintf(a->buf[a->n], sizeof a->buf[a->n], fmt, s);
    a->v[a->n] = a->buf[a->n];
    a->v[++a->n] = NULL;
}
static void argi(argvec *a, long v) {
    char b[32];
    snprintf(b, sizeof b, "%ld", v);
    arg(a, "%s", b);
}
/* bind = 1: each rank bound to its own core (rank 0 to the first); 0: the OS places and moves them */
static void mpirun_prefix(argvec *a, int np, int bind) {
    arg(a, "%s", "mpirun");
    arg(a, "%s", "-np");
    argi(a, np);
    arg(a, "%s", "--oversubscribe");
    arg(a, "%s", "--bind-to");
    arg(a, "%s", bind ? "core" : "none"); /* none: the OS spreads the ranks over the cores this process may use */
    if (geteuid() == 0) arg(a, "%s", "--allow-run-as-root");
    arg(a, "%s", "-x");
    arg(a, "%s", "OMP_NUM_THREADS");
    arg(a, "%s", "-x");
    arg(a, "%s", "OPENBLAS_NUM_THREADS");
}

/* The full bench (the quick grid is too noisy to predict step times with, docs/engine-validation.md).
 * pin: the bench's ranks bound to one core each, so rank 0's figures (the spec's rates) are the first core's */
/* argv of `[mpirun -np ranks] umoe bench [--quick] --out out` (a plain process for ranks 1) */
static void bench_argv(argvec *a, int ranks, int bind, int quick, const char *out) {
    if (ranks > 1) mpirun_prefix(a, ranks, bind);
    arg(a, "%s", self_exe());
    arg(a, "%s", "bench");
    if (quick) arg(a, "%s", "--quick");
    arg(a, "%s", "--out");
    arg(a, "%s", out);
}

static int run_bench(const char *hw, int pin) {
    argvec a = {.n = 0};
    bench_argv(&a, have_mpirun() ? 2 : 1, pin, 0, hw);
    fprintf(stderr, "umoe validate: %s%s; measuring this machine first: %sumoe bench --out %s\n", hw,
            file_exists(hw) ? " (--bench)" : " does not exist", have_mpirun() ? "mpirun -np 2 " : "", hw);
    char log[4200];
    snprintf(log, sizeof log, "%s.bench-log", hw);
    int rc = spawn(a.v, log, NULL, NULL, 1, NULL, NULL, 0, NULL, -1);
    if (rc != 0 || !file_exists(hw)) {
        fprintf(stderr, "umoe validate: `umoe bench --out %s` failed (exit %d; its output is in %s); run it yourself: "
                        "mpirun -np 2 umoe bench --out %s\n", hw, rc, log, hw);
        return UMOE_EXIT_FAIL;
    }
    unlink(log);
    return 0;
}

/* The runtime's resident share per process (the spec's mem_reserved: code, libraries, OpenBLAS and MPI
 * buffers) depends on the rank count: Open MPI maps shared-memory segments per peer, and a plain process
 * maps none. Measured with a quick bench at `ranks` ranks (a plain process bound to `cpu` for 1, mpirun
 * otherwise; the spec's other figures are not used): *out = its mem_reserved, or unchanged when it fails. */
static void measure_reserved(const char *hw, int ranks, int cpu, double *out) {
    char path[4150], log[4200];
    snprintf(path, sizeof path, "%s.reserved-%d.json", hw, ranks);
    snprintf(log, sizeof log, "%s.log", path);
    argvec a = {.n = 0};
    bench_argv(&a, ranks, 0, 1, path);
    spec_hardware r;
    if (spawn(a.v, log, NULL, NULL, 1, NULL, NULL, 0, NULL, ranks == 1 ? cpu : -1) == 0 &&
        spec_hardware_load(path, &r) == UMOE_OK && r.mem_reserved > 0) {
        *out = r.mem_reserved;
        LOG_INFO("validate --engine: the runtime's resident share at %d rank(s): %.1f MB per process", ranks,
                 r.mem_reserved / 1e6);
        unlink(log);
    } else {
        LOG_WARN("validate --engine: measuring mem_reserved at %d rank(s) failed (output in %s); the spec's is used",
                 ranks, log);
    }
    unlink(path);
}

/* ------------------------------------------------------------------ the set of runs */
typedef struct {
    int steps, warmup;
    long data_bytes;
    int n;
    engine_row rows[VE_MAX_RUNS];
} run_set;

static int load_set(const char *path, run_set *S) {
    memset(S, 0, sizeof *S);
    cJSON *root = json_load_file(path);
    if (!root) return cli_input_error();
    static const char *const known[] = {"_source", "steps", "warmup", "data_bytes", "runs", NULL};
    static const char *const known_run[] = {"id", "model", "ranks", "ep", "ranks_per_node", "a2a", "placement",
                                            "batch", "recompute", "_note", NULL};
    static const char *const a2a[] = {"flat", "hierarchical", NULL};
    long long v;
    umoe_status st = json_check_known(root, path, known);
    S->steps = 5;
    S->warmup = 2;
    S->data_bytes = 65536;
    v = S->steps;
    if (!st && !(st = json_get_int_opt(root, path, "steps", 2, VE_MAX_STEPS, &v))) S->steps = (int)v;
    v = S->warmup;
    if (!st && !(st = json_get_int_opt(root, path, "warmup", 1, VE_MAX_STEPS - 1, &v))) S->warmup = (int)v;
    v = S->data_bytes;
    if (!st && !(st = json_get_int_opt(root, path, "data_bytes", 4096, 1LL << 30, &v))) S->data_bytes = (long)v;
    if (!st && S->warmup >= S->steps)
        st = umoe_fail("%s: warmup %d must be below steps %d (at least one measured step)", path, S->warmup, S->steps);
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(root, "runs");
    if (!st && (!cJSON_IsArray(runs) || cJSON_GetArraySize(runs) < 1 || cJSON_GetArraySize(runs) > VE_MAX_RUNS))
        st = umoe_fail("%s: \"runs\" must be an array of 1 to %d run objects", path, VE_MAX_RUNS);
    char dir[4096];
    umoe_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    const cJSON *r;
    if (!st) cJSON_ArrayForEach(r, runs) {
        engine_row *e = &S->rows[S->n];
        char where[4300], model[4096];
        snprintf(where, sizeof where, "%s: runs[%d]", path, S->n);
        if ((st = json_check_known(r, where, known_run))) break;
        if ((st = json_get_str(r, where, "id", e->id, sizeof e->id))) break;
        if ((st = json_get_str(r, where, "model", model, sizeof model))) break;
        /* a model path relative to the set's directory, else a preset name or a path as given */
        char rel[8200];
        snprintf(rel, sizeof rel, "%s/%s", dir, model);
        umoe_strlcpy(e->model, file_exists(rel) ? rel : model, sizeof e->model);
        e->ranks = 1; e->ep = 1; e->batch = 4; e->placement = 0;
        v = 1;
        if ((st = json_get_int_opt(r, where, "ranks", 1, 64, &v))) break;
        e->ranks = (int)v;
        v = e->ranks;
        if ((st = json_get_int_opt(r, where, "ep", 1, 64, &v))) break;
        e->ep = (int)v;
        v = 0;
        if ((st = json_get_int_opt(r, where, "ranks_per_node", 0, 64, &v))) break;
        e->ranks_per_node = (int)v;
        v = 0;
        if ((st = json_get_int_opt(r, where, "placement", 0, 1000000, &v))) break;
        e->placement = (int)v;
        v = 4;
        if ((st = json_get_int_opt(r, where, "batch", 1, 4096, &v))) break;
        e->batch = (int)v;
        int k = 0;
        if ((st = json_get_enum_opt(r, where, "a2a", a2a, &k))) break;
        e->hierarchical = k;
        strcpy(e->recompute, "none");
        if ((st = json_get_str_opt(r, where, "recompute", e->recompute, sizeof e->recompute))) break;
        unsigned rc;
        if ((st = spec_recompute_parse(e->recompute, where, "recompute", &rc))) break;
        if (e->ranks % e->ep || e->batch % e->ranks) {
            st = umoe_fail("%s: ranks %d must be a multiple of ep %d and batch %d a multiple of ranks", where,
                           e->ranks, e->ep, e->batch);
            break;
        }
        S->n++;
    }
    cJSON_Delete(root);
    return st ? cli_input_error() : 0;
}

/* ------------------------------------------------------------------ one run */
static double num_of(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* Reads the JSONL log: per step seconds, the memory report, the EP imbalance. */
static int parse_log(const char *path, int warmup, engine_row *e) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char line[1 << 20];
    double secs[VE_MAX_STEPS], imbs[VE_MAX_STEPS];
    int n = 0, ni = 0, n_layers = 0;
    double recv_max[VE_MAX_LAYERS] = {0};
    e->meas_alloc = e->meas_rss = e->meas_arena = e->meas_params_bytes = NAN;
    while (fgets(line, sizeof line, f) && n < VE_MAX_STEPS) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        double step = num_of(o, "step"), s = num_of(o, "seconds");
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(o, "mem");
        if (cJSON_IsObject(mem)) { /* the peaks only grow: the last line has them */
            e->meas_alloc = num_of(mem, "alloc_peak");
            e->meas_rss = num_of(mem, "peak_rss");
            e->meas_arena = num_of(mem, "arena");
            e->meas_params_bytes = num_of(mem, "params");
        }
        /* the reporting rank (0) receives, with block owners (experts 0 .. E/ep-1), these rows per layer:
         * sum of their loads over the EP groups / (ranks / ep); relative to a balanced rank's share */
        const cJSON *el = cJSON_GetObjectItemCaseSensitive(o, "expert_load"), *ly;
        if (e->ranks > 1 && cJSON_IsArray(el) && (e->placement == 0 || step <= e->placement)) {
            int li = 0;
            cJSON_ArrayForEach(ly, el) {
                const cJSON *ld = cJSON_GetObjectItemCaseSensitive(ly, "load"), *x;
                int E = cJSON_GetArraySize(ld), j = 0;
                double tot = 0, mine = 0;
                cJSON_ArrayForEach(x, ld) {
                    double v = cJSON_IsNumber(x) ? x->valuedouble : 0;
                    tot += v;
                    if (j++ < E / e->ep) mine += v;
                }
                double sc = tot > 0 ? mine * e->ep / tot : 1;
                if (li < VE_MAX_LAYERS && sc > recv_max[li]) recv_max[li] = sc;
                if (++li > n_layers) n_layers = li;
            }
        }
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "ep");
        const cJSON *im = ep ? cJSON_GetObjectItemCaseSensitive(ep, "imbalance") : NULL;
        if (e->placement > 0 && step > e->placement && cJSON_IsArray(im)) {
            /* owners moved: rank 0's rows are unknown, bounded by the most loaded rank's (logged per layer) */
            int li = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, im) {
                if (li < VE_MAX_LAYERS && cJSON_IsNumber(x) && x->valuedouble > recv_max[li]) recv_max[li] = x->valuedouble;
                if (++li > n_layers) n_layers = li;
            }
        }
        if (step > warmup && isfinite(s)) {
            secs[n++] = s;
            if (cJSON_IsArray(im) && cJSON_GetArraySize(im) > 0) {
                double sum = 0;
                int c = 0;
                const cJSON *x;
                cJSON_ArrayForEach(x, im) if (cJSON_IsNumber(x)) { sum += x->valuedouble; c++; }
                if (c) imbs[ni++] = sum / c;
            }
        }
        cJSON_Delete(o);
    }
    fclose(f);
    e->measured_steps = n;
    if (n == 0) return -1;
    double mn = secs[0], mx = secs[0];
    for (int i = 1; i < n; i++) { if (secs[i] < mn) mn = secs[i]; if (secs[i] > mx) mx = secs[i]; }
    e->meas_step_min = mn;
    e->meas_step_max = mx;
    e->meas_step_s = umoe_median(secs, n);
    e->meas_imbalance = ni ? umoe_median(imbs, ni) : 1.0;
    double rs = 0;
    for (int l = 0; l < n_layers && l < VE_MAX_LAYERS; l++) rs += recv_max[l];
    e->recv_scale = n_layers ? rs / n_layers : 1.0;
    return 0;
}

/* median of the finite values among x[0..n) (NAN when none); x is not changed */
static double finite_median(const double *x, int n) {
    double v[VE_MAX_ROUNDS];
    int k = 0;
    for (int i = 0; i < n && k < VE_MAX_ROUNDS; i++)
        if (isfinite(x[i])) v[k++] = x[i];
    return k ? umoe_median(v, k) : NAN;
}

static void run_one(const run_set *S, engine_row *e, const char *tmp, const char *data, double cores, int cpu) {
    char log[4200], out[4200];
    snprintf(log, sizeof log, "%s/%s.jsonl", tmp, e->id);
    snprintf(out, sizeof out, "%s/%s.out", tmp, e->id);
    argvec a = {.n = 0};
    /* pinned, and no more ranks than cores: rank r on core r, as the bench's ranks were (rank_time_max is
     * then the cores' own ratio); more ranks than cores stay with the OS scheduler */
    if (e->ranks > 1) mpirun_prefix(&a, e->ranks, cpu >= 0 && e->ranks <= (int)cores);
    arg(&a, "%s", self_exe());
    arg(&a, "%s", "train");
    arg(&a, "%s", e->model);
    arg(&a, "%s", "--data"); arg(&a, "%s", data);
    arg(&a, "%s", "--steps"); argi(&a, S->steps);
    arg(&a, "%s", "--warmup"); argi(&a, 1);
    arg(&a, "%s", "--batch"); argi(&a, e->batch);
    arg(&a, "%s", "--val-batches"); argi(&a, 1);
    arg(&a, "%s", "--log"); arg(&a, "%s", log);
    arg(&a, "%s", "--progress"); arg(&a, "%s", "off");
    arg(&a, "%s", "--recompute"); arg(&a, "%s", e->recompute);
    if (e->ranks > 1) {
        arg(&a, "%s", "--ep"); argi(&a, e->ep);
        arg(&a, "%s", "--a2a"); arg(&a, "%s", e->hierarchical ? "hierarchical" : "flat");
        if (e->ranks_per_node > 0) { arg(&a, "%s", "--ranks-per-node"); argi(&a, e->ranks_per_node); }
        arg(&a, "%s", "--placement");
        if (e->placement > 0) argi(&a, e->placement); else arg(&a, "%s", "off");
    }
    double cpu_s = 0, wall = 0;
    LOG_INFO("validate --engine: run %s (%d rank%s)", e->id, e->ranks, e->ranks > 1 ? "s" : "");
    double cpu_at[VE_MAX_STEPS];
    int lines = 0;
    int rc = spawn(a.v, out, &cpu_s, &wall, e->ranks, log, cpu_at, VE_MAX_STEPS, &lines, e->ranks == 1 ? cpu : -1);
    e->wall_s = wall;
    double slots = fmin((double)e->ranks, cores);
    e->cpu_share = wall > 0 ? cpu_s / (wall * slots) : NAN;
    if (rc != 0) {
        snprintf(e->reason, sizeof e->reason, "umoe train exited %d (output: %.300s)", rc, out);
        return;
    }
    if (parse_log(log, S->warmup, e)) {
        snprintf(e->reason, sizeof e->reason, "no measured step in the log %.300s", log);
        return;
    }
    /* CPU seconds per measured step (line k is step k + 1); the last step also validates: left out */
    double per[VE_MAX_STEPS];
    int np = 0;
    for (int k = S->warmup; k < lines - 1 && k < VE_MAX_STEPS; k++) {
        double d = cpu_at[k] - cpu_at[k - 1];
        if (isfinite(d) && d > 0) per[np++] = d / slots;
    }
    e->meas_cpu_step_s = np ? umoe_median(per, np) : NAN;
    e->ok = 1;
}

static int write_data(const char *path, long bytes) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    long n = 0;
    for (long i = 1; n < bytes; i++) n += fprintf(f, "%ld ", i * 7919 % 100003);
    return fclose(f);
}

static void rm_tmp(const char *tmp, const run_set *S) {
    char p[4300];
    for (int i = 0; i < S->n; i++) {
        snprintf(p, sizeof p, "%s/%s.jsonl", tmp, S->rows[i].id); unlink(p);
        if (S->rows[i].ok) { snprintf(p, sizeof p, "%s/%s.out", tmp, S->rows[i].id); unlink(p); }
    }
    snprintf(p, sizeof p, "%s/data.txt", tmp);
    unlink(p);
    rmdir(tmp); /* kept (with the failed runs' output) when not empty */
}

int cmd_validate_engine(int argc, char **argv) {
    const char *hw_arg = NULL, *set_arg = NULL;
    int quick = 0, json = 0, bench = 0, bench_each = 0, no_pin = 0, rounds = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (!strcmp(a, "--engine")) continue;
        if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--bench")) bench = 1;
        else if (!strcmp(a, "--bench-each")) bench = bench_each = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-pin")) no_pin = 1;
        else if (!strcmp(a, "--repeat")) {
            const char *v = cli_value("validate", argc, argv, i);
            if (!v) return UMOE_EXIT_INPUT;
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > VE_MAX_ROUNDS) {
                fprintf(stderr, "umoe validate: --repeat %s: expected a whole number of rounds from 1 to %d\n", v,
                        VE_MAX_ROUNDS);
                return UMOE_EXIT_INPUT;
            }
            rounds = (int)n;
            i++;
        } else if (!strcmp(a, "--hw") || !strcmp(a, "--set")) {
            const char *v = cli_value("validate", argc, argv, i);
            if (!v) return UMOE_EXIT_INPUT;
            if (!strcmp(a, "--hw")) hw_arg = v; else set_arg = v;
            i++;
        } else return cli_unknown("validate --engine", a);
    }
    char hw[4200], set[4200];
    if (hw_arg) umoe_strlcpy(hw, hw_arg, sizeof hw);
    else snprintf(hw, sizeof hw, "%s/hardware/local.json", spec_config_dir());
    if (set_arg) umoe_strlcpy(set, set_arg, sizeof set);
    else snprintf(set, sizeof set, "%s/engine-validation/%s.json", spec_config_dir(), quick ? "quick" : "full");
    if (!file_exists(hw) && !strchr(hw, '/') && hw_arg) { /* a preset name */
        char p[4096];
        if (spec_resolve(hw, "hardware", p, sizeof p)) umoe_strlcpy(hw, p, sizeof hw);
    }
    /* pinned: the spec is measured here with the bench's ranks bound to a core each, and single-process runs
     * are bound to rank 0's core, so they are predicted with that core's own rates (rank_time 1) instead of
     * the mean over cores (a spec measured elsewhere: unpinned, rank_time_mean) */
    int pin = -1;
    if (!file_exists(hw) || bench) {
        pin = no_pin ? -1 : pin_cpu();
        int rc = run_bench(hw, pin >= 0);
        if (rc) return rc;
    }
    spec_hardware h;
    if (spec_hardware_load(hw, &h)) return cli_input_error();
    run_set *S = umoe_calloc(1, sizeof *S, "engine validation runs");
    int rc = load_set(set, S);
    /* every model must load before anything runs */
    spec_model *models = umoe_calloc(VE_MAX_RUNS, sizeof *models, "engine validation models");
    for (int i = 0; !rc && i < S->n; i++) {
        if (spec_model_load(S->rows[i].model, &models[i]) || spec_model_validate(&models[i], S->rows[i].model))
            rc = cli_input_error();
    }
    if (!rc && !have_mpirun())
        for (int i = 0; i < S->n; i++)
            if (S->rows[i].ranks > 1) {
                S->rows[i].ok = 0;
                snprintf(S->rows[i].reason, sizeof S->rows[i].reason, "needs mpirun, which is not installed");
            }
    char tmp[] = "/tmp/umoe-validate-engine-XXXXXX", data[64];
    if (!rc && !mkdtemp(tmp)) {
        fprintf(stderr, "umoe validate: cannot create a temporary directory: %s\n", strerror(errno));
        rc = UMOE_EXIT_FAIL;
    }
    snprintf(data, sizeof data, "%s/data.txt", tmp);
    if (!rc && write_data(data, S->data_bytes)) {
        fprintf(stderr, "umoe validate: cannot write %s\n", data);
        rc = UMOE_EXIT_FAIL;
    }
    double cores = cpu_cores();
    /* mem_reserved per rank count (index = ranks): the spec's is the 2-rank bench's (or 1 without mpirun);
     * the other counts of the set are measured once when this command measures the spec */
    double reserved[65] = {0};
    if (!rc && (bench || pin >= 0))
        for (int i = 0; i < S->n; i++) {
            int R = S->rows[i].ranks, spec_R = have_mpirun() ? 2 : 1;
            if (R == spec_R || R > 64 || reserved[R] > 0 || (R > 1 && !have_mpirun())) continue;
            measure_reserved(hw, R, pin, &reserved[R]);
        }
    int failed = 0, have_after = 0;
    spec_hardware h_after = h;
    for (int k = 0; !rc && k < rounds * S->n; k++) {
        int i = k % S->n;
        engine_row *e = &S->rows[i];
        if (e->ranks > 1 && !have_mpirun()) continue;
        if (rounds > 1 && i == 0) LOG_INFO("validate --engine: round %d of %d", k / S->n + 1, rounds);
        e->ok = 0;
        e->reason[0] = 0;
        if (have_after) h = h_after; /* the bench right after the previous run is the one before this run */
        else if (bench_each && k > 0) { /* the machine of this minute: the same load as the run that follows */
            if ((rc = run_bench(hw, pin >= 0))) break;
            if (spec_hardware_load(hw, &h)) { rc = cli_input_error(); break; }
        }
        run_one(S, e, tmp, data, cores, pin);
        if (bench_each) { /* and right after it: the run is bracketed by two benches (drift within the run) */
            if ((rc = run_bench(hw, pin >= 0))) break;
            if (spec_hardware_load(hw, &h_after)) { rc = cli_input_error(); break; }
            have_after = 1;
        }
        if (!e->ok) { failed++; continue; }
        struct stat sb;
        sim_engine_config c = {e->ranks, e->ep, e->ranks_per_node, e->hierarchical, e->placement, e->batch,
                               models[i].T, 0, cores, 1, e->meas_imbalance,
                               stat(data, &sb) == 0 ? (double)sb.st_size : (double)S->data_bytes,
                               e->recv_scale};
        spec_recompute_parse(e->recompute, set, "recompute", &c.recompute);
        sim_engine_result after;
        spec_hardware hb = h, ha = h_after;
        if (pin >= 0 && e->ranks == 1) hb.rank_time_mean = ha.rank_time_mean = 1; /* rank 0's core: its own rates */
        if (e->ranks <= 64 && reserved[e->ranks] > 0) hb.mem_reserved = ha.mem_reserved = reserved[e->ranks];
        if (sim_engine_run(&models[i], &hb, &c, &e->pred) || (bench_each && sim_engine_run(&models[i], &ha, &c, &after))) {
            e->ok = 0;
            snprintf(e->reason, sizeof e->reason, "simulator: %.300s", umoe_err);
            failed++;
            continue;
        }
        /* predicted step = the mean of the predictions with the spec measured just before and just after the
         * run (--bench-each); memory and the parts are the before-spec's */
        e->pred_step_before_s = e->pred.step_s;
        e->pred_step_after_s = bench_each ? after.step_s : NAN;
        if (bench_each) e->pred.step_s = 0.5 * (e->pred_step_before_s + e->pred_step_after_s);
        if (e->n_rounds < VE_MAX_ROUNDS) {
            int j = e->n_rounds++;
            e->round_meas[j] = e->meas_step_s;
            e->round_min[j] = e->meas_step_min;
            e->round_cpu[j] = e->meas_cpu_step_s;
            e->round_pred[j] = e->pred.step_s;
        }
        if (e->n_rounds > 1) { /* the medians over the rounds so far */
            e->meas_step_s = finite_median(e->round_meas, e->n_rounds);
            e->meas_step_min = finite_median(e->round_min, e->n_rounds);
            e->meas_cpu_step_s = finite_median(e->round_cpu, e->n_rounds);
            e->pred.step_s = finite_median(e->round_pred, e->n_rounds);
        }
        e->err_step = e->pred.step_s / e->meas_step_s - 1;
        e->err_cpu_step = e->pred.step_s / e->meas_cpu_step_s - 1;
        e->err_step_fastest = e->pred.step_s / e->meas_step_min - 1;
        e->err_alloc = e->pred.alloc_peak / e->meas_alloc - 1;
        e->err_rss = e->pred.rss / e->meas_rss - 1;
    }
    if (!rc) {
        engine_report_print(S->rows, S->n, hw, json, cores, rounds);
        rm_tmp(tmp, S);
        if (failed) {
            fprintf(stderr, "umoe validate: %d run(s) failed; their output is kept in %s\n", failed, tmp);
            rc = UMOE_EXIT_FAIL;
        }
    }
    umoe_free(models, VE_MAX_RUNS * sizeof *models);
    umoe_free(S, sizeof *S);
    return rc;
}
