/* vg_coredump_write / vg_coredump_to_file against real target processes: streaming into a memory
 * sink, error paths (no such process, exit during the dump, sink quota, full disk, permission,
 * existing file), thread churn during attach, and the target running on correctly afterwards. */
#include "config/error.h"
#include "engine/dump/dump.h"
#include "tests/lib/vg_test.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct target {
    pid_t pid;
    int out; /* read end of its stdout */
    char line[256];
    unsigned long tick, reads, sleeps, spins, errors;
};

/* tests/targets/vg_target_threads.c, named by CTest's environment. */
static const char *target_path(void)
{
    const char *path = getenv("VG_TARGET_THREADS");
    return path ? path : "vg_target_threads";
}

/* Reads status lines for up to ms milliseconds; returns 1 if at least one tick line came. */
static int target_read(struct target *t, int ms)
{
    char buf[4096];
    size_t len = 0;
    int got = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        struct pollfd p = {t->out, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = read(t->out, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            if (sscanf(buf, "tick %lu reads %lu sleeps %lu spins %lu errors %lu", &t->tick,
                       &t->reads, &t->sleeps, &t->spins, &t->errors) == 5)
                got = 1;
            snprintf(t->line, sizeof(t->line), "%.200s", buf);
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
    }
    return got;
}

static void target_start(struct target *t, const char *mode)
{
    int fds[2];
    memset(t, 0, sizeof(*t));
    assert_int_equal(pipe(fds), 0);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed or timed-out test */
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(target_path(), "vg_target_threads", mode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    t->out = fds[0];
    /* Running a few ticks: all threads are parked in their functions. */
    for (int i = 0; i < 50 && t->tick < 3; i++)
        target_read(t, 100);
    assert_true(t->tick >= 3);
}

static void target_stop(struct target *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    close(t->out);
}

/* After a dump the target must go on: more ticks, all threads progressing, no syscall error. */
static void assert_target_healthy(struct target *t)
{
    unsigned long tick = t->tick, reads = t->reads, sleeps = t->sleeps, spins = t->spins;
    target_read(t, 1000);
    assert_true(t->tick >= tick + 5);
    assert_true(t->reads >= reads + 5);
    assert_true(t->sleeps >= sleeps + 2);
    assert_true(t->spins > spins);
    assert_int_equal(t->errors, 0);
}

struct mem_sink {
    unsigned char *data;
    size_t len, cap;
    size_t limit; /* return VG_EQUOTA beyond this many bytes (0: none) */
    pid_t kill_pid;
    int calls;
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
    struct mem_sink *s = ctx;
    s->calls++;
    if (s->kill_pid > 0) {
        /* The process dies in the middle of the dump: wait until its memory is gone. */
        char path[64], st[512];
        kill(s->kill_pid, SIGKILL);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)s->kill_pid);
        for (int i = 0; i < 2000; i++) {
            int fd = open(path, O_RDONLY);
            if (fd < 0)
                break;
            ssize_t n = read(fd, st, sizeof(st) - 1);
            close(fd);
            st[n > 0 ? n : 0] = '\0';
            const char *p = strrchr(st, ')');
            if (!p || p[2] == 'Z' || p[2] == 'X')
                break;
            usleep(1000);
        }
        s->kill_pid = 0;
    }
    if (s->limit && s->len + len > s->limit)
        return VG_EQUOTA;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 20;
        while (cap < s->len + len)
            cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d)
            return VG_ENOMEM;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, len);
    s->len += len;
    return 0;
}

static void test_type_names(void **state)
{
    (void)state;
    enum vg_dump_type t;
    const char *names[] = {"WithHeap", "Full", "Mini", "Triage"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(vg_dump_type_parse(names[i], &t), 0);
        assert_int_equal(t, i);
        assert_string_equal(vg_dump_type_name(t), names[i]);
    }
    assert_int_equal(vg_dump_type_parse("withheap", &t), 0);
    assert_int_equal(t, VG_DUMP_WITH_HEAP);
    assert_int_equal(vg_dump_type_parse("FULL", &t), 0);
    assert_int_equal(t, VG_DUMP_FULL);
    assert_int_equal(vg_dump_type_parse("Heap", &t), VG_EINVAL);
    assert_int_equal(vg_dump_type_parse("", &t), VG_EINVAL);
    assert_string_equal(vg_dump_type_name((enum vg_dump_type)42), "?");
}

