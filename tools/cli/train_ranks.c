/* tools/cli/train_ranks.c — see train_ranks.h. */
#include "tools/cli/train_ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/distributed.h"
#include "host/base/error.h"

/* The options every rank must share, one "--name value" per line. */
static void options_text(const wn_train_cli *c, char *buf, size_t size) {
    snprintf(buf, size,
             "command %s\n--data %s\n--model %s\n--weights %s\n--image-size %d\n--batch %d\n"
             "--epochs %d\n--lr %.9g\n--finetune-lr %.9g\n--fine-tune-at %d\n--seed %llu\n"
             "--augment %d\n--rotation %.9g\n--label-smoothing %.9g\n--lr-schedule %d %d %.9g\n"
             "--early-stopping %d\n--patience %d\n--min-delta %.17g\n--restore %d\n"
             "--backend %s\n--precision %s\n--deterministic %d\n--resume %s\n--cache %d\n"
             "--skip-bad %d\n--max-pixels %zu\n",
             c->command, c->data ? c->data : "", c->model ? c->model : "",
             c->weights ? c->weights : "", c->image_size, c->batch, c->epochs, c->lr,
             c->finetune_lr, c->fine_tune_at, (unsigned long long)c->seed, c->augment,
             c->rotation, c->label_smoothing, c->lr_schedule, c->lr_step_epochs,
             c->lr_step_factor, c->early_stopping, c->patience, c->min_delta, (int)c->restore,
             c->backend ? c->backend : "", c->precision ? c->precision : "", c->deterministic,
             c->resume ? c->resume : "", c->cache_mode, c->skip_bad, c->max_pixels);
}

int wn_train_ranks_start(const wn_train_cli *cli) {
    if (wn_dist_start(NULL, NULL) != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        return 1;
    }
    if (!wn_dist_active()) return 0;
    if (!wn_dist_is_root() && !freopen("/dev/null", "w", stdout))
        fprintf(stderr, "wastenet %s: rank %d: cannot silence its output\n", cli->command,
                wn_dist_rank());
    char text[4096];
    options_text(cli, text, sizeof text);
    if (wn_dist_check_same(text, "the ranks' options") != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        wn_dist_finish(); /* every rank saw the difference: they leave together */
        return 2;
    }
    printf("%s: %d ranks (data parallel): each takes 1/%d of every batch of %d\n", cli->command,
           wn_dist_size(), wn_dist_size(), cli->batch);
    return 0;
}

int wn_train_ranks_end(int status) {
    if (!wn_dist_active()) return status;
    if (status == 0 || status == WN_EXIT_INTERRUPTED || status == WN_EXIT_HANGUP) {
        wn_dist_finish();
        return status;
    }
    fprintf(stderr, "wastenet: rank %d of %d failed (exit status %d): stopping every rank\n",
            wn_dist_rank(), wn_dist_size(), status);
    wn_dist_abort(status);
}

int wn_train_ranks_gpu(void) {
    const char *v = getenv("WN_GPU");
    if (v && *v) return atoi(v);
    if (!wn_dist_active()) return 0;
    v = getenv("CUDA_VISIBLE_DEVICES");
    if (v && *v && !strchr(v, ',')) return 0;
    return wn_dist_local_rank();
}
