/* tests/train/test_train_options.c — the training options' Adam coefficients:
 * Keras's defaults, the same values as WN_ADAM_KERAS, and bad values refused by
 * wn_train_phase with a reason naming the phase and the coefficient, before it
 * touches the executor, model or loaders (NULL here). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/train/train_loop.h"
#include "host/base/error.h"

static int failures = 0;
#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, " [%s]\n", wn_last_error());                                 \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

static void test_defaults(void) {
    wn_train_options o;
    wn_train_options_default(&o);
    /* tf_keras.optimizers.Adam: beta_1=0.9, beta_2=0.999, epsilon=1e-07 */
    CHECK(o.beta_1 == 0.9f && o.beta_2 == 0.999f && o.epsilon == 1e-7f,
          "defaults %g %g %g", o.beta_1, o.beta_2, o.epsilon);
    wn_adam_params k = WN_ADAM_KERAS(o.lr);
    CHECK(k.beta1 == o.beta_1 && k.beta2 == o.beta_2 && k.epsilon == o.epsilon,
          "defaults differ from WN_ADAM_KERAS");
}

/* One bad option: refused with a reason that names the phase and `what`. */
static void refused(const char *what, float beta_1, float beta_2, float epsilon) {
    wn_train_options o;
    wn_train_options_default(&o);
    o.phase = "finetune";
    o.beta_1 = beta_1, o.beta_2 = beta_2, o.epsilon = epsilon;
    wn_train_result res;
    wn_clear_error();
    int rc = wn_train_phase(NULL, NULL, NULL, NULL, &o, &res);
    const char *why = wn_last_error();
    CHECK(rc == WN_ERR && strstr(why, "finetune") && strstr(why, what),
          "beta_1 %g, beta_2 %g, epsilon %g: rc %d", beta_1, beta_2, epsilon, rc);
}

static void test_refused(void) {
    refused("beta_1", 1.0f, 0.999f, 1e-7f);  /* 1 - beta_1^t = 0: division by zero */
    refused("beta_1", -0.1f, 0.999f, 1e-7f);
    refused("beta_1", NAN, 0.999f, 1e-7f);
    refused("beta_2", 0.9f, 1.0f, 1e-7f);
    refused("beta_2", 0.9f, 1.5f, 1e-7f);
    refused("epsilon", 0.9f, 0.999f, 0.0f);
    refused("epsilon", 0.9f, 0.999f, -1e-7f);
    refused("epsilon", 0.9f, 0.999f, INFINITY);
}

int main(void) {
    test_defaults();
    test_refused();
    if (failures) {
        fprintf(stderr, "test_train_options: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_train_options: all checks passed\n");
    return 0;
}
