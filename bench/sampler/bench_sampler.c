/* Cost of discovery + sampling: spawns sleeping children until N processes are visible, then
 * runs scan + sample over all of them either every second (interval mode) or back-to-back
 * (fast mode), and reports CPU time per sweep (getrusage) and the process's peak RSS. */
#include "engine/host/proc.h"
#include "engine/host/sampler.h"
#include "config/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 4096

static pid_t children[MAX_CHILDREN];
static int nchildren;

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
           (double)ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void kill_children(void)
{
    for (int i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    for (int i = 0; i < nchildren; i++)
        waitpid(children[i], NULL, 0);
    nchildren = 0;
}

static int appeared;

static void on_appeared(struct vg_proc *p, void *arg)
{
    (void)p;
    (void)arg;
    appeared++;
}

static int sweep(struct vg_proc_table *t, struct vg_sampler *s, uint64_t mask)
{
    int n = 0;
    struct vg_proc_scan_cb cb = {.appeared = on_appeared};
    vg_proc_scan(t, &cb);
    vg_sampler_tick(s);
    uint64_t now = vg_mono_ms();
    for (struct vg_proc *p = vg_proc_table_next(t, NULL); p; p = vg_proc_table_next(t, p)) {
        struct vg_sample smp;
        if (vg_sampler_sample(s, p, now, mask, &smp) == 0)
            n++;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_sampler [--procs N] [--seconds S] [--fast ITERATIONS] "
                    "[--no-keep-fds] [--pss] [--no-ctxsw]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int procs = 200, seconds = 30, fast = 0, max_kept = 0;
    uint64_t mask = VG_SAMPLER_DEFAULT_MASK;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc)
            procs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--fast") == 0 && i + 1 < argc)
            fast = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-keep-fds") == 0)
            max_kept = -1;
        else if (strcmp(argv[i], "--pss") == 0)
            mask |= VG_METRIC_BIT(VG_M_PSS);
        else if (strcmp(argv[i], "--no-ctxsw") == 0)
            mask &= ~(VG_METRIC_BIT(VG_M_CTXSW_VOL) | VG_METRIC_BIT(VG_M_CTXSW_INVOL));
        else
            usage();
    }

    /* Raise the fd limit as the daemon would, so kept fds cover every process. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct vg_proc_table *t;
    struct vg_sampler *s;
    struct vg_proc_table_options o = {.exclude_pid = getpid(), .max_kept_fds = max_kept};
    if (vg_proc_table_create(NULL, &o, &t) || vg_sampler_create(NULL, &s)) {
        fprintf(stderr, "cannot open /proc\n");
        return 1;
    }
    vg_proc_scan(t, NULL);
    int existing = (int)vg_proc_table_count(t);
    while (existing + nchildren < procs && nchildren < MAX_CHILDREN) {
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0) {
            for (;;)
                pause();
        }
        children[nchildren++] = pid;
    }
    long rss_before = rss_kb();

    /* warm-up sweep: discovery of every process (cmdline, exe, maps, cgroup) happens here */
    double c0 = cpu_ms();
    uint64_t w0 = vg_mono_ms();
    int sampled = sweep(t, s, mask);
    double discovery_ms = cpu_ms() - c0;
    double discovery_wall = (double)(vg_mono_ms() - w0);

    int iterations = fast > 0 ? fast : seconds;
    appeared = 0;
    double worst = 0;
    c0 = cpu_ms();
    uint64_t start = vg_mono_ms();
    for (int i = 0; i < iterations; i++) {
        if (!fast) {
            /* sleep to the next whole second since start */
            uint64_t next = start + (uint64_t)(i + 1) * 1000;
            uint64_t now = vg_mono_ms();
            if (next > now) {
                struct timespec ts = {(time_t)((next - now) / 1000),
                                      (long)((next - now) % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        double a = cpu_ms();
        sampled = sweep(t, s, mask);
        double d = cpu_ms() - a;
        if (d > worst)
            worst = d;
    }
    double total = cpu_ms() - c0;
    double wall = (double)(vg_mono_ms() - start);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    double per = total / iterations;
    printf("mode:                 %s\n", fast ? "fast (back-to-back)" : "interval (1 s)");
    printf("processes sampled:    %d (spawned %d)\n", sampled, nchildren);
    printf("kept /proc fds:       %d\n", vg_proc_table_kept_fds(t));
    printf("sweeps:               %d in %.0f ms wall\n", iterations, wall);
    printf("first sweep:          %.2f ms CPU, %.2f ms wall (discovers every process)\n",
           discovery_ms, discovery_wall);
    printf("new processes:        %d discovered during the sweeps (machine churn)\n", appeared);
    printf("CPU per sweep:        %.3f ms (worst %.3f ms)\n", per, worst);
    printf("CPU per process:      %.2f us\n", per * 1000.0 / (sampled ? sampled : 1));
    printf("%% of one core at 1 s: %.3f %%\n", per / 1000.0 * 100.0);
    printf("same, per 200 procs:  %.3f %%\n",
           per * 200.0 / (sampled ? sampled : 1) / 1000.0 * 100.0);
    printf("RSS:                  %ld KiB before sweeps, %ld KiB after, peak %ld KiB\n", rss_before,
           rss_kb(), ru.ru_maxrss);

    kill_children();
    vg_sampler_destroy(s);
    vg_proc_table_destroy(t);
    return 0;
}
