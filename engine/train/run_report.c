/* engine/train/run_report.c — history, test, per-class and prediction files of a run
 * (see run_report.h). */
#include "engine/train/run_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "host/regular_file.h"

/* ------------------------------------------------------------------ history */

int wn_history_append(wn_history *h, const wn_epoch_record *r) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 32;
        wn_epoch_record *rows = realloc(h->rows, (size_t)cap * sizeof *rows);
        if (!rows) return wn_fail("history: out of memory");
        h->rows = rows, h->cap = cap;
    }
    h->rows[h->n++] = *r;
    return WN_OK;
}

void wn_history_truncate(wn_history *h, const char *phase, int from_epoch) {
    int kept = 0;
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->rows[i].phase, phase) || h->rows[i].epoch < from_epoch)
            h->rows[kept++] = h->rows[i];
    h->n = kept;
}

void wn_history_free(wn_history *h) {
    free(h->rows);
    memset(h, 0, sizeof *h);
}

static const char wn_history_header[] =
    "phase,epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds";

int wn_history_read_csv(wn_history *h, const char *path) {
    const char *why;
    FILE *f = wn_fopen_regular(path, "r", &why);
    if (!f) {
        if (errno == ENOENT) return WN_OK;
        return wn_fail("cannot read %s: %s", path, why);
    }
    char line[1024];
    int lineno = 0, rc = WN_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, wn_history_header, sizeof wn_history_header - 1)) {
                rc = wn_fail("%s: not a wastenet history (unexpected header)", path);
                break;
            }
            continue;
        }
        if (line[0] == '\n' || line[0] == '\0') continue;
        wn_epoch_record r;
        memset(&r, 0, sizeof r);
        /* strtod reads "nan" and "inf", which the writer uses for non-finite values. */
        char *comma = strchr(line, ',');
        if (!comma || comma - line >= WN_PHASE_NAME_MAX) {
            rc = wn_fail("%s:%d: malformed history row", path, lineno);
            break;
        }
        memcpy(r.phase, line, (size_t)(comma - line));
        char *p = comma + 1, *end;
        r.epoch = (int)strtol(p, &end, 10);
        double *fields[6] = {&r.loss, &r.accuracy, &r.val_loss, &r.val_accuracy, &r.lr,
                             &r.seconds};
        int ok = end != p;
        for (int i = 0; i < 6 && ok; i++) {
            p = end;
            if (*p != ',') { ok = 0; break; }
            *fields[i] = strtod(p + 1, &end);
            ok = end != p + 1;
        }
        if (!ok) {
            rc = wn_fail("%s:%d: malformed history row", path, lineno);
            break;
        }
        if ((rc = wn_history_append(h, &r)) != WN_OK) break;
    }
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ paths */

int wn_path_join(char *out, size_t size, const char *dir, const char *file) {
    int n = snprintf(out, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size) return wn_fail("path too long: %s/%s", dir, file);
    return WN_OK;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return WN_OK;
        return wn_fail("%s exists and is not a folder", path);
    }
    return wn_fail("cannot create folder %s: %s", path, strerror(errno));
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return wn_fail("path too long: %s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (make_dir(buf) != WN_OK) return WN_ERR;
            *p = '/';
        }
    return make_dir(buf);
}

int wn_run_dir_create(char *dir, size_t size, const char *root, const char *name, time_t when) {
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return wn_fail("run name '%s': use only letters, digits, '-', '_' and '.'", name);
    if (make_dirs(root) != WN_OK) return WN_ERR;
    struct tm tm;
    localtime_r(&when, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int k = 1; k < 1000; k++) {
        int n = k == 1 ? snprintf(dir, size, "%s/%s-%s", root, stamp, name)
                       : snprintf(dir, size, "%s/%s-%s-%d", root, stamp, name, k);
        if (n < 0 || (size_t)n >= size) return wn_fail("run folder path too long under %s", root);
        if (mkdir(dir, 0777) == 0) return WN_OK;
        if (errno != EEXIST)
            return wn_fail("cannot create the run folder %s: %s", dir, strerror(errno));
    }
    return wn_fail("cannot create a run folder under %s: too many runs named %s", root, name);
}

/* ------------------------------------------------------------------ writers */

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 for a byte that does not
 * start one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * File names are bytes; JSON and the CSV files (read as UTF-8) need text. */
