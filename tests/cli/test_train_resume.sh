# umoe train --resume continues bit-exactly: 8 steps straight vs 4 (--stop-at) + resume + 4 must log the same
# losses, grad norms, expert loads and validation losses, and end with byte-identical checkpoints. Also the
# refusals: another model shape, another --batch, nothing left to do, an inconsistent checkpoint.
. tests/cli/lib.sh
. tests/cli/tiny-train-model.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
tiny_model "$d/m.json"; tiny_text "$d/t.txt" 6000
common="--data $d/t.txt --steps 8 --batch 2 --seq 16 --accum 2 --lr 3e-3 --warmup 2 --val-every 3 --val-batches 2 --progress off"
expect_rc 0 resume_straight $UMOE train "$d/m.json" $common --log "$d/a.jsonl" --out "$d/a"
expect_rc 0 resume_first_half $UMOE train "$d/m.json" $common --log "$d/b.jsonl" --out "$d/b" --stop-at 4
cp -r "$d/b" "$d/b4"
expect_rc 0 resume_second_half $UMOE train "$d/m.json" $common --log "$d/b.jsonl" --out "$d/b" --resume "$d/b"
# drop the timing fields and the memory report (peak RSS differs between processes), compare the rest
strip() { sed -E 's/"tokens_per_s":[^,]*,"seconds":[^,]*,//; s/,"mem":\{[^}]*\}//' "$1" > "$2"; }
strip "$d/a.jsonl" "$d/a.cmp"; strip "$d/b.jsonl" "$d/b.cmp"
if [ "$(wc -l < "$d/a.cmp")" -eq 8 ] && cmp -s "$d/a.cmp" "$d/b.cmp"; then
    echo "PASS resume_losses_bit_exact"
else
    echo "FAIL resume_losses_bit_exact"; diff "$d/a.cmp" "$d/b.cmp" | head -5
fi
grep -q '"val_loss"' "$d/a.jsonl" && grep -q '"expert_load":\[{"layer":1,"load":\[' "$d/a.jsonl" \
    && echo "PASS resume_log_has_val_and_loads" || echo "FAIL resume_log_has_val_and_loads"
for f in model.safetensors train_state.bin config.json; do
    cmp -s "$d/a/$f" "$d/b/$f" && echo "PASS resume_same_$f" || echo "FAIL resume_same_$f"
done
# refusals (exit 2, clear message)
sed 's/"hidden": 32/"hidden": 48/' "$d/m.json" > "$d/m48.json"
expect_err resume_other_shape 'different model shape' $UMOE train "$d/m48.json" $common --resume "$d/b4"
expect_err resume_other_batch 'trained with --batch 2; this run has 3' \
    $UMOE train "$d/m.json" $common --batch 3 --resume "$d/b4"
expect_err resume_nothing_left 'already at step 8' $UMOE train "$d/m.json" $common --resume "$d/a"
mkdir "$d/mix"; cp "$d/a/model.safetensors" "$d/a/config.json" "$d/mix/"; cp "$d/b4/train_state.bin" "$d/mix/"
expect_err resume_inconsistent 'inconsistent' $UMOE train "$d/m.json" $common --resume "$d/mix"
expect_err resume_missing 'nowhere/train_state.bin: cannot open' $UMOE train "$d/m.json" $common --resume "$d/nowhere"
# the model can also be given as the checkpoint directory itself
expect_rc 0 resume_model_from_checkpoint $UMOE train "$d/b4" $common --resume "$d/b4" --out "$d/c"
cmp -s "$d/a/model.safetensors" "$d/c/model.safetensors" && echo "PASS resume_model_from_checkpoint_same" \
    || echo "FAIL resume_model_from_checkpoint_same"
# Ctrl-C: the current step finishes, is checkpointed, the run exits 1 and names the step; the checkpoint holds
# exactly the logged steps and resumes.
$UMOE train "$d/m.json" --data "$d/t.txt" --steps 100000 --batch 2 --seq 16 --progress off --log "$d/i.jsonl" \
    --out "$d/i" 2> "$d/i.err" > /dev/null &
pid=$!
n=0; while [ ! -s "$d/i.jsonl" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid; wait $pid; rc=$?
k=$(wc -l < "$d/i.jsonl")
if [ $rc -eq 1 ] && grep -q "interrupted after step $k; continue with --resume" "$d/i.err" \
    && grep -q "\"umoe_step\":[[:space:]]*$k," "$d/i/config.json"; then echo "PASS train_interrupt_checkpoints ($k steps)"
else echo "FAIL train_interrupt_checkpoints (rc $rc, $k log lines): $(tail -2 "$d/i.err")"; fi
expect_rc 0 train_interrupt_resumes $UMOE train "$d/m.json" --data "$d/t.txt" --steps 100000 --stop-at $((k + 1)) \
    --batch 2 --seq 16 --progress off --resume "$d/i"
expect_err resume_stop_at_not_after 'stop-at 3 is not after the checkpoint' \
    $UMOE train "$d/m.json" $common --stop-at 3 --resume "$d/b4"
