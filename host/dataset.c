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
#include <unistd.h>

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

typedef enum { ENTRY_OTHER, ENTRY_FILE, ENTRY_DIR, ENTRY_BAD } entry_kind;

/* What an entry is, following symbolic links like tf.io.gfile.walk (tf-keras's
 * iter_valid_files with follow_links=False): a link to a folder is a folder (it is
 * descended), a link to a file a file. ENTRY_BAD: it cannot be used and the scan
 * must say so (reason filled): a link to nothing, a path over the system's limit, a
 * pipe/device/socket named like an image, an entry that cannot be examined. */
static entry_kind entry_kind_of(const char *path, char *reason, size_t reason_size) {
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        struct stat lst;
        if (err == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
            char to[1024];
            ssize_t n = readlink(path, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            snprintf(reason, reason_size,
                     "a symbolic link to %s, which does not exist (a dangling link); remove "
                     "it or make it point to an image",
                     n > 0 ? to : "?");
        } else if (err == ENAMETOOLONG) {
            snprintf(reason, reason_size,
                     "path of %zu bytes is longer than the system allows (%s); move the data "
                     "set to a shorter path or rename its folders",
                     strlen(path), strerror(err));
        } else if (err == ELOOP) {
            snprintf(reason, reason_size, "symbolic links that loop (%s); remove the link",
                     strerror(err));
        } else {
            snprintf(reason, reason_size, "cannot examine it (%s)", strerror(err));
        }
        return ENTRY_BAD;
    }
    if (S_ISDIR(st.st_mode)) return ENTRY_DIR;
    if (S_ISREG(st.st_mode)) return ENTRY_FILE;
    snprintf(reason, reason_size, "not a regular file (%s); remove it",
             S_ISFIFO(st.st_mode)  ? "a named pipe"
             : S_ISSOCK(st.st_mode) ? "a socket"
             : S_ISCHR(st.st_mode)  ? "a character device"
             : S_ISBLK(st.st_mode)  ? "a block device"
                                    : "an unusual file type");
    return ENTRY_OTHER;
}

/* A problem in the tree: fail, or (skip_bad) report it and go on. Returns WN_OK to
 * go on, WN_ERR to stop. */
static int scan_problem(const wn_scan_options *opt, wn_dataset *ds, const char *path,
                        const char *reason) {
    /* A path of thousands of bytes would crowd the reason out of the message: its
     * start and end are enough to find it. */
    char shown[400];
    size_t n = strlen(path);
    if (n >= sizeof shown) {
        snprintf(shown, sizeof shown, "%.150s...%s", path, path + n - 150);
        path = shown;
    }
    if (!opt || !opt->skip_bad) return wn_fail("%s: %s", path, reason);
    ds->n_skipped++;
    if (opt->report) opt->report(opt->report_user, path, reason);
    return WN_OK;
}

/* Lists the entries of `dir` into folders (full paths) and files (full paths).
 * Entries that cannot be used are reported through scan_problem when `ds` is given
 * (the folder pass; the file pass lists the same entries again and stays quiet): a
 * dangling link or a too-long path whatever its name (Keras would list it and then
 * fail to read it), a pipe, device or socket only when named like an image. */
static int list_folder(const char *dir, str_list *folders, str_list *files, int *unreadable,
                       wn_dataset *ds, const wn_scan_options *opt) {
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
        char reason[1200];
        entry_kind k = entry_kind_of(full, reason, sizeof reason);
        if (k == ENTRY_DIR && folders)
            rc = str_list_push(folders, full), full = NULL;
        else if (k == ENTRY_FILE && files && has_image_extension(e->d_name))
            rc = str_list_push(files, full), full = NULL;
        else if (ds && (k == ENTRY_BAD || (k == ENTRY_OTHER && has_image_extension(e->d_name))))
            rc = scan_problem(opt, ds, full, reason);
        free(full);
    }
    closedir(d);
    return rc;
}

/* A folder's identity, to notice a folder reached a second time through a link. */
typedef struct folder_id {
    dev_t dev;
    ino_t ino;
} folder_id;

