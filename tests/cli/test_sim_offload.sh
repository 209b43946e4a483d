# umoe sim / umoe plan with host offload: the breakdown's offload component, refusal without a host link, the
# planner's offload flags (docs/cost-model.md "Offload", docs/planner.md).
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# the paper's strategy offloads activations: the exposed transfer is in the JSON breakdown and positive
J=$($UMOE sim pangu-ultra-moe-718b ascend-910b-6144 pangu-ultra-moe-6k --json)
o=$(printf '%s' "$J" | grep -o '"offload":[0-9.e+-]*' | cut -d: -f2)
if awk -v o="$o" 'BEGIN { exit !(o > 0) }'; then echo "PASS sim_offload_key"; else echo "FAIL sim_offload_key ($o)"; fi
# a hardware spec without host_bw: a strategy that offloads is bad input naming the field
sed -e '/^ *"host_bw": [0-9]/d' -e '/^ *"host_mem_bw": [0-9]/d' -e 's/"mem_reserved": \([0-9]*\),$/"mem_reserved": \1/' \
    configs/hardware/ascend-910b.json > "$T/hw.json"
cat > "$T/c.json" <<Y
{"name": "nohost", "hardware": "$T/hw.json", "devices": 6144}
Y
expect_err sim_offload_needs_host_bw 'host_bw' $UMOE sim pangu-ultra-moe-718b "$T/c.json" pangu-ultra-moe-6k
expect_rc 2 sim_offload_needs_host_bw_rc $UMOE sim pangu-ultra-moe-718b "$T/c.json" pangu-ultra-moe-6k
# the planner: the JSON carries the offload flags; --no-offload is accepted and documented
expect_out plan_offload_json '"offload_activations":(true|false),"offload_optimizer":(true|false)' \
    $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices 512 --top 2 --json
expect_out plan_no_offload_help 'no-offload' $UMOE plan --help
expect_rc 0 plan_no_offload $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices 512 --top 2 --no-offload
