/* host/dataset.c — the split-folder scan of image_dataset_from_directory
 * (keras/utils/dataset_utils.py: index_directory, index_subdirectory,
 * iter_valid_files). See host/dataset.h for the rules. */
#define _DEFAULT_SOURCE /* DT_* from dirent.h */
#include "host/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/base/error.h"

/* ------------------------------------------------------------ string lists */

typedef struct str_list {
    char **items;
    int count, cap;
} str_list;

static int str_list_push(str_list *l, char *s) { /* takes ownership of s */
    if (!s) return wn_fail("out of memory while scanning");
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) {
            free(s);
            return wn_fail("out of memory while scanning");
        }
        l->items = items, l->cap = cap;
    }
    l->items[l->count++] = s;
    return WN_OK;
}

static void str_list_free(str_list *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Python's sorted() on str compares code points; for UTF-8 that is byte order. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *s = malloc(la + slash + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    if (slash) s[la] = '/';
    memcpy(s + la + slash, b, lb + 1);
    return s;
}

/* fname.lower().endswith(('.bmp', '.gif', '.jpeg', '.jpg', '.png')) */
static int has_image_extension(const char *name) {
    static const char *const ext[] = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
    size_t n = strlen(name);
    for (size_t e = 0; e < sizeof ext / sizeof ext[0]; e++) {
        size_t m = strlen(ext[e]);
        if (n < m) continue;
        size_t k = 0;
        while (k < m) {
            char c = name[n - m + k];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != ext[e][k]) break;
            k++;
        }
        if (k == m) return 1;
    }
    return 0;
}

typedef enum { ENTRY_OTHER, ENTRY_FILE, ENTRY_DIR } entry_kind;

/* follow: stat() (class folders, like tf.io.gfile.isdir) or lstat() (inside a class:
 * a symbolic link to a folder is not descended, so links cannot loop; a link to a
 * file counts as a file, like os.walk's file list). */
static entry_kind entry_kind_of(const char *path, int follow) {
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return ENTRY_OTHER;
    if (S_ISDIR(st.st_mode)) return ENTRY_DIR;
    if (S_ISREG(st.st_mode)) return ENTRY_FILE;
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return ENTRY_FILE;
        return ENTRY_OTHER;
    }
    return ENTRY_OTHER;
}

/* A problem in the tree: fail, or (skip_bad) report it and go on. Returns WN_OK to
 * go on, WN_ERR to stop. */
static int scan_problem(const wn_scan_options *opt, wn_dataset *ds, const char *path,
                        const char *reason) {
    if (!opt || !opt->skip_bad) return wn_fail("%s: %s", path, reason);
    ds->n_skipped++;
    if (opt->report) opt->report(opt->report_user, path, reason);
    return WN_OK;
}

/* Lists the entries of `dir` into folders (full paths) and files (full paths). */
static int list_folder(const char *dir, str_list *folders, str_list *files, int *unreadable) {
    DIR *d = opendir(dir);
    *unreadable = 0;
    if (!d) {
        *unreadable = errno ? errno : EIO;
        return WN_OK;
    }
    struct dirent *e;
    int rc = WN_OK;
    while (rc == WN_OK && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *full = path_join(dir, e->d_name);
        if (!full) {
            rc = wn_fail("out of memory while scanning %s", dir);
            break;
        }
        entry_kind k = entry_kind_of(full, 0);
        if (k == ENTRY_DIR && folders)
            rc = str_list_push(folders, full);
        else if (k == ENTRY_FILE && files && has_image_extension(e->d_name))
            rc = str_list_push(files, full);
        else
            free(full);
    }
    closedir(d);
    return rc;
}

/* All image files under one class folder, in Keras's order: walk roots sorted by
 * their full path, the files of each root sorted by name. Because every file of a
 * root shares the prefix "root/", sorting the full paths within a root equals
 * sorting their names. */
