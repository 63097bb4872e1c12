/* tools/cli/option_bounds.h — the checks every command applies to its option values, in
 * one place so that every command refuses the same way: exit status 2 and
 *
 *   wastenet CMD: --OPTION VALUE: expected LO..HI (...) (see 'wastenet CMD --help')
 *
 * with the value printed exactly as given, before anything is read or created. The
 * limits that are not a model's (those are checked in tools/train_options.c with the
 * chosen model) are here:
 *
 *   threads   1..1024 (WN_MAX_THREADS): one OpenMP team of decode threads; libgomp
 *             itself fails far above (40000: its own error, 100000: a crash), and
 *             more threads than cores only slow decoding down
 *   batch     1..65536 for train/run (WN_MAX_BATCH), 1..4096 for predict; whether
 *             a batch fits (GPU memory, or the RAM on the CPU) is checked when the
 *             executor is planned, before any image is decoded, with the batch that fits
 *   learning rates  1e-10..1e6, finite (a float: 1e-50 would be stored as 0, 1e39 as
 *             infinity; far beyond any useful Adam step at the top, which a test of
 *             divergence (tests/train/test_e2e.py, --lr 1e6) still needs)
 *   paths     non-empty (an empty --data or --runs would mean the current folder)
 */
#ifndef WN_TOOLS_OPTION_BOUNDS_H
#define WN_TOOLS_OPTION_BOUNDS_H

#define WN_MAX_THREADS 1024
#define WN_MAX_BATCH 65536
#define WN_MIN_LR 1e-10
#define WN_MAX_LR 1e6

/* An integer in lo..hi: 0 with *out set, or 2 after printing the message (`what`, if
 * not NULL, is said after the range, e.g. "decode threads"). */
int wn_opt_int(const char *cmd, const char *option, const char *arg, long lo, long hi,
               const char *what, long *out);

/* A finite number in [lo, hi]: 0, or 2 after printing the message. */
int wn_opt_real(const char *cmd, const char *option, const char *arg, double lo, double hi,
                double *out);

/* A non-empty path: 0, or 2 after printing the message. */
int wn_opt_path(const char *cmd, const char *option, const char *arg);

/* The argument getopt was looking at when it returned '?' or ':' — in a cluster of
 * short options ("-hx") that is the cluster itself, not its neighbour. */
const char *wn_opt_bad_arg(int argc, char **argv, int optind, int optopt);

/* "unknown option '-x' (in '-hx')" or "unknown option '--foo'": exit status 2. */
int wn_opt_unknown(const char *cmd, int argc, char **argv, int optind, int optopt);

#endif
