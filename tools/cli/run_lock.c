/* tools/cli/run_lock.c — flock on the run folder, pid in <run>/lock (see run_lock.h). */
#include "tools/cli/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "host/regular_file.h"

static int lock_path(char *out, size_t size, const char *run_dir) {
    int len = snprintf(out, size, "%s/%s", run_dir, WN_RUN_LOCK_NAME);
    if (len < 0 || (size_t)len >= size) return wn_fail("%s: path too long", run_dir);
    return WN_OK;
}

static long recorded_pid(const char *run_dir) {
    char path[4200], buf[32] = {0};
    if (lock_path(path, sizeof path, run_dir) != WN_OK) return 0;
    FILE *f = wn_fopen_regular(path, "r", NULL);
    if (!f) return 0;
    long pid = fgets(buf, sizeof buf, f) ? atol(buf) : 0;
    fclose(f);
    return pid;
}

int wn_run_lock(const char *run_dir) {
    int fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        wn_fail("cannot open the run folder %s: %s", run_dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int err = errno;
    close(fd);
    if (err != EWOULDBLOCK) {
        wn_fail("cannot lock the run folder %s: %s", run_dir, strerror(err));
        return -1;
    }
    long pid = recorded_pid(run_dir);
    char who[64] = "another wastenet process";
    if (pid > 0) snprintf(who, sizeof who, "another wastenet process (pid %ld)", pid);
    wn_fail("the run folder %s is in use by %s: two processes on one folder would overwrite "
            "each other's checkpoints; wait for it to finish or stop it, or start a new run",
            run_dir, who);
    return -1;
}

int wn_run_lock_record(const char *run_dir, FILE *note) {
    char path[4200];
    if (lock_path(path, sizeof path, run_dir) != WN_OK) return WN_ERR;
    long old = recorded_pid(run_dir);
    /* We hold the flock, so whoever wrote `old` no longer holds it: it is gone (or it
     * is a process with that pid number now, which is not using the folder). */
    if (old > 0 && old != (long)getpid() && note)
        fprintf(note, "note: %s was left by process %ld, which is gone (killed?): lock taken "
                      "over\n", path, old);
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    fprintf(af.fp, "%ld\n", (long)getpid());
    return wn_atomic_commit(&af);
}

void wn_run_unlock(const char *run_dir, int fd, int recorded) {
    if (fd < 0) return;
    char path[4200];
    if (recorded && lock_path(path, sizeof path, run_dir) == WN_OK) unlink(path);
    close(fd);
}
