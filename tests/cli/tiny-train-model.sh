# Helper sourced by the train/eval CLI tests: writes a tiny MoE model spec to "$1" (MLA, 1 dense + 1 MoE
# layer with 4 experts top-2 + 1 shared, aux-loss-free bias, global-batch aux scope, MTP depth 1, bytes).
tiny_model() {
    cat > "$1" <<'JSON'
{"name": "cli-tiny", "layers": 2, "hidden": 32, "heads": 2, "attention": "mla", "q_lora_rank": 16,
 "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8, "ffn_hidden": 64,
 "first_k_dense": 1, "experts": 4, "shared_experts": 1, "top_k": 2, "expert_ffn_hidden": 32, "vocab": 256,
 "mtp_depth": 1, "seq_len": 32, "score": "sigmoid", "score_bias": true, "routed_scale": 2.5,
 "aux_scope": "global", "z_loss": 0.001}
JSON
}
# deterministic text: the numbers 1..N in words-ish digits
tiny_text() { seq 1 "$2" | tr '\n' ' ' > "$1"; }
