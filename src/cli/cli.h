/* cli.h - the umoe commands. Each command lives in its own file cmd_<name>.c and returns an exit code
 * (UMOE_EXIT_OK / _FAIL / _INPUT). Shared flag parsing helpers are in args.c. */
#ifndef UMOE_CLI_H
#define UMOE_CLI_H
#include "umoe/common.h"

int cmd_plan(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
int cmd_params(int argc, char **argv);

/* Flag helpers: parse "--name VALUE" style values with range checks; on error print the message to stderr
 * and return UMOE_EXIT_INPUT via the caller. `cmd` names the command in messages. */
int cli_is_help(const char *a);
int cli_parse_int(const char *cmd, const char *flag, const char *val, long long lo, long long hi, long long *out);
int cli_parse_num(const char *cmd, const char *flag, const char *val, double lo, double hi, double *out);
/* Returns argv[i+1] or prints "flag needs a value" and returns NULL. */
const char *cli_value(const char *cmd, int argc, char **argv, int i);
int cli_unknown(const char *cmd, const char *arg);
int cli_input_error(void); /* prints umoe_err, returns UMOE_EXIT_INPUT */
/* MODEL argument of train/eval: a checkpoint directory (its config.json) or anything spec_model_load takes;
 * validated. Returns 0, or prints the message and returns UMOE_EXIT_INPUT. (cmd_train.c) */
#include "umoe/spec.h"
int cli_load_model_or_checkpoint(const char *arg, spec_model *s);
#endif