/* The streamed core is one well-formed ELF core: header, notes, PT_LOADs in file order. */
static void test_stream_to_memory(void **state)
{
    (void)state;
    struct target t;
    struct mem_sink s = {0};
    struct vg_dump_result res;
    char err[256];
    target_start(&t, NULL);
    int rc = vg_coredump_write(t.pid, VG_DUMP_WITH_HEAP, mem_write, &s, &res, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(res.bytes, s.len);
    assert_int_equal(res.threads, 5);
    assert_true(res.freeze_us > 0 && res.freeze_us <= res.wall_us);
    assert_true(s.len > sizeof(Elf64_Ehdr));
    const Elf64_Ehdr *eh = (const void *)s.data;
    assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
    assert_int_equal(eh->e_type, ET_CORE);
    assert_int_equal(eh->e_machine, EM_X86_64);
    assert_int_equal(eh->e_phnum, res.segments + 1);
    const Elf64_Phdr *ph = (const void *)(s.data + eh->e_phoff);
    assert_int_equal(ph[0].p_type, PT_NOTE);
    uint64_t end = 0;
    unsigned prstatus = 0;
    for (const unsigned char *n = s.data + ph[0].p_offset;
         n < s.data + ph[0].p_offset + ph[0].p_filesz;) {
        const uint32_t *h = (const void *)n;
        prstatus += h[2] == NT_PRSTATUS;
        n += 12 + ((h[0] + 3) & ~3u) + ((h[1] + 3) & ~3u);
    }
    assert_int_equal(prstatus, 5);
    for (unsigned i = 1; i <= res.segments; i++) {
        assert_int_equal(ph[i].p_type, PT_LOAD);
        assert_true(ph[i].p_filesz <= ph[i].p_memsz);
        assert_int_equal(ph[i].p_offset % 4096, 0);
        if (ph[i].p_offset + ph[i].p_filesz > end)
            end = ph[i].p_offset + ph[i].p_filesz;
    }
    assert_int_equal(end, s.len);
    assert_target_healthy(&t);
    target_stop(&t);
    free(s.data);
}

static void test_no_such_process(void **state)
{
    (void)state;
    struct mem_sink s = {0};
    char err[256];
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0); /* a pid that just stopped existing */
    int rc = vg_coredump_write(pid, VG_DUMP_FULL, mem_write, &s, NULL, err, sizeof(err));
    assert_int_equal(rc, VG_ESRCH);
    assert_non_null(strstr(err, "no such process"));
    assert_int_equal(s.len, 0);
}

static void test_exit_mid_dump(void **state)
{
    (void)state;
    struct target t;
    struct mem_sink s = {0};
    struct vg_dump_result res;
    char err[256];
    target_start(&t, NULL);
    s.kill_pid = t.pid;
    int rc = vg_coredump_write(t.pid, VG_DUMP_FULL, mem_write, &s, &res, err, sizeof(err));
    assert_int_equal(rc, VG_EEXITED);
    assert_non_null(strstr(err, "exited during the dump"));
    /* We were its tracer and its parent: the exit may already be collected. */
    waitpid(t.pid, NULL, WNOHANG);
    t.pid = 0;
    target_stop(&t);
    free(s.data);
}

static void test_sink_quota(void **state)
{
    (void)state;
    struct target t;
    struct mem_sink s = {0};
    char err[256];
    target_start(&t, NULL);
    s.limit = 1 << 20;
    int rc = vg_coredump_write(t.pid, VG_DUMP_FULL, mem_write, &s, NULL, err, sizeof(err));
    assert_int_equal(rc, VG_EQUOTA);
    assert_non_null(strstr(err, "quota"));
    assert_target_healthy(&t);
    target_stop(&t);
    free(s.data);
}

static void test_thread_churn(void **state)
{
    (void)state;
    struct target t;
    char err[256];
    target_start(&t, "churn");
    for (int i = 0; i < 5; i++) {
        struct mem_sink s = {0};
        struct vg_dump_result res;
        int rc = vg_coredump_write(t.pid, VG_DUMP_MINI, mem_write, &s, &res, err, sizeof(err));
        if (rc)
            fail_msg("dump %d: %s", i, err);
        assert_true(res.threads >= 6);
        free(s.data);
    }
    assert_target_healthy(&t);
    target_stop(&t);
}

