/* engine/train/progress.c — Keras-like progress bar and epoch lines (see progress.h). */
#include "engine/train/progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30

double wn_clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void wn_progress_init(wn_progress *p, FILE *out, wn_progress_mode mode, int silent) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->silent = silent || !out;
    p->bar = mode == WN_PROGRESS_AUTO ? (out && isatty(fileno(out))) : mode == WN_PROGRESS_BAR;
    p->clock = wn_clock_seconds;
    p->t_phase = p->clock();
}

static int digits(int n) {
    int d = 1;
    while (n >= 10) n /= 10, d++;
    return d;
}

int wn_progress_format_bar(char *buf, size_t size, int current, int target) {
    char bar[BAR_WIDTH + 1];
    int prog_width = target > 0 ? (int)(BAR_WIDTH * ((double)current / target)) : 0;
    if (prog_width > BAR_WIDTH) prog_width = BAR_WIDTH;
    int i = 0;
    if (prog_width > 0) {
        for (; i < prog_width - 1; i++) bar[i] = '=';
        bar[i++] = current < target ? '>' : '=';
    }
    for (; i < BAR_WIDTH; i++) bar[i] = '.';
    bar[BAR_WIDTH] = '\0';
    return snprintf(buf, size, "%*d/%d [%s]", digits(target), current, target, bar);
}

int wn_progress_format_rate(char *buf, size_t size, double seconds, const char *unit) {
    if (seconds >= 1 || seconds == 0) return snprintf(buf, size, " %.0fs/%s", seconds, unit);
    if (seconds >= 1e-3) return snprintf(buf, size, " %.0fms/%s", seconds * 1e3, unit);
    return snprintf(buf, size, " %.0fus/%s", seconds * 1e6, unit);
}

int wn_progress_format_eta(char *buf, size_t size, double eta) {
    long s = (long)eta; /* Python's %d on a float truncates */
    if (eta > 3600) return snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, (s % 3600) / 60, s % 60);
    if (eta > 60) return snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    return snprintf(buf, size, "%lds", s);
}

int wn_progress_format_value(char *buf, size_t size, const char *name, double v) {
    if (fabs(v) > 1e-3) return snprintf(buf, size, " - %s: %.4f", name, v);
    return snprintf(buf, size, " - %s: %.4e", name, v);
}

/* Progbar's _estimate_step_duration: after the first step, the mean of the later
 * ones; before, the elapsed time per step. */
static double step_seconds(const wn_progress *p, double now) {
    if (p->current <= 0 || p->first_current <= 0) return 0;
    if (p->current > p->first_current)
        return (now - p->t_first_step) / (p->current - p->first_current);
    return (now - p->t_start) / (p->current - p->first_current + 1);
}

void wn_progress_phase_begin(wn_progress *p) { p->t_phase = p->clock(); }

void wn_progress_epoch_begin(wn_progress *p, int epoch, int epochs, int steps) {
    p->target = steps;
    p->current = 0;
    p->t_first_step = 0;
    p->first_current = 0;
    p->last_width = 0;
    p->t_start = p->clock();
    if (p->silent) return;
    fprintf(p->out, "Epoch %d/%d\n", epoch, epochs);
    fflush(p->out);
}

/* Writes `line` over the previous redraw, blanking any leftover characters. */
static void redraw(wn_progress *p, const char *line, int final) {
    int width = (int)strlen(line);
    fprintf(p->out, "\r%s", line);
    if (p->last_width > width) fprintf(p->out, "%*s", p->last_width - width, "");
    p->last_width = width;
    if (final) fputc('\n', p->out);
    fflush(p->out);
}

void wn_progress_step(wn_progress *p, int current, double loss, double accuracy) {
    double now = p->clock();
    p->current = current;
    if (!p->first_current) p->first_current = current, p->t_first_step = now;
    if (p->silent || !p->bar || current >= p->target) return; /* the last one: epoch_end */
    char line[512], part[128];
    size_t n = (size_t)wn_progress_format_bar(line, sizeof line, current, p->target);
    double per_step = step_seconds(p, now);
    char eta[32];
    wn_progress_format_eta(eta, sizeof eta, per_step * (p->target - current));
    n += (size_t)snprintf(line + n, sizeof line - n, " - ETA: %s -", eta);
    wn_progress_format_rate(part, sizeof part, per_step, "step");
    n += (size_t)snprintf(line + n, sizeof line - n, "%s", part); /* "- 3s/step" */
    wn_progress_format_value(part, sizeof part, "loss", loss);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s", part);
    wn_progress_format_value(part, sizeof part, "categorical_accuracy", accuracy);
    snprintf(line + n, sizeof line - n, "%s", part);
    redraw(p, line, 0);
}

