/* Discovery and sampling against the real /proc and /sys/fs/cgroup: real children (busy, sleeping,
 * threaded, with open files) and a real PID namespace made by unshare(1). */
#include "engine/host/proc.h"
#include "engine/host/sampler.h"
#include "engine/runtimes/runtime.h"
#include "config/error.h"
#include "config/util.h"
#include "tests/lib/vg_test.h"

#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum child_kind { CHILD_BUSY, CHILD_SLEEP, CHILD_THREADS, CHILD_FDS };

#define CHILD_THREAD_COUNT 5
#define CHILD_EXTRA_FDS 10

/* Every child still running, so a failed assertion (which longjmps out) leaves none behind. */
static pid_t live[16];
static int nlive;

static void forget(pid_t pid)
{
    for (int i = 0; i < nlive; i++)
        if (live[i] == pid)
            live[i] = live[--nlive];
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < nlive; i++) {
        kill(live[i], SIGKILL);
        waitpid(live[i], NULL, 0);
    }
    nlive = 0;
    return 0;
}

static void *sleeper_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* Forks a child that closes every inherited fd above 2, sets itself up, then says it is ready
 * over a pipe, so the parent samples a known state. */
static pid_t spawn(enum child_kind kind)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long maxfd = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < maxfd && fd < 65536; fd++)
            if (fd != pfd[1])
                close(fd);
        if (kind == CHILD_THREADS) {
            for (int i = 0; i < CHILD_THREAD_COUNT; i++) {
                pthread_t th;
                if (pthread_create(&th, NULL, sleeper_thread, NULL) != 0)
                    _exit(3);
            }
        }
        if (kind == CHILD_FDS) {
            for (int i = 0; i < CHILD_EXTRA_FDS; i++)
                if (open("/dev/null", O_RDONLY) < 0)
                    _exit(4);
        }
        char c = 'r';
        if (write(pfd[1], &c, 1) != 1)
            _exit(5);
        close(pfd[1]);
        if (kind == CHILD_BUSY) {
            volatile uint64_t x = 0;
            for (;;)
                x++;
        }
        for (;;)
            pause();
    }
    live[nlive++] = pid;
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    return pid;
}

static void reap(pid_t pid, struct rusage *ru)
{
    kill(pid, SIGKILL);
    int status;
    struct rusage dummy;
    assert_int_equal(wait4(pid, &status, 0, ru ? ru : &dummy), pid);
    forget(pid);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

struct exited {
    int n;
    uint64_t keys[64];
};

static void on_exited(struct vg_proc *p, void *arg)
{
    struct exited *e = arg;
    if (e->n < 64)
        e->keys[e->n] = p->key;
    e->n++;
}

/* CPU seconds of a child so far, from its stat line: only used to decide how long to wait. */
static double child_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    struct vg_proc_stat st;
    if (n <= 0 || vg_procfs_parse_stat(buf, (size_t)n, &st) < 0)
        return 0;
    return (double)(st.utime + st.stime) / (double)sysconf(_SC_CLK_TCK);
}

static struct vg_proc *must_find(struct vg_proc_table *t, pid_t pid)
{
    struct vg_proc *p = vg_proc_table_find(t, pid);
    if (!p)
        fail_msg("pid %d not discovered", (int)pid);
    return p;
}

/* Capacity computed independently of the sampler's status parsing: this process's view of
 * the child's affinity, capped by the cgroup quota. */
static double expected_capacity(pid_t pid, double quota, bool has_quota)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(pid, sizeof(set), &set), 0);
    double cap = CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && cap > online)
        cap = (double)online;
    if (has_quota && quota < cap)
        cap = quota;
    return cap;
}

