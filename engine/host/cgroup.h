/* cgroup v1 and v2 reading for the sampler: mount detection under an injectable root, parsing of
 * /proc/PID/cgroup and a per-interval cache so all processes of one cgroup share one set of
 * reads. Loop-agnostic: no libuv. */
#ifndef VG_CGROUP_H
#define VG_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_CGROUP_PATH_MAX 512

/* Which hierarchies exist under a cgroup root. v2 is either the root itself (unified mode) or
 * root/unified (hybrid); v1 controllers live in root/memory and root/cpu (or root/cpu,cpuacct). */
struct vg_cgroup_mounts {
    bool has_v2;
    bool has_v1_memory;
    bool has_v1_cpu;
    char v2[VG_CGROUP_PATH_MAX];
    char v1_memory[VG_CGROUP_PATH_MAX];
    char v1_cpu[VG_CGROUP_PATH_MAX];
    /* Which cgroup each mount shows as its root ("" = the hierarchy's root). A container without
     * its own cgroup namespace gets a bind of its own cgroup (e.g. "/docker/abc") while
     * /proc/PID/cgroup still names the full path: that prefix is stripped before reading. */
    char v2_root[VG_CGROUP_PATH_MAX];
    char v1_memory_root[VG_CGROUP_PATH_MAX];
    char v1_cpu_root[VG_CGROUP_PATH_MAX];
};

/* Probes cgroup_root by marker files (cgroup.controllers for v2, memory.usage_in_bytes and
 * cpu.shares for v1), so fake trees in tests are detected like real mounts. Never fails: a
 * missing root yields a struct with nothing present. */
void vg_cgroup_detect(const char *cgroup_root, struct vg_cgroup_mounts *out);
/* Fills the *_root fields from the text of /proc/self/mountinfo (mount points are compared after
 * realpath()). Lines that do not parse are ignored. */
void vg_cgroup_mounts_load_roots(struct vg_cgroup_mounts *m, const char *mountinfo);

/* A process's cgroup paths, relative to each hierarchy's root ("" when absent). */
struct vg_proc_cgroup {
    char v2[VG_CGROUP_PATH_MAX];        /* "0::" line */
    char v1_memory[VG_CGROUP_PATH_MAX]; /* line whose controller list holds "memory" */
    char v1_cpu[VG_CGROUP_PATH_MAX];    /* line whose controller list holds "cpu" */
};

/* Parses the text of /proc/PID/cgroup. Returns 0 or VG_EPARSE when no line could be read. */
int vg_cgroup_parse_proc(const char *text, struct vg_proc_cgroup *out);

enum {
    VG_CG_MEM_CURRENT = 1u << 0,
    VG_CG_MEM_MAX = 1u << 1, /* set only when a finite limit exists */
    VG_CG_OOM_KILLS = 1u << 2,
    VG_CG_THR_PERIODS = 1u << 3,
    VG_CG_THR_USEC = 1u << 4,
    VG_CG_CPU_QUOTA = 1u << 5, /* set only when a finite quota exists */
};

/* What the sampler needs for one process. Limits are effective: the smallest along the path up
 * to the hierarchy root, since a parent's limit binds its children. */
struct vg_cgroup_stats {
    unsigned valid; /* VG_CG_* bits */
    uint64_t mem_current;
    uint64_t mem_max;
    uint64_t oom_kills;
    uint64_t nr_throttled;
    uint64_t throttled_usec;
    double cpu_quota; /* CPUs, e.g. 0.5 for "50000 100000" */
};

/* v1 reports "no limit" as a page-rounded LLONG_MAX; anything this large means unlimited. */
#define VG_CGROUP_UNLIMITED_MIN ((uint64_t)1 << 60)

struct vg_cgroup_cache;

/* proc_root (may be NULL) is where self/mountinfo is read for the mount roots. */
int vg_cgroup_cache_create(const char *cgroup_root, const char *proc_root,
                           struct vg_cgroup_cache **out);
void vg_cgroup_cache_destroy(struct vg_cgroup_cache *c);
/* Starts a new interval: values read before are stale from now on. Entries not used for a few
 * intervals are dropped. */
void vg_cgroup_cache_tick(struct vg_cgroup_cache *c);
const struct vg_cgroup_mounts *vg_cgroup_cache_mounts(const struct vg_cgroup_cache *c);
/* Fills *out for a process; want is a VG_CG_* mask (memory and cpu parts are read only when
 * asked). Always returns 0: what cannot be read is absent from out->valid. */
int vg_cgroup_get(struct vg_cgroup_cache *c, const struct vg_proc_cgroup *pcg, unsigned want,
                  struct vg_cgroup_stats *out);

#endif