static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] ? p[2] : '?';
}

/* A process stopped by SIGSTOP is dumped and stays stopped; SIGCONT resumes it as usual. */
static void test_stopped_process(void **state)
{
    (void)state;
    struct target t;
    struct mem_sink s = {0};
    struct vg_dump_result res;
    char err[256];
    target_start(&t, NULL);
    kill(t.pid, SIGSTOP);
    for (int i = 0; i < 200 && proc_state(t.pid) != 'T'; i++)
        usleep(1000);
    assert_int_equal(proc_state(t.pid), 'T');
    int rc = vg_coredump_write(t.pid, VG_DUMP_MINI, mem_write, &s, &res, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(res.threads, 5);
    /* detached tracees re-enter the group stop: stopped again, not running */
    for (int i = 0; i < 2000 && proc_state(t.pid) != 'T'; i++)
        usleep(1000);
    assert_int_equal(proc_state(t.pid), 'T');
    kill(t.pid, SIGCONT);
    target_read(&t, 200);
    assert_target_healthy(&t);
    target_stop(&t);
    free(s.data);
}

/* Program headers of the PT_LOADs of an in-memory core (e_phnum < PN_XNUM here). */
static size_t core_loads(const unsigned char *core, size_t len, const Elf64_Phdr **out)
{
    const Elf64_Ehdr *eh = (const void *)core;
    assert_true(len >= sizeof(*eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
    assert_true(eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) <= len);
    const Elf64_Phdr *ph = (const void *)(core + eh->e_phoff);
    assert_int_equal(ph[0].p_type, PT_NOTE);
    *out = ph + 1;
    return eh->e_phnum - 1u;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    unsigned char *d = malloc((size_t)sb.st_size + 1);
    assert_non_null(d);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, d + got, (size_t)sb.st_size - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return d;
}

/* vg_coredump_to_file copies memory straight into the file (a shared mapping prepared before the
 * freeze, data at a reserved offset; grown while frozen for Mini/Triage, whose size is not
 * estimated). On a stopped target it must hold exactly the segments and bytes the streaming
 * writer produces, on tmpfs and on a disk file system. */
static void test_file_matches_stream(void **state)
{
    (void)state;
    static const enum vg_dump_type types[] = {VG_DUMP_FULL, VG_DUMP_WITH_HEAP, VG_DUMP_TRIAGE};
    static const char *const dirs[] = {"/dev/shm", "/tmp"};
    struct target t;
    char err[256];
    target_start(&t, NULL);
    kill(t.pid, SIGSTOP);
    for (int i = 0; i < 200 && proc_state(t.pid) != 'T'; i++)
        usleep(1000);
    assert_int_equal(proc_state(t.pid), 'T');
    for (size_t d = 0; d < (sizeof(dirs) / sizeof(dirs[0])); d++) {
        struct stat sb;
        if (stat(dirs[d], &sb) != 0)
            continue;
        for (size_t k = 0; k < (sizeof(types) / sizeof(types[0])); k++) {
            struct mem_sink s = {0};
            struct vg_dump_result rs, rf;
            char path[128];
            snprintf(path, sizeof(path), "%s/vg_core_match_%d_%zu", dirs[d], (int)getpid(), k);
            unlink(path);
            int rc = vg_coredump_write(t.pid, types[k], mem_write, &s, &rs, err, sizeof(err));
            if (rc)
                fail_msg("stream %s: %s", vg_dump_type_name(types[k]), err);
            rc = vg_coredump_to_file(t.pid, types[k], path, &rf, err, sizeof(err));
            if (rc)
                fail_msg("file %s: %s", path, err);
            size_t flen;
            unsigned char *f = read_all(path, &flen);
            unlink(path);
            assert_int_equal(rf.bytes, flen);
            assert_int_equal(rs.bytes, s.len);
            assert_int_equal(rf.segments, rs.segments);
            const Elf64_Phdr *ps, *pf;
            size_t ns = core_loads(s.data, s.len, &ps), nf = core_loads(f, flen, &pf);
            assert_int_equal(ns, nf);
            assert_int_equal(ns, rs.segments);
            for (size_t i = 0; i < ns; i++) {
                assert_int_equal(ps[i].p_type, PT_LOAD);
                assert_int_equal(pf[i].p_type, PT_LOAD);
                assert_int_equal(pf[i].p_vaddr, ps[i].p_vaddr);
                assert_int_equal(pf[i].p_memsz, ps[i].p_memsz);
                assert_int_equal(pf[i].p_filesz, ps[i].p_filesz);
                assert_int_equal(pf[i].p_flags, ps[i].p_flags);
                assert_true(pf[i].p_offset % 4096 == 0);
                assert_true(pf[i].p_offset + pf[i].p_filesz <= flen);
                assert_true(ps[i].p_offset + ps[i].p_filesz <= s.len);
                if (memcmp(f + pf[i].p_offset, s.data + ps[i].p_offset, ps[i].p_filesz) != 0)
                    fail_msg("%s %s: segment %zu at 0x%llx differs", dirs[d],
                             vg_dump_type_name(types[k]), i, (unsigned long long)ps[i].p_vaddr);
            }
            free(f);
            free(s.data);
        }
    }
    kill(t.pid, SIGCONT);
    target_read(&t, 200);
    assert_target_healthy(&t);
    target_stop(&t);
}

static void test_file_exists(void **state)
{
    (void)state;
    struct target t;
    char path[] = "/tmp/vg_core_exists_XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    target_start(&t, NULL);
    int rc = vg_coredump_to_file(t.pid, VG_DUMP_MINI, path, NULL, err, sizeof(err));
    assert_int_equal(rc, VG_EEXIST);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0); /* somebody else's file is left alone */
    unlink(path);
    target_stop(&t);
}

/* Disk full: a 1 MiB tmpfs in a private mount namespace (needs root; skipped otherwise). */
static void test_disk_full(void **state)
{
    (void)state;
    char dir[] = "/tmp/vg_core_full_XXXXXX", path[128], err[512];
    struct target t;
    if (geteuid() != 0)
        VG_SKIP("needs root for a private tmpfs");
    if (unshare(CLONE_NEWNS) != 0)
        VG_SKIP("no private mount namespace for a tmpfs: unshare: %s", strerror(errno));
    assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, "size=1m"), 0);
    snprintf(path, sizeof(path), "%s/core", dir);
    target_start(&t, NULL);
    int rc = vg_coredump_to_file(t.pid, VG_DUMP_WITH_HEAP, path, NULL, err, sizeof(err));
    assert_int_equal(rc, VG_ENOSPC);
    assert_non_null(strstr(err, "partial file removed"));
    struct stat sb;
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(errno, ENOENT);
    assert_target_healthy(&t);
    target_stop(&t);
    umount(dir);
    rmdir(dir);
}