static void test_real_children(void **state)
{
    (void)state;
    struct vg_proc_table *t;
    struct vg_sampler *s;
    struct vg_proc_table_options o = {.exclude_pid = getpid()};
    assert_int_equal(vg_proc_table_create(NULL, &o, &t), 0);
    assert_int_equal(vg_sampler_create(NULL, &s), 0);

    pid_t sleeper = spawn(CHILD_SLEEP);
    pid_t threads = spawn(CHILD_THREADS);
    pid_t fds = spawn(CHILD_FDS);
    pid_t busy = spawn(CHILD_BUSY);
    uint64_t busy_start = vg_mono_ms();

    struct exited ex = {0};
    struct vg_proc_scan_cb cb = {.exited = on_exited, .arg = &ex};
    assert_int_equal(vg_proc_scan(t, &cb), 0);
    vg_sampler_tick(s);
    assert_null(vg_proc_table_find(t, getpid()));
    pid_t kids[] = {sleeper, threads, fds, busy};
    struct vg_sample first[4], second[4];
    uint64_t t0 = vg_mono_ms();
    for (int i = 0; i < 4; i++) {
        struct vg_proc *p = must_find(t, kids[i]);
        assert_int_equal(p->ppid, getpid());
        assert_int_equal(p->uid, getuid());
        assert_int_equal(p->ns_pid, kids[i]);
        assert_int_equal(vg_sampler_sample(s, p, t0, VG_SAMPLER_DEFAULT_MASK, &first[i]), 0);
        assert_false(vg_sample_has(&first[i], VG_M_CPU_PERCENT));
    }

    /* Until the busy child has had 0.3 s of CPU and a second has passed (at most 15 s): on a
     * loaded machine it may get only a few percent of a core, and tick-granular accounting
     * needs enough ticks and time for the comparison below to mean something. */
    for (int waited = 0; waited < 15000 && (waited < 1000 || child_cpu_s(busy) < 0.3);
         waited += 100)
        sleep_ms(100);
    assert_int_equal(vg_proc_scan(t, &cb), 0);
    vg_sampler_tick(s);
    for (int i = 0; i < 4; i++)
        must_find(t, kids[i]); /* other processes on the machine may come and go; ours stay */
    uint64_t t1 = vg_mono_ms();
    for (int i = 0; i < 4; i++) {
        struct vg_proc *p = must_find(t, kids[i]);
        assert_int_equal(vg_sampler_sample(s, p, t1, VG_SAMPLER_DEFAULT_MASK, &second[i]), 0);
        assert_true(vg_sample_has(&second[i], VG_M_CPU_PERCENT));
        assert_true(vg_sample_has(&second[i], VG_M_RSS));
        assert_true(second[i].v[VG_M_RSS] > 0);
        assert_true(vg_sample_has(&second[i], VG_M_FDS));
    }
    uint64_t busy_end = vg_mono_ms();
    struct rusage ru;
    reap(busy, &ru);

    /* busy: one CPU's worth of capacity, broadly (the machine is shared) */
    struct vg_cgroup_cache *cg;
    assert_int_equal(vg_cgroup_cache_create("/sys/fs/cgroup", "/proc", &cg), 0);
    struct vg_cgroup_stats cs;
    vg_cgroup_get(cg, must_find(t, sleeper)->cgroup, VG_CG_CPU_QUOTA, &cs);
    vg_cgroup_cache_destroy(cg);
    double cap = expected_capacity(sleeper, cs.cpu_quota, cs.valid & VG_CG_CPU_QUOTA);
    double one_cpu = 100.0 / cap > 100.0 ? 100.0 : 100.0 / cap;
    double busy_pct = second[3].v[VG_M_CPU_PERCENT];
    printf("# capacity %.2f CPUs; busy %.1f%% (one CPU = %.1f%%); sleeper %.2f%%\n", cap, busy_pct,
           one_cpu, second[0].v[VG_M_CPU_PERCENT]);
    assert_true(busy_pct <= 100.0);
    /* On an idle machine the busy child gets a whole CPU (one_cpu); on this shared 2-core box
     * it often gets a third of that, and a few percent when the machine is saturated, so "high"
     * is judged against what the kernel says the child really got over its whole life (wait4
     * rusage), not against a fixed share. */
    double ru_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double ru_pct = ru_cpu / ((double)(busy_end - busy_start) / 1000.0) / cap * 100.0;
    printf("# busy by rusage %.1f%%\n", ru_pct);
    assert_true(ru_cpu > 0.2); /* the child did run */
    assert_true(busy_pct > 0.5 * ru_pct && busy_pct < 1.5 * ru_pct + 5.0);
    assert_true(busy_pct > 20.0 * second[0].v[VG_M_CPU_PERCENT]);
    assert_true(second[3].v[VG_M_CPU_SECONDS] > first[3].v[VG_M_CPU_SECONDS]);

    /* as root every process's io file is readable */
    if (geteuid() == 0)
        assert_true(vg_sample_has(&second[0], VG_M_IO_READ));
    /* the child's memory cgroup, when its directory is visible here, is read */
    const struct vg_cgroup_mounts *m = vg_sampler_cgroup_mounts(s);
    const struct vg_proc_cgroup *pcg = must_find(t, sleeper)->cgroup;
    char cgfile[VG_CGROUP_PATH_MAX * 2 + 32];
    if (m->has_v1_memory && pcg->v1_memory[0])
        snprintf(cgfile, sizeof(cgfile), "%s%s/memory.usage_in_bytes", m->v1_memory,
                 pcg->v1_memory);
    else if (m->has_v2 && pcg->v2[0])
        snprintf(cgfile, sizeof(cgfile), "%s%s/memory.current", m->v2, pcg->v2);
    else
        cgfile[0] = '\0';
    if (cgfile[0] && access(cgfile, R_OK) == 0) {
        printf("# cgroup memory from %s: %.0f bytes\n", cgfile, second[0].v[VG_M_CG_MEM_CURRENT]);
        assert_true(vg_sample_has(&second[0], VG_M_CG_MEM_CURRENT));
        assert_true(second[0].v[VG_M_CG_MEM_CURRENT] > 0);
    }
    /* sleeper: ~0 */
    assert_true(second[0].v[VG_M_CPU_PERCENT] < 5.0);
    /* threads: main + CHILD_THREAD_COUNT */
    assert_true(second[1].v[VG_M_THREADS] == 1 + CHILD_THREAD_COUNT);
    assert_true(second[0].v[VG_M_THREADS] == 1);
    /* fds: same inherited 0-2 as the sleeper, plus the files it opened */
    assert_true(second[2].v[VG_M_FDS] == second[0].v[VG_M_FDS] + CHILD_EXTRA_FDS);

    /* the sleeper exits: with its stat fd kept, the sampler sees ESRCH; the scan reports it */
    struct vg_proc *sp = must_find(t, sleeper);
    uint64_t sleeper_key = sp->key;
    reap(sleeper, NULL);
    struct vg_sample tmp;
    assert_int_equal(vg_sampler_sample(s, sp, vg_mono_ms(), VG_SAMPLER_DEFAULT_MASK, &tmp),
                     VG_EEXITED);
    ex.n = 0;
    assert_int_equal(vg_proc_scan(t, &cb), 0);
    bool seen = false;
    for (int i = 0; i < ex.n && i < 64; i++)
        seen = seen || ex.keys[i] == sleeper_key;
    assert_true(seen);
    assert_null(vg_proc_table_find(t, sleeper));

    reap(threads, NULL);
    reap(fds, NULL);
    vg_sampler_destroy(s);
    vg_proc_table_destroy(t);
}

