/* host/base/atomic_file.h — every file wastenet writes goes through here: it is written
 * to a temporary file beside the target, flushed (fflush + fsync), then renamed over
 * the target, so a crash, a full disk or Ctrl-C leaves either the old file or the
 * new one, never a half-written one.
 *
 * Only a regular file, or a name that does not exist yet, is ever replaced: a device
 * (/dev/null), a named pipe, a socket, a folder, or a symbolic link to one of them
 * is refused with a message naming the path, and so is any name under /dev or /proc
 * or a link into them (/dev/stdout, /proc/self/fd/1: a terminal, a pipe, or the
 * file the caller redirected into), here, so that no writer
 * can forget the check (root could otherwise turn /dev/null into a regular file). A
 * symbolic link to a regular file is followed: the file it points to is replaced and
 * the link kept. The target is checked (lstat, then stat) when the temporary is made
 * and again just before the rename; the temporary is created with O_EXCL beside the
 * (resolved) target, so it is on the same file system and never a planted link.
 *
 *   wn_atomic_file f;
 *   if (wn_atomic_open(&f, "runs/x/history.json") != WN_OK) return WN_ERR;
 *   fprintf(f.fp, ...);
 *   return wn_atomic_commit(&f);   // or wn_atomic_abort(&f) on an error path
 */
#ifndef WN_ATOMIC_FILE_H
#define WN_ATOMIC_FILE_H

#include <stdio.h>

typedef struct wn_atomic_file {
    FILE *fp;             /* write here */
    char path[4096];      /* the final name */
    char tmp_path[4096];  /* "<path>.tmp.<pid>" in the same folder (same file system) */
} wn_atomic_file;

/* Checks that `path` may be written (see above) and puts into out the name to
 * replace: path itself, or the regular file a symbolic link points to. Callers that
 * want to refuse a bad output before any work (wastenet export) call it first. */
int wn_atomic_resolve_target(const char *path, char *out, size_t out_size);

/* Opens the temporary file; fails naming the path when the target is not a regular
 * file, or the folder is not writable. */
int wn_atomic_open(wn_atomic_file *f, const char *path);

/* Checks for write errors, flushes, fsyncs, closes and renames over the target (and
 * fsyncs the folder). On failure the temporary file is removed and the old target,
 * if any, is left intact. */
int wn_atomic_commit(wn_atomic_file *f);

/* Closes and removes the temporary file; the target is untouched. */
void wn_atomic_abort(wn_atomic_file *f);

/* Path of a temporary name for libraries that write by name (HDF5): fills tmp and
 * returns WN_OK; wn_atomic_rename() then fsyncs it and renames it over `path`. */
int wn_atomic_temp_name(const char *path, char *tmp, size_t tmp_size);
int wn_atomic_rename(const char *tmp, const char *path);

#endif
