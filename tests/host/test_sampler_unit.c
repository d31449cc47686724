/* Unit tests for discovery (engine/proc.c), cgroup reading (engine/cgroup.c) and sampling
 * (engine/sampler.c) against fake /proc, /sys and cgroup trees generated per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/host/cgroup.h"
#include "engine/host/proc.h"
#include "engine/host/sampler.h"
#include "engine/runtimes/runtime.h"
#include "config/error.h"
#include "fake_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_EVENTS 32

struct events {
    int appeared, exited, changed;
    uint64_t appeared_keys[MAX_EVENTS];
    uint64_t exited_keys[MAX_EVENTS];
    int appeared_pids[MAX_EVENTS];
    int exited_pids[MAX_EVENTS];
};

static void on_appeared(struct vg_proc *p, void *arg)
{
    struct events *e = arg;
    if (e->appeared < MAX_EVENTS) {
        e->appeared_keys[e->appeared] = p->key;
        e->appeared_pids[e->appeared] = p->pid;
    }
    e->appeared++;
}

static void on_exited(struct vg_proc *p, void *arg)
{
    struct events *e = arg;
    if (e->exited < MAX_EVENTS) {
        e->exited_keys[e->exited] = p->key;
        e->exited_pids[e->exited] = p->pid;
    }
    e->exited++;
}

static void on_changed(struct vg_proc *p, void *arg)
{
    (void)p;
    ((struct events *)arg)->changed++;
}

struct fixture {
    struct fake_tree ft;
    struct vg_procfs fs;
    struct vg_proc_table *table;
    struct vg_sampler *sampler;
    struct events ev;
    struct vg_proc_scan_cb cb;
    uint64_t now; /* fake monotonic clock, ms */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    fake_tree_init(&f->ft);
    f->fs.proc_root = f->ft.proc;
    f->fs.sys_root = f->ft.sys;
    f->fs.cgroup_root = f->ft.cg;
    f->cb.appeared = on_appeared;
    f->cb.exited = on_exited;
    f->cb.changed = on_changed;
    f->cb.arg = &f->ev;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vg_sampler_destroy(f->sampler);
    vg_proc_table_destroy(f->table);
    fake_tree_cleanup(&f->ft);
    free(f);
    return 0;
}

/* Table and sampler are created after the test has laid out its tree (cgroup detection
 * happens at creation). */
static void open_table(struct fixture *f, int max_kept_fds)
{
    struct vg_proc_table_options o = {
        .exclude_pid = 0, .max_kept_fds = max_kept_fds, .detector = &vg_runtime_detector};
    assert_int_equal(vg_proc_table_create(&f->fs, &o, &f->table), 0);
    assert_int_equal(vg_sampler_create(&f->fs, &f->sampler), 0);
}

/* The runtime adapter discovery settled on (engine/runtimes/ registry), by name. */
static const char *rt(const struct vg_proc *p)
{
    return p && p->runtime ? p->runtime->name : "(none)";
}

/* A real Unix socket at root-relative rel (what the .NET runtime listens on). */
static void fake_socket(const struct fake_tree *t, const char *rel)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", t->root, rel);
    assert_true(n > 0 && (size_t)n < sizeof(a.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd); /* the socket file stays */
}

static int scan(struct fixture *f)
{
    memset(&f->ev, 0, sizeof(f->ev));
    int r = vg_proc_scan(f->table, &f->cb);
    vg_sampler_tick(f->sampler);
    return r;
}

static struct fake_proc normal_proc(int pid)
{
    struct fake_proc p = {
        .pid = pid,
        .ppid = 1,
        .comm = "worker",
        .start = 5000 + (uint64_t)pid,
        .threads = 3,
        .vsize = 10485760,
        .rss_pages = 256,
        .minflt = 1000,
        .majflt = 5,
        .cmdline = "/usr/bin/worker\0--flag\0value\0",
        .cmdline_len = 29,
        .io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n"
              "cancelled_write_bytes: 0\n",
        .exe = "/usr/bin/worker",
        .nfds = 4,
        .uid = 1000,
    };
    return p;
}

static long clk_tck(void)
{
    return sysconf(_SC_CLK_TCK);
}

/* ---- stat parsing ------------------------------------------------------------------------- */

static void test_parse_stat_normal(void **state)
{
    (void)state;
    const char *line = "42 (my proc) S 1 42 42 0 -1 4194560 100 0 3 0 250 50 0 0 20 0 7 0 "
                       "123456 2097152 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n";
    struct vg_proc_stat st;
    assert_int_equal(vg_procfs_parse_stat(line, strlen(line), &st), 0);
    assert_string_equal(st.comm, "my proc");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.minflt, 100);
    assert_int_equal(st.majflt, 3);
    assert_int_equal(st.utime, 250);
    assert_int_equal(st.stime, 50);
    assert_int_equal(st.num_threads, 7);
    assert_int_equal(st.start_ticks, 123456);
    assert_int_equal(st.vsize, 2097152);
    assert_int_equal(st.rss_pages, 300);
}

