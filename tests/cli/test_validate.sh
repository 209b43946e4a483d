# umoe validate: the shipped published points (median step-time error below the figure we reach, see
# docs/validation.md), JSON shape, skipped rows with reasons, the vTrain rank correlations, bad input.
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# The threshold is the achieved median (docs/validation.md) with a little headroom, not a loose bound.
MEDIAN_MAX=${MEDIAN_MAX:-5.0}  # the issue's target (#2); reached: 3.9%
expect_rc 0 validate_help $UMOE validate --help
out=$($UMOE validate 2>&1); rc=$?
med=$(printf '%s' "$out" | sed -n 's/.*|step-time error|: median \([0-9.]*\)%.*/\1/p')
if [ "$rc" = 0 ] && [ -n "$med" ] && awk -v m="$med" -v x="$MEDIAN_MAX" 'BEGIN { exit !(m <= x) }'; then
    echo "PASS validate_median_below_${MEDIAN_MAX}pct ($med%)"
else
    echo "FAIL validate_median_below_${MEDIAN_MAX}pct (exit $rc, median '$med'): $out"
fi
expect_out validate_all_rows_modelled '21 rows, 21 modelled, 0 skipped' $UMOE validate
J=$($UMOE validate --json)
ok=1
for k in '"rows":\[' '"summary":\{' '"status":"ok"' '"predicted_step_s":' '"measured_step_s":' '"predicted_tflops_per_gpu":' \
         '"measured_tflops_per_gpu":' '"predicted_mfu":' '"measured_mfu":' '"error":' '"median_abs_error":' '"max_abs_error":'; do
    printf '%s' "$J" | grep -Eq "$k" || { ok=0; echo "  missing $k"; }
done
if [ $ok = 1 ]; then echo "PASS validate_json_shape"; else echo "FAIL validate_json_shape"; fi
# a measured field absent from the row is null (Korthikanti rows publish step time only)
expect_out validate_json_null '"id":"korthikanti22_t5_22B_full"[^}]*"measured_tflops_per_gpu":null' $UMOE validate --json
# rows that cannot be modelled are listed with the reason, never dropped; extra columns are ignored
cat > "$T/p.csv" <<'X'
id,layers,hidden,heads,kv_heads,ffn,vocab,seq,experts,topk,hardware,gpus,tp,pp,vpp,dp,ep,cp,mbs,gbs,recompute,precision,step_s,tflops_per_gpu,flops_kind,mfu,whatever
gpt_ok,48,6144,64,,24576,51200,2048,,,a100-sxm-80gb,8,8,1,1,1,,,4,4,selective+SP,fp16,1.1,,,,x
no_dims,,,,,,,,,,a100-sxm-80gb,8,8,1,1,1,,,4,4,,,1.0,,,,y
no_measure,48,6144,64,,24576,51200,2048,,,a100-sxm-80gb,8,8,1,1,1,,,4,4,,,,,,,z
bad_hw,48,6144,64,,24576,51200,2048,,,no-such-gpu,8,8,1,1,1,,,4,4,,,1.0,,,,
bad_tp,48,6144,64,,24576,51200,2048,,,a100-sxm-80gb,8,5,1,1,1,,,4,4,,,1.0,,,,
tflops_row,24,2048,16,,,131072,4096,,,h100-sxm,48,1,1,,48,,,,192,,,,408.8,model,0.41,
X
expect_out validate_skip_dims 'no_dims: model dimensions' $UMOE validate "$T/p.csv"
expect_out validate_skip_measure 'no_measure: no measurement' $UMOE validate "$T/p.csv"
expect_out validate_skip_hw 'bad_hw: hardware: .*no-such-gpu' $UMOE validate "$T/p.csv"
expect_out validate_skip_tp 'bad_tp: strategy: ' $UMOE validate "$T/p.csv"
expect_out validate_counts '6 rows, 2 modelled, 4 skipped' $UMOE validate "$T/p.csv"
# loss_kernel: fused (default) or unfused (Megatron's vocab-parallel cross-entropy, slower); anything else is skipped
{ head -1 "$T/p.csv" | sed 's/$/,loss_kernel/'; sed -n 2p "$T/p.csv" | sed 's/^gpt_ok/lk_fused/; s/$/,fused/'
  sed -n 2p "$T/p.csv" | sed 's/^gpt_ok/lk_unfused/; s/$/,unfused/'; sed -n 2p "$T/p.csv" | sed 's/^gpt_ok/lk_bad/; s/$/,fast/'; } > "$T/lk.csv"
