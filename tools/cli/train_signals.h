/* tools/cli/train_signals.h — what Ctrl-C (SIGINT), SIGTERM and SIGHUP do in `wastenet
 * train` and `wastenet run`, which depends on how far the command has got (SIGHUP,
 * a closed terminal or ssh session, exactly like SIGTERM but with exit status 129
 * instead of 130; SIGPIPE is ignored, so that output to a pipe whose reader died
 * with the session cannot kill the run before its checkpoint):
 *
 *   set-up     (options checked, data scanned and loaded, model built, weights read,
 *              backend started): nothing has been written and nothing can be
 *              resumed, so the first signal ends the process at once, from the
 *              handler, with exit status 130 and the set-up message. Loading a large
 *              data set or weight file therefore never makes Ctrl-C wait.
 *   hold       (the short stretch that creates the run folder and its first files):
 *              a signal is only recorded; the caller then sees it
 *              (wn_train_signals_leave_hold returns 1), removes what it created and
 *              exits 130 itself, so no half-made run folder is left.
 *   training   (from the first phase on): the first signal sets wn_train_interrupt;
 *              the loop stops after the current step or validation/test batch,
 *              writes a checkpoint and exits 130 with the resume command. A second
 *              signal exits at once (status 128 + signal); the last checkpoint, written
 *              atomically, is intact.
 *
 * The handler runs on whichever thread the kernel picks (OpenMP workers, the loader's
 * prefetch thread): it only touches lock-free atomics, write(2) and _exit(2). In a
 * forked child (host/isolate.c reads weight files in one) it ends the child quietly.
 */
#ifndef WN_TOOLS_TRAIN_SIGNALS_H
#define WN_TOOLS_TRAIN_SIGNALS_H

#include <signal.h>

/* Non-zero (the signal number) once a signal asked training to stop. */
extern volatile sig_atomic_t wn_train_interrupt;

/* Installs the handler for SIGINT, SIGTERM and SIGHUP in the set-up state. setup_message
 * (copied; one line, no trailing newline) is what a signal during set-up prints
 * before the process exits with status 130. */
void wn_train_signals_install(const char *setup_message);

/* Set-up -> hold. Returns only once in hold: if a signal is ending the process at
 * this moment, it waits for the handler's _exit. */
void wn_train_signals_enter_hold(void);

/* Hold -> training. Returns 1 (still in hold) when a signal arrived during the hold:
 * the caller undoes the hold's work and exits 130. Returns 0 once in training. */
int wn_train_signals_leave_hold(void);

/* The set-up message given to wn_train_signals_install, with a newline. */
const char *wn_train_signals_setup_message(void);

/* The exit status of an interrupted command: 129 after SIGHUP, else 130. */
int wn_train_signals_exit_status(void);

#endif