static void test_parse_stat_parens_in_comm(void **state)
{
    (void)state;
    const char *line = "7 ((a) b)) R 3 7 7 0 -1 0 1 0 2 0 10 20 0 0 20 0 1 0 99 4096 5\n";
    struct vg_proc_stat st;
    assert_int_equal(vg_procfs_parse_stat(line, strlen(line), &st), 0);
    assert_string_equal(st.comm, "(a) b)");
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.ppid, 3);
    assert_int_equal(st.start_ticks, 99);
    assert_int_equal(st.rss_pages, 5);
}

static void test_parse_stat_malformed(void **state)
{
    (void)state;
    const char *good = "7 ((a) b)) R 3 7 7 0 -1 0 1 0 2 0 10 20 0 0 20 0 1 0 99 4096 5 0\n";
    struct vg_proc_stat st;
    size_t full = strlen(good);
    /* every prefix: must return EPARSE (not enough fields) or 0, never read past len */
    for (size_t n = 0; n < full; n++) {
        char *copy = malloc(n ? n : 1); /* exact size: ASan catches reads past the end */
        memcpy(copy, good, n);
        int r = vg_procfs_parse_stat(copy, n, &st);
        assert_true(r == 0 || r == VG_EPARSE);
        if (n < strlen("7 ((a) b)) R 3 7 7 0 -1 0 1 0 2 0 10 20 0 0 20 0 1 0 99 4096 5"))
            assert_int_equal(r, VG_EPARSE);
        free(copy);
    }
    const char *bad[] = {"",
                         "garbage",
                         "1 (x",
                         "1 x) S 1",
                         "1 (x)S 1 2 3",
                         "1 (x) S a b c",
                         "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 -"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vg_procfs_parse_stat(bad[i], strlen(bad[i]), &st), VG_EPARSE);
}

/* ---- discovery ------------------------------------------------------------------------------ */

static void test_scan_normal_and_kernel_threads(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(100);
    p.cgroup = "12:memory:/app\n4:cpu,cpuacct:/app-cpu\n3:cpuacct:/wrong\n0::/app.slice/x\n";
    fake_proc_write(&f->ft, &p);
    /* kthreadd and a kernel worker flagged PF_KTHREAD */
    struct fake_proc k2 = {
        .pid = 2, .ppid = 0, .comm = "kthreadd", .flags = 0x00208040, .start = 1};
    struct fake_proc k3 = {
        .pid = 3, .ppid = 2, .comm = "kworker/0:0H", .flags = 0x04208060, .start = 2};
    /* old kernels: no flag, but ppid 2 and no cmdline */
    struct fake_proc k4 = {.pid = 4, .ppid = 2, .comm = "rcu_gp", .start = 3};
    /* a container's pid 2 and its child are ordinary processes */
    struct fake_proc c5 = normal_proc(5);
    c5.ppid = 2;
    fake_proc_write(&f->ft, &k2);
    fake_proc_write(&f->ft, &k3);
    fake_proc_write(&f->ft, &k4);
    fake_proc_write(&f->ft, &c5);
    fake_mkdir(&f->ft, "proc/self"); /* non-numeric entries are ignored */
    open_table(f, 0);

    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared, 2);
    assert_int_equal(vg_proc_table_count(f->table), 2);
    assert_null(vg_proc_table_find(f->table, 2));
    assert_null(vg_proc_table_find(f->table, 3));
    assert_null(vg_proc_table_find(f->table, 4));
    assert_non_null(vg_proc_table_find(f->table, 5));

    struct vg_proc *x = vg_proc_table_find(f->table, 100);
    assert_non_null(x);
    assert_int_equal(x->pid, 100);
    assert_int_equal(x->ns_pid, 100);
    assert_int_equal(x->nspid_count, 1);
    assert_int_equal(x->ppid, 1);
    assert_int_equal(x->uid, 1000);
    assert_string_equal(x->name, "worker");
    assert_string_equal(x->cmdline, "/usr/bin/worker --flag value");
    assert_string_equal(x->exe, "/usr/bin/worker");
    assert_string_equal(x->cgroup->v2, "/app.slice/x");
    assert_string_equal(x->cgroup->v1_memory, "/app");
    assert_string_equal(x->cgroup->v1_cpu, "/app-cpu");
    assert_string_equal(rt(x), "native");
    assert_string_equal(x->key_str, "11111111-2222-3333-4444-555555555555:100:5100");
    assert_ptr_equal(vg_proc_table_find_key(f->table, x->key), x);
    assert_string_equal(vg_proc_table_boot_id(f->table), "11111111-2222-3333-4444-555555555555");

    /* a second scan with nothing changed reports nothing */
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared + f->ev.exited + f->ev.changed, 0);

    /* iteration sees each live process once */
    int n = 0;
    for (struct vg_proc *it = vg_proc_table_next(f->table, NULL); it;
         it = vg_proc_table_next(f->table, it))
        n++;
    assert_int_equal(n, 2);
}

