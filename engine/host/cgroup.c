#include "engine/host/cgroup.h"
#include "engine/host/proc_int.h"

#include "config/error.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Entries unused for this many intervals are dropped (their cgroup may be gone). */
#define PRUNE_AFTER_TICKS 3

enum hier { H_V2 = 0, H_V1_MEM = 1, H_V1_CPU = 2, H_COUNT };

struct entry {
    int hier;
    uint64_t hash;
    uint64_t used_tick;
    /* Each group of values is read at most once per tick, and only when someone asks. */
    uint64_t usage_tick;
    unsigned usage_valid;
    uint64_t mem_current, oom_kills;
    uint64_t limit_tick;
    bool limit_valid;
    uint64_t mem_limit;
    uint64_t cpustat_tick;
    unsigned cpustat_valid;
    uint64_t nr_throttled, throttled_usec;
    uint64_t quota_tick;
    bool quota_valid;
    double quota;
    /* Effective (min along the ancestors) limit and quota, computed once per tick. */
    uint64_t eff_mem_tick;
    bool eff_mem_valid;
    uint64_t eff_mem;
    uint64_t eff_quota_tick;
    bool eff_quota_valid;
    double eff_quota;
    char path[VG_CGROUP_PATH_MAX];
};

struct vg_cgroup_cache {
    struct vg_cgroup_mounts m;
    int dir_fd[H_COUNT]; /* mount root of each hierarchy, -1 when absent */
    uint64_t tick;
    struct entry **e;
    size_t n, cap;
};

