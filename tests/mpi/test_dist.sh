#!/bin/sh
# tests/mpi/test_dist.sh - src/dist under mpirun (run by tests/run.sh only when MPI is built in):
# the EP exchange, layouts, gradient sync and safety checks at 4 ranks (every EP size and emulated node size
# that divides 4) and at 1 rank, the layout errors that need 6 ranks, and "a config mismatch exits 2 on every
# rank". Prints PASS/FAIL lines.
BUILD=${BUILD:-build}
BIN=$BUILD/mpitests/test_dist_ep
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
# Sanitizer builds (make asan): Open MPI's dynamically loaded components leak at exit, which LeakSanitizer
# reports from unnamed modules; our own frees are checked by the test dist_frees_everything instead.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
rc=0
out=$(mktemp); trap 'rm -f "$out"' EXIT

$MPIRUN -np 4 "$BIN" || rc=1
$MPIRUN -np 1 "$BIN" || rc=1
$MPIRUN -np 6 "$BIN" --layout-errors || rc=1

$MPIRUN -np 4 "$BIN" --hash-mismatch >"$out" 2>&1; got=$?
if [ "$got" -eq 2 ] && grep -q "config mismatch across MPI ranks: 1 of 4 ranks (2)" "$out"; then
    echo "PASS hash_mismatch_exits_2_everywhere"
else
    echo "FAIL hash_mismatch_exits_2_everywhere (exit $got)"; cat "$out"
fi
exit $rc
