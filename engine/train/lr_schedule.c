/* engine/train/lr_schedule.c — Keras's CosineDecay and staircase ExponentialDecay (see
 * lr_schedule.h). */
#include "engine/train/lr_schedule.h"

#include <math.h>
#include <string.h>

#include "host/base/error.h"

int wn_lr_kind_parse(const char *s, wn_lr_kind *out) {
    if (!strcmp(s, "constant")) return *out = WN_LR_CONSTANT, WN_OK;
    if (!strcmp(s, "cosine")) return *out = WN_LR_COSINE, WN_OK;
    if (!strcmp(s, "step")) return *out = WN_LR_STEP, WN_OK;
    return wn_fail("--lr-schedule %s: expected constant, cosine or step", s);
}

const char *wn_lr_kind_name(wn_lr_kind k) {
    return k == WN_LR_COSINE ? "cosine" : k == WN_LR_STEP ? "step" : "constant";
}

float wn_lr_at(const wn_lr_schedule *s, long step) {
    if (step < 0) step = 0;
    switch (s->kind) {
    case WN_LR_COSINE: {
        /* CosineDecay._decay_function, float32 throughout. */
        float d = (float)(s->decay_steps > 0 ? s->decay_steps : 1);
        float t = (float)step;
        if (t > d) t = d;
        float fraction = t / d;
        float cosine = 0.5f * (1.0f + cosf((float)M_PI * fraction));
        return s->initial * ((1.0f - s->alpha) * cosine + s->alpha);
    }
    case WN_LR_STEP: {
        /* ExponentialDecay(staircase=True): floor(step / every) in float32, then pow. */
        float p = floorf((float)step / (float)(s->every > 0 ? s->every : 1));
        return s->initial * powf(s->factor, p);
    }
    default: return s->initial;
    }
}
