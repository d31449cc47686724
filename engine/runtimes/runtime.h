/* Runtime adapters: one per runtime vigil speaks to (native processes, .NET, JVM, Node), each a
 * file engine/runtimes/NAME.c filling one struct vg_runtime_type, listed in the static registry
 * vg_runtime_types[] (registry.c); protocol code an adapter needs lives in engine/runtimes/NAME/.
 *
 * An adapter answers three questions for the engine:
 *   - detect: is this process mine? (discovery asks every adapter, in registry order; `native`
 *     is last and takes every process);
 *   - sessions: runtime samples (counters, heap figures) for the triggers and /metrics that need
 *     them, kept up to date by the adapter and read by the engine at each sampling tick;
 *   - actions: the runners for the rule actions it implements (CollectDump, CollectGCDump,
 *     CollectTrace, ...). An action a process's own adapter lacks falls back to `native`'s (a
 *     core dump works for every process).
 *
 * Threads: detect, forget, session_* and action start/cancel run on the engine's loop thread and
 * must not block (no IPC there: a runtime that stops answering must never stall sampling).
 * Blocking protocol work runs on the adapter's own threads (vg_rt_job_thread() below). */
#ifndef VG_RUNTIME_H
#define VG_RUNTIME_H

#include "rules/metric.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct vg_proc;
struct vg_proc_external;
struct vg_rule_action;
struct vg_settings;

/* ---- the process an action or a session is for ---- */

/* Facts copied when the action or session started: the process may exit meanwhile, and its
 * vg_proc (with the adapter's per-process data) is then freed. Strings are owned by the target. */
struct vg_rt_target {
    int pid;              /* in vigil's PID namespace */
    int ns_pid;           /* in the process's innermost PID namespace */
    uint64_t start_ticks; /* with pid: the process's identity */
    unsigned uid;
    char *name, *cmdline, *exe, *key; /* key: "<boot id>:<pid>:<start ticks>" */
    char *runtime_id;      /* the adapter's runtime instance id (.NET cookie), else a copy of key */
    const char *proc_root; /* "/proc" unless injected */
    const struct vg_runtime_type *runtime;
};

/* Fills t from p (loop thread). Returns 0 or VG_ENOMEM. */
int vg_rt_target_init(struct vg_rt_target *t, const struct vg_proc *p);
/* Fills t by reading proc_root/PID (callers without a process table: the CLI). The runtime is
 * native. Returns 0, VG_ESRCH (no such process) or VG_ENOMEM. */
int vg_rt_target_from_pid(struct vg_rt_target *t, const char *proc_root, int pid);
/* Deep copy. Returns 0 or VG_ENOMEM (dst then empty). */
int vg_rt_target_copy(struct vg_rt_target *dst, const struct vg_rt_target *src);
void vg_rt_target_free(struct vg_rt_target *t); /* NULL-safe */

/* ---- actions ---- */

struct vg_rt_job;

/* What the caller of an action (a rule's action list, /dump, `vigil dump`) provides: where the
 * artifact goes and how the end is reported. */
struct vg_rt_job_ops {
    /* Opens the artifact (once). default_name is the adapter's name for it (dotnet-monitor's
     * naming where it has one, e.g. "core_20250101_120000"); the caller may use its own
     * (ArtifactName). Any one thread at a time. Returns 0 or VG_E*. */
    int (*open)(struct vg_rt_job *j, const char *default_name, const char *content_type);
    /* Appends bytes. Returns 0, VG_ECANCELED once the job was cancelled, or another VG_E*. */
    int (*write)(struct vg_rt_job *j, const void *buf, size_t len);
    /* Makes the artifact durable and visible (blocking: upload completion); sets the location
     * reported as the EgressPath output. Returns 0 or VG_E*. */
    int (*commit)(struct vg_rt_job *j);
    /* Drops a partial artifact (blocking). */
    void (*abort)(struct vg_rt_job *j);
    /* Non-NULL when the artifact is a local file the adapter may create (O_EXCL) and write
     * itself, which some writers do faster than through write(); NULL means stream. */
    const char *(*file_path)(struct vg_rt_job *j);
    /* Ends the job, exactly once, on the loop thread. rc 0 with the artifact committed (if one
     * was opened). names/values: n extra outputs, malloc'd, taken over. */
    void (*done)(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                 size_t n);
};

