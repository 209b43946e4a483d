# Where presets are found: $UMOE_CONFIG_DIR, else configs/ next to the binary, else ./configs.
. tests/cli/lib.sh
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
BIN=$(cd "$(dirname "$UMOE")" && pwd)/$(basename "$UMOE")
mkdir -p "$T/cfg/models" "$T/app/configs/models" "$T/cwd/configs/models" "$T/bare"
echo '{"name": "from-env", "layers": 1, "hidden": 8, "heads": 2, "vocab": 10, "ffn_hidden": 16}' > "$T/cfg/models/x.json"
echo '{"name": "from-exe", "layers": 1, "hidden": 8, "heads": 2, "vocab": 10, "ffn_hidden": 16}' > "$T/app/configs/models/x.json"
echo '{"name": "from-cwd", "layers": 1, "hidden": 8, "heads": 2, "vocab": 10, "ffn_hidden": 16}' > "$T/cwd/configs/models/x.json"
cp "$BIN" "$T/app/umoe"; cp "$BIN" "$T/bare/umoe"
expect_out config_env '"name":"from-env"' env UMOE_CONFIG_DIR="$T/cfg" "$T/app/umoe" params x --json
expect_out config_exe '"name":"from-exe"' env -u UMOE_CONFIG_DIR "$T/app/umoe" params x --json
expect_out config_cwd '"name":"from-cwd"' sh -c "cd '$T/cwd' && env -u UMOE_CONFIG_DIR '$T/bare/umoe' params x --json"
expect_err config_missing 'no preset .*cfg/models/y.json' env UMOE_CONFIG_DIR="$T/cfg" "$T/app/umoe" params y
# the repository's presets are found from the repository binary
expect_out config_repo '"name":"pangu-ultra-moe-718b"' env -u UMOE_CONFIG_DIR $UMOE params pangu-ultra-moe-718b --json