/* A process in its own PID namespace is pid 1 there; from here it has a host pid too. */
static void test_pid_namespace(void **state)
{
    (void)state;
    int errp[2];
    assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
    pid_t un = fork();
    assert_true(un >= 0);
    if (un == 0) {
        dup2(errp[1], 2);
        execlp("unshare", "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sleep",
               "30", (char *)NULL);
        _exit(127);
    }
    live[nlive++] = un;
    close(errp[1]);

    struct vg_proc_table *t;
    assert_int_equal(vg_proc_table_create(NULL, NULL, &t), 0);
    struct vg_proc *found = NULL;
    bool exited_early = false;
    int status = 0;
    for (int i = 0; i < 100 && !found; i++) {
        assert_int_equal(vg_proc_scan(t, NULL), 0);
        for (struct vg_proc *p = vg_proc_table_next(t, NULL); p; p = vg_proc_table_next(t, p))
            if (p->ppid == un && strcmp(p->name, "sleep") == 0)
                found = p;
        if (found)
            break;
        if (waitpid(un, &status, WNOHANG) == un) {
            forget(un);
            exited_early = true;
            break;
        }
        sleep_ms(50);
    }
    if (exited_early) {
        char err[512] = {0};
        ssize_t n = read(errp[0], err, sizeof(err) - 1);
        (void)n;
        close(errp[0]);
        vg_proc_table_destroy(t);
        if (strstr(err, "Operation not permitted"))
            VG_SKIP("unshare --pid failed with EPERM: %s", err);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            VG_SKIP("unshare(1) not found");
        fail_msg("unshare exited early (status %d): %s", status, err);
    }
    close(errp[0]);
    assert_non_null(found);
    printf("# sleep in new pid ns: host pid %d, NSpid count %d, ns pid %d\n", found->pid,
           found->nspid_count, found->ns_pid);
    assert_int_equal(found->ns_pid, 1);
    assert_true(found->nspid_count >= 2);
    assert_int_equal(found->nspid[0], found->pid);
    assert_int_equal(found->nspid[found->nspid_count - 1], 1);
    assert_string_equal(found->cmdline, "sleep 30");
    pid_t host_pid = found->pid;

    kill(un, SIGKILL); /* --kill-child takes the sleep down with it */
    kill(host_pid, SIGKILL);
    assert_int_equal(waitpid(un, &status, 0), un);
    forget(un);
    vg_proc_table_destroy(t);
}

