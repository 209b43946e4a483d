#!/bin/sh
# tests/mpi/test_dist_aux.sh - aux-loss scope invariance (global and EP-group scopes) over 1, 2 and 4 ranks and
# over 4 accumulation steps; the micro-batch scope differs. Prints PASS/FAIL lines.
BUILD=${BUILD:-build}
BIN=$BUILD/mpitests/test_dist_aux
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # see test_dist.sh
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
rc=0
for n in 1 2 4; do $MPIRUN -np $n "$BIN" || rc=1; done
exit $rc
