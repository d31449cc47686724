/* Process discovery: scans a /proc tree, keeps a table of live processes keyed by identity
 * (boot id, pid, start time) and reports which appeared and exited since the last scan.
 * Loop-agnostic: no libuv; the engine calls vg_proc_scan() from its timer or a worker. A table
 * (and the sampler that reads its processes) belongs to one thread at a time; callbacks run in
 * the calling thread. */
#ifndef VG_PROC_H
#define VG_PROC_H

#include "engine/host/cgroup.h"
#include "engine/host/procfs.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Roots are injectable so tests run against fake trees. NULL means the default. */
struct vg_procfs {
    const char *proc_root;   /* "/proc" */
    const char *cgroup_root; /* "/sys/fs/cgroup" */
    const char *sys_root;    /* "/sys": devices/system/cpu/online */
};

#define VG_PROC_CMDLINE_MAX 4096
#define VG_PROC_KEY_STR_MAX 80

struct vg_runtime_type;
struct vg_proc;

/* Who decides which runtime a process runs (engine/runtimes/ registry: vg_runtime_detector).
 * The table knows no runtime; it calls detect when a process appears or exec's and again at
 * later scans while detect returns false (a young process may still be loading its runtime),
 * at most a few times; forget before the process leaves the table or is re-identified. */
struct vg_proc_detector {
    /* young: started less than a second ago. Sets p->runtime (and p->runtime_data); returns
     * true once the answer is final. */
    bool (*detect)(struct vg_proc *p, bool young, void *arg);
    void (*forget)(struct vg_proc *p, void *arg);
    void *arg;
};

enum { VG__PF_STAT = 0, VG__PF_STATUS, VG__PF_IO, VG__PF_FD, VG__PF_COMM, VG__PF_COUNT };

/* One process. Fields are read-only for users of the table, except `user`. */
struct vg_proc {
    uint64_t key;                      /* 64-bit hash of (boot id, pid, start time) */
    char key_str[VG_PROC_KEY_STR_MAX]; /* "<boot id>:<pid>:<start ticks>" */
    int pid;                           /* as seen in proc_root */
    int ns_pid;                        /* pid in its innermost PID namespace (last NSpid) */
    int nspid[VG_PROC_NSPID_MAX];      /* NSpid: outermost (proc_root's view) first */
    int nspid_count;
    int ppid;
    uid_t uid; /* real */
    uint64_t start_ticks;
    char name[VG_PROC_NAME_MAX]; /* status Name: (comm, escaped), or stat comm */
    char *cmdline;               /* NUL-separated args joined by spaces, at most 4 KiB */
    char *exe;                   /* readlink of exe; NULL when unreadable */
    /* Shared by every process of the same cgroups (a host has far fewer cgroups than
     * processes, and the paths are 1.5 KiB); never NULL (all empty when unknown). */
    const struct vg_proc_cgroup *cgroup;
    const struct vg_runtime_type *runtime; /* set by the detector; NULL until known */
    void *runtime_data;                    /* the runtime adapter's per-process state */
    void *user;                            /* free for the engine; the table never touches it */
    /* Set by the table's user: nobody samples this process, so scans only check that it is
     * still the same program (a pread of its kept comm fd instead of stat) and it keeps no
     * other fd. Exec (a new comm), exit and pid reuse are still reported. */
    bool identity_only;

    /* Latest stat; `stat_fresh` says the last scan read it, so the sampler need not. */
    struct vg_proc_stat st;
    bool stat_fresh;

    /* Sampler state between intervals. */
    struct {
        bool has_prev;
        uint64_t prev_cpu_ticks;
        uint64_t prev_t_ms;
        int cpus_allowed;   /* affinity mask intersected with online CPUs; 0 = unknown */
        uint64_t cpus_tick; /* sampler tick when cpus_allowed was read */
    } smp;

