/* host/base/atomic_file.c — write-to-temporary, fsync, rename; only over a regular file. */
#include "host/base/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/base/error.h"

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a named pipe (FIFO)";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

static int under_dev_or_proc(const char *p) {
    return !strncmp(p, "/dev/", 5) || !strncmp(p, "/proc/", 6);
}

int wn_atomic_resolve_target(const char *path, char *out, size_t out_size) {
    if (!path || !*path) return wn_fail("an empty file name: give the path of the file to write");
    /* /dev/stdout, /dev/fd/N, /proc/self/fd/N name whatever the process has open (a
     * terminal, a pipe, or the file a caller redirected into): never replaced. */
    if (under_dev_or_proc(path))
        return wn_fail("%s: wastenet writes no file under /dev or /proc (a device or a "
                       "standard stream); choose a file name",
                       path);
    /* ... also when reached through a linked folder (ln -s /dev d; d/x). */
    char parent[4096], real_parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    if (realpath(dirname(parent), real_parent) &&
        (under_dev_or_proc(real_parent) || !strcmp(real_parent, "/dev") ||
         !strcmp(real_parent, "/proc")))
        return wn_fail("%s: its folder is %s: wastenet writes no file under /dev or /proc; "
                       "choose a file name elsewhere",
                       path, real_parent);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return wn_fail("cannot write %s: %s", path, strerror(errno));
        /* does not exist yet: written as a new regular file (or refused by open) */
    } else if (S_ISLNK(st.st_mode)) {
        struct stat to;
        char link[4096];
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            if (under_dev_or_proc(link))
                return wn_fail("%s is a symbolic link to %s: wastenet writes no file under "
                               "/dev or /proc (a device or a standard stream); choose a file "
                               "name",
                               path, link);
        }
        if (stat(path, &to) != 0)
            return wn_fail("%s is a symbolic link to nothing (%s): wastenet does not replace "
                           "links; remove it or choose another file name",
                           path, strerror(errno));
        if (!S_ISREG(to.st_mode))
            return wn_fail("%s is a symbolic link to %s: wastenet writes only regular files; "
                           "choose a file name",
                           path, kind_of(to.st_mode));
        /* a link to a regular file: the file it points to is replaced, the link kept */
        char real[PATH_MAX];
        if (!realpath(path, real)) return wn_fail("cannot write %s: %s", path, strerror(errno));
        if (strlen(real) >= out_size) return wn_fail("%s: path too long", real);
        strcpy(out, real);
        return WN_OK;
    } else if (!S_ISREG(st.st_mode)) {
        return wn_fail("%s is %s: wastenet writes only regular files (it never replaces a "
                       "device, pipe, socket or folder); choose a file name",
                       path, kind_of(st.st_mode));
    }
    if (strlen(path) >= out_size) return wn_fail("%s: path too long", path);
    strcpy(out, path);
    return WN_OK;
}

int wn_atomic_temp_name(const char *path, char *tmp, size_t tmp_size) {
    char target[4096];
    if (wn_atomic_resolve_target(path, target, sizeof target) != WN_OK) return WN_ERR;
    int len = snprintf(tmp, tmp_size, "%s.tmp.%ld", target, (long)getpid());
    if (len < 0 || (size_t)len >= tmp_size) return wn_fail("%s: path too long", path);
    return WN_OK;
}

int wn_atomic_open(wn_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (wn_atomic_resolve_target(path, f->path, sizeof f->path) != WN_OK) return WN_ERR;
    if (wn_atomic_temp_name(f->path, f->tmp_path, sizeof f->tmp_path) != WN_OK) return WN_ERR;
    /* The temporary is ours alone: a leftover of a dead process with our pid is
     * removed, and O_EXCL never writes through a link planted at that name. */
    struct stat st;
    if (lstat(f->tmp_path, &st) == 0 && !S_ISDIR(st.st_mode)) unlink(f->tmp_path);
    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    f->fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f->fp) {
        int err = errno;
        if (fd >= 0) close(fd), unlink(f->tmp_path);
        f->tmp_path[0] = '\0';
        return wn_fail("cannot write %s: %s (check that the folder exists and is writable)",
                       path, strerror(err));
    }
    return WN_OK;
}

/* fsync the folder holding `path`, so the rename itself survives a power cut. */
static void sync_parent_dir(const char *path) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* rename() over the target, checked once more just before: something other than a
 * regular file may have appeared there while the temporary was written. */
static int replace_target(const char *tmp, const char *path) {
    char again[4096];
    if (wn_atomic_resolve_target(path, again, sizeof again) != WN_OK) {
        unlink(tmp);
        return WN_ERR;
    }
    if (rename(tmp, again) != 0) {
        int err = errno;
        unlink(tmp);
        return wn_fail("cannot replace %s: %s", path, strerror(err));
    }
    sync_parent_dir(again);
    return WN_OK;
}

int wn_atomic_rename(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return wn_fail("cannot write %s: %s", path, strerror(err));
    }
    close(fd);
    return replace_target(tmp, path);
}

int wn_atomic_commit(wn_atomic_file *f) {
    if (!f->fp) return wn_fail("%s: file was not open", f->path);
    int failed = ferror(f->fp) || fflush(f->fp) != 0;
    int err = errno;
    if (!failed && fsync(fileno(f->fp)) != 0) failed = 1, err = errno;
    if (fclose(f->fp) != 0 && !failed) failed = 1, err = errno;
    f->fp = NULL;
    if (failed) {
        unlink(f->tmp_path);
        return wn_fail("cannot write %s: %s (is the disk full?); the previous file, if any, "
                       "is unchanged",
                       f->path, strerror(err ? err : EIO));
    }
    return replace_target(f->tmp_path, f->path);
}

void wn_atomic_abort(wn_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
}
