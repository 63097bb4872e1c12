/* engine/train/distributed.c — the ranks through MPI (see distributed.h). The only
 * file that calls MPI. Built without WN_HAVE_MPI it is one rank and every collective
 * is a no-op. */
#include "engine/train/distributed.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/base/error.h"

#ifdef WN_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#endif

static struct {
    int rank, size, local_rank, local_size;
    int started; /* MPI_Init ran (and MPI_Finalize has not) */
    wn_rank_group group;
} g_dist = {0, 1, 0, 1, 0, {0}};

int wn_dist_rank(void) { return g_dist.rank; }
int wn_dist_size(void) { return g_dist.size; }
int wn_dist_local_rank(void) { return g_dist.local_rank; }
int wn_dist_local_size(void) { return g_dist.local_size > 0 ? g_dist.local_size : 1; }

/* A launcher's environment: how many processes it started (0: none seen). */
static int launcher_size(void) {
    const char *v;
    if ((v = getenv("OMPI_COMM_WORLD_SIZE")) && *v) return atoi(v);
    if ((v = getenv("PMI_SIZE")) && *v) return atoi(v);
    if (getenv("SLURM_STEP_ID") && (v = getenv("SLURM_NTASKS")) && *v) return atoi(v);
    if ((v = getenv("PMIX_RANK")) && *v) return 2; /* some PMIx launcher: ask MPI */
    return 0;
}

#ifdef WN_HAVE_MPI

int wn_dist_built(void) { return 1; }

/* The local rank a launcher announces (-1: none): Open MPI, then Slurm. */
static int launcher_local_rank(void) {
    const char *v;
    if ((v = getenv("OMPI_COMM_WORLD_LOCAL_RANK")) && *v) return atoi(v);
    if ((v = getenv("SLURM_LOCALID")) && *v) return atoi(v);
    if ((v = getenv("MPI_LOCALRANKID")) && *v) return atoi(v);
    return -1;
}

/* ---------------------------------------------------------------- the watchdog
 * A collective that waits longer than WN_DIST_TIMEOUT seconds means a peer that is
 * stopped, hung or gone without its launcher noticing: say so and exit, so the
 * launcher ends the job. The waiting thread cannot be woken, so a second thread
 * watches the clock. */
static atomic_long g_wait_since;      /* CLOCK_MONOTONIC seconds when the current
                                         collective began; 0 when none is running */
static const char *volatile g_wait_what;
static long g_timeout = 600;

static long now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec;
}

static void *watchdog_main(void *arg) {
    (void)arg;
    for (;;) {
        sleep(1);
        long since = atomic_load(&g_wait_since);
        if (since && now_seconds() - since > g_timeout) {
            const char *what = g_wait_what;
            fprintf(stderr,
                    "wastenet: rank %d of %d waited %ld s for the other ranks in %s: one of them "
                    "has stopped, hung or died; stopping this rank (WN_DIST_TIMEOUT=%ld)\n",
                    g_dist.rank, g_dist.size, now_seconds() - since, what ? what : "a collective",
                    g_timeout);
            fflush(stderr);
            _exit(1);
        }
    }
    return NULL;
}

static void wait_begin(const char *what) {
    g_wait_what = what;
    atomic_store(&g_wait_since, now_seconds() > 0 ? now_seconds() : 1);
}

static void wait_end(void) { atomic_store(&g_wait_since, 0); }

static int mpi_failed(int err, const char *call, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return wn_fail("rank %d of %d: %s in %s failed: %s (another rank has probably stopped)",
                   g_dist.rank, g_dist.size, call, what ? what : "a collective", msg);
}

static int sum_in_place(void *v, size_t n, MPI_Datatype type, const char *what) {
    if (g_dist.size < 2 || n == 0) return WN_OK;
    /* MPI counts are int: large buffers go in pieces of at most 2^30 elements. */
    size_t elem = 0;
    if (type == MPI_DOUBLE) elem = sizeof(double);
    else if (type == MPI_FLOAT) elem = sizeof(float);
    else if (type == MPI_LONG) elem = sizeof(long);
    else elem = sizeof(int32_t);
    for (size_t off = 0; off < n;) {
        size_t part = n - off > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - off;
        wait_begin(what);
        int err = MPI_Allreduce(MPI_IN_PLACE, (char *)v + off * elem, (int)part, type, MPI_SUM,
                                MPI_COMM_WORLD);
        wait_end();
        if (err != MPI_SUCCESS) return mpi_failed(err, "MPI_Allreduce", what);
        off += part;
    }
    return WN_OK;
}

