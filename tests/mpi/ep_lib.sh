# tests/mpi/ep_lib.sh - helpers sourced by the `umoe train --ep` MPI tests: the mpirun command line, a tiny MoE
# model with 8 experts (tests/cli/tiny-train-model.sh's model with experts 8 and no expert bias), and
# per-step fields of a JSONL training log.
. tests/cli/lib.sh
. tests/cli/tiny-train-model.sh
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # see test_dist.sh
MPIRUN="mpirun --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
UMOE_ABS=$(cd "$(dirname "$UMOE")" && pwd)/$(basename "$UMOE")
ep_model() { tiny_model "$1.tmp"; sed 's/"experts": 4/"experts": 8/; s/"score_bias": true/"score_bias": false/' "$1.tmp" > "$1"; rm -f "$1.tmp"; }
# field FILE KEY: the values of a top-level numeric key, one per line (e.g. loss, grad_norm)
field() { sed -E "s/.*[{,]\"$2\":([^,}]*).*/\1/" "$1"; }
# mean of the per-layer "imbalance" arrays of the ep objects over lines FROM.. of FILE
mean_imb() { sed -n "$2,\$p" "$1" | sed -E 's/.*"imbalance":\[([^]]*)\]\}\}$/\1/' | tr ',' '\n' |
    awk '{ s += $1; n++ } END { printf "%.4f\n", n ? s / n : 0 }'; }
# close A B RTOL NAME: two columns of numbers agree within RTOL relative, same line count
close() {
    if [ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ] && [ "$(wc -l < "$1")" -gt 0 ] &&
        paste "$1" "$2" | awk -v t="$3" '{ d = $1 - $2; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2;
            if (d > t * a) { bad = 1; print "  line " NR ": " $1 " vs " $2 > "/dev/stderr" } } END { exit bad }'; then
        echo "PASS $4"
    else
        echo "FAIL $4"
    fi
}
