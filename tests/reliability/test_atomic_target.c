/* tests/reliability/test_atomic_target.c — issue 18, class 1: host/base/atomic_file.h
 * writes only over a regular file or a new name. A named pipe, a folder, a socket, a
 * character device (a private copy of /dev/null made with mknod when run as root,
 * then /dev/null itself, only once the copy was refused), a symbolic link to one of
 * them or to nothing are refused with a message naming the path, and nothing is
 * created or changed; a link to a regular file is followed (the file replaced, the
 * link kept); a temporary name planted as a link is never written through. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "tests/host/check.h"

static char dir[256];

static int write_text(const char *path, const char *text) {
    wn_atomic_file f;
    if (wn_atomic_open(&f, path) != WN_OK) return WN_ERR;
    fputs(text, f.fp);
    return wn_atomic_commit(&f);
}

static int count_entries(void) {
    char cmd[400];
    PATH_PRINTF(cmd, "ls -A %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static mode_t kind(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 ? (st.st_mode & S_IFMT) : 0;
}

/* Refused with a message naming `path` and saying `what`; the entry keeps its type;
 * no file is added beside it. */
static void expect_refused(const char *path, const char *what) {
    int before = count_entries();
    mode_t type = kind(path);
    int rc = write_text(path, "x");
    CHECK(rc != WN_OK, "%s was written over", path);
    if (rc != WN_OK) {
        CHECK(strstr(wn_last_error(), path) != NULL, "message does not name %s: %s", path,
              wn_last_error());
        CHECK(strstr(wn_last_error(), what) != NULL, "message for %s lacks '%s': %s", path,
              what, wn_last_error());
    }
    CHECK(kind(path) == type, "%s changed type", path);
    CHECK(count_entries() == before, "a file was left beside %s", path);
    char tmp[512];
    CHECK(wn_atomic_temp_name(path, tmp, sizeof tmp) != WN_OK,
          "wn_atomic_temp_name accepted %s", path);
}

int main(void) {
    PATH_PRINTF(dir, "/tmp/wn_atomic_target.XXXXXX");
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    char p[512], q[512];

    PATH_PRINTF(p, "%s/fifo", dir);
    CHECK(mkfifo(p, 0666) == 0, "mkfifo: %s", strerror(errno));
    expect_refused(p, "named pipe");

    PATH_PRINTF(p, "%s/folder", dir);
    CHECK(mkdir(p, 0777) == 0, "mkdir");
    expect_refused(p, "folder");

    PATH_PRINTF(p, "%s/sock", dir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(p) >= sizeof sa.sun_path) return fprintf(stderr, "socket path too long\n"), 1;
    memcpy(sa.sun_path, p, strlen(p) + 1);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
    expect_refused(p, "socket");
    if (s >= 0) close(s);

    PATH_PRINTF(p, "%s/link_to_fifo", dir);
    PATH_PRINTF(q, "%s/fifo", dir);
    CHECK(symlink(q, p) == 0, "symlink");
    expect_refused(p, "named pipe");
    PATH_PRINTF(p, "%s/link_to_folder", dir);
    PATH_PRINTF(q, "%s/folder", dir);
    CHECK(symlink(q, p) == 0, "symlink");
    expect_refused(p, "folder");
    PATH_PRINTF(p, "%s/dangling", dir);
    CHECK(symlink("/nonexistent/wn_target", p) == 0, "symlink");
    expect_refused(p, "link to nothing");
    CHECK(write_text("", "x") != WN_OK && strstr(wn_last_error(), "empty"), "empty name accepted");

    /* /dev/stdout is a link to /proc/self/fd/1: a pipe or terminal, never replaced. */
    CHECK(write_text("/dev/stdout", "x") != WN_OK, "/dev/stdout accepted");
    CHECK(write_text("/proc/self/fd/1", "x") != WN_OK, "/proc/self/fd/1 accepted");
    PATH_PRINTF(p, "%s/link_to_stdout", dir);
    CHECK(symlink("/dev/stdout", p) == 0, "symlink");
    expect_refused(p, "/dev/stdout");

    /* A character device. As root a regression would replace it, so the private copy
     * comes first and /dev/null is tried only when the copy was refused and kept. */
    int dev_ok = 1;
    if (geteuid() == 0) {
        PATH_PRINTF(p, "%s/null_copy", dir);
        if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
            int fails = check_failures;
            expect_refused(p, "character device");
            dev_ok = check_failures == fails && kind(p) == S_IFCHR;
        } else {
            dev_ok = 0; /* no mknod (a container without CAP_MKNOD): skip /dev/null */
            printf("mknod not permitted: /dev/null not tried as root\n");
        }
    }
    if (dev_ok) {
        CHECK(write_text("/dev/null", "x") != WN_OK, "/dev/null accepted");
        CHECK(strstr(wn_last_error(), "/dev/null") && strstr(wn_last_error(), "under /dev"),
              "message: %s", wn_last_error());
        CHECK(kind("/dev/null") == S_IFCHR, "/dev/null is no longer a character device");
    }

    /* A new name in a folder linked to /dev: refused (as root it would be created). */
    PATH_PRINTF(p, "%s/devlink", dir);
    CHECK(symlink("/dev", p) == 0, "symlink");
    PATH_PRINTF(q, "%s/devlink/wn_atomic_target_new", dir);
    CHECK(write_text(q, "x") != WN_OK && strstr(wn_last_error(), "under /dev"),
          "a new file through a link to /dev: %s", wn_last_error());
    CHECK(access("/dev/wn_atomic_target_new", F_OK) != 0, "a file was made in /dev");

    /* A new name and a regular file: written. */
    PATH_PRINTF(p, "%s/new.txt", dir);
    CHECK(write_text(p, "one") == WN_OK, "new file: %s", wn_last_error());
    CHECK(write_text(p, "two") == WN_OK, "regular file: %s", wn_last_error());
    /* A link to a regular file: the file is replaced, the link stays a link. */
    PATH_PRINTF(q, "%s/link_to_new", dir);
    CHECK(symlink("new.txt", q) == 0, "symlink");
    CHECK(write_text(q, "three") == WN_OK, "link to a file: %s", wn_last_error());
    CHECK(kind(q) == S_IFLNK, "the link was replaced by a file");
    FILE *f = fopen(p, "r");
    char buf[16] = "";
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
        fclose(f);
    }
    CHECK(!strcmp(buf, "three"), "the linked file holds '%s'", buf);

    /* A temporary name planted as a link to a victim: the link is removed, the victim
     * untouched (O_EXCL). */
    char victim[512], planted[600];
    PATH_PRINTF(victim, "%s/victim", dir);
    CHECK(write_text(victim, "keep") == WN_OK, "victim");
    PATH_PRINTF(planted, "%s/out.txt.tmp.%ld", dir, (long)getpid());
    CHECK(symlink(victim, planted) == 0, "symlink");
    PATH_PRINTF(p, "%s/out.txt", dir);
    CHECK(write_text(p, "new") == WN_OK, "out.txt: %s", wn_last_error());
    f = fopen(victim, "r");
    buf[0] = '\0';
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
        fclose(f);
    }
    CHECK(!strcmp(buf, "keep"), "written through a planted link: victim holds '%s'", buf);

    char cmd[300];
    PATH_PRINTF(cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE("test_atomic_target");
}
