# umoe params: presets, JSON output, HF config, bad input (exit 2 with a message naming the field).
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
expect_rc 0 params_help $UMOE params --help
expect_out params_pangu_total 'model \(no MTP\) +719\.094B +39\.192B' $UMOE params pangu-ultra-moe-718b
expect_out params_dsv3_json '"params_total":671026419200,"params_active":36625618432' $UMOE params deepseek-v3-671b --json
expect_out params_json_flops '"flops_per_token":[0-9.e+]+' $UMOE params mixtral-8x7b --json
# --seq changes only the attention core; --causal-half halves it
a=$($UMOE params gpt3-175b --json --seq 4096 | grep -o '"attn_core":[0-9.e+]*' | cut -d: -f2)
b=$($UMOE params gpt3-175b --json --seq 4096 --causal-half | grep -o '"attn_core":[0-9.e+]*' | cut -d: -f2)
if [ "$a" = "201326592" ] && [ "$b" = "100663296" ]; then echo "PASS params_seq_causal"; else echo "FAIL params_seq_causal ($a $b)"; fi
# a file path works, a HuggingFace config.json too
cat > "$T/m.json" <<'J'
{"layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "ffn_hidden": 128}
J
expect_out params_file '"name":"m"' $UMOE params "$T/m.json" --json
mkdir -p "$T/Mixtral-tiny"
cat > "$T/Mixtral-tiny/config.json" <<'J'
{"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2,
 "vocab_size": 100, "torch_dtype": "bfloat16"}
J
expect_out params_hf '"name":"Mixtral-tiny","layers":2,"dense_layers":0,"moe_layers":2' $UMOE params "$T/Mixtral-tiny/config.json" --json
# bad input: exit 2 and a message naming the field (and the file)
cat > "$T/bad.json" <<'J'
{"layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "ffn_hiden": 128}
J
expect_err params_bad_field 'bad\.json.*"ffn_hiden"' $UMOE params "$T/bad.json"
cat > "$T/range.json" <<'J'
{"layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "ffn_hidden": 128, "experts": 4, "top_k": 5, "expert_ffn_hidden": 8}
J
expect_err params_bad_range 'range\.json.*"top_k" = 5' $UMOE params "$T/range.json"
expect_err params_missing_preset 'no-such-model' $UMOE params no-such-model
expect_err params_no_model 'MODEL is missing' $UMOE params
expect_err params_bad_flag 'unknown argument' $UMOE params llama3-70b --frob
expect_err params_bad_seq 'seq = "0"' $UMOE params llama3-70b --seq 0
expect_err params_two_models 'unknown argument' $UMOE params llama3-70b gpt3-175b
