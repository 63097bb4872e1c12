/* tests/train/test_progress.c — the progress bar's text, with a scripted clock.
 * Expected strings follow tf_keras's Progbar code (generic_utils.py) by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/progress.h"
#include "tests/common/check.h"

#define CHECK_STR(got, want)                                                             \
    do {                                                                                 \
        test_checks++;                                                                   \
        if (strcmp((got), (want))) {                                                     \
            test_check_failed(__FILE__, __LINE__, "\n  got  '%s'\n  want '%s'", (got),  \
                              (want));                                                   \
        }                                                                                \
    } while (0)

static double fake_now;
static double fake_clock(void) { return fake_now; }

static void test_formats(void) {
    char b[256];
    wn_progress_format_bar(b, sizeof b, 3, 15);
    /* prog_width = int(30*3/15) = 6: 5 '=' then '>' then 24 '.' */
    CHECK_STR(b, " 3/15 [=====>........................]");
    wn_progress_format_bar(b, sizeof b, 15, 15);
    CHECK_STR(b, "15/15 [==============================]");
    wn_progress_format_bar(b, sizeof b, 0, 7);
    CHECK_STR(b, "0/7 [..............................]");
    wn_progress_format_bar(b, sizeof b, 1, 100);
    /* int(30*0.01) = 0: no arrow yet */
    CHECK_STR(b, "  1/100 [..............................]");
    wn_progress_format_rate(b, sizeof b, 39.4, "step");
    CHECK_STR(b, " 39s/step");
    wn_progress_format_rate(b, sizeof b, 0.1204, "step");
    CHECK_STR(b, " 120ms/step");
    wn_progress_format_rate(b, sizeof b, 0.0000051, "step");
    CHECK_STR(b, " 5us/step");
    wn_progress_format_eta(b, sizeof b, 25.9);
    CHECK_STR(b, "25s");
    wn_progress_format_eta(b, sizeof b, 65.5);
    CHECK_STR(b, "1:05");
    wn_progress_format_eta(b, sizeof b, 3723.0);
    CHECK_STR(b, "1:02:03");
    wn_progress_format_value(b, sizeof b, "loss", 0.68224);
    CHECK_STR(b, " - loss: 0.6822");
    wn_progress_format_value(b, sizeof b, "loss", 0.0005);
    CHECK_STR(b, " - loss: 5.0000e-04");
}

static char *slurp(FILE *f) {
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    return s;
}

static void test_lines_mode(void) {
    FILE *f = tmpfile();
    wn_progress p;
    wn_progress_init(&p, f, WN_PROGRESS_LINES, 0);
    p.clock = fake_clock;
    fake_now = 100;
    wn_progress_phase_begin(&p);
    wn_progress_epoch_begin(&p, 1, 20, 15);
    for (int s = 1; s <= 15; s++) fake_now += 2.6, wn_progress_step(&p, s, 0.9, 0.6);
    fake_now += 1;
    double sec = wn_progress_epoch_end(&p, 0.68224, 0.76573, 0.41021, 0.86184);
    fake_now = 100 + 150;
    wn_progress_phase_end(&p, "transfer learning", 1);
    char *s = slurp(f);
    /* 40s epoch: 39 s of steps + 1 s of validation; 40/15 = 2.67 s/step -> "3s/step" */
    CHECK_STR(s, "Epoch 1/20\n"
                 "15/15 - 40s - loss: 0.6822 - categorical_accuracy: 0.7657 - val_loss: 0.4102"
                 " - val_categorical_accuracy: 0.8618 - 40s/epoch - 3s/step\n"
                 "transfer learning: 1 epoch in 2.50 minutes (150.0 s)\n");
    if (sec < 39.99 || sec > 40.01) fprintf(stderr, "FAIL epoch seconds %g\n", sec), test_failures++;
    free(s);
    fclose(f);
}

