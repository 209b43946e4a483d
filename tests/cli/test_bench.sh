# umoe bench (single process): flags, the written spec loads with the simulator's loader (by path and as a
# preset name through UMOE_CONFIG_DIR) and `umoe sim` runs on it, its figures obey their definitions (peak = the best measured GEMM
# rate; table sorted, efficiencies in (0, 1]; every item with repetitions and an ordered spread), --threads is
# applied and recorded, stdout mode, and a failing write keeps the previous file. Uses --quick (seconds).
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
check() { # check NAME JQ_EXPR FILE: PASS when the jq expression is true
    if command -v jq >/dev/null 2>&1; then
        if [ "$(jq -r "$2" "$3" 2>&1)" = "true" ]; then echo "PASS $1"; else echo "FAIL $1 ($2 on $3: $(jq -r "$2" "$3" 2>&1 | head -c 300))"; fi
    else echo "FAIL $1 (jq is not installed)"; fi
}

expect_rc 0 bench_help $UMOE bench --help
expect_err bench_bad_threads 'threads = "0" is not allowed' $UMOE bench --threads 0
expect_err bench_bad_threads_text 'threads = "x" is not allowed' $UMOE bench --threads x
expect_err bench_bad_name 'name = "" is not allowed' $UMOE bench --name ""
expect_err bench_unknown_flag 'unknown argument "--fast"' $UMOE bench --fast
expect_err bench_out_needs_value 'out needs a value' $UMOE bench --out
expect_err bench_rpn_not_dividing 'ranks-per-node = 2 is not allowed' $UMOE bench --quick --ranks-per-node 2
expect_err bench_check_missing 'nope' $UMOE bench --check "$T/nope.json"
printf '{"peak_bf16": 1e12, "hbm_bytes": 1e9, "hbm_bw": 1e9, "devices_per_node": 1, "intra_bw": 1e9, "intra_lat": 0, "inter_bw": 1e9, "inter_lat": 0, "gemm_eff": [[1e9, 0.5], [1e6, 0.2]]}\n' >"$T/unsorted.json"
expect_err bench_check_rejects_unsorted 'gemm_eff' $UMOE bench --check "$T/unsorted.json"

# a measured spec
HW=$T/hw.json
expect_rc 0 bench_quick_runs $UMOE bench --quick --out "$HW"
expect_out bench_check_loads 'hardware "local": loads' $UMOE bench --check "$HW"
mkdir -p "$T/configs/hardware" && cp "$HW" "$T/configs/hardware/measured.json"
expect_out bench_check_preset_name 'hardware "local": loads' env UMOE_CONFIG_DIR="$T/configs" $UMOE bench --check measured
# the simulator runs on it (a cluster file naming the measured hardware by path)
printf '{"hardware": "%s", "devices": 1}\n' "$HW" >"$T/cluster.json"
echo '{"mbs": 1}' >"$T/strategy.json"
$UMOE sim tiny-moe "$T/cluster.json" "$T/strategy.json" --gbs 4 --json >"$T/sim.json" 2>"$T/sim.err"
check bench_spec_drives_sim '.step_time_s > 0 and .mfu > 0 and .mfu <= 1 and .fits == true' "$T/sim.json"
check bench_peak_positive '.peak_fp32 > 0 and .peak_bf16 == .peak_fp32 and .peak_fp16 == .peak_fp32' "$HW"
check bench_peak_equals_max_rate '([._measurements.gemm.shapes[] | .flops / .t_min] | max) as $b | ((.peak_fp32 - $b) | fabs) <= 1e-6 * $b' "$HW"
check bench_eff_in_range '(.gemm_eff | length) >= 4 and all(.gemm_eff[]; .[1] > 0 and .[1] <= 1.05)' "$HW"
check bench_eff_sorted '[.gemm_eff[][0]] as $f | all(range(1; $f | length); $f[.] > $f[. - 1])' "$HW"
check bench_eff_matches_shapes '.peak_fp32 as $p | [._measurements.gemm.shapes | group_by(.flops)[] | [(.[0].flops), (map(.flops / .t_med / $p) | add / length)]] as $want | [range(0; $want | length) as $i | ((.gemm_eff[$i][0] - $want[$i][0]) | fabs) < 1e-6 * $want[$i][0] and ((.gemm_eff[$i][1] - $want[$i][1]) | fabs) < 1e-6] | all' "$HW"
check bench_eff_spans_sizes '(.gemm_eff[-1][0] / .gemm_eff[0][0]) >= 1000' "$HW"
check bench_other_eff_range '.attn_eff > 0 and .attn_eff <= 1.05 and .mem_eff > 0 and .mem_eff <= 1.05' "$HW"
check bench_attn_seq_table '(.attn_eff_seq | length) >= 2 and ([.attn_eff_seq[][0]] as $t | all(range(1; $t | length); $t[.] > $t[. - 1])) and all(.attn_eff_seq[]; .[1] > 0 and .[1] <= 1 and .[2] > 0) and .attn_eff_seq[-1][1] == .attn_eff and .attn_eff_seq[-1][0] == ._measurements.attention.T' "$HW"
check bench_attn_seq_measured '[._measurements.attention.by_seq[] | .B * .T] as $n | ($n[:-1] | all(. == 1024)) and ([._measurements.attention.by_seq[].eff] == [.attn_eff_seq[][1]])' "$HW"
check bench_memory_figures '.hbm_bw > 0 and .hbm_bytes > 1e8 and .hbm_bw == ._measurements.memory.triad.bw_best' "$HW"
check bench_spreads_ordered '[.. | objects | select(has("t_med"))] | length >= 18 and all(.[]; .reps >= 3 and .t_min > 0 and .t_min <= .t_med and .t_med <= .t_max)' "$HW"
check bench_single_process_comm '._measurements.comm.mode == "memcpy-estimate" and .intra_bw > 0 and .inter_bw == .intra_bw and .devices_per_node == 1 and (._source["intra_bw, intra_lat"] | test("ESTIMATE"))' "$HW"
check bench_threads_recorded '._measurements.threads == 1 and ._measurements.openblas_threads == 1 and ._measurements.quick == true' "$HW"
check bench_sources_named '._source.peak_fp32 != null and (._source["peak_bf16, peak_fp16"] | test("fp32"))' "$HW"

# --threads and --name, JSON on stdout
$UMOE bench --quick --threads 2 --name two >"$T/two.json" 2>"$T/two.err"
check bench_stdout_threads_name '.name == "two" and ._measurements.threads == 2 and ._measurements.openblas_threads == 2 and .peak_fp32 > 0' "$T/two.json"

# a failing write (the temp file cannot be created) exits 1 and keeps the previous file
cp "$HW" "$T/keep.json"
sh -c 'mkdir "$2.tmp.$$" && exec "$1" bench --quick --out "$2"' _ "$UMOE" "$T/keep.json" >/dev/null 2>"$T/keep.err"; rc=$?
if [ "$rc" -eq 1 ] && cmp -s "$HW" "$T/keep.json" && grep -q "previous file kept" "$T/keep.err"; then echo "PASS bench_failed_write_keeps_file"
else echo "FAIL bench_failed_write_keeps_file (exit $rc; $(cat "$T/keep.err" | tail -3))"; fi
