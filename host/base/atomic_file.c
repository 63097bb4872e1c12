/* host/base/atomic_file.c — write-to-temporary, fsync, rename. */
#include "host/base/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"

int wn_atomic_temp_name(const char *path, char *tmp, size_t tmp_size) {
    int len = snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= tmp_size) return wn_fail("%s: path too long", path);
    return WN_OK;
}

int wn_atomic_open(wn_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return wn_fail("%s: path too long", path);
    strcpy(f->path, path);
    if (wn_atomic_temp_name(path, f->tmp_path, sizeof f->tmp_path) != WN_OK) return WN_ERR;
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp)
        return wn_fail("cannot write %s: %s (check that the folder exists and is writable)",
                       path, strerror(errno));
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

int wn_atomic_rename(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return wn_fail("cannot write %s: %s", path, strerror(err));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return wn_fail("cannot replace %s: %s", path, strerror(err));
    }
    sync_parent_dir(path);
    return WN_OK;
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
    if (rename(f->tmp_path, f->path) != 0) {
        err = errno;
        unlink(f->tmp_path);
        return wn_fail("cannot replace %s: %s", f->path, strerror(err));
    }
    sync_parent_dir(f->path);
    return WN_OK;
}

void wn_atomic_abort(wn_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
}
