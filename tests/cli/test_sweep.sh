# `umoe sweep`: table, --json, --svg on a small space; bad space files and flags exit 2; nothing in the
# budget exits 1.
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cat >"$T/space.json" <<'EOF'
{"name": "mixtral-small", "base": "mixtral-8x7b", "layers": [16, 32], "experts": [8, 16], "top_k": [1, 2],
 "budget": {"params": "total", "value": 47e9, "tolerance": 0.6}, "gbs": 64}
EOF

expect_out sweep_help 'usage: umoe sweep SPACE CLUSTER' $UMOE sweep --help
expect_out sweep_table 'rank +L +hidden' $UMOE sweep "$T/space.json" h100-sxm-8 --devices 16

$UMOE sweep "$T/space.json" h100-sxm-8 --devices 16 --json --svg "$T/s.svg" >"$T/s.json" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && python3 - "$T/s.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["shapes"] == 8 and d["in_budget"] >= 2 and d["feasible"] >= 1, d
res = d["results"]
assert len(res) == d["in_budget"], (len(res), d["in_budget"])
for r in res:
    for k in ("layers", "hidden", "experts", "top_k", "params_total", "params_active", "fits"):
        assert k in r, k
    assert abs(r["params_total"] - 47e9) <= 0.6 * 47e9
    if r["fits"]:
        assert r["tokens_per_s"] > 0 and r["strategy"]["tp"] * r["strategy"]["cp"] * r["strategy"]["pp"] * r["strategy"]["dp"] == 16
t = [r["tokens_per_s"] for r in res if r["fits"]]
assert t == sorted(t, reverse=True), t
EOF
then echo "PASS sweep_json"; else echo "FAIL sweep_json (exit $rc): $(head -c 600 "$T/err")"; fi
if grep -q '<svg' "$T/s.svg" 2>/dev/null && grep -q '<circle' "$T/s.svg"; then echo "PASS sweep_svg"
else echo "FAIL sweep_svg"; fi

# bad input: exit 2 naming the problem
echo '{"base": "mixtral-8x7b", "layerz": [2]}' >"$T/bad1.json"
expect_err sweep_unknown_field 'layerz' $UMOE sweep "$T/bad1.json" h100-sxm-8
echo '{"base": "no-such-model"}' >"$T/bad2.json"
expect_err sweep_bad_base 'base' $UMOE sweep "$T/bad2.json" h100-sxm-8
echo '{"base": "mixtral-8x7b", "attention": ["flash"]}' >"$T/bad3.json"
expect_err sweep_bad_attention 'attention' $UMOE sweep "$T/bad3.json" h100-sxm-8
expect_err sweep_missing_space 'no-such-space' $UMOE sweep no-such-space h100-sxm-8
expect_err sweep_bad_flag 'unknown argument' $UMOE sweep "$T/space.json" h100-sxm-8 --frobnicate
expect_err sweep_bad_top 'top' $UMOE sweep "$T/space.json" h100-sxm-8 --top -1

# nothing within the budget: exit 1 with a message
echo '{"base": "mixtral-8x7b", "layers": [2, 4], "budget": {"params": "total", "value": 1e15}}' >"$T/none.json"
expect_rc 1 sweep_nothing_in_budget $UMOE sweep "$T/none.json" h100-sxm-8
