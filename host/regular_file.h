/* host/regular_file.h — opening a file wastenet reads (checkpoints, run-folder text
 * files, weight and class lists, images) only when it is a regular file. fopen() of a
 * named pipe blocks until something writes to it, and a device or folder is no data:
 * the file is opened with O_NONBLOCK, checked with fstat, and only then read. */
#ifndef WN_REGULAR_FILE_H
#define WN_REGULAR_FILE_H

#include <stdio.h>

/* fopen(path, mode) for reading a regular file (links followed). NULL on failure with
 * *why set to the reason ("No such file or directory", "not a regular file (a named
 * pipe)") and errno kept (EINVAL for a file that is not regular). */
FILE *wn_fopen_regular(const char *path, const char *mode, const char **why);

#endif
