# tests/cli/test_validate_engine.sh - `umoe validate --engine`: bad input exits 2 with the field named; with a
# hardware spec that does not exist yet it measures one first (umoe bench); the --quick set runs (EP 1,
# 2 and 4 under mpirun when MPI is there; else the single-process runs only) and prints every row with finite
# predicted and measured step times and memory; the counted-allocator peak is predicted within the thresholds
# below (measured, docs/engine-validation.md: without placement |error| <= 1.1%, median 0.2%; with dynamic
# placement, where the prediction is an upper bound (the most loaded rank's), -1.6% to +16% across runs: whether
# and where experts move depends on measured step times, so rank 0's measured peak varies from run to run; the
# check is that the prediction bounds it (-3% slack) and stays within +25%; thresholds about 1.5x). Step-time errors
# are only checked to be finite: the 2-core machine is shared, so timing belongs to the docs, not to a test.
# --bench-each measures the spec before every run.
. tests/cli/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

expect_err "engine: unknown flag" "frobnicate" $UMOE validate --engine --frobnicate
expect_out "engine: --help" "validate --engine" $UMOE validate --engine --help
echo '{"runs": []}' > "$tmp/empty.json"
expect_err "engine: empty set" "runs" $UMOE validate --engine --set "$tmp/empty.json" --hw h100-sxm
echo '{"runs": [{"id": "x", "model": "tiny-moe", "ranks": 3, "ep": 2}]}' > "$tmp/bad.json"
expect_err "engine: ranks not a multiple of ep" "ranks 3 must be a multiple of ep 2" \
    $UMOE validate --engine --set "$tmp/bad.json" --hw h100-sxm
echo '{"runs": [{"id": "x", "model": "tiny-moe", "batchh": 4}]}' > "$tmp/typo.json"
expect_err "engine: unknown field" "batchh" $UMOE validate --engine --set "$tmp/typo.json" --hw h100-sxm
echo '{"runs": [{"id": "x", "model": "no-such-model"}]}' > "$tmp/nomodel.json"
expect_err "engine: unknown model" "no-such-model" $UMOE validate --engine --set "$tmp/nomodel.json" --hw h100-sxm

set_file=configs/engine-validation/quick.json
if ! command -v mpirun >/dev/null 2>&1 || [ "${USE_MPI:-1}" = 0 ]; then
    echo "note: no MPI: only the single-process runs of the quick set"
    python3 -c "
import json; d = json.load(open('$set_file')); d['runs'] = [r for r in d['runs'] if r.get('ranks', 1) == 1]
json.dump(d, open('$tmp/set.json', 'w'))"
    cp configs/engine-validation/moe-256.json "$tmp/"
    set_file=$tmp/set.json
fi

# the spec does not exist: measured first (umoe bench), then the runs
$UMOE validate --engine --quick --set "$set_file" --hw "$tmp/local.json" --json > "$tmp/out.json" 2> "$tmp/err.txt"
rc=$?
if [ "$rc" -eq 0 ]; then echo "PASS engine: quick set exits 0"; else echo "FAIL engine: quick set exit $rc: $(tail -c 1500 "$tmp/err.txt")"; fi
if [ -f "$tmp/local.json" ] && grep -q "measuring this machine first" "$tmp/err.txt"; then echo "PASS engine: missing spec measured by umoe bench"
else echo "FAIL engine: the missing hardware spec was not measured"; fi
expect_out "engine: measured spec loads" "peak_fp32" $UMOE bench --check "$tmp/local.json"
# the cache-resident element-wise rate (when sysconf reports an L2 that holds the bench's 3 x 256 KiB arrays)
python3 - "$tmp/local.json" "$(getconf LEVEL2_CACHE_SIZE 2>/dev/null)" <<'EOF2'
import json, sys
h = json.load(open(sys.argv[1]))
l2 = int(sys.argv[2]) if sys.argv[2].isdigit() else 0
if l2 >= 3 * 256 * 1024:
    ok = h.get("cache_bytes") == l2 and h.get("cache_bw", 0) > 0 and "cache" in h["_measurements"]["memory"]
    print(("PASS" if ok else "FAIL") + " engine: bench measured cache_bw (%s) for L2 %d" % (h.get("cache_bw"), l2))
