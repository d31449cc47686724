#include "engine/host/sampler.h"
#include "engine/host/cgroup.h"
#include "engine/host/proc_int.h"

#include "config/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_WORDS 16 /* CPU lists are intersected up to 1024 CPUs; beyond that they are counted */
#define ONLINE_REFRESH_TICKS 60
#define AFFINITY_REFRESH_TICKS 10

struct cpuset {
    uint64_t w[CPU_WORDS];
    int beyond; /* CPUs >= 1024 */
};

struct vg_sampler {
    int sys_fd; /* sys_root, -1 when missing */
    long clk_tck;
    long page_size;
    uint64_t ticks;
    struct cpuset online;
    int online_count;
    struct vg_cgroup_cache *cg;
};

/* Parses a CPU list such as "0-3,8,10-11". Returns false when nothing could be read. */
static bool parse_cpulist(const char *s, struct cpuset *out)
{
    memset(out, 0, sizeof(*out));
    bool any = false;
    s = vg_procfs_skip_ws(s);
    while (*s && *s != '\n') {
        uint64_t a, b;
        bool ok;
        s = vg_procfs_parse_u64(s, &a, &ok);
        if (!ok)
            break;
        b = a;
        if (*s == '-') {
            s = vg_procfs_parse_u64(s + 1, &b, &ok);
            if (!ok || b < a)
                break;
        }
        if (b - a > 1u << 20)
            break; /* nonsense; refuse rather than loop forever */
        for (uint64_t c = a; c <= b; c++) {
            if (c < CPU_WORDS * 64)
                out->w[c / 64] |= (uint64_t)1 << (c % 64);
            else
                out->beyond++;
        }
        any = true;
        if (*s != ',')
            break;
        s++;
    }
    return any;
}

static int cpuset_count(const struct cpuset *a, const struct cpuset *mask)
{
    int n = 0;
    for (int i = 0; i < CPU_WORDS; i++)
        n += __builtin_popcountll(mask ? a->w[i] & mask->w[i] : a->w[i]);
    return n + a->beyond;
}

