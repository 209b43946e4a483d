#!/bin/sh
# tests/mpi/test_train_ep_ckpt.sh - checkpoints and refusals of `umoe train --ep` under mpirun:
#  - a checkpoint saved at EP 4 (4 ranks, with dynamic placement moving experts) holds every expert (rank 0
#    gathers them): resuming it at EP 2 (2 ranks) and at EP 1 (1 rank) gives the next steps' losses of the
#    uninterrupted EP 4 run within a relative 1e-6 (float reassociation across layouts; observed ~1e-9);
#  - errors exit 2 with a clear message on every rank: R % E != 0, experts % E != 0, a global batch not
#    divisible by R, a data file that one rank cannot read, a configuration that differs across ranks;
#  - a rank killed mid-run (SIGKILL) stops the job within seconds with mpirun's message naming the rank, and
#    the last checkpoint (written every 2 steps, atomically) resumes.
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
# a rank dies (SIGKILL of rank 1 while training with a checkpoint every 2 steps): the job stops with a message
# naming the rank instead of hanging, and the last checkpoint is intact (it resumes)
tag="kill$$"
UMOE_KILL_TAG=$tag $MPIRUN -np 2 $UMOE train "$d/m.json" --data $d/t.txt --steps 100000 --batch 4 --seq 16 \
    --progress off --ep 2 --save-every 2 --out "$d/kc" > "$d/k.out" 2>&1 &
mp=$!
i=0; while [ ! -f "$d/kc/train_state.bin" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
victim=""
for e in /proc/[0-9]*/environ; do
    env_of=$(cat "$e" 2>/dev/null | tr '\0' '\n')
    if printf '%s\n' "$env_of" | grep -qx "UMOE_KILL_TAG=$tag" &&
       printf '%s\n' "$env_of" | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
        victim=${e#/proc/}; victim=${victim%/environ}
    fi
done
[ -n "$victim" ] && kill -9 "$victim"
i=0; while kill -0 $mp 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
if kill -0 $mp 2>/dev/null; then
    echo "FAIL rank_killed_job_stops (still running 20 s after killing rank 1)"; kill -9 $mp
else
    wait $mp; krc=$?
    if [ -n "$victim" ] && [ "$krc" -ne 0 ] && grep -q "rank 1" "$d/k.out"; then echo "PASS rank_killed_job_stops (exit $krc)"
    else echo "FAIL rank_killed_job_stops (victim '$victim', exit $krc)"; tail -5 "$d/k.out"; fi
fi
ks=$(sed -nE 's/.*"umoe_step":[[:space:]]*([0-9]+).*/\1/p' "$d/kc/config.json" | head -1)
if [ -n "$ks" ]; then
    expect_rc 0 checkpoint_intact_after_kill $MPIRUN -np 2 $UMOE train "$d/kc" --data $d/t.txt --steps 100000 \
        --batch 4 --seq 16 --progress off --ep 2 --resume "$d/kc" --stop-at $((ks + 1))
else
    echo "FAIL checkpoint_intact_after_kill (no step in $d/kc/config.json)"
fi
