# umoe train --recompute / --offload: the same losses, bit for bit (17 digits in the JSONL log), as a plain
# run; the log's "mem" report and its arena shrinking; bad policies and unusable offload directories exit 2.
. tests/cli/lib.sh
. tests/cli/tiny-train-model.sh
d=$(mktemp -d); trap 'chmod -R u+w "$d"; rm -rf "$d"' EXIT
tiny_model "$d/m.json"; tiny_text "$d/t.txt" 3000
run="$UMOE train $d/m.json --data $d/t.txt --steps 3 --batch 2 --seq 16 --accum 2 --progress off"
losses() { sed -E 's/.*"loss":([^,]*),"lm_loss":([^,]*),.*"grad_norm":([^,]*),.*/\1 \2 \3/' "$1"; }
field() { sed -E "s/.*\"$2\":([0-9]+).*/\1/" "$1" | head -1; }
expect_rc 0 train_mem_plain $run --log "$d/a.jsonl"
expect_rc 0 train_mem_full_host $run --log "$d/b.jsonl" --recompute full --offload host
expect_rc 0 train_mem_modules_file $run --log "$d/c.jsonl" --recompute norm,activation,mla_up,expert_fc1,permute \
    --offload "file:$d"
expect_rc 0 train_mem_selective $run --log "$d/e.jsonl" --recompute selective
for x in b c e; do
    if [ -s "$d/$x.jsonl" ] && [ "$(losses "$d/a.jsonl")" = "$(losses "$d/$x.jsonl")" ]; then echo "PASS train_mem_same_losses_$x"
    else echo "FAIL train_mem_same_losses_$x: $(losses "$d/a.jsonl" | head -1) vs $(losses "$d/$x.jsonl" | head -1)"; fi
done
for k in params grads optimizer arena arena_resident arena_shared arena_slots dispatch offload_pool peak_rss; do
    grep -q "\"mem\":{.*\"$k\":[0-9]" "$d/a.jsonl" && echo "PASS train_mem_log_has_$k" || echo "FAIL train_mem_log_has_$k"
done
a=$(field "$d/a.jsonl" arena); e=$(field "$d/e.jsonl" arena); b=$(field "$d/b.jsonl" arena)
[ -n "$a" ] && [ "$a" -gt "$e" ] && [ "$e" -gt "$b" ] && echo "PASS train_mem_arena_order" \
    || echo "FAIL train_mem_arena_order (none $a, selective $e, full+host $b)"
p=$(field "$d/c.jsonl" offload_pool)
[ -n "$p" ] && [ "$p" -gt 0 ] && echo "PASS train_mem_offload_pool" || echo "FAIL train_mem_offload_pool ($p)"
o=$(field "$d/a.jsonl" optimizer); w=$(field "$d/a.jsonl" params)
[ -n "$o" ] && [ "$o" = $((2 * w)) ] && echo "PASS train_mem_optimizer_bytes" || echo "FAIL train_mem_optimizer_bytes ($o vs params $w)"
[ -z "$(ls -A "$d" | grep umoe-offload)" ] && echo "PASS train_mem_file_removed" || echo "FAIL train_mem_file_removed"
# bad input: exit 2 with a message naming the value
expect_err train_mem_bad_policy '"--recompute" = "attention".*none, selective, full' $run --recompute attention
expect_err train_mem_bad_offload 'offload = "disk" is not allowed \(none, host, or file:DIR\)' $run --offload disk
expect_err train_mem_missing_dir 'offload directory /nonexistent/umoe: cannot create' $run --offload file:/nonexistent/umoe
mkdir "$d/ro"; chmod 555 "$d/ro"
if [ "$(id -u)" != 0 ]; then
    expect_err train_mem_readonly_dir "offload directory $d/ro: cannot create" $run --offload "file:$d/ro"
else
    expect_err train_mem_file_not_dir "offload directory $d/t.txt: cannot create" $run --offload "file:$d/t.txt"
fi