static int scan_class(const char *class_dir, str_list *out, wn_dataset *ds,
                      const wn_scan_options *opt) {
    str_list roots = {0}, pending = {0};
    int rc = str_list_push(&pending, strdup(class_dir));
    /* Collect every folder of the tree (depth-first; order fixed by the sort). */
    while (rc == WN_OK && pending.count > 0) {
        char *dir = pending.items[--pending.count];
        rc = str_list_push(&roots, dir);
        if (rc != WN_OK) break;
        int unreadable;
        str_list sub = {0};
        rc = list_folder(dir, &sub, NULL, &unreadable);
        if (rc == WN_OK && unreadable) {
            char reason[160];
            snprintf(reason, sizeof reason,
                     "cannot read this folder (%s); fix its permissions or remove it",
                     strerror(unreadable));
            rc = scan_problem(opt, ds, dir, reason);
        }
        for (int i = 0; rc == WN_OK && i < sub.count; i++) {
            rc = str_list_push(&pending, sub.items[i]);
            sub.items[i] = NULL;
        }
        str_list_free(&sub);
    }
    str_list_free(&pending);
    if (rc == WN_OK && roots.count > 1) qsort(roots.items, (size_t)roots.count, sizeof(char *), cmp_str);
    for (int r = 0; rc == WN_OK && r < roots.count; r++) {
        str_list files = {0};
        int unreadable;
        rc = list_folder(roots.items[r], NULL, &files, &unreadable); /* reported above */
        if (rc == WN_OK && files.count > 1) qsort(files.items, (size_t)files.count, sizeof(char *), cmp_str);
        for (int i = 0; rc == WN_OK && i < files.count; i++) {
            rc = str_list_push(out, files.items[i]);
            files.items[i] = NULL;
        }
        str_list_free(&files);
    }
    str_list_free(&roots);
    return rc;
}

/* ------------------------------------------------------------ the scan */

void wn_dataset_free(wn_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_classes; i++) free(ds->class_names ? ds->class_names[i] : NULL);
    for (int i = 0; i < ds->n_files; i++) free(ds->paths ? ds->paths[i] : NULL);
    free(ds->class_names);
    free(ds->paths);
    free(ds->labels);
    free(ds->dir);
    memset(ds, 0, sizeof *ds);
}

/* "a, b, c" of the names in `l` that are not in `other` (for the mismatch message). */
static void names_missing(char *buf, size_t size, char *const *l, int nl, char *const *other,
                          int no) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < nl; i++) {
        int found = 0;
        for (int j = 0; j < no && !found; j++) found = !strcmp(l[i], other[j]);
        if (found) continue;
        int w = snprintf(buf + used, size - used, "%s'%s'", used ? ", " : "", l[i]);
        if (w < 0 || (size_t)w >= size - used) break;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, size, "none");
}

static int check_class_names(const char *dir, const str_list *folders,
                             const char *const *class_names, int n) {
    for (int i = 0; i < n; i++) {
        if (!class_names[i] || !class_names[i][0])
            return wn_fail("%s: class name %d is empty", dir, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(class_names[i], class_names[j]))
                return wn_fail("%s: class name '%s' is given twice", dir, class_names[i]);
    }
    int same = folders->count == n;
    for (int i = 0; same && i < n; i++) {
        int found = 0;
        for (int j = 0; j < folders->count && !found; j++)
            found = !strcmp(class_names[i], folders->items[j]);
        same = found;
    }
    if (same) return WN_OK;
    char extra[1024], missing[1024];
    names_missing(extra, sizeof extra, folders->items, folders->count, (char *const *)class_names, n);
    names_missing(missing, sizeof missing, (char *const *)class_names, n, folders->items,
                  folders->count);
    return wn_fail("%s: its class folders differ from the expected classes (those of the "
                   "training split): folders not expected: %s; expected classes with no "
                   "folder: %s. Every split needs the same class folders.",
                   dir, extra, missing);
}

