/* host/base/error.c — the thread-local failure reason behind wn_fail(). */
#include "host/base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char wn_error_text[2048];

int wn_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wn_error_text, sizeof wn_error_text, fmt, ap);
    va_end(ap);
    return WN_ERR;
}

int wn_fail_context(const char *fmt, ...) {
    char prefix[512], old[sizeof wn_error_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, wn_error_text, sizeof old);
    /* Truncation of an over-long reason is acceptable: keep the prefix. */
    size_t len = strlen(prefix);
    if (len >= sizeof wn_error_text) len = sizeof wn_error_text - 1;
    memcpy(wn_error_text, prefix, len);
    size_t rest = sizeof wn_error_text - 1 - len;
    size_t old_len = strnlen(old, rest);
    memcpy(wn_error_text + len, old, old_len);
    wn_error_text[len + old_len] = '\0';
    return WN_ERR;
}

const char *wn_last_error(void) { return wn_error_text; }

void wn_clear_error(void) { wn_error_text[0] = '\0'; }