static void test_bar_mode(void) {
    FILE *f = tmpfile();
    wn_progress p;
    wn_progress_init(&p, f, WN_PROGRESS_BAR, 0);
    p.clock = fake_clock;
    fake_now = 0;
    wn_progress_epoch_begin(&p, 2, 5, 3);
    fake_now = 5;  /* first step: 5 s (warm-up) */
    wn_progress_step(&p, 1, 1.5, 0.25);
    fake_now = 7;  /* second: 2 s, so 2 s/step from here on */
    wn_progress_step(&p, 2, 1.25, 0.5);
    fake_now = 9;
    wn_progress_step(&p, 3, 1.0, 0.625);
    fake_now = 10;
    wn_progress_epoch_end(&p, 1.0, 0.625, 0.5, 0.75);
    char *s = slurp(f);
    CHECK_STR(s, "Epoch 2/5\n"
                 "\r1/3 [=========>....................] - ETA: 10s - 5s/step - loss: 1.5000"
                 " - categorical_accuracy: 0.2500"
                 "\r2/3 [===================>..........] - ETA: 2s - 2s/step - loss: 1.2500"
                 " - categorical_accuracy: 0.5000 "
                 "\r3/3 [==============================] - 10s 2s/step - loss: 1.0000"
                 " - categorical_accuracy: 0.6250 - val_loss: 0.5000"
                 " - val_categorical_accuracy: 0.7500\n");
    free(s);
    fclose(f);
    /* Silent prints nothing. */
    f = tmpfile();
    wn_progress_init(&p, f, WN_PROGRESS_BAR, 1);
    wn_progress_epoch_begin(&p, 1, 1, 1);
    wn_progress_step(&p, 1, 1, 1);
    wn_progress_epoch_end(&p, 1, 1, 1, 1);
    wn_progress_phase_end(&p, "x", 1);
    if (ftell(f) != 0) fprintf(stderr, "FAIL silent mode printed\n"), test_failures++;
    fclose(f);
}

/* An evaluation pass (wastenet evaluate): Keras's evaluate bar, no "Epoch" line. */
static void test_pass_mode(void) {
    FILE *f = tmpfile();
    wn_progress p;
    wn_progress_init(&p, f, WN_PROGRESS_BAR, 0);
    p.clock = fake_clock;
    fake_now = 0;
    wn_progress_pass_begin(&p, 2);
    fake_now = 0.5, wn_progress_step(&p, 1, 0.5, 1.0);
    fake_now = 0.75, wn_progress_step(&p, 2, 0.25, 0.5);
    wn_progress_pass_end(&p, 0.25, 0.5);
    char *s = slurp(f);
    CHECK_STR(s, "\r1/2 [==============>...............] - ETA: 0s - 500ms/step - loss: 0.5000"
                 " - categorical_accuracy: 1.0000"
                 "\r2/2 [==============================] - 1s 250ms/step - loss: 0.2500"
                 " - categorical_accuracy: 0.5000       \n"); /* blanks over the longer line */
    free(s);
    fclose(f);
    f = tmpfile();
    wn_progress_init(&p, f, WN_PROGRESS_LINES, 0);
    p.clock = fake_clock;
    fake_now = 0;
    wn_progress_pass_begin(&p, 4);
    for (int i = 1; i <= 4; i++) fake_now += 3, wn_progress_step(&p, i, 1, 1);
    wn_progress_pass_end(&p, 0.125, 0.75);
    s = slurp(f);
    CHECK_STR(s, "4/4 - 12s - loss: 0.1250 - categorical_accuracy: 0.7500 - 3s/step\n");
    free(s);
    fclose(f);
}

/* What the training loop asks instead of reading the fields: whether per-step
 * figures are shown, and how an interrupted epoch's line ends. */
static void test_loop_calls(void) {
    const struct { wn_progress_mode mode; int silent, shows; const char *after; } cases[] = {
        {WN_PROGRESS_BAR, 0, 1, "\n"},   /* the bar's open line is ended */
        {WN_PROGRESS_LINES, 0, 0, ""},   /* lines mode: nothing open */
        {WN_PROGRESS_BAR, 1, 0, ""},     /* silent: nothing at all */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = tmpfile();
        wn_progress p;
        wn_progress_init(&p, f, cases[i].mode, cases[i].silent);
        p.clock = fake_clock;
        fake_now = 0;
        wn_progress_epoch_begin(&p, 1, 1, 4);
        fake_now = 1;
        wn_progress_step(&p, 1, 1.5, 0.25);
        if (wn_progress_shows_steps(&p) != cases[i].shows)
            fprintf(stderr, "FAIL case %zu: shows_steps %d\n", i, !cases[i].shows), test_failures++;
        long before = ftell(f);
        wn_progress_interrupted(&p);
        char *s = slurp(f);
        CHECK_STR(s + before, cases[i].after);
        free(s);
        fclose(f);
    }
    if (wn_progress_shows_steps(NULL)) fprintf(stderr, "FAIL NULL shows steps\n"), test_failures++;
    wn_progress_interrupted(NULL); /* quiet: nothing to end */
}

int main(void) {
    test_formats();
    test_pass_mode();
    test_lines_mode();
    test_bar_mode();
    test_loop_calls();
    if (test_failures) {
        fprintf(stderr, "test_progress: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_progress: all checks passed\n");
    return 0;
}