else:
    print("PASS engine: no L2 size reported, no cache_bw (%s)" % h.get("cache_bw"))
EOF2

python3 - "$tmp/out.json" "$set_file" <<'EOF'
import json, math, sys
d = json.load(open(sys.argv[1])); want = json.load(open(sys.argv[2]))["runs"]
def check(name, ok, why=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why))
rows = d["rows"]
check("engine: one row per run", [r["id"] for r in rows] == [w["id"] for w in want], str([r["id"] for r in rows]))
check("engine: every run ok", all(r["status"] == "ok" for r in rows), str([(r["id"], r["reason"]) for r in rows]))
fin = lambda x: isinstance(x, (int, float)) and math.isfinite(x)
for r in rows:
    if r["status"] != "ok": continue
    check("engine: %s finite times" % r["id"], all(fin(r[k]) and r[k] > 0 for k in
          ("measured_step_s", "predicted_step_s", "measured_alloc_peak", "predicted_alloc_peak", "measured_peak_rss"))
          and fin(r["step_error"]), str(r))
    check("engine: %s error vs the fastest step" % r["id"], r["measured_step_min_s"] <= r["measured_step_s"] and
          abs(r["step_fastest_error"] - (r["predicted_step_s"] / r["measured_step_min_s"] - 1)) < 1e-6, str(r))
    check("engine: %s predicted = measured arena" % r["id"], r["predicted_arena"] == r["measured_arena"],
          "%s vs %s" % (r["predicted_arena"], r["measured_arena"]))
    if r["placement"] > 0:  # rank 0's rows after a re-placement: bounded by the most loaded rank's
        check("engine: %s allocator peak within -3%%..+25%% (placement: upper bound)" % r["id"],
              -0.03 < r["alloc_error"] < 0.25, str(r["alloc_error"]))
    else:
        check("engine: %s allocator peak within 2%%" % r["id"], abs(r["alloc_error"]) < 0.02, str(r["alloc_error"]))
    # the pieces add up to the prediction
    p = r["predicted"]
    tot = p["params"] + p["grads"] + p["optimizer"] + p["arena"] + p["ep_buffers"] + p["host_other"]
    want = max(tot, p["init_peak"])
    check("engine: %s memory parts add up" % r["id"], abs(want - r["predicted_alloc_peak"]) < 1, str(tot))
s = d["summary"]
check("engine: median allocator error below 0.5%", fin(s["alloc_median_abs_error"]) and s["alloc_median_abs_error"] < 0.005,
      str(s["alloc_median_abs_error"]))
check("engine: step-time medians finite", fin(s["step_median_abs_error"]) and fin(s["cpu_step_median_abs_error"])
      and fin(s["step_fastest_median_abs_error"]), str(s))
EOF

# mem_reserved per rank count: when MPI runs, the spec is the 2-rank bench's and the set's single-process (and
# 4-rank) rows are predicted with the share measured at their own rank count, as logged
if command -v mpirun >/dev/null 2>&1 && [ "${USE_MPI:-1}" != 0 ]; then
python3 - "$tmp/out.json" "$tmp/err.txt" <<'EOF5'
import json, re, sys
rows = json.load(open(sys.argv[1]))["rows"]
logged = {int(m.group(1)): float(m.group(2)) for m in
          re.finditer(r"resident share at (\d+) rank\(s\): ([0-9.]+) MB", open(sys.argv[2]).read())}
singles = [r for r in rows if r["ranks"] == 1 and r["status"] == "ok"]
ok = 1 in logged and singles and all(abs((r["predicted_peak_rss"] - r["predicted_alloc_peak"]) / 1e6 - logged[1]) < 0.06
                                     for r in singles)
