/* validate_engine_watch.c - while a validation run trains, record the CPU time its ranks have used at the
 * moment each step's log line appears (Linux /proc/PID/stat utime + stime), so the CPU seconds of every step
 * are known. On a machine shared with other users, a step's wall time stretches with their load but its CPU
 * time does not: (CPU seconds of all ranks in the step) / min(ranks, cores) is the step time the machine
 * would give without them (docs/engine-validation.md). The ranks are the child itself (one process) or the
 * children of mpirun (Open MPI 4 starts local ranks as its own children).
 * Does not: parse the log (only counts its lines), start or stop anything. */
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "validate_engine.h"

#define VE_MAX_RANKS 64

/* utime + stime of one process in seconds; < 0 when it is gone */
static double proc_cpu(pid_t pid, pid_t *ppid) {
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!q) return -1;
    char state;
    int pp;
    unsigned long ut = 0, st = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(q + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &pp, &ut, &st) != 4) return -1;
    if (ppid) *ppid = pp;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* children of `parent` (the ranks under mpirun) */
static int find_children(pid_t parent, pid_t *out, int max) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) && n < max) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end || v <= 0) continue;
        pid_t pp = 0;
        if (proc_cpu((pid_t)v, &pp) >= 0 && pp == parent) out[n++] = (pid_t)v;
    }
    closedir(d);
    return n;
}

static long count_lines(const char *path, long *offset, long lines) {
    FILE *f = fopen(path, "r");
    if (!f) return lines;
    if (fseek(f, *offset, SEEK_SET) == 0) {
        int c;
        while ((c = fgetc(f)) != EOF) {
            (*offset)++;
            if (c == '\n') lines++;
        }
    }
    fclose(f);
    return lines;
}

int ve_watch(pid_t pid, int ranks, const char *log, double *cpu_at_line, int max_lines, int *status,
             struct rusage *ru) {
    pid_t rk[VE_MAX_RANKS];
    double last[VE_MAX_RANKS];
    int nr = 0;
    if (ranks <= 1) { rk[0] = pid; nr = 1; last[0] = 0; }
    long off = 0, lines = 0;
    struct timespec nap = {0, 2000000}; /* 2 ms: a step takes hundreds */
    for (int it = 0;; it++) {
        int w = wait4(pid, status, WNOHANG, ru);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return (int)lines;
        if (nr < ranks && ranks > 1 && it % 25 == 0) { /* ranks appear after mpirun started */
            int n = find_children(pid, rk, ranks < VE_MAX_RANKS ? ranks : VE_MAX_RANKS);
            if (n > nr) {
                for (int i = nr; i < n; i++) last[i] = 0;
                nr = n;
            }
        }
        long now = count_lines(log, &off, lines);
        if (now > lines) {
            double cpu = 0;
            for (int i = 0; i < nr; i++) {
                double c = proc_cpu(rk[i], NULL);
                if (c >= 0) last[i] = c;
                cpu += last[i];
            }
            if (nr < (ranks > 1 ? ranks : 1)) cpu = NAN; /* not every rank found yet */
            /* several lines in one poll: only the last one gets the reading (its step's CPU is unknown) */
            for (long l = lines; l < now && l < max_lines; l++) cpu_at_line[l] = l == now - 1 ? cpu : NAN;
            lines = now;
        }
        nanosleep(&nap, NULL);
    }
    return (int)(lines < max_lines ? lines : max_lines);
}