static void test_scan_nested_nspid(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(4242);
    p.nspid = "4242\t17\t1";
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    struct vg_proc *x = vg_proc_table_find(f->table, 4242);
    assert_non_null(x);
    assert_int_equal(x->nspid_count, 3);
    assert_int_equal(x->nspid[0], 4242);
    assert_int_equal(x->nspid[1], 17);
    assert_int_equal(x->nspid[2], 1);
    assert_int_equal(x->ns_pid, 1);
}

static void test_scan_exclude_self(void **state)
{
    struct fixture *f = *state;
    struct fake_proc a = normal_proc(100), b = normal_proc(101);
    fake_proc_write(&f->ft, &a);
    fake_proc_write(&f->ft, &b);
    struct vg_proc_table_options o = {.exclude_pid = 101};
    assert_int_equal(vg_proc_table_create(&f->fs, &o, &f->table), 0);
    assert_int_equal(vg_proc_scan(f->table, NULL), 0);
    assert_non_null(vg_proc_table_find(f->table, 100));
    assert_null(vg_proc_table_find(f->table, 101));
}

static void test_scan_pid_reuse(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(300);
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared, 1);
    uint64_t old_key = f->ev.appeared_keys[0];
    assert_true(vg_proc_table_kept_fds(f->table) > 0); /* the stat fd is kept: pread path */

    /* same pid, later start time: a different process */
    p.start += 777;
    p.comm = "other";
    fake_proc_write(&f->ft, &p);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.exited, 1);
    assert_int_equal(f->ev.appeared, 1);
    assert_int_equal(f->ev.changed, 0);
    assert_int_equal(f->ev.exited_keys[0], old_key);
    assert_int_not_equal(f->ev.appeared_keys[0], old_key);
    struct vg_proc *x = vg_proc_table_find(f->table, 300);
    assert_non_null(x);
    assert_int_equal(x->start_ticks, p.start);
    assert_string_equal(x->name, "other");
    assert_int_equal(vg_proc_table_count(f->table), 1);
}

static void test_scan_exit_and_exec(void **state)
{
    struct fixture *f = *state;
    struct fake_proc a = normal_proc(400), b = normal_proc(401);
    fake_proc_write(&f->ft, &a);
    fake_proc_write(&f->ft, &b);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared, 2);

    fake_proc_remove(&f->ft, 400);
    /* 401 execs: same identity, new program */
    b.comm = "java";
    b.cmdline = "java\0-jar\0app.jar\0";
    b.cmdline_len = 18;
    b.maps = "7f00-7f01 r-xp 0 08:01 1 /usr/lib/jvm/java-17/lib/server/libjvm.so\n";
    b.exe = "/usr/lib/jvm/java-17/bin/java";
    fake_proc_write(&f->ft, &b);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.exited, 1);
    assert_int_equal(f->ev.exited_pids[0], 400);
    assert_int_equal(f->ev.appeared, 0);
    assert_int_equal(f->ev.changed, 1);
    struct vg_proc *x = vg_proc_table_find(f->table, 401);
    assert_string_equal(x->name, "java");
    assert_string_equal(x->cmdline, "java -jar app.jar");
    assert_string_equal(rt(x), "jvm");
    assert_null(vg_proc_table_find(f->table, 400));
}