/* All image files under one class folder, in Keras's order: walk roots sorted by
 * their full path, the files of each root sorted by name. Because every file of a
 * root shares the prefix "root/", sorting the full paths within a root equals
 * sorting their names. */
static int scan_class(const char *class_dir, str_list *out, wn_dataset *ds,
                      const wn_scan_options *opt) {
    str_list roots = {0}, pending = {0};
    /* Folders already walked (device, inode): a linked folder seen before — a link to
     * an ancestor, which tf.io.gfile.walk would follow until the path is too long, or
     * a second link to the same folder — is reported and not walked again. */
    folder_id *seen = NULL;
    int n_seen = 0, cap_seen = 0;
    int rc = str_list_push(&pending, strdup(class_dir));
    /* Collect every folder of the tree (depth-first; order fixed by the sort). */
    while (rc == WN_OK && pending.count > 0) {
        char *dir = pending.items[--pending.count];
        struct stat st;
        if (stat(dir, &st) == 0) {
            int again = 0;
            for (int i = 0; i < n_seen && !again; i++)
                again = seen[i].dev == st.st_dev && seen[i].ino == st.st_ino;
            if (again) {
                rc = scan_problem(opt, ds, dir,
                                  "a symbolic link to a folder already scanned (a loop or a "
                                  "second link to it): its images are not counted twice; "
                                  "remove the link");
                free(dir);
                continue;
            }
            if (n_seen == cap_seen) {
                cap_seen = cap_seen ? 2 * cap_seen : 16;
                folder_id *grown = realloc(seen, (size_t)cap_seen * sizeof *seen);
                if (!grown) {
                    free(dir);
                    rc = wn_fail("out of memory while scanning %s", class_dir);
                    break;
                }
                seen = grown;
            }
            seen[n_seen].dev = st.st_dev, seen[n_seen].ino = st.st_ino, n_seen++;
        }
        rc = str_list_push(&roots, dir);
        if (rc != WN_OK) break;
        int unreadable;
        str_list sub = {0};
        rc = list_folder(dir, &sub, NULL, &unreadable, ds, opt);
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
    free(seen);
    str_list_free(&pending);
    if (rc == WN_OK && roots.count > 1) qsort(roots.items, (size_t)roots.count, sizeof(char *), cmp_str);
    for (int r = 0; rc == WN_OK && r < roots.count; r++) {
        str_list files = {0};
        int unreadable;
        rc = list_folder(roots.items[r], NULL, &files, &unreadable, NULL, NULL); /* reported above */
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
    free(ds->n_skipped_class);
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

/* Class names end up one per line in classes.txt, in CSV/JSON reports and on the
 * terminal: a control character (a newline, a tab, an escape) would break them, so
 * such a folder is refused whatever --skip-bad says. */
static int check_class_folder_name(const char *full, const char *name) {
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            char shown[512];
            size_t k = 0;
            for (const unsigned char *p = (const unsigned char *)name; *p && k + 5 < sizeof shown; p++)
                if (*p < 0x20 || *p == 0x7f) k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", *p);
                else shown[k++] = (char)*p;
            shown[k] = '\0';
            return wn_fail("class folder '%s' in %s: its name holds a control character "
                           "(byte 0x%02x); class names are written one per line "
                           "(classes.txt) and into reports: rename the folder",
                           shown, full, *c);
        }
    return WN_OK;
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
        char reason[1200];
        entry_kind k = entry_kind_of(full, reason, sizeof reason);
        if (k == ENTRY_DIR && (rc = check_class_folder_name(full, e->d_name)) == WN_OK)
            rc = str_list_push(&folders, strdup(e->d_name));
        else if (k == ENTRY_BAD) /* e.g. a link to a class folder that is gone */
            rc = scan_problem(opt, ds, full, reason);
        free(full);
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
    ds->n_skipped_class = calloc((size_t)folders.count, sizeof(int));
    if (!ds->dir || !ds->class_names || !ds->n_skipped_class) {
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
        ds->n_skipped_class[label] += ds->n_skipped - skipped_before;
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
