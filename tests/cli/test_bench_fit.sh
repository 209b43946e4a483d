# The alpha-beta fit of `umoe bench` (src/cli/bench_mpi.c, bench_fit_alpha_beta) on synthetic collective
# times: exact data in the simulator's ring formulas gives back its latency and bandwidth; 20% noise stays
# within 25%; data that needs a negative latency is refitted with latency 0; times that shrink with size give
# no bandwidth (an error, which bench turns into the single-process estimate). Compiled here against
# build/libumoe.a (the cli is not part of the library).
. tests/cli/lib.sh
BUILD=${BUILD:-build}
case "$BUILD" in *asan*) SANF="-fsanitize=address,undefined" ;; *) SANF= ;; esac # make asan's library
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cat >"$T/fit.c" <<'C'
#include <math.h>
#include <stdio.h>
#include "bench.h"
static int fails;
#define EXPECT(name, cond) do { if (cond) printf("PASS %s\n", name); else { printf("FAIL %s\n", name); fails++; } } while (0)
/* n = 4 ranks, sizes 1 KiB .. 4 MiB, the three collectives of bench_mpi.c */
static int make(double lat, double bw, double noise, double *c, double *x, double *t) {
    int m = 0, n = 4;
    umoe_rng r;
    umoe_rng_seed(&r, 7);
    for (int op = 0; op < 3; op++)
        for (double S = 1024; S <= 4 << 20; S *= 4, m++) {
            c[m] = op == 0 ? 2.0 * (n - 1) : op == 1 ? n - 1.0 : 1.0;
            x[m] = (op == 0 ? 2.0 : 1.0) * (n - 1) / n * S;
            t[m] = (c[m] * lat + x[m] / bw) * (1 + noise * (2 * umoe_rng_uniform(&r) - 1));
        }
    return m;
}
int main(void) {
    double c[64], x[64], t[64];
    bench_fit f;
    int m = make(2e-6, 5e9, 0, c, x, t);
    EXPECT("fit_exact", !bench_fit_alpha_beta(c, x, t, m, &f) && fabs(f.lat / 2e-6 - 1) < 1e-6 &&
                            fabs(f.bw / 5e9 - 1) < 1e-6 && f.resid_max < 1e-6 && !f.lat_clamped && f.n_points == m);
    m = make(2e-6, 5e9, 0.2, c, x, t);
    EXPECT("fit_noisy", !bench_fit_alpha_beta(c, x, t, m, &f) && fabs(f.lat / 2e-6 - 1) < 0.25 &&
                            fabs(f.bw / 5e9 - 1) < 0.25 && f.resid_med > 0 && f.resid_max <= 0.5);
    m = make(0, 5e9, 0, c, x, t);
    for (int i = 0; i < m; i++) t[i] = x[i] / 5e9 - 1e-7; /* > 0 for every point, would need lat < 0 */
    EXPECT("fit_negative_lat_clamped", !bench_fit_alpha_beta(c, x, t, m, &f) && f.lat == 0 && f.lat_clamped && f.bw > 0);
    m = make(2e-6, 5e9, 0, c, x, t);
    for (int i = 0; i < m; i++) t[i] = 1e-3 / (1 + x[i] * 1e-3); /* shrinking with size */
    EXPECT("fit_shrinking_times_fail", bench_fit_alpha_beta(c, x, t, m, &f) != UMOE_OK);
    EXPECT("fit_needs_two_points", bench_fit_alpha_beta(c, x, t, 1, &f) != UMOE_OK);
    return fails != 0;
}
C
if cc -std=c11 -D_GNU_SOURCE -O1 $SANF -Iinclude -Isrc/cli "$T/fit.c" src/cli/bench_mpi.c src/cli/bench_stat.c \
      "$BUILD/libumoe.a" -lcjson -lm $SANF -o "$T/fit" 2>"$T/cc.err"; then
    "$T/fit"
else
    echo "FAIL bench_fit_compiles ($(head -c 1500 "$T/cc.err"))"
fi
