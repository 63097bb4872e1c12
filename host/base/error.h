/* host/base/error.h — how library code reports failure.
 *
 * Library functions never exit or print: they return a negative status and leave
 * a human-readable reason (naming the file, layer or call and what to do) in a
 * thread-local buffer. Only the CLI decides to print and exit (stb_image style).
 */
#ifndef WN_ERROR_H
#define WN_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define WN_OK 0
#define WN_ERR -1

/* Formats the reason into the thread-local buffer and returns WN_ERR, so that a
 * caller can write `return wn_fail("%s: truncated JPEG", path);`. */
int wn_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepends context ("loading weights: ") to the current reason; returns WN_ERR. */
int wn_fail_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The reason for the most recent failure on this thread ("" if none). */
const char *wn_last_error(void);

void wn_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
