#!/bin/sh
# tests/mpi/test_train_ep_memory.sh - `umoe train --ep 2` under mpirun with the memory optimisations: full
# recomputation (the EP dispatch/combine reruns before each MoE layer's backward, on every rank alike) with
# host offload, and the six fine-grained modules with file offload, give bit-identical losses and grad norms
# to the same EP run without them (same layout, same arithmetic); the log carries the memory report.
. tests/mpi/ep_lib.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
ep_model "$d/m.json"; tiny_text "$d/t.txt" 3000
common="--data $d/t.txt --steps 4 --batch 4 --seq 16 --accum 2 --lr 3e-3 --warmup 1 --val-batches 1 --progress off --ep 2"
expect_rc 0 ep_mem_plain $MPIRUN -np 2 $UMOE train "$d/m.json" $common --log "$d/a.jsonl"
expect_rc 0 ep_mem_full_host $MPIRUN -np 2 $UMOE train "$d/m.json" $common --log "$d/b.jsonl" --recompute full \
    --offload host
expect_rc 0 ep_mem_modules_file $MPIRUN -np 2 $UMOE train "$d/m.json" $common --log "$d/c.jsonl" \
    --recompute norm,activation,attn_core,mla_up,expert_fc1,permute --offload "file:$d"
for r in b c; do
    for k in loss grad_norm aux_loss; do
        a=$(field "$d/a.jsonl" $k); b=$(field "$d/$r.jsonl" $k)
        if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "PASS ep_mem_bit_identical_${k}_$r"
        else echo "FAIL ep_mem_bit_identical_${k}_$r: $(echo $a | head -c 80) vs $(echo $b | head -c 80)"; fi
    done
done
grep -q '"mem":{"params":[0-9]*,.*"arena_slots":[1-9]' "$d/c.jsonl" && echo "PASS ep_mem_log_report" \
    || echo "FAIL ep_mem_log_report"
