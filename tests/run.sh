#!/bin/sh
# tests/run.sh - runs every unit-test binary (build/tests/*), every CLI test script (tests/cli/*.sh) and,
# when MPI is built in, every MPI test script (tests/mpi/*.sh). Each prints "PASS name" / "FAIL name" lines;
# a program that exits non-zero without printing a FAIL line counts as one failure of its own.
# Ends with the summary line "N passed, N failed".
BUILD=${BUILD:-build}
export UMOE=${UMOE:-./umoe}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
passed=0; failed=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
run_one() {
    name=$1; shift
    "$@" >"$log" 2>&1; rc=$?
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL $name (exit $rc)"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL $name (ran no test)"; fi
    if [ "$f" -ne 0 ]; then echo "---- $name output:"; cat "$log"; echo "----"; fi
    echo "$name: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}
for t in "$BUILD"/tests/*; do [ -x "$t" ] && run_one "$(basename "$t")" "$t"; done
for t in tests/cli/test_*.sh; do [ -f "$t" ] && run_one "$(basename "$t")" sh "$t"; done
if [ "${USE_MPI:-0}" = 1 ]; then
    for t in tests/mpi/test_*.sh; do [ -f "$t" ] && run_one "$(basename "$t")" sh "$t"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