struct vg_rt_job {
    /* Set by the caller before start(); read-only for the adapter. */
    uv_loop_t *loop;
    struct vg_rt_target target;
    const char *type;                    /* "CollectDump", ... */
    const void *settings;                /* the typed settings (rules/action.h), or NULL */
    const struct vg_rule_action *action; /* NULL for API and CLI callers */
    const struct vg_rt_job_ops *ops;
    void *caller;          /* the caller's context */
    atomic_bool cancelled; /* set by vg_rt_job_cancel(); polled by the adapter */
    /* Set by vg_rt_job_stop() and vg_rt_job_cancel(): end the collection now. A stoppable
     * runner ends it cleanly and keeps what it collected unless `cancelled` is set too. */
    atomic_bool stopping;
    /* The adapter's. */
    const struct vg_rt_action *runner;
    void *state;
};

struct vg_rt_action {
    const char *type; /* dotnet-monitor's action name, matched case-insensitively */
    /* Starts the job (loop thread); the end comes through job->ops->done, never from inside
     * start(). Returns 0, or a VG_E* when it could not start (done is then not called). */
    int (*start)(struct vg_rt_job *job);
    /* Optional, loop thread: an action with a Duration (a trace) stops early and ships what it
     * has; others stop as soon as they can. done still comes. */
    void (*cancel)(struct vg_rt_job *job);
    /* Optional, loop thread, cheap (no waiting on the target): whether start() can succeed for
     * this target (permissions, a reachable runtime), so a caller that streams the artifact as
     * an HTTP response answers a clear error before it commits to 200. Returns 0 or VG_E* with
     * a message in err. */
    int (*check)(const struct vg_rt_target *t, const void *settings, char *err, size_t errlen);
    /* A collection that runs for a Duration (a .NET trace, logs, live metrics) and can be
     * stopped early with vg_rt_job_stop(), ending with a complete artifact (dotnet-monitor's
     * isStoppable); such a runner also takes Duration 0: until stopped. */
    bool stoppable;
};

/* dotnet-monitor's artifact naming: prefix + "yyyyMMdd_HHmmss_fff" (UTC) + "_" + pid + ext, e.g.
 * "core_20260101_120000_123_4242" or "20260101_120000_123_4242.nettrace". */
void vg_rt_artifact_name(char *buf, size_t n, const char *prefix, int pid, const char *ext);

/* A sink for an adapter's protocol layer (ctx = the job): the job's ops->write, or VG_ECANCELED
 * once the job was cancelled. */
int vg_rt_job_sink(void *job, const void *buf, size_t len);

/* Asks a running job to stop: sets job->cancelled and calls the runner's cancel, if any. */
void vg_rt_job_cancel(struct vg_rt_job *job);
/* Asks a running job of a stoppable runner to end early and keep its artifact (sets
 * job->stopping). Loop thread. */
void vg_rt_job_stop(struct vg_rt_job *job);

/* Runs fn(job) on a new thread of its own (long actions must not hold libuv's small thread pool)
 * and then calls after(job) on the loop thread, where the adapter reports through ops->done.
 * Returns 0 or VG_E* (thread or handle creation failed; nothing runs). */
typedef void (*vg_rt_job_fn)(struct vg_rt_job *job);
int vg_rt_job_thread(struct vg_rt_job *job, vg_rt_job_fn fn, vg_rt_job_fn after);

/* ---- sessions: runtime samples ---- */

/* A provider sending its counters at its own interval (GlobalCounter.Providers.NAME). */
struct vg_rt_interval {
    const char *provider; /* borrowed */
    uint64_t interval_ms;
};