/* stdin_fd: what the child reads (-1: /dev/null). */
static pid_t spawn_exec(char *const argv[], int stdin_fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(stdin_fd >= 0 ? stdin_fd : null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    live[nlive++] = pid;
    return pid;
}

static bool on_path(const char *exe)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", exe);
    return system(cmd) == 0;
}

/* An F# interactive shipped with the .NET SDK: a real CoreCLR process that waits on stdin. */
static bool find_fsi(char *out, size_t n)
{
    const char *roots[] = {getenv("DOTNET_ROOT"), "/usr/share/dotnet", "/usr/lib/dotnet"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        if (!roots[i])
            continue;
        char pattern[256];
        snprintf(pattern, sizeof(pattern), "%s/sdk/*/FSharp/fsi.dll", roots[i]);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(out, n, "%s", g.gl_pathv[g.gl_pathc - 1]);
            globfree(&g);
            return true;
        }
        globfree(&g);
    }
    return false;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static bool dotnet_socket_exists(pid_t pid)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "/tmp/dotnet-diagnostic-%d-*-socket", (int)pid);
    glob_t g;
    bool found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

/* Real runtimes, one per case (*state names it): node, a JVM (source-file launch of a sleeping
 * class) and CoreCLR (fsi). Also checks, on the real .NET process, what the fallbacks rely on:
 * libcoreclr.so in maps and the dotnet-diagnostic-<pid>-<n>-socket name in /tmp. */
static void test_real_runtimes(void **state)
{
    const char *which = *state;
    char fsi[256];
    bool have_node = false, have_java = false, have_dotnet = false;
    if (strcmp(which, "node") == 0 && !(have_node = on_path("node")))
        VG_SKIP("node not found");
    if (strcmp(which, "jvm") == 0 && !(have_java = on_path("java")))
        VG_SKIP("java not found");
    if (strcmp(which, "dotnet") == 0 &&
        !(have_dotnet = on_path("dotnet") && find_fsi(fsi, sizeof(fsi))))
        VG_SKIP("dotnet (with the SDK's fsi.dll) not found");
    char dir[] = "/tmp/vg-rt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[64];
    snprintf(src, sizeof(src), "%s/Sleep.java", dir);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fputs("public class Sleep { public static void main(String[] a) throws Exception {"
          " Thread.sleep(30000); } }\n",
          f);
    fclose(f);
    char *node_argv[] = {"node", "-e", "setInterval(() => {}, 1000)", NULL};
    char *java_argv[] = {"java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", src, NULL};
    char *dotnet_argv[] = {"dotnet", "exec", fsi, NULL};
    int in[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0); /* fsi waits on stdin while we hold it open */
    pid_t node = have_node ? spawn_exec(node_argv, -1) : -1;
    pid_t java = have_java ? spawn_exec(java_argv, -1) : -1;
    pid_t dotnet = have_dotnet ? spawn_exec(dotnet_argv, in[0]) : -1;
    close(in[0]);

    struct vg_proc_table *t;
    struct vg_proc_table_options o = {.detector = &vg_runtime_detector};
    assert_int_equal(vg_proc_table_create(NULL, &o, &t), 0);
    const struct vg_runtime_type *node_rt = NULL, *java_rt = NULL, *dotnet_rt = NULL;
    bool socket = false;
    for (int i = 0; i < 150; i++) {
        assert_int_equal(vg_proc_scan(t, NULL), 0);
        struct vg_proc *p;
        bool node_cmdline = false;
        if (node > 0 && (p = vg_proc_table_find(t, node))) {
            node_rt = p->runtime;
            /* a process caught mid-exec shows an empty command line until the next scan */
            node_cmdline = p->cmdline && p->cmdline[0];
        }
        if (java > 0 && (p = vg_proc_table_find(t, java)))
            java_rt = p->runtime;
        if (dotnet > 0 && (p = vg_proc_table_find(t, dotnet)))
            dotnet_rt = p->runtime;
        socket = dotnet > 0 && dotnet_socket_exists(dotnet);
        if ((node < 0 || (node_rt && node_rt != &vg_runtime_native && node_cmdline)) &&
            (java < 0 || (java_rt && java_rt != &vg_runtime_native)) &&
            (dotnet < 0 || (dotnet_rt && dotnet_rt != &vg_runtime_native && socket)))
            break;
        sleep_ms(100);
    }
    printf("# node: %s, java: %s, dotnet: %s (diagnostic socket %s)\n",
           node_rt ? node_rt->name : "-", java_rt ? java_rt->name : "-",
           dotnet_rt ? dotnet_rt->name : "-", socket ? "seen" : "not seen");
    if (node > 0) {
        assert_string_equal(node_rt->name, "node");
        assert_string_equal(vg_proc_table_find(t, node)->cmdline,
                            "node -e setInterval(() => {}, 1000)");
        reap(node, NULL);
    }
    if (java > 0) {
        assert_string_equal(java_rt->name, "jvm");
        reap(java, NULL);
    }
    if (dotnet > 0) {
        assert_string_equal(dotnet_rt->name, "dotnet");
        char maps[64];
        snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)dotnet);
        assert_true(file_contains(maps, "/libcoreclr.so"));
        const char *diag = getenv("DOTNET_EnableDiagnostics");
        if (!diag || strcmp(diag, "0") != 0)
            assert_true(socket);
        reap(dotnet, NULL);
        /* SIGKILL leaves the runtime no chance to remove its socket */
        char pattern[64];
        snprintf(pattern, sizeof(pattern), "/tmp/dotnet-diagnostic-%d-*-socket", (int)dotnet);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; i++)
                unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    close(in[1]);
    vg_proc_table_destroy(t);
    unlink(src);
    rmdir(dir);
}