expect_out validate_loss_kernel_bad 'lk_bad: loss_kernel "fast" is not fused or unfused' $UMOE validate "$T/lk.csv"
lk=$($UMOE validate "$T/lk.csv" --json | tr '{' '\n' | grep '"id":"lk_' | sed 's/.*"id":"\([a-z_]*\)".*"predicted_step_s":\([0-9.e+-]*\).*/\1 \2/')
if printf '%s\n' "$lk" | awk '/lk_fused/ { f = $2 } /lk_unfused/ { u = $2 } END { exit !(f > 0 && u > f) }'; then
    echo "PASS validate_loss_kernel_unfused_slower"; else echo "FAIL validate_loss_kernel_unfused_slower ($lk)"; fi
expect_out validate_skip_json '"id":"no_dims","status":"skipped","reason":"model dimensions' $UMOE validate "$T/p.csv" --json
# model-FLOPs TFLOP/s row: measured step derived from TFLOP/s (Megatron's 72 B s L h^2 (...) count)
expect_out validate_tflops_row '"id":"tflops_row","status":"ok".*"measured_tflops_per_gpu":408.8' $UMOE validate "$T/p.csv" --json
# vTrain: ranking of strategies per model, and single-node accuracy
V=$($UMOE validate --vtrain --json)
rc=$?
printf '%s' "$V" | tr '{' '\n' | grep '"spearman"' | awk -v rc=$rc -F'[:,]' '
  { for (i = 1; i < NF; i++) { if ($i ~ /"spearman"/) s = $(i+1); if ($i ~ /"median_abs_error"/) e = $(i+1); if ($i ~ /"params_b"/) p = $(i+1) }
    n++; if (s < 0.6) bad = bad " " p "B:spearman=" s }
  END { if (rc == 0 && n == 5 && bad == "") print "PASS validate_vtrain_rank"; else print "FAIL validate_vtrain_rank (" n " models," bad ")" }'
single=$(printf '%s' "$V" | sed 's/.*"single_node":{\([^}]*\)}.*/\1/' | tr ',' '\n' | grep median_abs_error | cut -d: -f2)
if awk -v e="$single" 'BEGIN { exit !(e > 0 && e < 0.09) }'; then echo "PASS validate_vtrain_single ($single)"; else echo "FAIL validate_vtrain_single ($single)"; fi
# bad input
expect_err validate_no_file 'cannot read' $UMOE validate "$T/none.csv"
printf 'a,b\n1,2\n' > "$T/cols.csv"
expect_err validate_bad_columns 'needs at least the columns' $UMOE validate "$T/cols.csv"
expect_err validate_unknown_flag 'unknown argument' $UMOE validate --frob
# memory model: predicted peak allocation vs the SimuMax B200 measurements (no memory constant is calibrated)
out=$($UMOE validate data/validation/simumax_b200.csv)
mm=$(printf '%s' "$out" | sed -n 's/.*peak memory per device (43 rows .*median \([0-9.]*\)%.*/\1/p')
if [ -n "$mm" ] && awk -v m="$mm" 'BEGIN { exit !(m <= 2.5) }'; then echo "PASS validate_memory_median ($mm%)"
else echo "FAIL validate_memory_median ('$mm'): $(printf '%s' "$out" | tail -2)"; fi