static void test_runtime_detection(void **state)
{
    struct fixture *f = *state;
    /* .NET by libcoreclr.so, with the name split across the 8 KiB read boundary */
    struct fake_proc d = normal_proc(500);
    char *maps = malloc(9000);
    /* "/libcoreclr.so" starts at 8185: split across the first 8192-byte read */
    memset(maps, 'x', 8160);
    maps[8160] = '\n';
    snprintf(maps + 8161, 9000 - 8161, "/usr/share/dotnet/shared/libcoreclr.so\n");
    d.maps = maps;
    fake_proc_write(&f->ft, &d);
    /* .NET single-file: no libcoreclr mapping, but the diagnostic socket named by its ns pid
     * and its start time (5501 ticks), and a stale socket of an earlier process with the same
     * pid beside it */
    struct fake_proc s = normal_proc(501);
    s.nspid = "501\t1";
    fake_proc_write(&f->ft, &s);
    fake_mkdir(&f->ft, "proc/501/root/tmp");
    fake_socket(&f->ft, "proc/501/root/tmp/dotnet-diagnostic-1-5501-socket");
    fake_socket(&f->ft, "proc/501/root/tmp/dotnet-diagnostic-1-42-socket");
    /* only a stale socket (another start time) is not .NET */
    struct fake_proc st = normal_proc(504);
    st.nspid = "504\t1";
    fake_proc_write(&f->ft, &st);
    fake_mkdir(&f->ft, "proc/504/root/tmp");
    fake_socket(&f->ft, "proc/504/root/tmp/dotnet-diagnostic-1-42-socket");
    /* a socket for another pid does not count */
    struct fake_proc o = normal_proc(502);
    fake_proc_write(&f->ft, &o);
    fake_write(&f->ft, "proc/502/root/tmp/dotnet-diagnostic-9999-1-socket", "");
    /* node: an executable named node that exports node_module_register */
    struct fake_proc n = normal_proc(503);
    n.exe = VG_FAKE_NODE;
    fake_proc_write(&f->ft, &n);
    /* a name alone is not enough */
    struct fake_proc nn = normal_proc(505);
    nn.exe = "/usr/local/bin/node";
    fake_proc_write(&f->ft, &nn);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    assert_string_equal(rt(vg_proc_table_find(f->table, 500)), "dotnet");
    assert_string_equal(rt(vg_proc_table_find(f->table, 501)), "dotnet");
    assert_string_equal(rt(vg_proc_table_find(f->table, 502)), "native");
    assert_string_equal(rt(vg_proc_table_find(f->table, 503)), "node");
    assert_string_equal(rt(vg_proc_table_find(f->table, 504)), "native");
    assert_string_equal(rt(vg_proc_table_find(f->table, 505)), "native");
    assert_string_equal(vg_runtime_find("dotnet")->display, ".NET");

    /* a runtime that maps its library late is still found on the next scans, then no more
     * checks are made */
    fake_write(&f->ft, "proc/502/maps", "7f00-7f01 r-xp 0 08:01 1 /opt/jdk/lib/server/libjvm.so\n");
    assert_int_equal(scan(f), 0);
    assert_string_equal(rt(vg_proc_table_find(f->table, 502)), "jvm");
    assert_int_equal(f->ev.changed, 1); /* the engine learns the runtime once it is known */
    free(maps);
}

/* A process younger than a second is looked at for a runtime only on the next scan. */
static void test_runtime_young_process_deferred(void **state)
{
    struct fixture *f = *state;
    uint64_t hz = (uint64_t)clk_tck();
    fake_write(&f->ft, "proc/uptime", "100.00 180.00\n");
    struct fake_proc young = normal_proc(520), old = normal_proc(521), node = normal_proc(522);
    young.start = node.start = 100 * hz - hz / 10;
    old.start = 10 * hz;
    young.maps = old.maps = "7f00-7f01 r-xp 0 08:01 1 /opt/jdk/lib/server/libjvm.so\n";
    node.exe = VG_FAKE_NODE; /* the executable's name needs no waiting */
    fake_proc_write(&f->ft, &young);
    fake_proc_write(&f->ft, &old);
    fake_proc_write(&f->ft, &node);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    assert_string_equal(rt(vg_proc_table_find(f->table, 520)), "native");
    assert_string_equal(rt(vg_proc_table_find(f->table, 521)), "jvm");
    assert_string_equal(rt(vg_proc_table_find(f->table, 522)), "node");
    fake_write(&f->ft, "proc/uptime", "101.00 182.00\n");
    assert_int_equal(scan(f), 0);
    assert_string_equal(rt(vg_proc_table_find(f->table, 520)), "jvm");
    assert_int_equal(f->ev.changed, 1);
}

/* A tracked process that becomes a zombie has exited; a garbage stat file is skipped. */
static void test_scan_zombie_and_garbage(void **state)
{
    struct fixture *f = *state;
    struct fake_proc a = normal_proc(530);
    fake_proc_write(&f->ft, &a);
    struct fake_proc g = normal_proc(531);
    fake_proc_write(&f->ft, &g);
    fake_write(&f->ft, "proc/531/stat", "531 (trunc");
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared, 1);
    assert_null(vg_proc_table_find(f->table, 531));
    a.state = 'Z';
    fake_proc_write_stat(&f->ft, &a);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.exited, 1);
    assert_int_equal(f->ev.appeared, 0);
    assert_int_equal(vg_proc_table_count(f->table), 0);
    assert_int_equal(scan(f), 0); /* the zombie stays ignored */
    assert_int_equal(f->ev.appeared + f->ev.exited, 0);
    /* the garbage one becomes readable: discovered then */
    fake_proc_write_stat(&f->ft, &g);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.appeared, 1);
    assert_non_null(vg_proc_table_find(f->table, 531));
}