static int utf8_sequence(const unsigned char *s) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF are not characters */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* Bytes that are not UTF-8 become U+FFFD (the replacement character), one per byte:
 * the output stays valid whatever a file name holds. The name is then not exact;
 * wastenet prints the path byte for byte only on the terminal. */
void wn_json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        int n = utf8_sequence(c);
        if (n == 0) fputs("\\ufffd", f), n = 1;
        else if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20 || *c == 0x7f) fprintf(f, "\\u%04x", *c);
        else fwrite(c, 1, (size_t)n, f);
        c += n;
    }
    fputc('"', f);
}

/* JSON has no NaN or Infinity: non-finite numbers become null. */
static void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

void wn_csv_write_field(FILE *f, const char *s) {
    int quote = strpbrk(s, ",\"\n\r") != NULL;
    if (quote) fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        int n = utf8_sequence(c);
        if (n == 0) fputs("\xef\xbf\xbd", f), n = 1; /* U+FFFD, as in JSON */
        else {
            if (*c == '"') fputc('"', f);
            fwrite(c, 1, (size_t)n, f);
        }
        c += n;
    }
    if (quote) fputc('"', f);
}

static int open_in(wn_atomic_file *af, const char *dir, const char *phase, const char *file) {
    char name[256], path[4096];
    if (phase) snprintf(name, sizeof name, "%s_%s", phase, file);
    else snprintf(name, sizeof name, "%s", file);
    if (wn_path_join(path, sizeof path, dir, name) != WN_OK) return WN_ERR;
    return wn_atomic_open(af, path);
}

int wn_report_write_history(const char *dir, const wn_history *h) {
    wn_atomic_file af;
    if (open_in(&af, dir, NULL, "history.csv") != WN_OK) return WN_ERR;
    fprintf(af.fp, "%s\n", wn_history_header);
    for (int i = 0; i < h->n; i++) {
        const wn_epoch_record *r = &h->rows[i];
        fprintf(af.fp, "%s,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", r->phase, r->epoch, r->loss,
                r->accuracy, r->val_loss, r->val_accuracy, r->lr, r->seconds);
    }
    if (wn_atomic_commit(&af) != WN_OK) return WN_ERR;

    if (open_in(&af, dir, NULL, "history.json") != WN_OK) return WN_ERR;
    fputs("{\n  \"epochs\": [", af.fp);
    for (int i = 0; i < h->n; i++) {
        const wn_epoch_record *r = &h->rows[i];
        fputs(i ? ",\n    {" : "\n    {", af.fp);
        fputs("\"phase\": ", af.fp);
        wn_json_write_string(af.fp, r->phase);
        fprintf(af.fp, ", \"epoch\": %d", r->epoch);
        const char *names[6] = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
        const double values[6] = {r->loss, r->accuracy, r->val_loss, r->val_accuracy, r->lr,
                                  r->seconds};
        for (int k = 0; k < 6; k++) {
            fprintf(af.fp, ", \"%s\": ", names[k]);
            json_number(af.fp, values[k]);
        }
        fputc('}', af.fp);
    }
    fputs(h->n ? "\n  ]\n}\n" : "]\n}\n", af.fp);
    return wn_atomic_commit(&af);
}

int wn_report_write_test(const char *dir, const char *phase, double loss, double accuracy,
                         long samples) {
    wn_atomic_file af;
    if (open_in(&af, dir, phase, "test.json") != WN_OK) return WN_ERR;
    fputs("{\"phase\": ", af.fp);
    wn_json_write_string(af.fp, phase);
    fputs(", \"loss\": ", af.fp);
    json_number(af.fp, loss);
    fputs(", \"accuracy\": ", af.fp);
    json_number(af.fp, accuracy);
    fprintf(af.fp, ", \"samples\": %ld}\n", samples);
    return wn_atomic_commit(&af);
}