print(("PASS" if ok else "FAIL") + " engine: single-process rows use the 1-rank mem_reserved" +
      ("" if ok else ": %s %s" % (logged, [(r["predicted_peak_rss"] - r["predicted_alloc_peak"]) / 1e6 for r in singles])))
EOF5
fi

# the table: header, a row per run, the summary line
echo '{"steps": 3, "warmup": 1, "runs": [{"id": "t1", "model": "tiny-moe", "batch": 2}]}' > "$tmp/one.json"
expect_out "engine: table" "t1 .*\\|.*runs, 1 ok" sh -c "$UMOE validate --engine --set $tmp/one.json --hw $tmp/local.json | tr '\n' ' '"

# --bench-each: the spec is measured again before and after every run (here 2 runs: the first bench, the one
# between the runs, the one after the last); each row is predicted with the specs on both sides of it
echo '{"steps": 3, "warmup": 1, "runs": [{"id": "b1", "model": "tiny-moe", "batch": 2}, {"id": "b2", "model": "tiny-moe", "batch": 2}]}' > "$tmp/two.json"
$UMOE validate --engine --bench-each --set "$tmp/two.json" --hw "$tmp/each.json" --json > "$tmp/each.json.out" 2> "$tmp/each.err"
rc=$?
python3 - "$tmp/each.json.out" <<'EOF3'
import json, math, sys
rows = json.load(open(sys.argv[1]))["rows"]
ok = all(r["status"] == "ok" and r["predicted_step_before_s"] > 0 and r["predicted_step_after_s"] > 0 and
         abs(r["predicted_step_s"] - 0.5 * (r["predicted_step_before_s"] + r["predicted_step_after_s"])) < 1e-8 * r["predicted_step_s"]
         for r in rows) and len(rows) == 2
print(("PASS" if ok else "FAIL") + " engine: --bench-each predicts the mean of the specs before and after each run"
      + ("" if ok else ": " + str(rows)))
EOF3
n=$(grep -c "measuring this machine first" "$tmp/each.err")
if [ "$rc" -eq 0 ] && [ "$n" -eq 3 ]; then echo "PASS engine: --bench-each measures before and after every run"
else echo "FAIL engine: --bench-each (exit $rc, $n benches): $(tail -c 600 "$tmp/each.err")"; fi

# --repeat: the set runs N times; a row's measured and predicted step times are the medians of its rounds
echo '{"steps": 3, "warmup": 1, "runs": [{"id": "r1", "model": "tiny-moe", "batch": 2}]}' > "$tmp/rep.json"
expect_err "engine: --repeat 0 refused" "repeat 0" $UMOE validate --engine --set "$tmp/rep.json" --hw "$tmp/local.json" --repeat 0
expect_err "engine: --repeat 17 refused" "1 to 16" $UMOE validate --engine --set "$tmp/rep.json" --hw "$tmp/local.json" --repeat 17
$UMOE validate --engine --set "$tmp/rep.json" --hw "$tmp/local.json" --repeat 3 --json > "$tmp/rep.out" 2> "$tmp/rep.err"
rc=$?
python3 - "$tmp/rep.out" "$rc" <<'EOF4'
import json, statistics, sys
d = json.load(open(sys.argv[1])); r = d["rows"][0]; s = d["summary"]
m, p = r["round_measured_step_s"], r["round_predicted_step_s"]
ok = (sys.argv[2] == "0" and len(m) == 3 and len(p) == 3 and abs(r["measured_step_s"] - statistics.median(m)) < 1e-9
      and abs(r["predicted_step_s"] - statistics.median(p)) < 1e-9 and s["rounds"] == 3
      and len(s["round_step_median_abs_error"]) == 3
      and all(abs(e - abs(pp / mm - 1)) < 1e-9 for e, pp, mm in zip(s["round_step_median_abs_error"], p, m)))
print(("PASS" if ok else "FAIL") + " engine: --repeat 3 keeps each round and reports the medians" + ("" if ok else ": " + str(r) + str(s)))
EOF4