/* What the rules watching a process need from its runtime: named metrics (rules/metric.h
 * struct vg_rt_value names) and how often. */
struct vg_rt_needs {
    const struct vg_rt_metric_ref *metrics;
    size_t n_metrics;
    uint64_t
        interval_ms; /* how often the runtime should send them (GlobalCounter.IntervalSeconds) */
    /* Providers whose own interval replaces interval_ms (matched case-insensitively); borrowed
     * for the session_open call. */
    const struct vg_rt_interval *intervals;
    size_t n_intervals;
};

struct vg_rt_session;

/* ---- what the engine offers adapters (the daemon; CLI callers have none) ---- */

struct vg_rt_host {
    uv_loop_t *loop;
    /* What the adapter knows about p changed after detection (the .NET ProcessInfo arrived, a
     * runtime connected to the listen-mode port): rules are matched again. Loop thread. */
    void (*changed)(struct vg_proc *p, void *arg);
    /* Scan the process table now rather than at the next tick (a runtime waits at startup). */
    void (*rescan)(void *arg);
    /* The process with host pid `pid` in the table, or NULL. */
    struct vg_proc *(*find)(int pid, void *arg);
    /* A process vigil cannot see in /proc (another pid namespace) that the adapter knows of:
     * added to the table (x->runtime_data becomes the process's data, forgotten with it) and
     * matched against the rules like any other; NULL on failure. remove_external reports it
     * gone and frees it. Loop thread. */
    struct vg_proc *(*add_external)(const struct vg_proc_external *x, void *arg);
    void (*remove_external)(struct vg_proc *p, void *arg);
    void *arg;
};

/* Facts an adapter knows about a process beyond /proc (.NET's ProcessInfo); NULL when unknown.
 * Borrowed from the adapter's per-process data: valid until the next loop iteration. */
struct vg_rt_facts {
    const char *runtime_id;      /* the runtime instance cookie (dotnet-monitor's uid) */
    const char *entry_assembly;  /* ManagedEntryPointAssemblyName */
    const char *runtime_version; /* "10.0.12" */
    const char *os, *arch, *rid;
    const char *command_line; /* as the runtime reports it */
    const char *port;         /* how vigil reaches it: "connect" or "listen" */
};

/* ---- the adapter ---- */

enum vg_rt_detect {
    VG_RT_NO = 0,    /* not this runtime */
    VG_RT_YES = 1,   /* this runtime; *data set */
    VG_RT_LATER = 2, /* cannot tell yet (a young process still loading): ask again next scan */
};

struct vg_runtime_type {
    const char *name;    /* "native", "dotnet", "jvm", "node": config, API and metric labels */
    const char *display; /* ".NET", "JVM", "Node", "native": for people */
    /* Markers the registry checks for every adapter at once: executable base names, and
     * substrings of /proc/PID/maps lines (the runtime's shared library), NULL-terminated. */
    const char *const *exe_names;
    const char *const *map_markers;
    /* Loop thread, cheap (files under /proc only). `marked`: a marker above matched. May set
     * *data: the adapter's per-process state, freed by forget() when the process exits or
     * exec's. NULL means "YES when marked". */
    enum vg_rt_detect (*detect)(const struct vg_proc *p, bool marked, void **data);
    /* Optional, loop thread, cheap (no file reads): the adapter already knows p is its own (a
     * .NET runtime that connected to vigil's diagnostic port): counts as a marker, so even a
     * young process is detected at once. */
    bool (*claims)(const struct vg_proc *p);
    void (*forget)(void *data); /* NULL-safe; optional */

