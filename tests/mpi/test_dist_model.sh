#!/bin/sh
# tests/mpi/test_dist_model.sh - the tiny test model with expert parallelism (ep_moe hooks) under mpirun at 4
# ranks (EP 1, 2, 4; EP groups over 2 emulated nodes) and at 1 rank: losses and grads vs local experts,
# flat vs hierarchical bit-identical, EP-group aux-loss scope. Prints PASS/FAIL lines.
BUILD=${BUILD:-build}
BIN=$BUILD/mpitests/test_dist_model
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # see test_dist.sh
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
rc=0
$MPIRUN -np 4 "$BIN" || rc=1
$MPIRUN -np 1 "$BIN" || rc=1
exit $rc
