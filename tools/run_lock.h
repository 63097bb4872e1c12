/* tools/run_lock.h — one process per run folder. `wastenet train/run` hold an
 * exclusive flock(2) on <run>/lock for as long as they use the folder (a new run from
 * the moment the folder exists, --resume before anything in it is read), with their
 * pid written in the file. A second process on the same folder is refused, naming
 * the holder; the kernel drops the lock when its holder dies (even by kill -9), so a
 * lock file left with the pid of a process that is gone is taken over, with a note.
 * On a normal exit the pid is cleared (the file stays: removing it would race with a
 * process about to lock it).
 */
#ifndef WN_TOOLS_RUN_LOCK_H
#define WN_TOOLS_RUN_LOCK_H

#include <stdio.h>

#define WN_RUN_LOCK_NAME "lock"

/* Locks run_dir. Returns the descriptor (keep it open), or -1 with the reason in
 * wn_last_error(): the folder is in use (the holder's pid named) or the lock file
 * cannot be made. A stale pid taken over is reported on `note` (may be NULL). */
int wn_run_lock(const char *run_dir, FILE *note);

/* Clears the pid and closes the descriptor (which releases the lock). */
void wn_run_unlock(int fd);

#endif
