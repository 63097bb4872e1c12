/* tools/cli/cmd_run.c — `wastenet run`: the notebook end to end. Transfer learning with
 * the backbone frozen (lr 1e-3), then fine-tuning from --fine-tune-at (default 500,
 * lr 1e-5), each with the notebook's early stopping; after each phase the test
 * accuracy, the per-class analysis, the weights; at the end the pictures. Every
 * phase is checkpointed and resumable (tools/train_cli.h). */
#include "tools/cli/commands.h"
#include "tools/cli/train_cli.h"
#include "tools/cli/train_ranks.h"

int cmd_run(int argc, char **argv) {
    wn_train_cli cli;
    int help;
    int rc = wn_train_cli_parse(&cli, 1, argc, argv, &help);
    if (rc || help) return rc;
    if ((rc = wn_train_ranks_start(&cli)) != 0) return rc;
    return wn_train_ranks_end(wn_train_cli_main(&cli, argc, argv));
}