static void test_kept_fd_budget(void **state)
{
    struct fixture *f = *state;
    for (int pid = 600; pid < 610; pid++) {
        struct fake_proc p = normal_proc(pid);
        fake_proc_write(&f->ft, &p);
    }
    open_table(f, 3);
    assert_int_equal(scan(f), 0);
    for (struct vg_proc *p = vg_proc_table_next(f->table, NULL); p;
         p = vg_proc_table_next(f->table, p)) {
        struct vg_sample s;
        assert_int_equal(vg_sampler_sample(f->sampler, p, 1000, VG_SAMPLER_DEFAULT_MASK, &s), 0);
    }
    assert_int_equal(vg_proc_table_kept_fds(f->table), 3);
    vg_proc_table_destroy(f->table);
    f->table = NULL;
    vg_sampler_destroy(f->sampler);
    f->sampler = NULL;
    open_table(f, -1);
    assert_int_equal(scan(f), 0);
    assert_int_equal(vg_proc_table_kept_fds(f->table), 0);
}

/* ---- sampling --------------------------------------------------------------------------- */

static void test_sample_basic_and_exit(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(700);
    fake_proc_write(&f->ft, &p);
    fake_write(&f->ft, "proc/700/smaps_rollup",
               "00400000-7fff [rollup]\nRss:     2048 kB\nPss:     1536 kB\nPss_Anon: 10 kB\n");
    open_table(f, -1); /* reopen each time, like a process that vanishes mid-sample */
    assert_int_equal(scan(f), 0);
    struct vg_proc *x = vg_proc_table_find(f->table, 700);
    struct vg_sample s;
    assert_int_equal(vg_sampler_sample(f->sampler, x, 1000, VG_SAMPLER_DEFAULT_MASK, &s), 0);
    assert_int_equal(s.t_ms, 1000);
    assert_false(vg_sample_has(&s, VG_M_CPU_PERCENT)); /* first sample: no delta yet */
    assert_false(vg_sample_has(&s, VG_M_PSS));         /* not asked for */
    assert_true(vg_sample_has(&s, VG_M_RSS));
    assert_true(s.v[VG_M_RSS] == 256.0 * (double)sysconf(_SC_PAGESIZE));
    assert_true(s.v[VG_M_VSIZE] == 10485760.0);
    assert_true(s.v[VG_M_THREADS] == 3.0);
    assert_true(s.v[VG_M_FDS] == 4.0);
    assert_true(s.v[VG_M_IO_READ] == 4096.0);
    assert_true(s.v[VG_M_IO_WRITE] == 8192.0);
    assert_true(s.v[VG_M_MAJFLT] == 5.0);
    assert_true(s.v[VG_M_MINFLT] == 1000.0);
    assert_true(s.v[VG_M_CTXSW_VOL] == 7700.0);
    assert_true(s.v[VG_M_CTXSW_INVOL] == 7.0);
    assert_true(s.v[VG_M_CPU_SECONDS] == 0.0);
    /* no cgroup hierarchy in this tree */
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_CURRENT));

    /* PSS only when asked */
    assert_int_equal(vg_sampler_sample(f->sampler, x, 1500, VG_METRIC_BIT(VG_M_PSS), &s), 0);
    assert_true(vg_sample_has(&s, VG_M_PSS));
    assert_true(s.v[VG_M_PSS] == 1536.0 * 1024);
    assert_int_equal(s.valid, VG_METRIC_BIT(VG_M_PSS));

    /* missing io file: io metrics absent, the rest present */
    fake_proc_remove(&f->ft, 700);
    p.io = NULL;
    fake_proc_write(&f->ft, &p);
    assert_int_equal(vg_sampler_sample(f->sampler, x, 2000, VG_SAMPLER_DEFAULT_MASK, &s), 0);
    assert_false(vg_sample_has(&s, VG_M_IO_READ));
    assert_false(vg_sample_has(&s, VG_M_IO_WRITE));
    assert_true(vg_sample_has(&s, VG_M_RSS));

    /* exits between scan and sample */
    assert_int_equal(scan(f), 0);
    fake_proc_remove(&f->ft, 700);
    assert_int_equal(vg_sampler_sample(f->sampler, x, 3000, VG_SAMPLER_DEFAULT_MASK, &s),
                     VG_EEXITED);
    assert_int_equal(scan(f), 0);
    assert_int_equal(f->ev.exited, 1);
    assert_int_equal(vg_proc_table_count(f->table), 0);
}

/* io unreadable (EACCES, as for another user's process without CAP_SYS_PTRACE). Root ignores
 * file modes, so a child drops to nobody first. */