/* No fd cliff: a table whose budget is larger than what the process can open (every fd number
 * taken) gives kept fds back on EMFILE and still discovers and samples, by open/read/close. */
static void test_fd_exhaustion(void **state)
{
    (void)state;
    enum { N = 8 };
    pid_t kids[N];
    for (int i = 0; i < N; i++)
        kids[i] = spawn(CHILD_SLEEP);
    struct vg_proc_table_options o = {.exclude_pid = getpid(), .max_kept_fds = 1000000};
    struct vg_proc_table *t;
    struct vg_sampler *s;
    assert_int_equal(vg_proc_table_create(NULL, &o, &t), 0);
    assert_int_equal(vg_sampler_create(NULL, &s), 0);
    assert_int_equal(vg_proc_scan(t, NULL), 0);
    struct vg_sample out;
    for (struct vg_proc *p = vg_proc_table_next(t, NULL); p; p = vg_proc_table_next(t, p))
        vg_sampler_sample(s, p, 1000, VG_SAMPLER_DEFAULT_MASK, &out); /* keeps their fds */
    int kept = vg_proc_table_kept_fds(t);
    assert_true(kept >= 4 * N);

    /* every fd number from here on refused: the lowest free one becomes the limit */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pid_t late = fork(); /* needs no fd: no readiness pipe */
    if (late == 0) {
        for (;;)
            pause();
    }
    bool found = false, sampled = true;
    int budget = 0, kept_after = 0;
    if (late > 0) {
        live[nlive++] = late;
        found = vg_proc_scan(t, NULL) == 0 && vg_proc_table_find(t, late) != NULL;
        for (int i = 0; i < N; i++) {
            struct vg_proc *p = vg_proc_table_find(t, kids[i]);
            sampled = sampled && p &&
                      vg_sampler_sample(s, p, 2000, VG_SAMPLER_DEFAULT_MASK, &out) == 0 &&
                      vg_sample_has(&out, VG_M_FDS) && vg_sample_has(&out, VG_M_CTXSW_VOL);
        }
        struct vg_proc *lp = vg_proc_table_find(t, late);
        sampled = sampled && lp &&
                  vg_sampler_sample(s, lp, 2000, VG_SAMPLER_DEFAULT_MASK, &out) == 0 &&
                  vg_sample_has(&out, VG_M_RSS);
        budget = vg_proc_table_kept_budget(t);
        kept_after = vg_proc_table_kept_fds(t);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    assert_true(late > 0);
    assert_true(found);
    assert_true(sampled);
    assert_true(budget < kept);
    assert_true(kept_after <= budget);
    vg_sampler_destroy(s);
    vg_proc_table_destroy(t);
    for (int i = 0; i < N; i++)
        reap(kids[i], NULL);
    reap(late, NULL);
}

/* One case per runtime, so a missing one is reported as skipped on its own. */
#define RUNTIME_CASE(name)                                                                         \
    {                                                                                              \
        "test_runtime_" name, test_real_runtimes, NULL, kill_leftovers, (void *)name               \
    }

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_real_children, kill_leftovers),
        cmocka_unit_test_teardown(test_pid_namespace, kill_leftovers),
        cmocka_unit_test_teardown(test_fd_exhaustion, kill_leftovers),
        RUNTIME_CASE("node"),
        RUNTIME_CASE("jvm"),
        RUNTIME_CASE("dotnet"),
    };
    return VG_TEST_MAIN(tests, NULL, NULL);
}