    /* Sessions (all NULL when the runtime has no samples). open: start feeding the values
     * `needs` lists (the adapter may start a thread or a stream); sample: append the latest
     * values to out without blocking; close: stop (on a rule's removal, the process's exit,
     * shutdown) and free itself once its work ended. Loop thread. */
    int (*session_open)(uv_loop_t *loop, const struct vg_proc *p, void *data,
                        const struct vg_rt_needs *needs, struct vg_rt_session **out);
    void (*session_sample)(struct vg_rt_session *s, struct vg_rt_values *out);
    void (*session_close)(struct vg_rt_session *s);
    /* The samples cost a file read, no IPC (the JVM's perf data): the engine keeps a session
     * open for every process of the runtime, so /metrics shows them, not only while a rule
     * reads them. */
    bool cheap_samples;
    /* Its sessions read EventCounters (System.Runtime's cpu-usage...): a trigger that prefers a
     * runtime's counter where there is one (VG_TRIGGER_RT_PREFERRED: CPUUsage) asks for a session
     * on its processes, and only on those (opening one may cost the target something, such as
     * Node's inspector). */
    bool event_counters;
    /* Optional, loop thread: why the session provides no samples right now (the runtime cannot
     * be reached, the configuration forbids what it would take), written into buf; false while
     * it is fine. The engine shows it as the lastError of the rules that read the samples. */
    bool (*session_error)(struct vg_rt_session *s, char *buf, size_t n);

    const struct vg_rt_action *const *actions; /* NULL-terminated; may be NULL */

    /* Optional, loop thread. start: the daemon starts what the adapter runs for all processes
     * (the .NET listen-mode diagnostic port) with the first configuration; configure: a reload
     * applied a new one; stop: shutdown (closes the adapter's handles; the loop then runs their
     * close callbacks). start returns 0 or VG_E* with err set. */
    int (*start)(const struct vg_rt_host *host, const struct vg_settings *s, char *err,
                 size_t errlen);
    void (*configure)(const struct vg_settings *s);
    void (*stop)(void);
    /* Optional: fills out (zeroed by the caller) from the per-process data. */
    void (*facts)(const void *data, struct vg_rt_facts *out);
    /* Optional, loop thread, called after each sampling tick for every process of this runtime
     * whose Startup actions are not running: every matching rule is armed, so a runtime held at
     * startup (a .NET `suspend` port) may go on. Called again and again; acts once. */
    void (*armed)(void *data);
};

/* Every adapter's start / configure / stop (registry order). start stops at the first failure
 * (err names it) after stopping the adapters already started. */
int vg_runtimes_start(const struct vg_rt_host *host, const struct vg_settings *s, char *err,
                      size_t errlen);
void vg_runtimes_configure(const struct vg_settings *s);
void vg_runtimes_stop(void);
/* p's facts (all NULL when its adapter has none). */
void vg_runtime_facts(const struct vg_proc *p, struct vg_rt_facts *out);

/* Every adapter, in detection order (native last). */
extern const struct vg_runtime_type *const vg_runtime_types[];
extern const struct vg_runtime_type vg_runtime_native;

/* Case-insensitive, by name; NULL when unknown. */
const struct vg_runtime_type *vg_runtime_find(const char *name);
/* The runner for an action type on a process of runtime rt (rt's own, else native's), or NULL. */
const struct vg_rt_action *vg_runtime_action(const struct vg_runtime_type *rt, const char *type);
/* True when some registered runtime implements the action type. */
bool vg_runtime_action_known(const char *type);

/* The runtime whose markers (executable name, a library in root_fd's PID/maps) pid shows,
 * without asking the adapters (a process that cannot be attached any more: `vigil crash`);
 * native when none. */
const struct vg_runtime_type *vg_runtime_marked(int root_fd, int pid, const char *exe);

/* The process table's detector (struct vg_proc_detector in engine/host/proc.h): checks every
 * adapter's markers (one read of maps for all of them), asks the adapters in order and records
 * the first YES in p->runtime / p->runtime_data. A young process (`young`: started less than a
 * second ago) is only checked by executable name. Returns false while the answer may still
 * change (a young process, or an adapter said LATER): the table asks again at the next scans. */
bool vg_runtime_detect(struct vg_proc *p, bool young, void *arg);
void vg_runtime_forget(struct vg_proc *p, void *arg);
extern const struct vg_proc_detector vg_runtime_detector;

#endif