int wn_progress_shows_steps(const wn_progress *p) { return p && p->bar && !p->silent; }

void wn_progress_interrupted(wn_progress *p) {
    if (!wn_progress_shows_steps(p)) return;
    fputc('\n', p->out);
    fflush(p->out);
}

/* The start of a pass's last line: the full bar (or the step count), its time, the
 * time per step. Returns its length. */
static size_t final_line(const wn_progress *p, char *line, size_t size, double now,
                         double seconds) {
    char part[128];
    size_t n;
    if (p->bar) {
        n = (size_t)wn_progress_format_bar(line, size, p->target, p->target);
        n += (size_t)snprintf(line + n, size - n, " - %.0fs", seconds);
        wn_progress_format_rate(part, sizeof part, step_seconds(p, now), "step");
        n += (size_t)snprintf(line + n, size - n, "%s", part);
    } else {
        n = (size_t)snprintf(line, size, "%*d/%d - %.0fs", digits(p->target), p->target,
                             p->target, seconds);
    }
    return n;
}

double wn_progress_epoch_end(wn_progress *p, double loss, double accuracy, double val_loss,
                             double val_accuracy) {
    double now = p->clock(), seconds = now - p->t_start;
    if (p->silent) return seconds;
    char line[640], part[128];
    size_t n;
    n = final_line(p, line, sizeof line, now, seconds);
    const char *names[4] = {"loss", "categorical_accuracy", "val_loss", "val_categorical_accuracy"};
    const double values[4] = {loss, accuracy, val_loss, val_accuracy};
    for (int i = 0; i < 4; i++) {
        wn_progress_format_value(part, sizeof part, names[i], values[i]);
        n += (size_t)snprintf(line + n, sizeof line - n, "%s", part);
    }
    if (!p->bar) {
        n += (size_t)snprintf(line + n, sizeof line - n, " -");
        wn_progress_format_rate(part, sizeof part, seconds, "epoch");
        n += (size_t)snprintf(line + n, sizeof line - n, "%s -", part);
        wn_progress_format_rate(part, sizeof part, p->target ? seconds / p->target : 0, "step");
        snprintf(line + n, sizeof line - n, "%s", part);
        fprintf(p->out, "%s\n", line);
        fflush(p->out);
    } else {
        redraw(p, line, 1);
    }
    return seconds;
}

double wn_progress_phase_end(wn_progress *p, const char *label, int epochs) {
    double seconds = p->clock() - p->t_phase;
    if (!p->silent) {
        fprintf(p->out, "%s: %d epoch%s in %.2f minutes (%.1f s)\n", label, epochs,
                epochs == 1 ? "" : "s", seconds / 60, seconds);
        fflush(p->out);
    }
    return seconds;
}

void wn_progress_pass_begin(wn_progress *p, int steps) {
    p->target = steps;
    p->current = 0;
    p->t_first_step = 0;
    p->first_current = 0;
    p->last_width = 0;
    p->t_start = p->clock();
}

double wn_progress_pass_end(wn_progress *p, double loss, double accuracy) {
    double now = p->clock(), seconds = now - p->t_start;
    if (p->silent) return seconds;
    char line[512], part[128];
    size_t n;
    n = final_line(p, line, sizeof line, now, seconds);
    wn_progress_format_value(part, sizeof part, "loss", loss);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s", part);
    wn_progress_format_value(part, sizeof part, "categorical_accuracy", accuracy);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s", part);
    if (p->bar) {
        redraw(p, line, 1);
    } else {
        wn_progress_format_rate(part, sizeof part, p->target ? seconds / p->target : 0, "step");
        fprintf(p->out, "%s -%s\n", line, part);
        fflush(p->out);
    }
    return seconds;
}
