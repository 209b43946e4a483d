# CLI basics: help on every command, unknown command/flag exit codes.
. tests/cli/lib.sh
expect_rc 0 help_top $UMOE --help
for c in plan sim sweep validate params bench train eval tokens; do expect_rc 0 help_$c $UMOE $c --help; done
expect_rc 2 no_command $UMOE
expect_rc 2 unknown_command $UMOE frobnicate
