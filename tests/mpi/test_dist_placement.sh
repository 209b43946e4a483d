#!/bin/sh
# tests/mpi/test_dist_placement.sh - dynamic expert placement under mpirun (4 ranks: EP 1, 2, 4; and 1 rank):
# exact moves and bytes, no change of the math, the controller's imbalance. Prints PASS/FAIL lines.
BUILD=${BUILD:-build}
BIN=$BUILD/mpitests/test_dist_placement
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # see test_dist.sh
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
rc=0
$MPIRUN -np 4 "$BIN" || rc=1
$MPIRUN -np 1 "$BIN" || rc=1
exit $rc
