/* tests/fuzz/replay_main.c — runs a fuzz target's LLVMFuzzerTestOneInput() over
 * files and folders without libFuzzer, so the committed corpus (seeds and every input
 * a fuzzer once crashed on) is replayed by ctest with the ordinary compiler, and under
 * ASan/UBSan by tools/ci_sanitize.sh.
 *   replay_<target> PATH...   each PATH a file or a folder of files (not recursive)
 * Exit 0 when every input ran (a contract violation aborts), 1 when a path cannot be
 * read or no input was found. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        fclose(fp);
        free(buf);
        return -1;
    }
    fclose(fp);
    /* buf is exactly the input's size: ASan sees any read past its end. */
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s not found\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) < 0) return 1;
            ran++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot read folder %s\n", argv[i]);
            return 1;
        }
        char **names = NULL;
        int n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **grown = realloc(names, (size_t)cap * sizeof *names);
                if (!grown) return 1;
                names = grown;
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str); /* a stable order for the log */
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            if (replay_file(path) < 0) return 1;
            ran++;
            free(names[k]);
        }
        free(names);
    }
    if (!ran) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    printf("replay: %d inputs ran without a crash or a contract violation\n", ran);
    return 0;
}
