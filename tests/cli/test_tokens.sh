# umoe tokens: byte and id shards, the exact header bytes, u16/u32, and every input error (exit 2).
. tests/cli/lib.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
printf 'hello' > "$d/h.txt"
expect_out tokens_bytes 'wrote .*h.bin: 5 tokens \(u16\), vocabulary 256' $UMOE tokens "$d/h.txt" "$d/h.bin"
# header: magic, version 1, 2 bytes/token, 5 tokens, vocab 256; then 'h' 'e' 'l' 'l' 'o' as u16
want='554d4f45544f4b5301000000020000000500000000000000000100000000000068006500'
got=$(od -An -tx1 -v "$d/h.bin" | tr -d ' \n' | cut -c1-72)
if [ "$got" = "$want" ]; then echo "PASS tokens_header_bytes"; else echo "FAIL tokens_header_bytes: $got"; fi
printf '3 70000\n12\t0\n' > "$d/ids.txt"
expect_out tokens_ids_u32 '4 tokens \(u32\), vocabulary 70001' $UMOE tokens "$d/ids.txt" "$d/ids.bin" --ids --dtype u32
got=$(od -An -tu4 -v -j32 "$d/ids.bin" | tr -s ' \n' ' ')
if [ "$got" = " 3 70000 12 0 " ]; then echo "PASS tokens_ids_values"; else echo "FAIL tokens_ids_values: $got"; fi
expect_err tokens_u16_overflow 'too large for u16.*u32' $UMOE tokens "$d/ids.txt" "$d/x.bin" --ids
[ ! -e "$d/x.bin" ] && echo "PASS tokens_no_partial_file" || echo "FAIL tokens_no_partial_file"
expect_err tokens_vocab_exceeded 'id 70000, outside --vocab 1000' $UMOE tokens "$d/ids.txt" "$d/x.bin" --ids --vocab 1000 --dtype u32
printf '1 2 x3\n' > "$d/bad.txt"
expect_err tokens_bad_id 'bad.txt line 1: "x3" is not a token id' $UMOE tokens "$d/bad.txt" "$d/x.bin" --ids
expect_err tokens_missing 'nope.txt: cannot open' $UMOE tokens "$d/nope.txt" "$d/x.bin"
: > "$d/empty.txt"
expect_err tokens_empty 'empty.txt is empty' $UMOE tokens "$d/empty.txt" "$d/x.bin"
expect_err tokens_bad_dtype 'dtype = "u8" is not allowed \(u16 or u32\)' $UMOE tokens "$d/h.txt" "$d/x.bin" --dtype u8
expect_rc 2 tokens_unknown_flag $UMOE tokens "$d/h.txt" "$d/x.bin" --frobnicate
expect_rc 2 tokens_no_args $UMOE tokens
