/* tools/cli/option_bounds.c — shared option-value checks (see option_bounds.h). */
#include "tools/cli/option_bounds.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(const char *cmd, const char *msg) {
    fprintf(stderr, "wastenet %s: %s (see 'wastenet %s --help')\n", cmd, msg, cmd);
    return 2;
}

int wn_opt_int(const char *cmd, const char *option, const char *arg, long lo, long hi,
               const char *what, long *out) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s %s: expected %s in %ld..%ld%s%s", option, arg,
                 lo >= 1 ? "a positive integer" : "an integer", lo, hi, what ? " " : "", what ? what : "");
        return refuse(cmd, msg);
    }
    *out = v;
    return 0;
}

int wn_opt_real(const char *cmd, const char *option, const char *arg, double lo, double hi,
                double *out) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    /* ERANGE: 1e-400 (underflow) and 1e400 are out of range too. */
    if (errno || end == arg || *end || !isfinite(v) || v < lo || v > hi) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s %s: expected a %s in [%g, %g]", option, arg,
                 lo > 0 ? "positive number" : "number", lo, hi);
        return refuse(cmd, msg);
    }
    *out = v;
    return 0;
}

int wn_opt_path(const char *cmd, const char *option, const char *arg) {
    if (arg && *arg) return 0;
    char msg[256];
    snprintf(msg, sizeof msg, "%s '': expected a path, got an empty string", option);
    return refuse(cmd, msg);
}

const char *wn_opt_bad_arg(int argc, char **argv, int optind, int optopt) {
    const char *prev = optind > 0 && optind - 1 < argc ? argv[optind - 1] : NULL;
    /* A long option (optopt 0, or its value above 255 for a missing value) is always a
     * whole argument. */
    if (optopt <= 0 || optopt > 255) return prev ? prev : "?";
    /* A short option inside a cluster that goes on: getopt has not moved optind yet. */
    if (prev && prev[0] == '-' && prev[1] != '-' && strchr(prev + 1, optopt)) return prev;
    if (optind < argc) return argv[optind];
    return prev ? prev : "?";
}

int wn_opt_unknown(const char *cmd, int argc, char **argv, int optind, int optopt) {
    const char *arg = wn_opt_bad_arg(argc, argv, optind, optopt);
    char msg[600];
    if (optopt > 0 && optopt < 256 && strcmp(arg, (char[]){'-', (char)optopt, 0}))
        snprintf(msg, sizeof msg, "unknown option '-%c' (in '%s')", optopt, arg);
    else
        snprintf(msg, sizeof msg, "unknown option '%s'", arg);
    return refuse(cmd, msg);
}
