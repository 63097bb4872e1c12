/* tools/cli/run_lock.h — one process per run folder. `wastenet train/run` hold an
 * exclusive flock(2) on the run folder itself (its directory descriptor) for as long
 * as they use it: a new run from the moment the folder exists, --resume before
 * anything in it is read. Locking writes nothing, so a resume interrupted during
 * set-up leaves the folder exactly as it was. Once the run starts (the hold of
 * tools/train_signals.h), <run>/lock records the holder's pid, so that a second
 * process is refused with the holder named; the kernel drops the flock when its
 * holder dies (even by kill -9), and a lock file left by a process that is gone is
 * taken over with a note. A normal exit removes the lock file.
 */
#ifndef WN_TOOLS_RUN_LOCK_H
#define WN_TOOLS_RUN_LOCK_H

#include <stdio.h>

#define WN_RUN_LOCK_NAME "lock"

/* Locks run_dir. Returns the descriptor (keep it open), or -1 with the reason in
 * wn_last_error(): the folder is in use (the holder's pid named when known) or it
 * cannot be opened. */
int wn_run_lock(const char *run_dir);

/* Writes <run_dir>/lock with this pid; a pid left there by a process that is gone
 * is reported on `note` (may be NULL). */
int wn_run_lock_record(const char *run_dir, FILE *note);

/* Removes <run_dir>/lock when `recorded` and closes the descriptor (which releases
 * the lock). fd < 0: nothing. */
void wn_run_unlock(const char *run_dir, int fd, int recorded);

#endif