int wn_dist_sum_doubles(double *v, size_t n, const char *what) {
    return sum_in_place(v, n, MPI_DOUBLE, what);
}
int wn_dist_sum_floats(float *v, size_t n, const char *what) {
    return sum_in_place(v, n, MPI_FLOAT, what);
}
int wn_dist_sum_longs(long *v, size_t n, const char *what) {
    return sum_in_place(v, n, MPI_LONG, what);
}
int wn_dist_sum_int32(int32_t *v, size_t n, const char *what) {
    return sum_in_place(v, n, MPI_INT32_T, what);
}

int wn_dist_any(int *flag, const char *what) {
    if (g_dist.size < 2) return WN_OK;
    int32_t v = *flag ? 1 : 0;
    if (wn_dist_sum_int32(&v, 1, what) != WN_OK) return WN_ERR;
    *flag = v > 0;
    return WN_OK;
}

int wn_dist_broadcast(void *buf, size_t bytes, const char *what) {
    if (g_dist.size < 2 || bytes == 0) return WN_OK;
    if (bytes > (size_t)1 << 30) return wn_fail("%s: broadcast of %zu bytes is too large", what, bytes);
    wait_begin(what);
    int err = MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    wait_end();
    return err == MPI_SUCCESS ? WN_OK : mpi_failed(err, "MPI_Bcast", what);
}

/* The backends' view (kernels/common/rank_group.h). */
static int group_sum_floats(void *user, float *buf, size_t count) {
    (void)user;
    return wn_dist_sum_floats(buf, count, "the gradient sum");
}
static int group_broadcast(void *user, void *buf, size_t bytes) {
    (void)user;
    return wn_dist_broadcast(buf, bytes, "the NCCL id broadcast");
}

/* The ranks sharing this machine's memory: their number, and this one's place among
 * them (the launcher's word for it when it gives one). */
static void find_local_rank(void) {
    int r = 0, n = 1;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_dist.rank, MPI_INFO_NULL,
                            &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &r);
        MPI_Comm_size(node, &n);
        MPI_Comm_free(&node);
    }
    int lr = launcher_local_rank();
    g_dist.local_rank = lr >= 0 ? lr : r;
    g_dist.local_size = n;
}

int wn_dist_start(int *argc, char ***argv) {
    if (g_dist.started) return WN_OK;
    int want = launcher_size();
    const char *force = getenv("WN_MPI");
    if (force && !strcmp(force, "0")) want = 0; /* WN_MPI=0: never join */
    /* One process (mpirun -np 1 included) needs no MPI at all. */
    if (want < 2 && !(force && !strcmp(force, "1"))) return WN_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return wn_fail("MPI_Init failed: the launcher's environment is set but MPI cannot start "
                       "(set WN_MPI=0 to run as one process)");
    g_dist.started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_dist.size);
    find_local_rank();
    g_dist.group = (wn_rank_group){g_dist.rank, g_dist.size, g_dist.local_rank, NULL,
                                   group_sum_floats, group_broadcast};
    const char *t = getenv("WN_DIST_TIMEOUT");
    if (t && atol(t) > 0) g_timeout = atol(t);
    if (g_dist.size > 1) {
        pthread_t th;
        if (pthread_create(&th, NULL, watchdog_main, NULL) == 0) pthread_detach(th);
    }
    return WN_OK;
}

void wn_dist_finish(void) {
    if (!g_dist.started) return;
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    g_dist.started = 0;
}

void wn_dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    if (g_dist.started && g_dist.size > 1) MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    exit(status);
}

#else /* no MPI in this build: one rank */

int wn_dist_built(void) { return 0; }

static int one_sum(void) { return WN_OK; }
int wn_dist_sum_doubles(double *v, size_t n, const char *what) {
    (void)v, (void)n, (void)what;
    return one_sum();
}
int wn_dist_sum_floats(float *v, size_t n, const char *what) {
    (void)v, (void)n, (void)what;
    return one_sum();
}
int wn_dist_sum_longs(long *v, size_t n, const char *what) {
    (void)v, (void)n, (void)what;
    return one_sum();
}
int wn_dist_sum_int32(int32_t *v, size_t n, const char *what) {
    (void)v, (void)n, (void)what;
    return one_sum();
}
int wn_dist_any(int *flag, const char *what) {
    (void)flag, (void)what;
    return WN_OK;
}
int wn_dist_broadcast(void *buf, size_t bytes, const char *what) {
    (void)buf, (void)bytes, (void)what;
    return WN_OK;
}

