#!/bin/sh
# tests/mpi/test_train_ep_shard.sh - expert sharding: with `--ep E` every rank allocates the dense tensors plus
# only experts/E expert slots per MoE layer (model_init_sharded), so the parameter bytes of the JSONL "mem" report
# at EP=1, 2, 4 are dense + experts, dense + experts/2, dense + experts/4: (p1 - p4) = 3/2 (p1 - p2) with
# p1 > p2 > p4; the AdamW state (mem.optimizer) shrinks the same way (2 floats per parameter).
. tests/mpi/ep_lib.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
ep_model "$d/m.json"; tiny_text "$d/t.txt" 3000
common="--data $d/t.txt --steps 2 --batch 4 --seq 16 --lr 3e-3 --warmup 1 --val-batches 1 --progress off"
expect_rc 0 shard_ep1 $MPIRUN -np 1 $UMOE train "$d/m.json" $common --ep 1 --log "$d/e1.jsonl"
expect_rc 0 shard_ep2 $MPIRUN -np 2 $UMOE train "$d/m.json" $common --ep 2 --log "$d/e2.jsonl"
expect_rc 0 shard_ep4 $MPIRUN -np 4 $UMOE train "$d/m.json" $common --ep 4 --log "$d/e4.jsonl"
mem() { tail -n 1 "$1" | sed -E "s/.*\"mem\":\{[^}]*\"$2\":([0-9]+).*/\1/"; }
p1=$(mem "$d/e1.jsonl" params); p2=$(mem "$d/e2.jsonl" params); p4=$(mem "$d/e4.jsonl" params)
o1=$(mem "$d/e1.jsonl" optimizer); o4=$(mem "$d/e4.jsonl" optimizer)
if [ -n "$p1" ] && [ -n "$p2" ] && [ -n "$p4" ] && [ "$p1" -gt "$p2" ] && [ "$p2" -gt "$p4" ] &&
    [ $((2 * (p1 - p4))) -eq $((3 * (p1 - p2))) ]; then
    echo "PASS shard_param_bytes_dense_plus_experts_over_E (EP1 $p1, EP2 $p2, EP4 $p4 bytes)"
else
    echo "FAIL shard_param_bytes_dense_plus_experts_over_E (EP1 '$p1', EP2 '$p2', EP4 '$p4')"
fi
if [ -n "$o1" ] && [ -n "$o4" ] && [ "$o1" -eq $((2 * p1)) ] && [ "$o4" -eq $((2 * p4)) ]; then
    echo "PASS shard_adamw_bytes (EP1 $o1, EP4 $o4)"
else
    echo "FAIL shard_adamw_bytes (EP1 '$o1', EP4 '$o4')"
fi
# the routed experts' bytes from the model file: experts x MoE layers (main after first_k_dense, and the MTP
# modules) x (gate + up + down = 3 x expert_ffn_hidden x hidden) floats x 4 bytes; EP=4 keeps a quarter of them
j() { tr -d '\n' < "$d/m.json" | sed -E "s/.*\"$1\": *([0-9]+).*/\1/"; }
X=$(j experts); L=$(j layers); K=$(j first_k_dense); D=$(j mtp_depth); Fe=$(j expert_ffn_hidden); C=$(j hidden)
ex=$((X * (L - K + D) * 3 * Fe * C * 4))
[ "$ex" -gt 0 ] && [ $((p1 - p4)) -eq $((ex - ex / 4)) ] && echo "PASS shard_ep4_holds_a_quarter_of_the_experts ($ex expert bytes)" \
    || echo "FAIL shard_ep4_holds_a_quarter_of_the_experts (experts $ex bytes, EP1 - EP4 = $((p1 - p4)))"
