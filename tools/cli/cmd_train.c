/* tools/cli/cmd_train.c — `wastenet train`: one training phase, the notebook's
 * train_and_test_model (fit with early stopping, test accuracy, per-class analysis),
 * with checkpoints, reports and pictures in a run folder (tools/train_cli.h). */
#include "tools/cli/commands.h"
#include "tools/cli/train_cli.h"
#include "tools/cli/train_ranks.h"

int cmd_train(int argc, char **argv) {
    wn_train_cli cli;
    int help;
    int rc = wn_train_cli_parse(&cli, 0, argc, argv, &help);
    if (rc || help) return rc;
    if ((rc = wn_train_ranks_start(&cli)) != 0) return rc;
    return wn_train_ranks_end(wn_train_cli_main(&cli, argc, argv));
}
