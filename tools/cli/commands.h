/* tools/cli/commands.h — the subcommands of the `wastenet` binary.
 *
 * Each subcommand lives in its own file tools/cmd_<name>.c, parses its own options
 * (getopt_long), prints its own --help, and returns the process exit status:
 * 0 success, 1 failure (with a message on stderr), 2 bad usage. Add one by writing
 * its file and one line in the table in tools/main.c. */
#ifndef WN_COMMANDS_H
#define WN_COMMANDS_H

typedef struct wn_command {
    const char *name;
    const char *summary; /* one line for `wastenet --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} wn_command;

/* one declaration per subcommand, in the order of the table in tools/main.c */
int cmd_data(int argc, char **argv);
int cmd_bench_loader(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_cv(int argc, char **argv);
int cmd_imagenet(int argc, char **argv);
int cmd_bench_ops(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_bench_peak(int argc, char **argv);

#endif