/* Another user without CAP_SYS_PTRACE: EPERM naming the cause. */
static void test_permission(void **state)
{
    (void)state;
    struct target t;
    if (geteuid() != 0)
        VG_SKIP("needs root to switch to another user");
    target_start(&t, NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    if (child == 0) {
        char err[512] = "";
        struct mem_sink s = {0};
        close(fds[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int rc = vg_coredump_write(t.pid, VG_DUMP_MINI, mem_write, &s, NULL, err, sizeof(err));
        dprintf(fds[1], "%d %s", rc, err);
        _exit(0);
    }
    close(fds[1]);
    char msg[600] = "";
    ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int st;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int rc = atoi(msg);
    assert_true(rc == VG_EPERM || rc == VG_EACCES);
    assert_non_null(strstr(msg, "CAP_SYS_PTRACE"));
    assert_non_null(strstr(msg, "uid 0"));
    assert_target_healthy(&t);
    target_stop(&t);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),      cmocka_unit_test(test_stream_to_memory),
        cmocka_unit_test(test_no_such_process), cmocka_unit_test(test_exit_mid_dump),
        cmocka_unit_test(test_sink_quota),      cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_stopped_process), cmocka_unit_test(test_file_matches_stream),
        cmocka_unit_test(test_file_exists),     cmocka_unit_test(test_permission),
        cmocka_unit_test(test_disk_full),
    };
    signal(SIGPIPE, SIG_IGN);
    return VG_TEST_MAIN(tests, NULL, NULL);
}