static int group_sum_floats(void *user, float *buf, size_t count) {
    (void)user, (void)buf, (void)count;
    return WN_OK;
}
static int group_broadcast(void *user, void *buf, size_t bytes) {
    (void)user, (void)buf, (void)bytes;
    return WN_OK;
}

int wn_dist_start(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_dist.group = (wn_rank_group){0, 1, 0, NULL, group_sum_floats, group_broadcast};
    int n = launcher_size();
    if (n > 1)
        return wn_fail("started as one of %d processes (mpirun/srun), but this wastenet was built "
                       "without MPI: install libopenmpi-dev and rebuild (tools/setup.sh), or "
                       "run one process",
                       n);
    return WN_OK;
}

void wn_dist_finish(void) {}

void wn_dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    exit(status);
}

#endif

const wn_rank_group *wn_dist_group(void) {
    if (!g_dist.group.sum_floats) { /* before wn_dist_start: a group of one */
        g_dist.group.size = 1;
        g_dist.group.sum_floats = group_sum_floats;
        g_dist.group.broadcast = group_broadcast;
    }
    return &g_dist.group;
}

int wn_dist_bucket_bytes(int overlaps, size_t *bytes) {
    /* 25 MiB: PyTorch DDP's bucket_cap_mb; IRv2 at boundary 500 (130 MiB) gives 6 */
    double mb = overlaps ? 25.0 : 0.0;
    int bad = 0;
    const char *v = getenv("WN_DIST_BUCKET_MB");
    if (wn_dist_is_root() && v && *v) {
        char *end = NULL;
        double x = strtod(v, &end);
        if (end == v || *end || !(x >= 0.0 && x <= 4096.0)) bad = 1;
        else mb = x;
    }
    double msg[2] = {mb, bad};
    if (wn_dist_broadcast(msg, sizeof msg, "the gradient bucket size") != WN_OK) return WN_ERR;
    if (msg[1] != 0.0)
        return wn_fail("WN_DIST_BUCKET_MB=%s on rank 0: give the gradient bucket size in MiB, "
                       "a number from 0 (one sum after backward) to 4096",
                       wn_dist_is_root() && v ? v : "?");
    *bytes = (size_t)(msg[0] * 1048576.0);
    return WN_OK;
}

/* The first line where a and b differ, into line (cut to fit). */
static void first_difference(const char *a, const char *b, char *line, size_t size) {
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) {
            snprintf(line, size, "'%.*s' where rank 0 has '%.*s'", (int)lb, b, (int)la, a);
            return;
        }
        a += la + (ea ? 1 : 0), b += lb + (eb ? 1 : 0);
    }
    snprintf(line, size, "(no line)");
}

int wn_dist_check_same(const char *text, const char *what) {
    if (g_dist.size < 2) return WN_OK;
    char root[4096];
    memset(root, 0, sizeof root);
    snprintf(root, sizeof root, "%s", text);
    if (wn_dist_broadcast(root, sizeof root, what) != WN_OK) return WN_ERR;
    char mine[4096];
    memset(mine, 0, sizeof mine);
    snprintf(mine, sizeof mine, "%s", text);
    int differs = strcmp(root, mine) != 0;
    /* which ranks differ: one bit each of the first 64 */
    long bits = differs && g_dist.rank < 63 ? 1L << g_dist.rank : 0, n_diff = differs;
    long v[2] = {bits, n_diff};
    if (wn_dist_sum_longs(v, 2, what) != WN_OK) return WN_ERR;
    if (v[1] == 0) return WN_OK;
    char ranks[256] = "";
    size_t used = 0;
    for (int r = 0; r < 63 && r < g_dist.size; r++)
        if (v[0] & (1L << r)) {
            int w = snprintf(ranks + used, sizeof ranks - used, "%s%d", used ? ", " : "", r);
            if (w < 0 || (size_t)w >= sizeof ranks - used) break;
            used += (size_t)w;
        }
    if (differs) {
        char line[512];
        first_difference(root, mine, line, sizeof line);
        return wn_fail("%s: rank %d of %d has %s: every rank must be started with the same "
                       "options (one mpirun command line)",
                       what, g_dist.rank, g_dist.size, line);
    }
    return wn_fail("%s: rank%s %s of %d %s other options than rank 0: every rank must be started "
                   "with the same options (one mpirun command line)",
                   what, v[1] > 1 ? "s" : "", ranks, g_dist.size, v[1] > 1 ? "have" : "has");
}