static bool exists_at(const char *dir, const char *file)
{
    char path[VG_CGROUP_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

void vg_cgroup_detect(const char *cgroup_root, struct vg_cgroup_mounts *out)
{
    memset(out, 0, sizeof(*out));
    char dir[VG_CGROUP_PATH_MAX];
    if (!cgroup_root)
        cgroup_root = "/sys/fs/cgroup";
    if (exists_at(cgroup_root, "cgroup.controllers")) {
        /* unified: everything is v2 */
        out->has_v2 = true;
        snprintf(out->v2, sizeof(out->v2), "%s", cgroup_root);
        return;
    }
    snprintf(dir, sizeof(dir), "%s/unified", cgroup_root);
    if (exists_at(dir, "cgroup.controllers")) {
        out->has_v2 = true;
        snprintf(out->v2, sizeof(out->v2), "%s", dir);
    }
    snprintf(dir, sizeof(dir), "%s/memory", cgroup_root);
    if (exists_at(dir, "memory.usage_in_bytes")) {
        out->has_v1_memory = true;
        snprintf(out->v1_memory, sizeof(out->v1_memory), "%s", dir);
    }
    static const char *const cpu_dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    for (size_t i = 0; i < sizeof(cpu_dirs) / sizeof(cpu_dirs[0]); i++) {
        snprintf(dir, sizeof(dir), "%s/%s", cgroup_root, cpu_dirs[i]);
        if (exists_at(dir, "cpu.shares")) {
            out->has_v1_cpu = true;
            snprintf(out->v1_cpu, sizeof(out->v1_cpu), "%s", dir);
            break;
        }
    }
}

/* mountinfo escapes blanks and backslashes in paths as \ooo */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static void set_root(char *dst, const char *mount_dir, const char *mnt, const char *root)
{
    char real[PATH_MAX];
    if (!mount_dir[0] || !realpath(mount_dir, real) || strcmp(real, mnt) != 0)
        return;
    snprintf(dst, VG_CGROUP_PATH_MAX, "%s", strcmp(root, "/") == 0 ? "" : root);
}

void vg_cgroup_mounts_load_roots(struct vg_cgroup_mounts *m, const char *mountinfo)
{
    for (const char *line = mountinfo; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[2 * PATH_MAX];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            /* id parent maj:min root mountpoint options [optional...] - fstype source super */
            char *tok[64];
            int n = 0;
            char *save = NULL;
            for (char *x = strtok_r(buf, " ", &save); x && n < 64; x = strtok_r(NULL, " ", &save))
                tok[n++] = x;
            int dash = -1;
            for (int i = 6; i < n && dash < 0; i++)
                if (strcmp(tok[i], "-") == 0)
                    dash = i;
            if (dash > 0 && dash + 1 < n) {
                const char *fstype = tok[dash + 1];
                unescape(tok[3]);
                unescape(tok[4]);
                if (strcmp(fstype, "cgroup2") == 0) {
                    set_root(m->v2_root, m->has_v2 ? m->v2 : "", tok[4], tok[3]);
                } else if (strcmp(fstype, "cgroup") == 0) {
                    set_root(m->v1_memory_root, m->has_v1_memory ? m->v1_memory : "", tok[4],
                             tok[3]);
                    set_root(m->v1_cpu_root, m->has_v1_cpu ? m->v1_cpu : "", tok[4], tok[3]);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

static bool has_controller(const char *list, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t tlen = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (tlen == nlen && memcmp(p, name, nlen) == 0)
            return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

static void set_path(char *dst, const char *src, size_t len)
{
    if (len >= VG_CGROUP_PATH_MAX)
        return; /* too long to use: leave it absent rather than truncated */
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int vg_cgroup_parse_proc(const char *text, struct vg_proc_cgroup *out)
{
    memset(out, 0, sizeof(*out));
    bool any = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        const char *c1 = memchr(line, ':', (size_t)(end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
        if (c2) {
            const char *ctl = c1 + 1;
            size_t ctl_len = (size_t)(c2 - ctl);
            const char *path = c2 + 1;
            size_t plen = (size_t)(end - path);
            any = true;
            if (c1 - line == 1 && line[0] == '0' && ctl_len == 0)
                set_path(out->v2, path, plen);
            else {
                if (has_controller(ctl, ctl_len, "memory"))
                    set_path(out->v1_memory, path, plen);
                if (has_controller(ctl, ctl_len, "cpu"))
                    set_path(out->v1_cpu, path, plen);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return any ? 0 : VG_EPARSE;
}

static void load_mountinfo(struct vg_cgroup_mounts *m, const char *proc_root)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/self/mountinfo", proc_root);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t cap = 65536, len = 0;
    char *text = malloc(cap);
    while (text) {
        ssize_t n = read(fd, text + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len + 1 == cap) {
            char *nt = cap < (16u << 20) ? realloc(text, cap * 2) : NULL;
            if (!nt)
                break;
            text = nt;
            cap *= 2;
        }
    }
    close(fd);
    if (!text)
        return;
    text[len] = '\0';
    vg_cgroup_mounts_load_roots(m, text);
    free(text);
}

int vg_cgroup_cache_create(const char *cgroup_root, const char *proc_root,
                           struct vg_cgroup_cache **out)
{
    struct vg_cgroup_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return VG_ENOMEM;
    vg_cgroup_detect(cgroup_root, &c->m);
    if (proc_root)
        load_mountinfo(&c->m, proc_root);
    const char *dirs[H_COUNT] = {c->m.has_v2 ? c->m.v2 : NULL,
                                 c->m.has_v1_memory ? c->m.v1_memory : NULL,
                                 c->m.has_v1_cpu ? c->m.v1_cpu : NULL};
    for (int i = 0; i < H_COUNT; i++)
        c->dir_fd[i] = dirs[i] ? open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    c->tick = 1;
    *out = c;
    return 0;
}

void vg_cgroup_cache_destroy(struct vg_cgroup_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < H_COUNT; i++)
        if (c->dir_fd[i] >= 0)
            close(c->dir_fd[i]);
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i]);
    free(c->e);
    free(c);
}

void vg_cgroup_cache_tick(struct vg_cgroup_cache *c)
{
    c->tick++;
    size_t j = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->tick - c->e[i]->used_tick > PRUNE_AFTER_TICKS)
            free(c->e[i]);
        else
            c->e[j++] = c->e[i];
    }
    c->n = j;
}

const struct vg_cgroup_mounts *vg_cgroup_cache_mounts(const struct vg_cgroup_cache *c)
{
    return &c->m;
}

static uint64_t hash_path(int hier, const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)hier;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static struct entry *lookup(struct vg_cgroup_cache *c, int hier, const char *path, size_t len)
{
    uint64_t h = hash_path(hier, path, len);
    for (size_t i = 0; i < c->n; i++) {
        struct entry *e = c->e[i];
        if (e->hash == h && e->hier == hier && strlen(e->path) == len &&
            memcmp(e->path, path, len) == 0) {
            e->used_tick = c->tick;
            return e;
        }
    }
    if (len >= VG_CGROUP_PATH_MAX)
        return NULL;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct entry **ne = realloc(c->e, ncap * sizeof(*ne));
        if (!ne)
            return NULL;
        c->e = ne;
        c->cap = ncap;
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->hier = hier;
    e->hash = h;
    e->used_tick = c->tick;
    memcpy(e->path, path, len);
    e->path[len] = '\0';
    c->e[c->n++] = e;
    return e;
}

/* Reads <mount>/<path>/<file>. */
static ssize_t read_cg(struct vg_cgroup_cache *c, const struct entry *e, const char *file,
                       char *buf, size_t cap)
{
    char rel[VG_CGROUP_PATH_MAX + 64];
    const char *p = e->path;
    while (*p == '/')
        p++;
    snprintf(rel, sizeof(rel), "%s%s%s", p, *p ? "/" : "", file);
    return vg_procfs_read(c->dir_fd[e->hier], rel, buf, cap);
}

static bool read_u64_file(struct vg_cgroup_cache *c, const struct entry *e, const char *file,
                          uint64_t *out)
{
    char buf[64];
    if (read_cg(c, e, file, buf, sizeof(buf)) <= 0)
        return false;
    bool ok;
    vg_procfs_parse_u64(vg_procfs_skip_ws(buf), out, &ok);
    return ok;
}

static void read_usage(struct vg_cgroup_cache *c, struct entry *e)
{
    if (e->usage_tick == c->tick)
        return;
    e->usage_tick = c->tick;
    e->usage_valid = 0;
    char buf[1024];
    bool v2 = e->hier == H_V2;
    if (read_u64_file(c, e, v2 ? "memory.current" : "memory.usage_in_bytes", &e->mem_current))
        e->usage_valid |= VG_CG_MEM_CURRENT;
    if (read_cg(c, e, v2 ? "memory.events" : "memory.oom_control", buf, sizeof(buf)) > 0 &&
        vg_procfs_field_u64(buf, "oom_kill ", &e->oom_kills))
        e->usage_valid |= VG_CG_OOM_KILLS;
}

static void read_limit(struct vg_cgroup_cache *c, struct entry *e)
{
    if (e->limit_tick == c->tick)
        return;
    e->limit_tick = c->tick;
    e->limit_valid = false;
    uint64_t v;
    /* v2 writes "max" for no limit, which fails the number parse: unlimited */
    if (read_u64_file(c, e, e->hier == H_V2 ? "memory.max" : "memory.limit_in_bytes", &v) &&
        v < VG_CGROUP_UNLIMITED_MIN) {
        e->limit_valid = true;
        e->mem_limit = v;
    }
}

static void read_cpustat(struct vg_cgroup_cache *c, struct entry *e)
{
    if (e->cpustat_tick == c->tick)
        return;
    e->cpustat_tick = c->tick;
    e->cpustat_valid = 0;
    char buf[1024];
    if (read_cg(c, e, "cpu.stat", buf, sizeof(buf)) <= 0)
        return;
    if (vg_procfs_field_u64(buf, "nr_throttled ", &e->nr_throttled))
        e->cpustat_valid |= VG_CG_THR_PERIODS;
    uint64_t v;
    if (e->hier == H_V2 && vg_procfs_field_u64(buf, "throttled_usec ", &v)) {
        e->throttled_usec = v;
        e->cpustat_valid |= VG_CG_THR_USEC;
    } else if (e->hier != H_V2 && vg_procfs_field_u64(buf, "throttled_time ", &v)) {
        e->throttled_usec = v / 1000; /* v1 counts nanoseconds */
        e->cpustat_valid |= VG_CG_THR_USEC;
    }
}

static void read_quota(struct vg_cgroup_cache *c, struct entry *e)
{
    if (e->quota_tick == c->tick)
        return;
    e->quota_tick = c->tick;
    e->quota_valid = false;
    uint64_t quota, period;
    bool ok;
    if (e->hier == H_V2) {
        char buf[64];
        if (read_cg(c, e, "cpu.max", buf, sizeof(buf)) <= 0)
            return;
        const char *p = vg_procfs_parse_u64(vg_procfs_skip_ws(buf), &quota, &ok);
        if (!ok) /* "max" */
            return;
        vg_procfs_parse_u64(vg_procfs_skip_ws(p), &period, &ok);
        if (!ok)
            return;
    } else {
        char buf[64];
        /* v1 writes -1 for no quota: the leading '-' fails the unsigned parse */
        if (read_cg(c, e, "cpu.cfs_quota_us", buf, sizeof(buf)) <= 0)
            return;
        vg_procfs_parse_u64(vg_procfs_skip_ws(buf), &quota, &ok);
        if (!ok || !read_u64_file(c, e, "cpu.cfs_period_us", &period))
            return;
    }
    if (quota == 0 || period == 0)
        return;
    e->quota_valid = true;
    e->quota = (double)quota / (double)period;
}

/* Walks from the entry's cgroup up to the hierarchy root (the root itself included: a v1 root
 * holds unlimited values, a v2 root has no limit files at all). */
static void effective(struct vg_cgroup_cache *c, struct entry *leaf, bool mem)
{
    if (mem ? leaf->eff_mem_tick == c->tick : leaf->eff_quota_tick == c->tick)
        return;
    bool valid = false;
    uint64_t mem_min = 0;
    double quota_min = 0;
    size_t len = strlen(leaf->path);
    char path[VG_CGROUP_PATH_MAX];
    memcpy(path, leaf->path, len + 1);
    for (;;) {
        struct entry *e = lookup(c, leaf->hier, path, len);
        if (e) {
            if (mem) {
                read_limit(c, e);
                if (e->limit_valid && (!valid || e->mem_limit < mem_min)) {
                    mem_min = e->mem_limit;
                    valid = true;
                }
            } else {
                read_quota(c, e);
                if (e->quota_valid && (!valid || e->quota < quota_min)) {
                    quota_min = e->quota;
                    valid = true;
                }
            }
        }
        if (len <= 1)
            break;
        while (len > 0 && path[len - 1] != '/')
            len--;
        if (len > 1)
            len--; /* drop the '/' too, except for the root "/" */
        path[len] = '\0';
        if (len == 0)
            break;
    }
    if (mem) {
        leaf->eff_mem_tick = c->tick;
        leaf->eff_mem_valid = valid;
        leaf->eff_mem = mem_min;
    } else {
        leaf->eff_quota_tick = c->tick;
        leaf->eff_quota_valid = valid;
        leaf->eff_quota = quota_min;
    }
}

/* A path from another cgroup namespace shows as "/../.."; it cannot be resolved here. */
static bool usable(const char *path)
{
    return path[0] == '/' && !strstr(path, "/..");
}

/* The path below the mount: strips the mount's root; NULL when the cgroup lies outside the
 * mounted subtree (it cannot be read here, and must not be confused with a same-named one). */
static const char *below_mount(const char *root, const char *path, char *buf)
{
    if (!usable(path))
        return NULL;
    if (!root[0])
        return path;
    size_t rl = strlen(root);
    if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
        return NULL;
    snprintf(buf, VG_CGROUP_PATH_MAX, "%s", path[rl] ? path + rl : "/");
    return buf;
}

static struct entry *pick(struct vg_cgroup_cache *c, int v1_hier, const char *v1_path,
                          const struct vg_proc_cgroup *pcg)
{
    char buf[VG_CGROUP_PATH_MAX];
    const char *p;
    if (c->dir_fd[v1_hier] >= 0 && v1_path[0]) {
        p = below_mount(v1_hier == H_V1_MEM ? c->m.v1_memory_root : c->m.v1_cpu_root, v1_path, buf);
        return p ? lookup(c, v1_hier, p, strlen(p)) : NULL;
    }
    if (c->dir_fd[H_V2] >= 0 && pcg->v2[0]) {
        p = below_mount(c->m.v2_root, pcg->v2, buf);
        return p ? lookup(c, H_V2, p, strlen(p)) : NULL;
    }
    return NULL;
}

int vg_cgroup_get(struct vg_cgroup_cache *c, const struct vg_proc_cgroup *pcg, unsigned want,
                  struct vg_cgroup_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (want & (VG_CG_MEM_CURRENT | VG_CG_MEM_MAX | VG_CG_OOM_KILLS)) {
        struct entry *e = pick(c, H_V1_MEM, pcg->v1_memory, pcg);
        if (e) {
            if (want & (VG_CG_MEM_CURRENT | VG_CG_OOM_KILLS)) {
                read_usage(c, e);
                out->valid |= e->usage_valid & want;
                out->mem_current = e->mem_current;
                out->oom_kills = e->oom_kills;
            }
            if (want & VG_CG_MEM_MAX) {
                effective(c, e, true);
                if (e->eff_mem_valid) {
                    out->valid |= VG_CG_MEM_MAX;
                    out->mem_max = e->eff_mem;
                }
            }
        }
    }
    if (want & (VG_CG_THR_PERIODS | VG_CG_THR_USEC | VG_CG_CPU_QUOTA)) {
        struct entry *e = pick(c, H_V1_CPU, pcg->v1_cpu, pcg);
        if (e) {
            if (want & (VG_CG_THR_PERIODS | VG_CG_THR_USEC)) {
                read_cpustat(c, e);
                out->valid |= e->cpustat_valid & want;
                out->nr_throttled = e->nr_throttled;
                out->throttled_usec = e->throttled_usec;
            }
            if (want & VG_CG_CPU_QUOTA) {
                effective(c, e, false);
                if (e->eff_quota_valid) {
                    out->valid |= VG_CG_CPU_QUOTA;
                    out->cpu_quota = e->eff_quota;
                }
            }
        }
    }
    return 0;
}
