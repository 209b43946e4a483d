# umoe sim: human table, --json keys (a stable interface), --devices/--gbs overrides, timelines, bad input.
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
expect_rc 0 sim_help $UMOE sim --help
expect_out sim_pangu_table 'step time [0-9.]+ s .*MFU [0-9.]+%' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k
expect_out sim_pangu_fits 'peak .* GiB: (fits|DOES NOT FIT)' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k
J=$($UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --json)
ok=1
for k in params_total params_active flops_per_token step_time_s tokens_per_s mfu hfu memory_peak_bytes fits \
         breakdown memory compute recompute tp_comm cp_comm ep_comm pp_comm dp_comm bubble optimizer \
         weights grads activations dispatch_buffers logits; do
    printf '%s' "$J" | grep -q "\"$k\":" || { ok=0; echo "  missing key $k"; }
done
if [ $ok = 1 ]; then echo "PASS sim_json_keys"; else echo "FAIL sim_json_keys: $J"; fi
# the model counts are the spec module's (umoe params): 719.09B total for Pangu Ultra MoE
expect_out sim_json_params '"params_total":7\.19093767[0-9]*e\+11' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --json
# MFU must stay a fraction, the breakdown must add up to the step time
B=$(printf '%s' "$J" | sed 's/.*"breakdown":{\([^}]*\)}.*/\1/')
S=$(printf '%s' "$J" | grep -o '"step_time_s":[0-9.e+-]*' | cut -d: -f2)
M=$(printf '%s' "$J" | grep -o '"mfu":[0-9.e+-]*' | cut -d: -f2)
printf '%s' "$B" | tr ',' '\n' | cut -d: -f2 | awk -v s="$S" -v m="$M" '{ t += $1 } END {
  d = t - s; if (d < 0) d = -d
  if (m > 0 && m < 1 && d < 1e-6 * s) print "PASS sim_json_consistent"; else print "FAIL sim_json_consistent", t, s, m }'
# overrides: twice the batch on the same devices gives more tokens per second (smaller bubble share)
a=$($UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --json | grep -o '"tokens_per_s":[0-9.e+]*' | cut -d: -f2)
b=$($UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --json --gbs 3072 | grep -o '"tokens_per_s":[0-9.e+]*' | cut -d: -f2)
if awk -v a="$a" -v b="$b" 'BEGIN { exit !(b > a) }'; then echo "PASS sim_gbs_override"; else echo "FAIL sim_gbs_override ($a $b)"; fi
expect_out sim_devices_override 'dp 24' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --devices 3072
# timelines
expect_rc 0 sim_trace $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --trace "$T/t.json" --svg "$T/t.svg"
if grep -q traceEvents "$T/t.json" && grep -q '<svg' "$T/t.svg"; then echo "PASS sim_trace_files"; else echo "FAIL sim_trace_files"; fi
# a dense model given as a file, on an A100 cluster file, unfused attention
cat > "$T/gpt.json" <<'X'
{"name": "gpt-22b", "layers": 48, "hidden": 6144, "heads": 64, "attention": "mha", "ffn": "gelu", "ffn_hidden": 24576, "vocab": 51200, "seq_len": 2048}
X
cat > "$T/c.json" <<'X'
{"name": "a100x8", "hardware": "a100-sxm-80gb", "devices": 8}
X
cat > "$T/s.json" <<'X'
{"name": "tp8", "tp": 8, "sp": true, "pp": 1, "mbs": 4, "gbs": 4, "recompute": "selective"}
X
expect_out sim_files '"fits":true' $UMOE sim "$T/gpt.json" "$T/c.json" "$T/s.json" --json --no-flash
# bad input: exit 2 with a message
expect_err sim_missing_args 'MODEL, CLUSTER and STRATEGY' $UMOE sim pangu-ultra-moe-718b
expect_err sim_unknown_flag 'unknown argument' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --frob
expect_err sim_bad_devices 'devices = "0"' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --devices 0
expect_err sim_bad_model 'no-such-model' $UMOE sim no-such-model ascend-910b-6144 pangu-ultra-moe-6k
expect_err sim_devices_mismatch 'devices|dp' $UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --devices 1000
