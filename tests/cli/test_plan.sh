# `umoe plan`: table and --json output, required JSON fields and order, flags, exit codes.
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

expect_out plan_help 'usage: umoe plan MODEL CLUSTER' $UMOE plan --help
expect_out plan_table 'rank +tp +cp +pp' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 3
expect_out plan_default_gbs 'one sequence per device' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 1

# --json: parses, has the required fields, best first, every strategy fits
$UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 5 --json >"$T/p.json" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && python3 - "$T/p.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("evaluated", "feasible", "seconds", "strategies"):
    assert k in d, k
assert d["evaluated"] >= d["feasible"] > 0 and d["seconds"] >= 0
st = d["strategies"]
assert len(st) == 5, len(st)
need = ("tp", "cp", "pp", "vpp", "ep", "etp", "dp", "mbs", "gbs", "recompute", "schedule", "zero1", "a2a",
        "params_total", "params_active", "flops_per_token", "step_time_s", "tokens_per_s", "mfu", "hfu",
        "memory_peak_bytes", "fits", "breakdown", "memory")
for s in st:
    for k in need:
        assert k in s, k
    assert s["fits"] is True
    assert s["tp"] * s["cp"] * s["pp"] * s["dp"] == 6144
    assert isinstance(s["breakdown"], dict) and isinstance(s["memory"], dict)
    assert 0 < s["mfu"] < 1
t = [s["tokens_per_s"] for s in st]
assert t == sorted(t, reverse=True), t
EOF
then echo "PASS plan_json_fields"; else echo "FAIL plan_json_fields (exit $rc): $(head -c 600 "$T/err")"; fi

# --threads gives the same strategies as one thread
$UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 5 --json --devices 512 >"$T/a.json" 2>/dev/null
$UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 5 --json --devices 512 --threads 2 >"$T/b.json" 2>/dev/null
if python3 -c "
import json,sys
a=json.load(open('$T/a.json')); b=json.load(open('$T/b.json'))
assert a['evaluated']==b['evaluated'] and a['feasible']==b['feasible']
assert a['strategies']==b['strategies'] and len(a['strategies'])==5
"; then echo "PASS plan_threads_same"; else echo "FAIL plan_threads_same"; fi

# --seq and --gbs reach the search
$UMOE plan mixtral-8x7b h100-sxm-8 --devices 16 --seq 8192 --gbs 32 --top 2 --json >"$T/s.json" 2>/dev/null
if python3 -c "
import json; d=json.load(open('$T/s.json'))
assert d['seq']==8192 and d['gbs']==32 and not d['gbs_default'] and d['devices']==16
assert all(s['seq']==8192 and s['gbs']==32 and 32 % (s['dp']*s['mbs'])==0 for s in d['strategies'])
"; then echo "PASS plan_seq_gbs"; else echo "FAIL plan_seq_gbs"; fi
expect_err plan_bad_seq 'seq' $UMOE plan mixtral-8x7b h100-sxm-8 --seq 0

# bad flags: exit 2 with a message
expect_err plan_bad_top 'top' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --top 0
expect_err plan_bad_devices 'devices' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices abc
expect_err plan_bad_flag 'unknown argument' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --frobnicate
expect_err plan_missing_value 'needs a value' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --gbs
expect_err plan_missing_cluster 'MODEL and CLUSTER' $UMOE plan pangu-ultra-moe-718b
expect_err plan_bad_model 'no-such-model' $UMOE plan no-such-model ascend-910b-6144
expect_err plan_bad_space 'recompute-space' $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --recompute-space x

# a model that fits nowhere: 718B on 8 devices. Exit 1, a clear message, feasible 0 in the JSON.
expect_rc 1 plan_impossible_rc $UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices 8
err=$($UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices 8 2>&1 >/dev/null)
if printf '%s' "$err" | grep -q 'no strategy fits in memory'; then echo "PASS plan_impossible_message"
else echo "FAIL plan_impossible_message: $err"; fi
$UMOE plan pangu-ultra-moe-718b ascend-910b-6144 --devices 8 --json >"$T/i.json" 2>/dev/null
if python3 -c "
import json; d=json.load(open('$T/i.json')); assert d['feasible']==0 and d['strategies']==[] and d['evaluated']>0
"; then echo "PASS plan_impossible_json"; else echo "FAIL plan_impossible_json"; fi
