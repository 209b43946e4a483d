# umoe eval: loss and perplexity of a checkpoint; on the validation split it reproduces the validation loss
# that training logged; --json; errors.
. tests/cli/lib.sh
. tests/cli/tiny-train-model.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
tiny_model "$d/m.json"; tiny_text "$d/t.txt" 3000
$UMOE train "$d/m.json" --data "$d/t.txt" --steps 3 --batch 2 --seq 16 --val-batches 0 --log "$d/l.jsonl" --out "$d/ck" \
    --progress off >/dev/null 2>&1
expect_out eval_text '^loss [0-9.]+ nats/token, perplexity [0-9.]+ \([0-9]+ tokens of .*t.txt, whole file\)' \
    $UMOE eval "$d/ck" --data "$d/t.txt"
j=$($UMOE eval "$d/ck" --data "$d/t.txt" --split val --json 2>/dev/null)
v=$(tail -1 "$d/l.jsonl" | sed -E 's/.*"val_loss":([0-9.e+-]+).*/\1/')
e=$(printf '%s' "$j" | sed -E 's/.*"loss":([0-9.e+-]+).*/\1/')
p=$(printf '%s' "$j" | sed -E 's/.*"perplexity":([0-9.e+-]+).*/\1/')
awk -v a="$v" -v b="$e" 'BEGIN { exit !(a - b < 1e-8 && b - a < 1e-8 && a > 0) }' \
    && echo "PASS eval_val_matches_training ($e)" || echo "FAIL eval_val_matches_training: log $v, eval $e"
awk -v l="$e" -v p="$p" 'BEGIN { d = exp(l) - p; exit !(d < 1e-6 * p && -d < 1e-6 * p) }' \
    && echo "PASS eval_perplexity_is_exp_loss" || echo "FAIL eval_perplexity_is_exp_loss: $e $p"
expect_out eval_json_tokens '"tokens":[1-9][0-9]*' $UMOE eval "$d/ck" --data "$d/t.txt" --json
expect_err eval_missing_ckpt 'checkpoint directory .*nowhere does not exist' $UMOE eval "$d/nowhere" --data "$d/t.txt"
expect_err eval_missing_data 'nope.txt: cannot open' $UMOE eval "$d/ck" --data "$d/nope.txt"
expect_err eval_no_data 'data FILE is missing' $UMOE eval "$d/ck"
seq 250 300 > "$d/ids.txt"; $UMOE tokens "$d/ids.txt" "$d/ids.bin" --ids >/dev/null
expect_err eval_id_outside_vocab 'has id 256' $UMOE eval "$d/ck" --data "$d/ids.bin"
expect_err eval_bad_split 'split = "test" is not allowed' $UMOE eval "$d/ck" --data "$d/t.txt" --split test
