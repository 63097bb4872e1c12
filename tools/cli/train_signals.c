/* tools/cli/train_signals.c — the SIGINT/SIGTERM/SIGHUP state machine of `wastenet train/run`
 * (see train_signals.h). */
#include "tools/cli/train_signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/train_cli.h" /* WN_EXIT_INTERRUPTED */

enum { STATE_SETUP, STATE_EXITING, STATE_HOLD, STATE_TRAINING };

volatile sig_atomic_t wn_train_interrupt = 0;

/* atomic_int is lock-free on every platform we build for, hence signal-safe. */
static atomic_int g_state = STATE_SETUP;
static pid_t g_pid;
static char g_setup_message[1024];
static size_t g_setup_len;

static void say(const char *s, size_t n) {
    while (n) { /* write(2) is async-signal-safe; stdio is not */
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w, n -= (size_t)w;
    }
}

static void on_signal(int sig) {
    static const char again[] =
        "\nwastenet: stopped at once; the last checkpoint is intact (resume with --resume)\n";
    static const char first[] =
        "\nwastenet: stopping after the current batch; the checkpoint keeps what is done "
        "(press Ctrl-C again to quit at once)\n";
    if (getpid() != g_pid) _exit(128 + sig); /* a forked reader (host/isolate.c) */
    int expected = STATE_SETUP;
    if (atomic_compare_exchange_strong(&g_state, &expected, STATE_EXITING)) {
        say("\n", 1);
        say(g_setup_message, g_setup_len);
        _exit(sig == SIGHUP ? WN_EXIT_HANGUP : WN_EXIT_INTERRUPTED);
    }
    if (expected == STATE_EXITING) return; /* another thread's handler is exiting */
    if (wn_train_interrupt) {
        say(again, sizeof again - 1);
        _exit(128 + sig);
    }
    wn_train_interrupt = sig;
    if (expected == STATE_TRAINING) say(first, sizeof first - 1);
}

void wn_train_signals_install(const char *setup_message) {
    g_pid = getpid();
    snprintf(g_setup_message, sizeof g_setup_message, "%s\n", setup_message);
    g_setup_len = strlen(g_setup_message);
    atomic_store(&g_state, STATE_SETUP);
    wn_train_interrupt = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* One handler at a time per thread: a second signal waits until the first has
     * set the flag. */
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A closed terminal or ssh session (SIGHUP) would otherwise kill the run without a
     * checkpoint: it is handled like SIGTERM, with exit status 129. */
    sigaction(SIGHUP, &sa, NULL);
    /* After a hang-up the reader of a pipe on stdout (`| tee log`) is usually gone
     * too: a write would then raise SIGPIPE and kill the run before its checkpoint.
     * Ignored, such writes just fail (EPIPE) and training stops as asked. */
    signal(SIGPIPE, SIG_IGN);
}

void wn_train_signals_enter_hold(void) {
    int expected = STATE_SETUP;
    if (atomic_compare_exchange_strong(&g_state, &expected, STATE_HOLD)) return;
    for (;;) pause(); /* STATE_EXITING: a handler is about to _exit the process */
}

int wn_train_signals_leave_hold(void) {
    if (wn_train_interrupt) return 1;
    /* A signal landing between the test and the store is handled as in training:
     * the first step finishes, a checkpoint is written, exit 130. */
    atomic_store(&g_state, STATE_TRAINING);
    return 0;
}

const char *wn_train_signals_setup_message(void) { return g_setup_message; }

int wn_train_signals_exit_status(void) {
    return wn_train_interrupt == SIGHUP ? WN_EXIT_HANGUP : WN_EXIT_INTERRUPTED;
}
