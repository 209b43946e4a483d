#!/bin/sh
# tests/mpi/test_bench_mpi.sh - umoe bench under mpirun (run by tests/run.sh only when MPI is built in): with 2
# ranks the collectives are measured and fitted (positive bandwidth, latency >= 0, the fit's points and the
# spreads recorded), devices_per_node = 2 and hbm_bytes is the host's memory per rank; the written spec loads
# and the simulator prices EP traffic with it;
# rank_time_mean/max and oversub_wait are recorded with their measurements;
# --ranks-per-node 1 measures the inter tier across 2 emulated nodes; a --ranks-per-node that does not divide
# the ranks exits 2 on every rank. Uses --quick. Prints PASS/FAIL lines.
. tests/cli/lib.sh
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
check() { # check NAME JQ_EXPR FILE: PASS when the jq expression is true
    if command -v jq >/dev/null 2>&1; then
        if [ "$(jq -r "$2" "$3" 2>&1)" = "true" ]; then echo "PASS $1"; else echo "FAIL $1 ($2 on $3: $(jq -r "$2" "$3" 2>&1 | head -c 300))"; fi
    else echo "FAIL $1 (jq is not installed)"; fi
}

HW=$T/hw2.json
expect_rc 0 bench_mpi_np2_runs $MPIRUN -np 2 $UMOE bench --quick --out "$HW"
expect_out bench_mpi_spec_loads 'hardware "local": loads' $UMOE bench --check "$HW"
check bench_mpi_fit_positive '._measurements.comm.mode == "mpi" and .intra_bw > 0 and .intra_lat >= 0 and .intra_bw == ._measurements.comm.intra.fit.bw and .intra_lat == ._measurements.comm.intra.fit.lat' "$HW"
check bench_mpi_fit_points '._measurements.comm.intra.group_ranks == 2 and ._measurements.comm.intra.fit.points == 12 and all(._measurements.comm.intra | (.allreduce, .allgather, .alltoall) | .sizes[]; .reps >= 3 and .iters >= 1 and .t_min > 0 and .t_min <= .t_med and .t_med <= .t_max)' "$HW"
check bench_mpi_times_grow '._measurements.comm.intra | all(.allreduce, .allgather, .alltoall; .sizes[-1].t_min > .sizes[0].t_min)' "$HW"
check bench_mpi_layout '.devices_per_node == 2 and ._measurements.ranks == 2 and ._measurements.host_ranks == 2 and ((.hbm_bytes * 2 - ._measurements.memory.phys_bytes) | fabs) < 1e-6 * ._measurements.memory.phys_bytes' "$HW"
check bench_mpi_inter_is_intra '.inter_bw == .intra_bw and .inter_lat == .intra_lat and (._source["inter_bw, inter_lat"] | test("= intra"))' "$HW"
# per-rank compute time (rank_time_mean / _max against rank 0's) and the oversubscribed collective's cost
check bench_mpi_rank_time '._measurements.rank_work as $w | ($w.time_vs_rank0 | length == 2 and .[0] == 1 and all(.[]; . > 0)) and $w.items >= 10 and .rank_time_max == ($w.time_vs_rank0 | max) and ((.rank_time_mean - ($w.time_vs_rank0 | add / 2)) | fabs) < 1e-9 and .rank_time_max >= 1 and .rank_time_mean <= .rank_time_max' "$HW"
check bench_mpi_oversub '._measurements.oversub as $o | .oversub_wait == $o.wait and $o.wait >= 0 and $o.t_chunk > 0 and $o.t_c > $o.t_chunk and $o.iters >= 30 and (($o.wait - ([0, ($o.t_b - $o.t_c) - ($o.t_a - $o.t_chunk)] | max)) | fabs) < 1e-6 * $o.t_b' "$HW"
check bench_mpi_rank_spread '._measurements.gemm.peak_rank_min > 0 and ._measurements.gemm.peak_rank_min <= .peak_fp32 and .peak_fp32 <= ._measurements.gemm.peak_rank_max' "$HW"

# the simulator prices expert-parallel traffic with the measured figures (EP 2 over the 2 devices)
printf '{"hardware": "%s", "devices": 2}\n' "$HW" >"$T/cluster.json"
echo '{"mbs": 1, "ep": 2}' >"$T/strategy.json"
$UMOE sim tiny-moe "$T/cluster.json" "$T/strategy.json" --gbs 4 --json >"$T/sim.json" 2>"$T/sim.err"
check bench_mpi_spec_drives_sim '.step_time_s > 0 and .breakdown.ep_comm > 0' "$T/sim.json"

HW1=$T/hw1.json
expect_rc 0 bench_mpi_emulated_nodes $MPIRUN -np 2 $UMOE bench --quick --ranks-per-node 1 --out "$HW1"
check bench_mpi_inter_measured '.devices_per_node == 1 and ._measurements.comm.inter.group_ranks == 2 and .inter_bw > 0 and .inter_bw == ._measurements.comm.inter.fit.bw and (._measurements.comm | has("intra") | not)' "$HW1"

$MPIRUN -np 2 $UMOE bench --quick --ranks-per-node 3 >"$T/rpn.out" 2>&1; rc=$?
if [ "$rc" -eq 2 ] && grep -q "ranks-per-node = 3 is not allowed (must divide the 2 rank(s))" "$T/rpn.out"; then
    echo "PASS bench_mpi_bad_rpn_exits_2"
else echo "FAIL bench_mpi_bad_rpn_exits_2 (exit $rc: $(tail -3 "$T/rpn.out"))"; fi
