/* host/isolate.h — run a reader of an untrusted file in a child process first.
 *
 * Some libraries we depend on crash or never return on damaged input: Debian's HDF5
 * 1.10.8 has heap overflows, wild reads and endless loops on corrupt weight files
 * (found by tests/fuzz, kept in tests/fuzz/upstream/). wn_isolate_run() forks, runs
 * `fn` in the child and reports how it ended, so such a file costs a child process
 * and the user gets a message naming the file instead of a segfault or a hang; the
 * caller then reads the file for real, in process, knowing the same reads finished.
 *
 * Set WN_NO_ISOLATE=1 to run nothing in a child (the fuzz targets do, so that the
 * sanitizers see the reader itself). If fork() fails (e.g. strict overcommit), the
 * check is skipped and WN_OK returned: the caller's own read still reports errors.
 */
#ifndef WN_ISOLATE_H
#define WN_ISOLATE_H

/* Runs fn(path, user) in a child process with a time limit. Returns WN_OK when it
 * returned WN_OK; otherwise WN_ERR with the child's own reason (wn_last_error()), or a
 * reason naming `path` and saying that `library` crashed (which signal) or did not
 * finish within timeout_s seconds (the child is then killed). */
int wn_isolate_run(const char *path, int (*fn)(const char *path, void *user), void *user,
                   double timeout_s, const char *library);

#endif