    /* Internal. */
    struct vg_proc_table *table;
    struct vg_proc *hnext;
    int pf[VG__PF_COUNT]; /* kept fds, -1 when closed */
    uint64_t seen_gen;
    uint64_t cgroup_gen;
    uint8_t runtime_checks;
    bool runtime_settled; /* the detector gave its final answer */
    /* Known to an adapter but not in proc_root (a .NET runtime in another pid namespace that
     * connected to vigil's diagnostic port): pid 0, never read from /proc, never reported
     * exited by a scan; removed by vg_proc_table_remove_external. */
    bool external;
    uint8_t cmdline_checks; /* re-reads of an empty cmdline (caught mid-exec) */
};

typedef void (*vg_proc_cb)(struct vg_proc *p, void *arg);

struct vg_proc_table_options {
    int exclude_pid;  /* e.g. getpid(); 0 = none */
    int max_kept_fds; /* budget of /proc fds kept open across scans; 0 = from RLIMIT_NOFILE
                         (the soft limit less a quarter, at least 1024 left), -1 = keep none
                         (reopen every time) */
    const struct vg_proc_detector *detector; /* NULL: runtimes are never detected */
};

struct vg_proc_scan_cb {
    vg_proc_cb appeared; /* new identity; the process is in the table */
    vg_proc_cb exited;   /* called before the process leaves the table and is freed */
    vg_proc_cb changed;  /* exec'd (comm changed: name, cmdline, exe, runtime re-read), or the
                            runtime became known after the process appeared */
    void *arg;
};

struct vg_proc_table;

/* opts may be NULL. The procfs strings are copied. */
int vg_proc_table_create(const struct vg_procfs *fs, const struct vg_proc_table_options *opts,
                         struct vg_proc_table **out);
/* Frees every process without calling callbacks. */
void vg_proc_table_destroy(struct vg_proc_table *t);

/* Reads proc_root once and updates the table. Appeared/exited/changed callbacks run during the
 * call (cb or its members may be NULL). A pid whose start time changed is reported as exited
 * then appeared. Returns 0 or a negative VG_E* when proc_root cannot be read. */
int vg_proc_scan(struct vg_proc_table *t, const struct vg_proc_scan_cb *cb);

/* A process vigil cannot see in proc_root but an adapter knows of (the runtime told it).
 * pid is 0; ns_pid, uid, name and cmdline as given (copied); runtime and runtime_data set (the
 * table's detector forgets the data when the process is removed). key identifies it (e.g. a
 * hash of the runtime's cookie), key_str is shown. Not reported through scan callbacks: the
 * caller reports it. Returns the process, or NULL (out of memory). */
struct vg_proc_external {
    uint64_t key;
    const char *key_str;
    int ns_pid;
    unsigned uid;
    const char *name, *cmdline;
    const struct vg_runtime_type *runtime;
    void *runtime_data;
};
struct vg_proc *vg_proc_table_add_external(struct vg_proc_table *t,
                                           const struct vg_proc_external *x);
/* Unlinks and frees an external process (the caller reported it gone first). */
void vg_proc_table_remove_external(struct vg_proc_table *t, struct vg_proc *p);

/* Live (non-ignored) processes. */
size_t vg_proc_table_count(const struct vg_proc_table *t);
struct vg_proc *vg_proc_table_find(const struct vg_proc_table *t, int pid);
struct vg_proc *vg_proc_table_find_key(const struct vg_proc_table *t, uint64_t key);
/* Iteration: pass NULL to start; returns NULL at the end. The table must not change meanwhile. */
struct vg_proc *vg_proc_table_next(const struct vg_proc_table *t, const struct vg_proc *prev);
const char *vg_proc_table_boot_id(const struct vg_proc_table *t);
/* Number of /proc fds the table currently keeps open, and its budget (for tests and
 * diagnostics). The budget shrinks when opening a file fails with EMFILE or ENFILE: the table
 * then closes half its kept fds and reads the rest by open/read/close, never failing. */
int vg_proc_table_kept_fds(const struct vg_proc_table *t);
int vg_proc_table_kept_budget(const struct vg_proc_table *t);

/* The root the table reads ("/proc" unless injected) and an fd on it. */
const char *vg_proc_table_root(const struct vg_proc_table *t);
int vg_proc_table_root_fd(const struct vg_proc_table *t);

#endif