int wn_dataset_scan(wn_dataset *ds, const char *dir, const char *const *class_names,
                    int n_class_names, const wn_scan_options *opt) {
    memset(ds, 0, sizeof *ds);
    struct stat st;
    if (stat(dir, &st) != 0)
        return wn_fail("%s: split folder not found (%s); expected <dir>/<class>/<images>",
                       dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return wn_fail("%s: not a folder; expected a split folder <dir>/<class>/<images>", dir);

    /* Class folders: sorted(listdir(dir)), folders only, hidden ones skipped. */
    DIR *d = opendir(dir);
    if (!d) return wn_fail("%s: cannot read the split folder (%s)", dir, strerror(errno));
    str_list folders = {0}, files = {0};
    int32_t *labels = NULL;
    size_t labels_cap = 0;
    int rc = WN_OK;
    struct dirent *e;
    while (rc == WN_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = path_join(dir, e->d_name);
        if (!full) {
            rc = wn_fail("out of memory while scanning %s", dir);
            break;
        }
        int is_dir = entry_kind_of(full, 1) == ENTRY_DIR;
        free(full);
        if (is_dir) rc = str_list_push(&folders, strdup(e->d_name));
    }
    closedir(d);
    if (rc != WN_OK) goto fail;
    if (folders.count > 1) qsort(folders.items, (size_t)folders.count, sizeof(char *), cmp_str);
    if (folders.count == 0) {
        rc = wn_fail("%s: no class folders; expected <dir>/<class>/<images>", dir);
        goto fail;
    }
    if (class_names && (rc = check_class_names(dir, &folders, class_names, n_class_names)) != WN_OK)
        goto fail;

    ds->dir = strdup(dir);
    ds->n_classes = folders.count;
    ds->class_names = calloc((size_t)folders.count, sizeof(char *));
    if (!ds->dir || !ds->class_names) {
        rc = wn_fail("out of memory while scanning %s", dir);
        goto fail;
    }
    for (int c = 0; c < folders.count; c++) {
        ds->class_names[c] = strdup(class_names ? class_names[c] : folders.items[c]);
        if (!ds->class_names[c]) {
            rc = wn_fail("out of memory while scanning %s", dir);
            goto fail;
        }
    }

    /* Files, class folder by class folder in sorted folder order (Keras concatenates
     * them in that order even when class_names fixes a different label order). */
    for (int f = 0; rc == WN_OK && f < folders.count; f++) {
        int label = f;
        if (class_names)
            for (int c = 0; c < n_class_names; c++)
                if (!strcmp(class_names[c], folders.items[f])) label = c;
        char *class_dir = path_join(dir, folders.items[f]);
        if (!class_dir) {
            rc = wn_fail("out of memory while scanning %s", dir);
            break;
        }
        int before = files.count, skipped_before = ds->n_skipped;
        rc = scan_class(class_dir, &files, ds, opt);
        if (rc == WN_OK && files.count == before && ds->n_skipped == skipped_before)
            rc = scan_problem(opt, ds, class_dir,
                              "class folder has no images (.bmp .gif .jpeg .jpg .png); add "
                              "images or remove the folder");
        free(class_dir);
        if (rc == WN_OK && (size_t)files.count > labels_cap) {
            size_t cap = (size_t)files.cap;
            int32_t *nl = realloc(labels, cap * sizeof *nl);
            if (!nl) {
                rc = wn_fail("out of memory while scanning %s", dir);
                break;
            }
            labels = nl, labels_cap = cap;
        }
        for (int i = before; rc == WN_OK && i < files.count; i++) labels[i] = label;
    }
    if (rc != WN_OK) goto fail;
    ds->n_files = files.count;
    ds->paths = files.items; /* ownership moves to ds */
    ds->labels = labels;
    if (!ds->paths) ds->paths = calloc(1, sizeof(char *));
    if (!ds->labels) ds->labels = calloc(1, sizeof(int32_t));
    str_list_free(&folders);
    return WN_OK;

fail:
    str_list_free(&folders);
    str_list_free(&files);
    free(labels);
    wn_dataset_free(ds);
    return rc;
}

void wn_dataset_print_found(const wn_dataset *ds, FILE *out) {
    fprintf(out, "Found %d files belonging to %d classes.\n", ds->n_files, ds->n_classes);
}

void wn_dataset_class_counts(const wn_dataset *ds, int *counts) {
    for (int c = 0; c < ds->n_classes; c++) counts[c] = 0;
    for (int i = 0; i < ds->n_files; i++) counts[ds->labels[i]]++;
}
