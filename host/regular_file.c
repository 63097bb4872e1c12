/* host/regular_file.c — see regular_file.h. */
#include "host/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *wn_fopen_regular(const char *path, const char *mode, const char **why) {
    const char *unused;
    if (!why) why = &unused;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = S_ISFIFO(st.st_mode)  ? "not a regular file (a named pipe)"
               : S_ISDIR(st.st_mode) ? "not a regular file (a folder)"
               : S_ISSOCK(st.st_mode) ? "not a regular file (a socket)"
                                      : "not a regular file (a device)";
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, mode);
    if (!f) {
        *why = strerror(errno);
        close(fd);
    }
    return f;
}
