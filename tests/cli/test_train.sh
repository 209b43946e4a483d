# umoe train: output, progress line, JSONL log fields, checkpoint files (readable by Python's safetensors
# when installed), and every data/flag error with exit 2.
. tests/cli/lib.sh
. tests/cli/tiny-train-model.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
tiny_model "$d/m.json"; tiny_text "$d/t.txt" 3000
run="$UMOE train $d/m.json --data $d/t.txt --steps 4 --batch 2 --seq 16"
expect_out train_summary 'trained 4 steps: loss [0-9.]+ .*validation loss [0-9.]+ \(perplexity [0-9.]+\), [0-9]+ tokens/s' \
    $run --log "$d/l.jsonl" --out "$d/ck"
err=$($run --progress line 2>&1 >/dev/null)
printf '%s' "$err" | grep -Eq '^step 4/4  loss [0-9.]+  aux [0-9.]+  lr [0-9.e+-]+  [0-9]+ tok/s  ETA [0-9:]+$' \
    && echo "PASS train_progress_line" || echo "FAIL train_progress_line: $err"
n=$(wc -l < "$d/l.jsonl")
[ "$n" -eq 4 ] && echo "PASS train_log_lines" || echo "FAIL train_log_lines ($n)"
for k in step loss lm_loss aux_loss mtp_loss grad_norm lr tokens_per_s expert_load; do
    grep -q "\"$k\":" "$d/l.jsonl" && echo "PASS train_log_has_$k" || echo "FAIL train_log_has_$k"
done
# the expert loads of one step sum to B x T x accum x top_k token-assignments per MoE layer (2 x 16 x 2 = 64)
s=$(head -1 "$d/l.jsonl" | sed -E 's/.*"layer":1,"load":\[([0-9,]*)\].*/\1/' | tr ',' '\n' | awk '{s+=$1} END {print s}')
[ "$s" = 64 ] && echo "PASS train_log_loads_sum" || echo "FAIL train_log_loads_sum ($s)"
for f in model.safetensors config.json train_state.bin; do
    [ -s "$d/ck/$f" ] && echo "PASS train_ckpt_$f" || echo "FAIL train_ckpt_$f"
done
grep -Eq '"model_type":[[:space:]]*"deepseek_v3"' "$d/ck/config.json" && echo "PASS train_config_hf" || echo "FAIL train_config_hf"
if python3 -c 'import safetensors.numpy' 2>/dev/null; then
    out=$(python3 -c 'import sys
from safetensors.numpy import load_file
d = load_file(sys.argv[1])
print(len(d), d["model.embed_tokens.weight"].shape, d["model.layers.1.mlp.experts.3.down_proj.weight"].shape, "model.layers.2.eh_proj.weight" in d)' "$d/ck/model.safetensors" 2>&1)
    [ "$out" = "71 (256, 32) (32, 32) True" ] && echo "PASS train_ckpt_python_safetensors" \
        || echo "FAIL train_ckpt_python_safetensors: $out"
else
    echo "note: python3 safetensors not installed: the reference-reader check was not run"
fi
# data errors
expect_err train_missing_data 'nope.txt: cannot open' $UMOE train "$d/m.json" --data "$d/nope.txt"
: > "$d/empty.txt"
expect_err train_empty_data 'empty.txt is empty' $UMOE train "$d/m.json" --data "$d/empty.txt"
printf 'short' > "$d/short.txt"
expect_err train_short_data 'short.txt is too short: 5 tokens' $UMOE train "$d/m.json" --data "$d/short.txt" --seq 16
printf 'not a shard at all' > "$d/raw.bin"
expect_err train_wrong_magic 'raw.bin is named .bin but does not start with the token-shard magic' \
    $UMOE train "$d/m.json" --data "$d/raw.bin"
$UMOE tokens "$d/t.txt" "$d/t.bin" >/dev/null
head -c 1000 "$d/t.bin" > "$d/cut.bin"
expect_err train_truncated_shard 'cut.bin is truncated' $UMOE train "$d/m.json" --data "$d/cut.bin"
seq 250 300 > "$d/ids.txt"
$UMOE tokens "$d/ids.txt" "$d/ids.bin" --ids >/dev/null
expect_err train_id_outside_vocab 'token 6 has id 256, outside the model.s vocabulary' \
    $UMOE train "$d/m.json" --data "$d/ids.bin" --seq 4
expect_rc 0 train_on_shard $UMOE train "$d/m.json" --data "$d/t.bin" --steps 1 --batch 2 --seq 16
# flag errors
expect_err train_no_data 'data FILE is missing' $UMOE train "$d/m.json"
expect_err train_seq_too_long 'seq 64 is not allowed' $UMOE train "$d/m.json" --data "$d/t.txt" --seq 64
expect_err train_bad_lr 'lr = "fast" is not allowed' $UMOE train "$d/m.json" --data "$d/t.txt" --lr fast
expect_err train_unknown_flag 'unknown argument "--frobnicate"' $UMOE train "$d/m.json" --data "$d/t.txt" --frobnicate x
expect_err train_bad_model 'nomodel' $UMOE train "$d/nomodel.json" --data "$d/t.txt"
expect_err train_stop_at 'stop-at 9 is not allowed' $UMOE train "$d/m.json" --data "$d/t.txt" --steps 4 --stop-at 9
