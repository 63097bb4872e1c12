/* host/isolate.c — fork, run, report (see isolate.h). */
#define _GNU_SOURCE
#include "host/isolate.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/base/error.h"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The child: runs fn, sends its reason on failure, never returns. _exit() skips the
 * parent's atexit handlers and stdio buffers, which are not the child's to run. */
static void child_main(int fd, const char *path, int (*fn)(const char *, void *), void *user) {
    int rc = fn(path, user);
    if (rc != WN_OK) {
        const char *msg = wn_last_error();
        size_t len = strlen(msg), off = 0;
        while (off < len) {
            ssize_t w = write(fd, msg + off, len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
    }
    close(fd);
    _exit(rc == WN_OK ? 0 : 1);
}

int wn_isolate_run(const char *path, int (*fn)(const char *, void *), void *user,
                   double timeout_s, const char *library) {
    const char *off = getenv("WN_NO_ISOLATE");
    if (off && *off && strcmp(off, "0")) return WN_OK;
    int fds[2];
    if (pipe(fds) != 0) return WN_OK; /* no isolation possible: the caller's read decides */
    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return WN_OK;
    }
    if (pid == 0) {
        /* A reader hung inside the library must not outlive a parent that was
         * signalled alone (kill <pid>): the kernel kills it when the parent dies. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1); /* the parent died before prctl */
        close(fds[0]);
        child_main(fds[1], path, fn, user);
    }
    close(fds[1]);

    /* Collect the child's reason until it closes the pipe or the time is up. */
    char msg[2048];
    size_t got = 0;
    int timed_out = 0;
    double deadline = now_seconds() + timeout_s;
    for (;;) {
        double left = deadline - now_seconds();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue; /* the deadline is checked at the top */
        ssize_t n = read(fds[0], msg + got, got < sizeof msg - 1 ? sizeof msg - 1 - got : 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: the child exited (or closed its end) */
        got += (size_t)n;
        if (got >= sizeof msg - 1) { /* a very long reason: keep the first part */
            char sink[256];
            while (read(fds[0], sink, sizeof sink) > 0) {}
            break;
        }
    }
    close(fds[0]);
    msg[got] = '\0';
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}

    if (timed_out)
        return wn_fail("%s: %s did not finish reading it within %.0f s (a damaged file can make "
                       "it loop forever); get or export the file again",
                       path, library, timeout_s);
    if (WIFSIGNALED(status))
        return wn_fail("%s: %s crashed reading it (%s): the file is damaged; get or export it "
                       "again",
                       path, library, strsignal(WTERMSIG(status)));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return WN_OK;
    if (got) return wn_fail("%s", msg);
    return wn_fail("%s: %s failed reading it (exit status %d): the file is damaged; get or "
                   "export it again",
                   path, library, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