static void test_sample_io_eacces(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(710);
    fake_proc_write(&f->ft, &p);
    char path[512];
    snprintf(path, sizeof(path), "%s/proc/710/io", f->ft.root);
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(chmod(f->ft.root, 0755), 0); /* mkdtemp made it 0700 */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (geteuid() == 0 && setresuid(65534, 65534, 65534) != 0)
            _exit(10);
        struct vg_proc_table *t = NULL;
        struct vg_sampler *s = NULL;
        struct vg_proc_table_options o = {.max_kept_fds = -1};
        if (vg_proc_table_create(&f->fs, &o, &t) || vg_sampler_create(&f->fs, &s))
            _exit(11);
        if (vg_proc_scan(t, NULL) || vg_proc_table_count(t) != 1)
            _exit(12);
        struct vg_sample smp;
        if (vg_sampler_sample(s, vg_proc_table_find(t, 710), 1, VG_SAMPLER_DEFAULT_MASK, &smp))
            _exit(13);
        if (vg_sample_has(&smp, VG_M_IO_READ) || vg_sample_has(&smp, VG_M_IO_WRITE))
            _exit(14);
        if (!vg_sample_has(&smp, VG_M_RSS) || !vg_sample_has(&smp, VG_M_FDS))
            _exit(15);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Samples 1 s apart on a fake clock; cpu_ticks is what the process used in between. The first
 * call for a process takes the baseline sample, which must have no CPU value. */
static double cpu_pct(struct fixture *f, struct fake_proc *p, uint64_t cpu_ticks,
                      struct vg_sample *out)
{
    struct vg_proc *x = vg_proc_table_find(f->table, p->pid);
    assert_non_null(x);
    if (!x->smp.has_prev) {
        f->now += 1000;
        assert_int_equal(vg_sampler_sample(f->sampler, x, f->now, VG_SAMPLER_DEFAULT_MASK, out), 0);
        assert_false(vg_sample_has(out, VG_M_CPU_PERCENT));
    }
    p->utime += cpu_ticks * 3 / 4;
    p->stime += cpu_ticks - cpu_ticks * 3 / 4;
    fake_proc_write_stat(&f->ft, p);
    assert_int_equal(scan(f), 0);
    f->now += 1000;
    assert_int_equal(vg_sampler_sample(f->sampler, x, f->now, VG_SAMPLER_DEFAULT_MASK, out), 0);
    assert_true(vg_sample_has(out, VG_M_CPU_PERCENT));
    return out->v[VG_M_CPU_PERCENT];
}

static void assert_near(double got, double want)
{
    if (got < want - 0.01 || got > want + 0.01)
        fail_msg("got %f, want %f", got, want);
}

static void test_cpu_percent_affinity(void **state)
{
    struct fixture *f = *state;
    struct fake_proc p = normal_proc(800);
    p.cpus_allowed = "0-7"; /* 8 allowed, but only 0-3 online: capacity 4 */
    struct fake_proc q = normal_proc(801);
    q.cpus_allowed = "1"; /* pinned to one CPU */
    fake_proc_write(&f->ft, &p);
    fake_proc_write(&f->ft, &q);
    open_table(f, 0);
    assert_int_equal(vg_sampler_online_cpus(f->sampler), 4);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    /* one full CPU out of 4 */
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck(), &s), 25.0);
    assert_true(s.v[VG_M_CPU_SECONDS] == 1.0);
    /* half a CPU out of 1 */
    assert_near(cpu_pct(f, &q, (uint64_t)clk_tck() / 2, &s), 50.0);
    /* more than the capacity (accounting jitter) clamps to 100 */
    assert_near(cpu_pct(f, &q, (uint64_t)clk_tck() * 3, &s), 100.0);
    /* idle after being busy: the delta, not the lifetime average */
    assert_near(cpu_pct(f, &p, 0, &s), 0.0);
}

