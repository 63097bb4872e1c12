/* tools/run_lock.c — flock on <run>/lock (see run_lock.h). */
#include "tools/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"

static long read_pid(int fd) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? atol(buf) : 0;
}

int wn_run_lock(const char *run_dir, FILE *note) {
    char path[4200];
    int len = snprintf(path, sizeof path, "%s/%s", run_dir, WN_RUN_LOCK_NAME);
    if (len < 0 || (size_t)len >= sizeof path) return wn_fail("%s: path too long", run_dir);
    /* O_NOFOLLOW: the lock is a plain file of the folder, never a link elsewhere. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return wn_fail("cannot lock the run folder %s: %s: %s", run_dir, path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return wn_fail("cannot lock the run folder %s: %s is not a regular file", run_dir, path), -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        long pid = read_pid(fd);
        close(fd);
        if (err == EWOULDBLOCK) {
            char who[64] = "another process";
            if (pid > 0) snprintf(who, sizeof who, "another wastenet process (pid %ld)", pid);
            return wn_fail("the run folder %s is in use by %s: two processes on one folder "
                           "would overwrite each other's checkpoints; wait for it to finish "
                           "or stop it, or start a new run",
                           run_dir, who), -1;
        }
        return wn_fail("cannot lock the run folder %s: %s", run_dir, strerror(err)), -1;
    }
    long old = read_pid(fd);
    if (old > 0 && old != (long)getpid() && note)
        fprintf(note, "note: %s was left by process %ld, which is gone (killed?): lock taken "
                      "over\n", path, old);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int err = errno;
        close(fd);
        return wn_fail("cannot write the lock file %s: %s", path, strerror(err)), -1;
    }
    return fd;
}

void wn_run_unlock(int fd) {
    if (fd < 0) return;
    if (ftruncate(fd, 0) != 0) { /* a pid left behind only causes a note next time */ }
    close(fd);
}