void wn_report_print_classes(FILE *out, const char *const *class_names, const wn_confusion *cm,
                             const wn_class_report *rep) {
    int width = 5;
    for (int c = 0; c < rep->k; c++)
        if ((int)strlen(class_names[c]) > width) width = (int)strlen(class_names[c]);
    fprintf(out, "%-*s %8s %8s %9s %10s %8s %8s\n", width, "class", "correct", "total",
            "accuracy", "precision", "recall", "F1");
    for (int c = 0; c < rep->k; c++) {
        const wn_class_metrics *m = &rep->cls[c];
        fprintf(out, "%-*s %8ld %8ld %9.4f %10.4f %8.4f %8.4f\n", width, class_names[c],
                m->correct, m->total, m->accuracy, m->precision, m->recall, m->f1);
    }
    fprintf(out, "accuracy: %ld / %ld = %.2f%%\n", rep->correct, rep->samples,
            100.0 * rep->accuracy);
    if (rep->n_present > 0)
        fprintf(out, "mean over the %d classes: %.2f%%\n", rep->n_present,
                100.0 * rep->mean_without[0]);
    /* The notebook left out the weakest class, then the two weakest. */
    for (int m = 1; m <= 2 && m < rep->n_present; m++) {
        fprintf(out, "mean without %s", class_names[rep->weakest[0]]);
        if (m == 2) fprintf(out, " and %s", class_names[rep->weakest[1]]);
        fprintf(out, ": %.2f%%\n", 100.0 * rep->mean_without[m]);
    }
    fprintf(out, "macro precision %.4f, recall %.4f, F1 %.4f\n", rep->macro_precision,
            rep->macro_recall, rep->macro_f1);
    fprintf(out, "confusion matrix (rows: true class, columns: predicted class)\n%-*s", width, "");
    for (int p = 0; p < cm->k; p++) fprintf(out, " %*.*s", 6, 6, class_names[p]);
    fputc('\n', out);
    for (int t = 0; t < cm->k; t++) {
        fprintf(out, "%-*s", width, class_names[t]);
        for (int p = 0; p < cm->k; p++)
            fprintf(out, " %6ld", cm->counts[(size_t)t * (size_t)cm->k + (size_t)p]);
        fputc('\n', out);
    }
}

int wn_report_write_classes(const char *dir, const char *phase, const char *const *class_names,
                            const wn_confusion *cm, const wn_class_report *rep) {
    wn_atomic_file af;
    if (open_in(&af, dir, phase, "per_class.txt") != WN_OK) return WN_ERR;
    wn_report_print_classes(af.fp, class_names, cm, rep);
    if (wn_atomic_commit(&af) != WN_OK) return WN_ERR;

    if (open_in(&af, dir, phase, "per_class.csv") != WN_OK) return WN_ERR;
    fputs("class,correct,total,accuracy,precision,recall,f1\n", af.fp);
    for (int c = 0; c < rep->k; c++) {
        const wn_class_metrics *m = &rep->cls[c];
        wn_csv_write_field(af.fp, class_names[c]);
        fprintf(af.fp, ",%ld,%ld,%.17g,%.17g,%.17g,%.17g\n", m->correct, m->total, m->accuracy,
                m->precision, m->recall, m->f1);
    }
    if (wn_atomic_commit(&af) != WN_OK) return WN_ERR;

    if (open_in(&af, dir, phase, "confusion.csv") != WN_OK) return WN_ERR;
    fputs("true\\predicted", af.fp);
    for (int p = 0; p < cm->k; p++) fputc(',', af.fp), wn_csv_write_field(af.fp, class_names[p]);
    fputc('\n', af.fp);
    for (int t = 0; t < cm->k; t++) {
        wn_csv_write_field(af.fp, class_names[t]);
        for (int p = 0; p < cm->k; p++)
            fprintf(af.fp, ",%ld", cm->counts[(size_t)t * (size_t)cm->k + (size_t)p]);
        fputc('\n', af.fp);
    }
    return wn_atomic_commit(&af);
}

int wn_report_write_predictions(const char *dir, const char *phase, int n, int k,
                                const char *const *paths, const int *labels, const float *probs,
                                const char *const *class_names) {
    wn_atomic_file af;
    if (open_in(&af, dir, phase, "predictions.csv") != WN_OK) return WN_ERR;
    fputs("path,true,predicted,correct", af.fp);
    for (int c = 0; c < k; c++) {
        char col[160];
        snprintf(col, sizeof col, "p_%s", class_names[c]);
        fputc(',', af.fp), wn_csv_write_field(af.fp, col);
    }
    fputc('\n', af.fp);
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * (size_t)k;
        int pred = wn_argmax(p, k);
        wn_csv_write_field(af.fp, paths[i]);
        fputc(',', af.fp), wn_csv_write_field(af.fp, class_names[labels[i]]);
        fputc(',', af.fp), wn_csv_write_field(af.fp, class_names[pred]);
        fprintf(af.fp, ",%d", pred == labels[i]);
        for (int c = 0; c < k; c++) fprintf(af.fp, ",%.9g", p[c]);
        fputc('\n', af.fp);
    }
    return wn_atomic_commit(&af);
}