static void write_v1_tree(struct fixture *f, bool limits)
{
    fake_write(&f->ft, "cgroup/memory/memory.usage_in_bytes", "999999999\n");
    fake_write(&f->ft, "cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/cpu.shares", "1024\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    fake_write(&f->ft, "cgroup/memory/docker/abc/memory.usage_in_bytes", "268435456\n");
    fake_write(&f->ft, "cgroup/memory/docker/abc/memory.limit_in_bytes",
               limits ? "1073741824\n" : "9223372036854771712\n");
    fake_write(&f->ft, "cgroup/memory/docker/abc/memory.oom_control",
               "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    fake_write(&f->ft, "cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
               limits ? "50000\n" : "-1\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    fake_write(&f->ft, "cgroup/cpu,cpuacct/docker/abc/cpu.stat",
               "nr_periods 100\nnr_throttled 7\nthrottled_time 2500000000\n");
}

static const char *v1_proc_cgroup = "11:memory:/docker/abc\n"
                                    "4:cpu,cpuacct:/docker/abc\n"
                                    "1:name=systemd:/docker/abc\n"
                                    "0::/\n";

static void test_cgroup_v1_limits(void **state)
{
    struct fixture *f = *state;
    write_v1_tree(f, true);
    struct fake_proc p = normal_proc(900);
    p.cgroup = v1_proc_cgroup;
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    const struct vg_cgroup_mounts *m = vg_sampler_cgroup_mounts(f->sampler);
    assert_true(m->has_v1_memory && m->has_v1_cpu);
    assert_false(m->has_v2);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    /* quota 0.5 CPU: a process using half a CPU is at 100% of what it may use */
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck() / 2, &s), 100.0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 268435456.0);
    assert_true(s.v[VG_M_CG_MEM_MAX] == 1073741824.0);
    assert_near(s.v[VG_M_CG_MEM_PERCENT], 25.0);
    assert_true(s.v[VG_M_CG_OOM_KILLS] == 3.0);
    assert_true(s.v[VG_M_CG_THROTTLED_PERIODS] == 7.0);
    assert_near(s.v[VG_M_CG_THROTTLED_SECONDS], 2.5);
    /* a quarter CPU against the 0.5 quota */
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck() / 4, &s), 50.0);
}

static void test_cgroup_v1_unlimited(void **state)
{
    struct fixture *f = *state;
    write_v1_tree(f, false);
    struct fake_proc p = normal_proc(901);
    p.cgroup = v1_proc_cgroup;
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    /* no quota: capacity is the 4 online CPUs */
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck() / 2, &s), 12.5);
    assert_true(vg_sample_has(&s, VG_M_CG_MEM_CURRENT));
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_MAX));
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_PERCENT));
}

static void write_v2_tree(struct fixture *f, bool limits)
{
    fake_write(&f->ft, "cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/memory.max", limits ? "268435456\n" : "max\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/ctr/memory.current", "134217728\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/ctr/memory.max", limits ? "536870912\n" : "max\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/ctr/memory.events",
               "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/ctr/cpu.max",
               limits ? "50000 100000\n" : "max 100000\n");
    fake_write(&f->ft, "cgroup/kubepods/pod1/ctr/cpu.stat",
               "usage_usec 100\nuser_usec 50\nsystem_usec 50\nnr_periods 10\nnr_throttled 4\n"
               "throttled_usec 1500000\nnr_bursts 0\nburst_usec 0\n");
}

static void test_cgroup_v2_limits(void **state)
{
    struct fixture *f = *state;
    write_v2_tree(f, true);
    struct fake_proc p = normal_proc(1000);
    p.cgroup = "0::/kubepods/pod1/ctr\n";
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    const struct vg_cgroup_mounts *m = vg_sampler_cgroup_mounts(f->sampler);
    assert_true(m->has_v2);
    assert_false(m->has_v1_memory);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck() / 2, &s), 100.0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 134217728.0);
    /* the pod's 256 MiB binds before the container's own 512 MiB */
    assert_true(s.v[VG_M_CG_MEM_MAX] == 268435456.0);
    assert_near(s.v[VG_M_CG_MEM_PERCENT], 50.0);
    assert_true(s.v[VG_M_CG_OOM_KILLS] == 2.0);
    assert_true(s.v[VG_M_CG_THROTTLED_PERIODS] == 4.0);
    assert_near(s.v[VG_M_CG_THROTTLED_SECONDS], 1.5);
}

static void test_cgroup_v2_unlimited(void **state)
{
    struct fixture *f = *state;
    write_v2_tree(f, false);
    struct fake_proc p = normal_proc(1001);
    p.cgroup = "0::/kubepods/pod1/ctr\n";
    p.cpus_allowed = "1";
    fake_proc_write(&f->ft, &p);
    open_table(f, 0);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    assert_near(cpu_pct(f, &p, (uint64_t)clk_tck() / 2, &s), 50.0);
    assert_true(vg_sample_has(&s, VG_M_CG_MEM_CURRENT));
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_MAX));
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_PERCENT));
}

