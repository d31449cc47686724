/* Snapshot mode against real targets (tests/targets/vg_target_snapshot.c): the core holds every
 * thread's memory as it was at the freeze instant; the target sees nothing (no SIGCHLD, no child
 * in waitpid, no zombie; its children, fds and output unchanged; never left stopped), also in
 * another PID namespace; MADV_DONTFORK / MADV_WIPEONFORK memory is in the core; seccomp filters
 * that forbid clone (or would kill for it) make it fall back to Stop mode with the reason, and a
 * filter that allows clone does not; unpopulated memory is not read and zero pages are holes;
 * the dump's memory stays bounded whatever the target's size. */
#include "config/error.h"
#include "engine/dump/dump.h"
#include "tests/dump/core_test.h"
#include "tests/lib/vg_test.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SNAP(t) (&(struct vg_dump_opts){(t), VG_DUMP_SNAPSHOT, VG_DUMP_KEEP_FREE_DEFAULT})
#define STOP(t) (&(struct vg_dump_opts){(t), VG_DUMP_STOP, VG_DUMP_KEEP_FREE_DEFAULT})

/* ---- the target ---- */

struct target {
    pid_t pid;   /* in our PID namespace */
    pid_t outer; /* the process to wait for: the target, or its PID-namespace parent */
    int out;     /* its stdout */
    char buf[8192];
    size_t len;
};

/* tests/targets/vg_target_snapshot.c, named by CTest's environment. */
static const char *target_path(void)
{
    const char *path = getenv("VG_TARGET_SNAPSHOT");
    return path ? path : "vg_target_snapshot";
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The next line of output within ms, into line; 0 on timeout. */
static int target_line(struct target *t, char *line, size_t n, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        char *nl = memchr(t->buf, '\n', t->len);
        if (nl) {
            size_t l = (size_t)(nl - t->buf);
            snprintf(line, n, "%.*s", (int)l, t->buf);
            t->len -= l + 1;
            memmove(t->buf, nl + 1, t->len);
            return 1;
        }
        uint64_t now = now_ms();
        if (now >= end || t->len == sizeof(t->buf))
            return 0;
        struct pollfd p = {t->out, POLLIN, 0};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            return 0;
        ssize_t r = read(t->out, t->buf + t->len, sizeof(t->buf) - t->len);
        if (r <= 0)
            return 0;
        t->len += (size_t)r;
    }
}

/* The first line starting with prefix printed from now on (what is already buffered is
 * skipped), waiting up to ms for it: the target's state after what the test just did. */
static int target_fresh(struct target *t, const char *prefix, char *line, size_t n, int ms)
{
    char l[512];
    while (target_line(t, l, sizeof(l), 0))
        ;
    uint64_t end = now_ms() + (uint64_t)ms;
    for (uint64_t now; (now = now_ms()) < end;) {
        if (!target_line(t, l, sizeof(l), (int)(end - now)))
            break;
        if (strncmp(l, prefix, strlen(prefix)) == 0) {
            snprintf(line, n, "%s", l);
            return 1;
        }
    }
    return 0;
}

static void target_start(struct target *t, int new_pidns, const char *mode, const char *arg)
{
    int fds[2], pidp[2];
    memset(t, 0, sizeof(*t));
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(pidp), 0);
    t->outer = fork();
    assert_true(t->outer >= 0);
    if (t->outer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        close(pidp[0]);
        if (new_pidns) {
            if (unshare(CLONE_NEWPID) != 0)
                _exit(77);
            pid_t inner = fork();
            if (inner > 0) {
                /* in our namespace the target is `inner` */
                if (write(pidp[1], &inner, sizeof(inner)) != sizeof(inner))
                    _exit(1);
                int st;
                waitpid(inner, &st, 0);
                _exit(0);
            }
            if (inner < 0)
                _exit(1);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        } else {
            pid_t self = getpid();
            if (write(pidp[1], &self, sizeof(self)) != sizeof(self))
                _exit(1);
        }
        execl(target_path(), "vg_target_snapshot", mode, arg, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    close(pidp[1]);
    t->out = fds[0];
    assert_int_equal(read(pidp[0], &t->pid, sizeof(t->pid)), sizeof(t->pid));
    close(pidp[0]);
}

/* Lines up to "ready"; each one before it goes to on_line. */
static void target_ready(struct target *t, void (*on_line)(const char *, void *), void *arg)
{
    char l[512];
    while (target_line(t, l, sizeof(l), 60000)) {
        if (strcmp(l, "ready") == 0)
            return;
        if (on_line)
            on_line(l, arg);
    }
    fail_msg("target %d did not get ready", (int)t->pid);
}

static void target_stop(struct target *t)
{
    if (t->pid > 0)
        kill(t->pid, SIGKILL);
    if (t->outer > 0) {
        kill(t->outer, SIGKILL);
        waitpid(t->outer, NULL, 0);
    }
    close(t->out);
}

/* Processes whose parent is pid (the kernel's own list, every thread's children). */
static int count_children(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[384], buf[512];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/children", (int)pid, e->d_name);
        read_text(p2, buf, sizeof(buf));
        for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
            n++;
    }
    closedir(d);
    return n;
}

