/* tests/train/test_metrics.c — the per-class report on hand-made confusion matrices.
 *
 * Expected values are either worked out by hand in the comments (3-class matrix) or
 * the figures the notebook itself printed from its own Python (the 6-class runs). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/train/metrics.h"
#include "tests/common/check.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static void fill(wn_confusion *cm, int t, int p, int n) {
    for (int i = 0; i < n; i++) wn_confusion_add(cm, t, p);
}

/* rows = truth: t0 [5 1 0], t1 [2 3 1], t2 [0 0 4]. */
static void test_three_classes(void) {
    wn_confusion cm;
    wn_confusion_init(&cm, 3);
    fill(&cm, 0, 0, 5), fill(&cm, 0, 1, 1);
    fill(&cm, 1, 0, 2), fill(&cm, 1, 1, 3), fill(&cm, 1, 2, 1);
    fill(&cm, 2, 2, 4);
    wn_class_report r;
    CHECK(wn_class_report_compute(&cm, &r) == 0, "compute");
    CHECK(r.samples == 16 && r.correct == 12 && NEAR(r.accuracy, 0.75), "overall 12/16");
    CHECK(r.cls[0].total == 6 && r.cls[0].predicted == 7 && r.cls[2].predicted == 5,
          "row and column sums");
    CHECK(NEAR(r.cls[0].precision, 5.0 / 7) && NEAR(r.cls[1].precision, 0.75) &&
              NEAR(r.cls[2].precision, 0.8),
          "precision 5/7, 3/4, 4/5");
    CHECK(NEAR(r.cls[0].recall, 5.0 / 6) && NEAR(r.cls[1].recall, 0.5) &&
              NEAR(r.cls[2].recall, 1.0),
          "recall 5/6, 1/2, 1");
    CHECK(NEAR(r.cls[0].f1, 10.0 / 13) && NEAR(r.cls[1].f1, 0.6) && NEAR(r.cls[2].f1, 8.0 / 9),
          "F1 10/13, 3/5, 8/9 (got %g %g %g)", r.cls[0].f1, r.cls[1].f1, r.cls[2].f1);
    CHECK(r.n_present == 3 && r.weakest[0] == 1 && r.weakest[1] == 0 && r.weakest[2] == 2,
          "weakest order 1, 0, 2");
    CHECK(NEAR(r.mean_without[0], 7.0 / 9) && NEAR(r.mean_without[1], 11.0 / 12) &&
              NEAR(r.mean_without[2], 1.0),
          "means 7/9, 11/12, 1");
    CHECK(NEAR(r.macro_f1, (10.0 / 13 + 0.6 + 8.0 / 9) / 3), "macro F1");
    wn_class_report_free(&r);
    /* A class never seen and never predicted: left out of the means. */
    wn_confusion_reset(&cm);
    wn_confusion cm4;
    wn_confusion_init(&cm4, 4);
    fill(&cm4, 0, 0, 3), fill(&cm4, 1, 0, 1), fill(&cm4, 1, 1, 1), fill(&cm4, 3, 3, 2);
    wn_class_report_compute(&cm4, &r);
    CHECK(r.n_present == 3 && NEAR(r.mean_without[0], (1 + 0.5 + 1) / 3.0) &&
              r.cls[2].f1 == 0 && r.cls[2].precision == 0,
          "absent class excluded");
    CHECK(r.weakest[0] == 1 && r.weakest[1] == 0 && r.weakest[2] == 3, "ties keep class order");
    wn_class_report_free(&r);
    CHECK(wn_confusion_add(&cm, 3, 0) != 0 && wn_confusion_add(&cm, 0, -1) != 0,
          "out-of-range classes refused");
    wn_confusion_free(&cm);
    wn_confusion_free(&cm4);
}

/* The notebook's two analyses; misses are put in the next class's column (where they
 * go does not change the per-class ratios). */
static void notebook_case(const int *correct, const int *total, const double *expect,
                          const int *expect_weakest, int n_expect) {
    wn_confusion cm;
    wn_confusion_init(&cm, 6);
    for (int c = 0; c < 6; c++) fill(&cm, c, c, correct[c]), fill(&cm, c, (c + 1) % 6, total[c] - correct[c]);
    wn_class_report r;
    wn_class_report_compute(&cm, &r);
    for (int m = 0; m < n_expect; m++) {
        /* The notebook printed {moy*100:.2f}. */
        char got[32], want[32];
        snprintf(got, sizeof got, "%.2f", r.mean_without[m] * 100);
        snprintf(want, sizeof want, "%.2f", expect[m]);
        CHECK(!strcmp(got, want), "mean without %d weakest: %s%%, notebook %s%%", m, got, want);
        if (m < n_expect - 1)
            CHECK(r.weakest[m] == expect_weakest[m], "weakest #%d is class %d (got %d)", m,
                  expect_weakest[m], r.weakest[m]);
    }
    wn_class_report_free(&r);
    wn_confusion_free(&cm);
}

static void test_notebook(void) {
    /* cardboard glass metal paper plastic trash, after fine-tuning: 86.20, without
     * trash 89.00, without trash and paper 91.25. */
    const int c1[] = {95, 90, 90, 80, 90, 65}, t1[] = {100, 100, 100, 100, 100, 90};
    const double e1[] = {86.20, 89.00, 91.25};
    const int w1[] = {5, 3};
    notebook_case(c1, t1, e1, w1, 3);
    /* After transfer learning only: 78.61, without metal 83.33, without trash and
     * metal 87.50. */
    const int c2[] = {380, 380, 220, 300, 340, 240}, t2[] = {400, 400, 400, 400, 400, 360};
    const double e2[] = {78.61, 83.33, 87.50};
    const int w2[] = {2, 5};
    notebook_case(c2, t2, e2, w2, 3);
}

static void test_argmax(void) {
    const float p[] = {0.1f, 0.4f, 0.4f, 0.1f};
    CHECK(wn_argmax(p, 4) == 1, "first maximum wins");
    const float q[] = {0.9f};
    CHECK(wn_argmax(q, 1) == 0, "one class");
}

int main(void) {
    test_three_classes();
    test_notebook();
    test_argmax();
    if (test_failures) {
        fprintf(stderr, "test_metrics: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_metrics: all checks passed\n");
    return 0;
}
