# tests/cli/lib.sh - helpers for CLI test scripts: expect_rc RC NAME CMD... runs CMD and prints PASS/FAIL.
# expect_out NAME PATTERN CMD... checks exit 0 and that stdout matches the grep -E pattern.
UMOE=${UMOE:-./umoe}
expect_rc() {
    want=$1; name=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq "$want" ]; then echo "PASS $name"; else echo "FAIL $name (exit $rc, want $want): $out" | head -c 2000; echo; fi
}
expect_err() { # exit code 2 and stderr matching a pattern
    name=$1; pat=$2; shift 2
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq 2 ] && printf '%s' "$err" | grep -Eq "$pat"; then echo "PASS $name"
    else echo "FAIL $name (exit $rc, want 2; stderr: $err; want /$pat/)"; fi
}
expect_out() {
    name=$1; pat=$2; shift 2
    out=$("$@" 2>/dev/null); rc=$?
    if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -Eq "$pat"; then echo "PASS $name"
    else echo "FAIL $name (exit $rc; want /$pat/ in: $(printf '%s' "$out" | head -c 1500))"; fi
}