/* The first child of pid the kernel lists (its threads' children files), or 0. */
static pid_t first_child(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    pid_t found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char p2[384];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/children", (int)pid, e->d_name);
        read_text(p2, buf, sizeof(buf));
        found = (pid_t)atoi(buf);
    }
    closedir(d);
    return found;
}

/* After a dump: the target runs (not stopped, not traced) and has its own children only. */
static void assert_left_alone(pid_t pid, int own_children)
{
    long tracer = -1;
    char st = '?';
    int kids = -1;
    for (int i = 0; i < 2000; i++) { /* up to 10 s */
        st = proc_state(pid, &tracer);
        kids = count_children(pid);
        if (st != 't' && st != 'T' && tracer == 0 && kids == own_children)
            break;
        usleep(5000);
    }
    if (st == 't' || st == 'T' || tracer != 0 || kids != own_children)
        fail_msg("pid %d: state %c, tracer %ld, %d children (expected %d)", (int)pid, st, tracer,
                 kids, own_children);
}

/* ---- consistency ---- */

struct counters {
    size_t n;
    uint64_t addr[16][4]; /* data, heap, mmap, stack */
};

static void on_addr(const char *l, void *arg)
{
    struct counters *c = arg;
    unsigned i;
    unsigned long long a[4];
    if (sscanf(l, "addr %u %llx %llx %llx %llx", &i, &a[0], &a[1], &a[2], &a[3]) == 5 && i < 16) {
        for (int k = 0; k < 4; k++)
            c->addr[i][k] = a[k];
        if (i + 1 > c->n)
            c->n = i + 1;
    }
}

/* Each thread writes data, heap, mmap, stack in that order, as fast as it can: a core of one
 * instant has data >= heap >= mmap >= stack >= data - 1 for every thread. Memory read while the
 * target runs would not (the counters move by millions per second). */
static void check_counters(const struct counters *c, const unsigned char *core, size_t len,
                           uint64_t *sum)
{
    for (size_t i = 0; i < c->n; i++) {
        uint64_t v[4];
        for (int k = 0; k < 4; k++)
            if (core_read(core, len, c->addr[i][k], &v[k], 8) != 0)
                fail_msg("thread %zu: counter %d at 0x%llx not in the core", i, k,
                         (unsigned long long)c->addr[i][k]);
        if (!(v[0] >= v[1] && v[1] >= v[2] && v[2] >= v[3] && v[3] + 1 >= v[0] && v[3] > 0))
            fail_msg("thread %zu: data %llu heap %llu mmap %llu stack %llu: not one instant", i,
                     (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
                     (unsigned long long)v[3]);
        *sum += v[0];
    }
}

static void test_consistency(void **state)
{
    (void)state;
    static const enum vg_dump_type types[] = {VG_DUMP_FULL, VG_DUMP_WITH_HEAP};
    struct target t;
    struct counters c;
    memset(&c, 0, sizeof(c));
    target_start(&t, 0, "counter", "4");
    target_ready(&t, on_addr, &c);
    assert_int_equal(c.n, 4);
    uint64_t last = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < 2; k++) {
            struct mem_sink s = {0};
            struct vg_dump_result res;
            char err[256];
            int rc =
                vg_coredump_write(t.pid, SNAP(types[k]), mem_write, &s, &res, err, sizeof(err));
            if (rc)
                fail_msg("%s", err);
            if (res.mode != VG_DUMP_SNAPSHOT)
                fail_msg("not a snapshot: %s", res.fallback);
            assert_int_equal(res.threads, 5);
            uint64_t sum = 0;
            check_counters(&c, s.data, s.len, &sum);
            assert_true(sum > last); /* the counters ran on between dumps */
            last = sum;
            free(s.data);
        }
    }
    assert_left_alone(t.pid, 0);
    target_stop(&t);
}

/* ---- the target sees nothing ---- */

struct waiter {
    unsigned long sigchld, reaped, other, tick;
    int fds, child;
};