static void read_online(struct vg_sampler *s)
{
    char buf[1024];
    if (s->sys_fd >= 0 &&
        vg_procfs_read(s->sys_fd, "devices/system/cpu/online", buf, sizeof(buf)) > 0 &&
        parse_cpulist(buf, &s->online)) {
        s->online_count = cpuset_count(&s->online, NULL);
        return;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->online_count = n > 0 ? (int)n : 1;
    memset(&s->online, 0, sizeof(s->online));
    for (long c = 0; c < n && c < CPU_WORDS * 64; c++)
        s->online.w[c / 64] |= (uint64_t)1 << (c % 64);
}

int vg_sampler_create(const struct vg_procfs *fs, struct vg_sampler **out)
{
    *out = NULL;
    struct vg_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    const char *sys_root = fs && fs->sys_root ? fs->sys_root : "/sys";
    s->sys_fd = open(sys_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    s->clk_tck = sysconf(_SC_CLK_TCK);
    if (s->clk_tck <= 0)
        s->clk_tck = 100;
    s->page_size = sysconf(_SC_PAGESIZE);
    if (s->page_size <= 0)
        s->page_size = 4096;
    read_online(s);
    int r = vg_cgroup_cache_create(fs && fs->cgroup_root ? fs->cgroup_root : "/sys/fs/cgroup",
                                   fs && fs->proc_root ? fs->proc_root : "/proc", &s->cg);
    if (r < 0) {
        vg_sampler_destroy(s);
        return r;
    }
    *out = s;
    return 0;
}

void vg_sampler_destroy(struct vg_sampler *s)
{
    if (!s)
        return;
    vg_cgroup_cache_destroy(s->cg);
    if (s->sys_fd >= 0)
        close(s->sys_fd);
    free(s);
}

void vg_sampler_tick(struct vg_sampler *s)
{
    s->ticks++;
    if (s->ticks % ONLINE_REFRESH_TICKS == 0)
        read_online(s); /* CPU hotplug is rare; this keeps capacity right when it happens */
    vg_cgroup_cache_tick(s->cg);
}

int vg_sampler_online_cpus(const struct vg_sampler *s)
{
    return s->online_count;
}

const struct vg_cgroup_mounts *vg_sampler_cgroup_mounts(const struct vg_sampler *s)
{
    return vg_cgroup_cache_mounts(s->cg);
}

static void put(struct vg_sample *out, uint64_t mask, enum vg_metric_id id, double v)
{
    if (mask & VG_METRIC_BIT(id)) {
        out->v[id] = v;
        out->valid |= VG_METRIC_BIT(id);
    }
}

static bool gone(ssize_t r)
{
    return r == -ESRCH || r == -ENOENT;
}

static int read_status(struct vg_sampler *s, struct vg_proc *p, uint64_t mask,
                       struct vg_sample *out)
{
    char buf[8192];
    ssize_t n = vg__proc_read(p, VG__PF_STATUS, buf, sizeof(buf));
    if (gone(n))
        return VG_EEXITED;
    if (n <= 0)
        return 0;
    uint64_t v;
    if (vg_procfs_field_u64(buf, "voluntary_ctxt_switches", &v))
        put(out, mask, VG_M_CTXSW_VOL, (double)v);
    if (vg_procfs_field_u64(buf, "nonvoluntary_ctxt_switches", &v))
        put(out, mask, VG_M_CTXSW_INVOL, (double)v);
    const char *cl = strstr(buf, "\nCpus_allowed_list:");
    struct cpuset allowed;
    if (cl && parse_cpulist(cl + 19, &allowed)) {
        int c = cpuset_count(&allowed, &s->online);
        p->smp.cpus_allowed = c > 0 ? c : s->online_count;
        p->smp.cpus_tick = s->ticks;
    }
    return 0;
}

static void read_io(struct vg_proc *p, uint64_t mask, struct vg_sample *out)
{
    char buf[512];
    /* EACCES for other users' processes without CAP_SYS_PTRACE: the values stay absent */
    if (vg__proc_read(p, VG__PF_IO, buf, sizeof(buf)) <= 0)
        return;
    uint64_t v;
    if (vg_procfs_field_u64(buf, "read_bytes", &v))
        put(out, mask, VG_M_IO_READ, (double)v);
    if (vg_procfs_field_u64(buf, "write_bytes", &v))
        put(out, mask, VG_M_IO_WRITE, (double)v);
}

static void read_pss(struct vg_proc *p, uint64_t mask, struct vg_sample *out)
{
    char buf[2048];
    uint64_t kb;
    if (vg__proc_read_rel(p, "smaps_rollup", buf, sizeof(buf)) > 0 &&
        vg_procfs_field_u64(buf, "Pss", &kb))
        put(out, mask, VG_M_PSS, (double)kb * 1024.0);
}

static unsigned cgroup_want(uint64_t mask)
{
    unsigned w = 0;
    if (mask & VG_METRIC_BIT(VG_M_CG_MEM_CURRENT))
        w |= VG_CG_MEM_CURRENT;
    if (mask & VG_METRIC_BIT(VG_M_CG_MEM_MAX))
        w |= VG_CG_MEM_MAX;
    if (mask & VG_METRIC_BIT(VG_M_CG_MEM_PERCENT))
        w |= VG_CG_MEM_MAX | VG_CG_MEM_CURRENT;
    if (mask & VG_METRIC_BIT(VG_M_CG_OOM_KILLS))
        w |= VG_CG_OOM_KILLS;
    if (mask & VG_METRIC_BIT(VG_M_CG_THROTTLED_PERIODS))
        w |= VG_CG_THR_PERIODS;
    if (mask & VG_METRIC_BIT(VG_M_CG_THROTTLED_SECONDS))
        w |= VG_CG_THR_USEC;
    if (mask & VG_METRIC_BIT(VG_M_CPU_PERCENT))
        w |= VG_CG_CPU_QUOTA;
    return w;
}

int vg_sampler_sample(struct vg_sampler *s, struct vg_proc *p, uint64_t t_ms, uint64_t mask,
                      struct vg_sample *out)
{
    memset(out, 0, sizeof(*out));
    out->t_ms = t_ms;
    if (!p->stat_fresh) {
        int r = vg__proc_refresh_stat(p);
        if (r < 0)
            return r;
    }
    p->stat_fresh = false;
    const struct vg_proc_stat *st = &p->st;
    uint64_t cpu_ticks = st->utime + st->stime;

    put(out, mask, VG_M_CPU_SECONDS, (double)cpu_ticks / (double)s->clk_tck);
    if (st->rss_pages >= 0)
        put(out, mask, VG_M_RSS, (double)st->rss_pages * (double)s->page_size);
    put(out, mask, VG_M_VSIZE, (double)st->vsize);
    if (st->num_threads > 0)
        put(out, mask, VG_M_THREADS, (double)st->num_threads);
    put(out, mask, VG_M_MAJFLT, (double)st->majflt);
    put(out, mask, VG_M_MINFLT, (double)st->minflt);

    /* status is the costliest file the kernel formats here; for CPU percent alone only the
     * affinity is needed from it, and that rarely changes */
    uint64_t ctxsw_bits = VG_METRIC_BIT(VG_M_CTXSW_VOL) | VG_METRIC_BIT(VG_M_CTXSW_INVOL);
    bool need_affinity =
        (mask & VG_METRIC_BIT(VG_M_CPU_PERCENT)) &&
        (p->smp.cpus_allowed == 0 || s->ticks - p->smp.cpus_tick >= AFFINITY_REFRESH_TICKS);
    if ((mask & ctxsw_bits) || need_affinity) {
        int r = read_status(s, p, mask, out);
        if (r < 0)
            return r;
    }
    if (mask & VG_METRIC_BIT(VG_M_FDS)) {
        int n = vg__proc_count_fds(p);
        if (n >= 0)
            put(out, mask, VG_M_FDS, n);
    }
    if (mask & (VG_METRIC_BIT(VG_M_IO_READ) | VG_METRIC_BIT(VG_M_IO_WRITE)))
        read_io(p, mask, out);
    if (mask & VG_METRIC_BIT(VG_M_PSS))
        read_pss(p, mask, out);

    struct vg_cgroup_stats cg = {0};
    unsigned want = cgroup_want(mask);
    if (want)
        vg_cgroup_get(s->cg, p->cgroup, want, &cg);
    if (cg.valid & VG_CG_MEM_CURRENT)
        put(out, mask, VG_M_CG_MEM_CURRENT, (double)cg.mem_current);
    if (cg.valid & VG_CG_MEM_MAX) {
        put(out, mask, VG_M_CG_MEM_MAX, (double)cg.mem_max);
        if ((cg.valid & VG_CG_MEM_CURRENT) && cg.mem_max > 0)
            put(out, mask, VG_M_CG_MEM_PERCENT,
                (double)cg.mem_current * 100.0 / (double)cg.mem_max);
    }
    if (cg.valid & VG_CG_OOM_KILLS)
        put(out, mask, VG_M_CG_OOM_KILLS, (double)cg.oom_kills);
    if (cg.valid & VG_CG_THR_PERIODS)
        put(out, mask, VG_M_CG_THROTTLED_PERIODS, (double)cg.nr_throttled);
    if (cg.valid & VG_CG_THR_USEC)
        put(out, mask, VG_M_CG_THROTTLED_SECONDS, (double)cg.throttled_usec / 1e6);

    /* CPU percent from the delta since this process's previous sample, never a lifetime average:
     * a process that was busy an hour ago and idles now must read ~0. */
    if ((mask & VG_METRIC_BIT(VG_M_CPU_PERCENT)) && p->smp.has_prev && t_ms > p->smp.prev_t_ms &&
        cpu_ticks >= p->smp.prev_cpu_ticks) {
        double used = (double)(cpu_ticks - p->smp.prev_cpu_ticks) / (double)s->clk_tck;
        double wall = (double)(t_ms - p->smp.prev_t_ms) / 1000.0;
        double cap = p->smp.cpus_allowed > 0 ? p->smp.cpus_allowed : s->online_count;
        if ((cg.valid & VG_CG_CPU_QUOTA) && cg.cpu_quota < cap)
            cap = cg.cpu_quota;
        if (cap <= 0)
            cap = 1;
        double pct = used / wall / cap * 100.0;
        if (pct < 0)
            pct = 0;
        if (pct > 100)
            pct = 100;
        put(out, mask, VG_M_CPU_PERCENT, pct);
    }
    p->smp.has_prev = true;
    p->smp.prev_cpu_ticks = cpu_ticks;
    p->smp.prev_t_ms = t_ms;
    return 0;
}