/* Hybrid (this machine's layout): v1 controllers plus a controller-less v2 at unified/. */
static void test_cgroup_hybrid_and_cache(void **state)
{
    struct fixture *f = *state;
    write_v1_tree(f, true);
    fake_write(&f->ft, "cgroup/unified/cgroup.controllers", "\n");
    struct fake_proc a = normal_proc(1100), b = normal_proc(1101);
    a.cgroup = b.cgroup = v1_proc_cgroup;
    fake_proc_write(&f->ft, &a);
    fake_proc_write(&f->ft, &b);
    open_table(f, 0);
    const struct vg_cgroup_mounts *m = vg_sampler_cgroup_mounts(f->sampler);
    assert_true(m->has_v2 && m->has_v1_memory && m->has_v1_cpu);
    assert_int_equal(scan(f), 0);
    struct vg_sample s;
    uint64_t mask = VG_METRIC_BIT(VG_M_CG_MEM_CURRENT);
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1100), 1, mask, &s),
                     0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 268435456.0);
    /* within one tick the second process of the same cgroup reuses the first read */
    fake_write(&f->ft, "cgroup/memory/docker/abc/memory.usage_in_bytes", "1000\n");
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1101), 1, mask, &s),
                     0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 268435456.0);
    /* the next tick reads again */
    assert_int_equal(scan(f), 0);
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1101), 2, mask, &s),
                     0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 1000.0);
}

/* A container without its own cgroup namespace: its memory mount is a bind of /docker/abc, while
 * /proc/PID/cgroup names the full path. */
static void test_cgroup_v1_bind_mount_root(void **state)
{
    struct fixture *f = *state;
    fake_write(&f->ft, "cgroup/memory/memory.usage_in_bytes", "4096\n");
    fake_write(&f->ft, "cgroup/memory/memory.limit_in_bytes", "2147483648\n");
    fake_write(&f->ft, "cgroup/memory/sub/memory.usage_in_bytes", "2048\n");
    char mi[2048];
    snprintf(mi, sizeof(mi),
             "22 1 0:20 / /proc rw,nosuid - proc proc rw\n"
             "30 25 0:26 /docker/abc %s/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n"
             "31 25 0:27 /docker/abc %s/unified rw - cgroup2 cgroup2 rw\n",
             f->ft.cg, f->ft.cg);
    fake_write(&f->ft, "proc/self/mountinfo", mi);
    struct fake_proc a = normal_proc(1200), b = normal_proc(1201), c = normal_proc(1202);
    a.cgroup = "11:memory:/docker/abc\n";
    b.cgroup = "11:memory:/docker/abc/sub\n";
    c.cgroup = "11:memory:/docker/abcdef\n"; /* a sibling, not below the mount */
    fake_proc_write(&f->ft, &a);
    fake_proc_write(&f->ft, &b);
    fake_proc_write(&f->ft, &c);
    open_table(f, 0);
    const struct vg_cgroup_mounts *m = vg_sampler_cgroup_mounts(f->sampler);
    assert_string_equal(m->v1_memory_root, "/docker/abc");
    assert_int_equal(scan(f), 0);
    uint64_t mask = VG_METRIC_BIT(VG_M_CG_MEM_CURRENT) | VG_METRIC_BIT(VG_M_CG_MEM_MAX);
    struct vg_sample s;
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1200), 1, mask, &s),
                     0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 4096.0);
    assert_true(s.v[VG_M_CG_MEM_MAX] == 2147483648.0);
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1201), 1, mask, &s),
                     0);
    assert_true(s.v[VG_M_CG_MEM_CURRENT] == 2048.0);
    assert_true(s.v[VG_M_CG_MEM_MAX] == 2147483648.0); /* the parent's limit binds */
    assert_int_equal(vg_sampler_sample(f->sampler, vg_proc_table_find(f->table, 1202), 1, mask, &s),
                     0);
    assert_false(vg_sample_has(&s, VG_M_CG_MEM_CURRENT));
}

static void test_cgroup_parse_proc(void **state)
{
    (void)state;
    struct vg_proc_cgroup c;
    assert_int_equal(vg_cgroup_parse_proc("3:cpuacct:/a\n5:cpuset,cpu:/b\n2:memory:/c:d\n", &c), 0);
    assert_string_equal(c.v1_cpu, "/b"); /* "cpuacct" alone is not "cpu" */
    assert_string_equal(c.v1_memory, "/c:d");
    assert_string_equal(c.v2, "");
    assert_int_equal(vg_cgroup_parse_proc("0::/user.slice/x.scope\n", &c), 0);
    assert_string_equal(c.v2, "/user.slice/x.scope");
    assert_int_equal(vg_cgroup_parse_proc("", &c), VG_EPARSE);
    assert_int_equal(vg_cgroup_parse_proc("garbage\nmore", &c), VG_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat_normal),
        cmocka_unit_test(test_parse_stat_parens_in_comm),
        cmocka_unit_test(test_parse_stat_malformed),
        cmocka_unit_test(test_cgroup_parse_proc),
        cmocka_unit_test_setup_teardown(test_scan_normal_and_kernel_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_nested_nspid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_exclude_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_pid_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_exit_and_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_detection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_young_process_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_zombie_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_fd_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_basic_and_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_io_eacces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_percent_affinity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v2_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v2_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_hybrid_and_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1_bind_mount_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