static int parse_waiter(const char *l, struct waiter *w)
{
    return sscanf(l, "waiter sigchld %lu reaped %lu other %lu fds %d child %d tick %lu",
                  &w->sigchld, &w->reaped, &w->other, &w->fds, &w->child, &w->tick) == 6;
}

static void sees_nothing(int new_pidns)
{
    struct target t;
    char l[512];
    struct waiter w0, w1;
    target_start(&t, new_pidns, "waiter", "");
    target_ready(&t, NULL, NULL);
    assert_true(target_fresh(&t, "waiter ", l, sizeof(l), 10000) && parse_waiter(l, &w0));
    assert_int_equal(w0.sigchld, 0);
    assert_int_equal(w0.reaped, 0);
    for (int i = 0; i < 5; i++) {
        struct mem_sink s = {.discard = 1};
        struct vg_dump_result res;
        char err[256];
        int rc =
            vg_coredump_write(t.pid, SNAP(VG_DUMP_FULL), mem_write, &s, &res, err, sizeof(err));
        if (rc)
            fail_msg("%s", err);
        if (res.mode != VG_DUMP_SNAPSHOT)
            fail_msg("not a snapshot: %s", res.fallback);
        assert_left_alone(t.pid, 1); /* its own child only: the clone is reaped */
    }
    /* Ticks went on; no signal, nothing reaped, no waitpid error, same fds, same child. */
    assert_true(target_fresh(&t, "waiter ", l, sizeof(l), 10000) && parse_waiter(l, &w1));
    if (w1.sigchld || w1.reaped || w1.other != w0.other || w1.fds != w0.fds ||
        w1.child != w0.child || w1.tick <= w0.tick)
        fail_msg("before: %lu/%lu/%lu fds %d child %d tick %lu; after: %s", w0.sigchld, w0.reaped,
                 w0.other, w0.fds, w0.child, w0.tick, l);
    target_stop(&t);
}

static void test_sees_nothing(void **state)
{
    (void)state;
    sees_nothing(0);
}

static void test_other_pid_namespace(void **state)
{
    (void)state;
    if (geteuid() != 0)
        VG_SKIP("a PID namespace needs root");
    sees_nothing(1);
}

/* A sink that never returns: the dump hangs with its clone alive. */
static int stuck_write(void *ctx, const void *buf, size_t len)
{
    (void)ctx, (void)buf, (void)len;
    for (;;)
        pause();
    return 0;
}

/* The dumping process dies (SIGKILL) while the clone lives: the clone dies with it (it never
 * runs), and the target runs on, neither stopped nor traced. What stays is the clone's zombie,
 * the target's child until it exits (docs/dumps.md, Limits). */
static void test_clone_dies_with_vigil(void **state)
{
    (void)state;
    struct target t;
    target_start(&t, 0, "big", "64");
    target_ready(&t, NULL, NULL);
    pid_t dumper = fork();
    assert_true(dumper >= 0);
    if (dumper == 0) {
        char err[256];
        struct mem_sink s = {0};
        vg_coredump_write(t.pid, SNAP(VG_DUMP_FULL), stuck_write, &s, NULL, err, sizeof(err));
        _exit(1);
    }
    pid_t clone = 0;
    for (int i = 0; i < 2000 && !clone; i++) { /* up to 10 s */
        clone = first_child(t.pid);
        if (!clone)
            usleep(5000);
    }
    if (!clone)
        fail_msg("no clone appeared under pid %d", (int)t.pid);
    for (int i = 0; i < 2000 && proc_state(clone, NULL) != 't'; i++)
        usleep(5000);
    assert_int_equal(proc_state(clone, NULL), 't'); /* held in a ptrace stop, not running */
    /* the target runs again: the clone() call is over (vigil killed within it takes the target
     * with it, docs/dumps.md, Limits; on a loaded machine that window lasts a while) */
    char l[512];
    assert_true(target_fresh(&t, "tick ", l, sizeof(l), 30000));
    kill(dumper, SIGKILL);
    waitpid(dumper, NULL, 0);
    char st = '?';
    for (int i = 0; i < 2000; i++) {
        st = proc_state(clone, NULL);
        if (st == 'Z' || st == '?')
            break;
        usleep(5000);
    }
    if (st != 'Z' && st != '?')
        fail_msg("the clone %d is in state %c after its tracer died", (int)clone, st);
    /* generous: a machine at load 10+ delays the target's next tick by seconds; a target left
     * stopped never ticks */
    if (!target_fresh(&t, "tick ", l, sizeof(l), 30000)) {
        long tr = -1;
        char s2 = proc_state(t.pid, &tr);
        fail_msg("the target printed nothing for 30 s after its tracer died: state %c, tracer %ld",
                 s2, tr);
    }
    long tracer = -1;
    char ts = proc_state(t.pid, &tracer);
    if (ts == 't' || ts == 'T' || tracer != 0)
        fail_msg("target left in state %c, tracer %ld", ts, tracer);
    target_stop(&t);
}

