#!/bin/sh
# tests/mpi/test_train_ep_ckpt.sh - checkpoints and refusals of `umoe train --ep` under mpirun:
#  - a checkpoint saved at EP 4 (4 ranks, with dynamic placement moving experts) holds every expert (rank 0
#    gathers them): resuming it at EP 2 (2 ranks) and at EP 1 (1 rank) gives the next steps' losses of the
#    uninterrupted EP 4 run within a relative 1e-6 (float reassociation across layouts; observed ~1e-9);
#  - errors exit 2 with a clear message on every rank: R % E != 0, experts % E != 0, a global batch not
#    divisible by R, a data file that one rank cannot read, a configuration that differs across ranks.
. tests/mpi/ep_lib.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
ep_model "$d/m.json"; tiny_text "$d/t.txt" 4000
common="--data $d/t.txt --steps 6 --batch 4 --seq 16 --lr 3e-3 --warmup 2 --val-batches 1 --progress off"
pl="--placement 1 --placement-bw 1e15"
expect_rc 0 ckpt_ep4_straight $MPIRUN -np 4 $UMOE train "$d/m.json" $common --ep 4 $pl --log "$d/s.jsonl"
expect_rc 0 ckpt_ep4_stop_at_3 $MPIRUN -np 4 $UMOE train "$d/m.json" $common --ep 4 $pl --stop-at 3 --out "$d/ck"
expect_rc 0 ckpt_resume_ep2 $MPIRUN -np 2 $UMOE train "$d/ck" $common --ep 2 --resume "$d/ck" --log "$d/r2.jsonl"
expect_rc 0 ckpt_resume_ep1 $MPIRUN -np 1 $UMOE train "$d/ck" $common --ep 1 --resume "$d/ck" --log "$d/r1.jsonl"
expect_rc 0 ckpt_resume_ep4 $MPIRUN -np 4 $UMOE train "$d/ck" $common --ep 4 --resume "$d/ck" --log "$d/r4.jsonl"
sed -n '4,6p' "$d/s.jsonl" > "$d/s46.jsonl"
field "$d/s46.jsonl" loss > "$d/s.loss"
for r in r4 r2 r1; do field "$d/$r.jsonl" loss > "$d/$r.loss"; close "$d/$r.loss" "$d/s.loss" 1e-6 "ckpt_resume_${r}_same_losses"; done
# every expert's tensors are in the checkpoint (8 experts x gate/up/down x 2 MoE layers incl. MTP)
ne=$(grep -ao 'layers\.[0-9]*\.mlp\.experts\.[0-9]*\.[a-z_]*\.weight' "$d/ck/model.safetensors" | sort -u | wc -l)
[ "$ne" -eq 48 ] && echo "PASS ckpt_has_every_expert" || echo "FAIL ckpt_has_every_expert ($ne expert tensors)"
# refusals
one="--data $d/t.txt --steps 2 --batch 4 --seq 16 --progress off"
expect_err ep_r_not_multiple 'EP size|ep_size|divid|multiple' $MPIRUN -np 2 $UMOE train "$d/m.json" $one --ep 4
expect_err ep_experts_not_multiple 'expert' $MPIRUN -np 3 $UMOE train "$d/m.json" --data $d/t.txt --steps 2 \
    --batch 3 --seq 16 --progress off --ep 3
expect_err ep_batch_not_multiple 'global batch\) must be a multiple of the 3 MPI ranks' $MPIRUN -np 3 $UMOE train \
    "$d/m.json" $one --ep 1
mkdir -p "$d/a" "$d/b"; cp "$d/t.txt" "$d/a/t.txt"
expect_err ep_data_unreadable_on_one_rank 'rank 1: .*t\.txt' $MPIRUN -np 1 -wdir "$d/a" $UMOE_ABS train "$d/m.json" \
    --data t.txt --steps 2 --batch 2 --seq 16 --progress off --ep 1 : -np 1 -wdir "$d/b" $UMOE_ABS train "$d/m.json" \
    --data t.txt --steps 2 --batch 2 --seq 16 --progress off --ep 1
expect_err ep_config_mismatch 'config mismatch across MPI ranks' $MPIRUN -np 1 $UMOE train "$d/m.json" $one --ep 1 \
    --lr 1e-3 : -np 1 $UMOE train "$d/m.json" $one --ep 1 --lr 2e-3