/* ---- what a fork does not copy ---- */

struct df_addrs {
    unsigned long long df, wf;
};

static void on_df(const char *l, void *arg)
{
    struct df_addrs *a = arg;
    sscanf(l, "dontfork %llx %llx", &a->df, &a->wf);
}

static void test_dontfork(void **state)
{
    (void)state;
    struct target t;
    struct df_addrs a = {0, 0};
    target_start(&t, 0, "dontfork", "");
    target_ready(&t, on_df, &a);
    assert_true(a.df && a.wf);
    struct mem_sink s = {0};
    struct vg_dump_result res;
    char err[256];
    int rc = vg_coredump_write(t.pid, SNAP(VG_DUMP_FULL), mem_write, &s, &res, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    if (res.mode != VG_DUMP_SNAPSHOT)
        fail_msg("not a snapshot: %s", res.fallback);
    unsigned char *b = malloc(1u << 20);
    assert_int_equal(core_read(s.data, s.len, a.df, b, 1u << 20), 0);
    for (size_t i = 0; i < (1u << 20); i++)
        if (b[i] != (unsigned char)(0xd0 + i % 13))
            fail_msg("MADV_DONTFORK byte %zu: 0x%02x", i, b[i]);
    assert_int_equal(core_read(s.data, s.len, a.wf, b, 1u << 20), 0);
    for (size_t i = 0; i < (1u << 20); i++)
        if (b[i] != (unsigned char)(0x70 + i % 11))
            fail_msg("MADV_WIPEONFORK byte %zu: 0x%02x", i, b[i]);
    free(b);
    free(s.data);
    assert_left_alone(t.pid, 0);
    target_stop(&t);
}

/* ---- seccomp ---- */

static void seccomp_case(const char *act, int expect_snapshot, const char *reason)
{
    struct target t;
    char l[512];
    target_start(&t, 0, "seccomp", act);
    target_ready(&t, NULL, NULL);
    struct mem_sink s = {.discard = 1};
    struct vg_dump_result res;
    char err[256];
    int rc =
        vg_coredump_write(t.pid, SNAP(VG_DUMP_WITH_HEAP), mem_write, &s, &res, err, sizeof(err));
    if (rc)
        fail_msg("%s: %s", act, err);
    if (expect_snapshot && res.mode != VG_DUMP_SNAPSHOT)
        fail_msg("%s: not a snapshot: %s", act, res.fallback);
    if (!expect_snapshot) {
        assert_int_equal(res.mode, VG_DUMP_STOP);
        if (!strstr(res.fallback, "seccomp") || !strstr(res.fallback, reason))
            fail_msg("%s: fallback reason: %s", act, res.fallback);
    }
    /* still alive and ticking: the clone was never tried where it would have killed */
    assert_true(target_fresh(&t, "tick ", l, sizeof(l), 10000));
    assert_left_alone(t.pid, 0);
    target_stop(&t);
}

static void test_seccomp(void **state)
{
    (void)state;
    seccomp_case("errno", 0, "Operation not permitted");
    seccomp_case("kill", 0, "kill");
    seccomp_case("allow-other", 1, NULL);
}

/* ---- sparse and bounded ---- */

static void on_sparse(const char *l, void *arg)
{
    unsigned long long *a = arg;
    sscanf(l, "sparse %llx %llx %llx", &a[0], &a[1], &a[2]);
}

/* 64 GiB reserved with 64 pages touched, 1 GiB shared with 4 touched, 16 MiB of zero pages:
 * none of it is read (the target's shared memory does not grow either) nor written. */
static void test_sparse(void **state)
{
    (void)state;
    struct target t;
    unsigned long long a[3] = {0, 0, 0};
    char dir[] = "/tmp/vg_snap_sparse_XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    target_start(&t, 0, "sparse", "");
    target_ready(&t, on_sparse, a);
    assert_true(a[0] && a[1] && a[2]);
    uint64_t shmem0 = status_kb(t.pid, "RssShmem:");
    for (int m = 0; m < 2; m++) {
        struct vg_dump_opts o = {VG_DUMP_FULL, m ? VG_DUMP_STOP : VG_DUMP_SNAPSHOT, 0};
        struct vg_dump_result res;
        struct mem_sink s = {0};
        int rc = vg_coredump_write(t.pid, &o, mem_write, &s, &res, err, sizeof(err));
        if (rc)
            fail_msg("%s", err);
        /* the 64 pages are there, the rest of the reservation reads as zeros */
        for (int i = 0; i < 64; i++) {
            uint64_t v = 0;
            assert_int_equal(core_read(s.data, s.len, a[0] + ((uint64_t)i << 30), &v, 8), 0);
            assert_int_equal(v, 0x5a5a5a5a5a5a0000ull + (uint64_t)i);
            assert_int_equal(core_read(s.data, s.len, a[0] + ((uint64_t)i << 30) + 4096, &v, 8), 0);
            assert_int_equal(v, 0);
        }
        for (int i = 0; i < 4; i++) {
            uint64_t v = 0;
            assert_int_equal(core_read(s.data, s.len, a[2] + ((uint64_t)i << 28), &v, 8), 0);
            assert_int_equal(v, 0x5b5b5b5b5b5b0000ull + (uint64_t)i);
        }
        if (res.data > (96ull << 20) || s.len > (96ull << 20))
            fail_msg("%s: read %llu bytes, streamed %zu", vg_dump_mode_name(o.mode),
                     (unsigned long long)res.data, s.len);
        free(s.data);

        snprintf(path, sizeof(path), "%s/core.%d", dir, m);
        rc = vg_coredump_to_file(t.pid, &o, path, &res, err, sizeof(err));
        if (rc)
            fail_msg("%s", err);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        /* on disk: the touched pages, the rest of the process, not the 16 MiB of zeros */
        if ((uint64_t)sb.st_blocks * 512 > (12ull << 20))
            fail_msg("%s: %llu bytes on disk for a %llu-byte core", vg_dump_mode_name(o.mode),
                     (unsigned long long)sb.st_blocks * 512, (unsigned long long)sb.st_size);
        unlink(path);
    }
    rmdir(dir);
    uint64_t shmem1 = status_kb(t.pid, "RssShmem:");
    if (shmem1 > shmem0 + 1024)
        fail_msg("the target's shared memory grew from %llu to %llu KiB",
                 (unsigned long long)shmem0, (unsigned long long)shmem1);
    assert_left_alone(t.pid, 0);
    target_stop(&t);
}

/* Streaming a 1 GiB target, the dumping process grows by a few tens of MB at most (peak RSS of
 * a fresh process that does only that), in both modes. */
static void test_bounded_memory(void **state)
{
    (void)state;
    struct target t;
    target_start(&t, 0, "big", "1024");
    target_ready(&t, NULL, NULL);
    for (int m = 0; m < 2; m++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t child = fork();
        if (child == 0) {
            char err[256];
            struct mem_sink s = {.discard = 1};
            struct vg_dump_result res;
            uint64_t before = status_kb(0, "VmHWM:");
            int rc = vg_coredump_write(t.pid, m ? STOP(VG_DUMP_WITH_HEAP) : SNAP(VG_DUMP_WITH_HEAP),
                                       mem_write, &s, &res, err, sizeof(err));
            uint64_t after = status_kb(0, "VmHWM:");
            dprintf(p[1], "%d %llu %llu %zu %d %s", rc, (unsigned long long)before,
                    (unsigned long long)after, s.len, (int)res.mode, err);
            _exit(0);
        }
        close(p[1]);
        char msg[512] = "";
        ssize_t n = read(p[0], msg, sizeof(msg) - 1);
        msg[n > 0 ? n : 0] = '\0';
        close(p[0]);
        waitpid(child, NULL, 0);
        int rc = -1, mode = -1;
        unsigned long long before = 0, after = 0;
        size_t streamed = 0;
        sscanf(msg, "%d %llu %llu %zu %d", &rc, &before, &after, &streamed, &mode);
        print_message("mode %s: peak RSS %llu -> %llu KiB for %zu bytes streamed\n",
                      m ? "Stop" : "Snapshot", before, after, streamed);
        if (rc != 0)
            fail_msg("dump: %s", msg);
        assert_int_equal(mode, m ? VG_DUMP_STOP : VG_DUMP_SNAPSHOT);
        assert_true(streamed > (1000ull << 20));
        if (after - before > 64 * 1024)
            fail_msg("peak RSS grew by %llu KiB", after - before);
    }
    assert_left_alone(t.pid, 0);
    target_stop(&t);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_sees_nothing),
        cmocka_unit_test(test_other_pid_namespace),
        cmocka_unit_test(test_dontfork),
        cmocka_unit_test(test_seccomp),
        cmocka_unit_test(test_clone_dies_with_vigil),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_bounded_memory),
    };
    signal(SIGPIPE, SIG_IGN);
    return VG_TEST_MAIN(tests, NULL, NULL);
}
