/* The per-process metrics vigil samples: one list, shared by the sampler (engine/), triggers
 * (rules/), the Prometheus exposition and docs/metrics.md. Names are Prometheus-style. */
#ifndef VG_METRIC_H
#define VG_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vg_metric_kind { VG_GAUGE = 0, VG_COUNTER = 1 };

/* XX(ID, name, kind, help) */
#define VG_METRIC_MAP(XX)                                                                          \
    XX(CPU_PERCENT, "process_cpu_usage_percent", VG_GAUGE,                                         \
       "CPU use over the last interval as a percentage of the CPU capacity available to the "      \
       "process (min of online CPUs and cgroup quota), 0-100")                                     \
    XX(CPU_SECONDS, "process_cpu_seconds_total", VG_COUNTER, "User plus system CPU time")          \
    XX(RSS, "process_resident_memory_bytes", VG_GAUGE, "Resident set size")                        \
    XX(PSS, "process_proportional_memory_bytes", VG_GAUGE,                                         \
       "Proportional set size (smaps_rollup); sampled only when a rule needs it")                  \
    XX(VSIZE, "process_virtual_memory_bytes", VG_GAUGE, "Virtual memory size")                     \
    XX(THREADS, "process_threads", VG_GAUGE, "Number of threads")                                  \
    XX(FDS, "process_open_fds", VG_GAUGE, "Number of open file descriptors")                       \
    XX(IO_READ, "process_io_read_bytes_total", VG_COUNTER, "Bytes read from storage")              \
    XX(IO_WRITE, "process_io_write_bytes_total", VG_COUNTER, "Bytes written to storage")           \
    XX(MAJFLT, "process_major_page_faults_total", VG_COUNTER, "Major page faults")                 \
    XX(MINFLT, "process_minor_page_faults_total", VG_COUNTER, "Minor page faults")                 \
    XX(CTXSW_VOL, "process_voluntary_context_switches_total", VG_COUNTER,                          \
       "Voluntary context switches, all threads")                                                  \
    XX(CTXSW_INVOL, "process_involuntary_context_switches_total", VG_COUNTER,                      \
       "Involuntary context switches, all threads")                                                \
    XX(CG_MEM_CURRENT, "cgroup_memory_current_bytes", VG_GAUGE,                                    \
       "Memory charged to the process's cgroup (v2 memory.current, v1 memory.usage_in_bytes)")     \
    XX(CG_MEM_MAX, "cgroup_memory_max_bytes", VG_GAUGE,                                            \
       "Memory limit of the process's cgroup; absent when unlimited")                              \
    XX(CG_MEM_PERCENT, "cgroup_memory_usage_percent", VG_GAUGE,                                    \
       "cgroup memory current / max * 100; absent when unlimited")                                 \
    XX(CG_OOM_KILLS, "cgroup_oom_kills_total", VG_COUNTER, "OOM kills in the process's cgroup")    \
    XX(CG_THROTTLED_PERIODS, "cgroup_cpu_throttled_periods_total", VG_COUNTER,                     \
       "CFS periods in which the cgroup was throttled")                                            \
    XX(CG_THROTTLED_SECONDS, "cgroup_cpu_throttled_seconds_total", VG_COUNTER,                     \
       "Time the cgroup was throttled")

/* Metrics a runtime adapter reads from the runtime itself (its session's samples, provider =
 * the adapter's name, name = the metric's name); the engine copies them into each sample, so
 * every trigger and /metrics use them like the ones above. XX(ID, name, kind, help, runtime) */
#define VG_RT_METRIC_MAP(XX)                                                                       \
    XX(JVM_HEAP_USED, "jvm_heap_used_bytes", VG_GAUGE, "Java heap in use, all generations", "jvm") \
    XX(JVM_HEAP_COMMITTED, "jvm_heap_committed_bytes", VG_GAUGE,                                   \
       "Java heap committed (capacity), all generations", "jvm")                                   \
    XX(JVM_HEAP_MAX, "jvm_heap_max_bytes", VG_GAUGE, "Java heap maximum, all generations", "jvm")  \
    XX(JVM_YOUNG_USED, "jvm_young_used_bytes", VG_GAUGE,                                           \
       "Young generation in use (eden and "                                                        \
       "survivors)",                                                                               \
       "jvm")                                                                                      \
    XX(JVM_YOUNG_COMMITTED, "jvm_young_committed_bytes", VG_GAUGE,                                 \
       "Young generation committed (capacity)", "jvm")                                             \
    XX(JVM_OLD_USED, "jvm_old_used_bytes", VG_GAUGE, "Old generation in use", "jvm")               \
    XX(JVM_OLD_COMMITTED, "jvm_old_committed_bytes", VG_GAUGE,                                     \
       "Old generation committed (capacity)", "jvm")                                               \
    XX(JVM_METASPACE_USED, "jvm_metaspace_used_bytes", VG_GAUGE, "Metaspace in use", "jvm")        \
    XX(JVM_METASPACE_COMMITTED, "jvm_metaspace_committed_bytes", VG_GAUGE,                         \
       "Metaspace committed (capacity)", "jvm")                                                    \
    XX(JVM_GC_YOUNG_COUNT, "jvm_gc_young_collections_total", VG_COUNTER,                           \
       "Young (minor, incremental) collections", "jvm")                                            \
    XX(JVM_GC_YOUNG_SECONDS, "jvm_gc_young_seconds_total", VG_COUNTER,                             \
       "Time spent in young collections", "jvm")                                                   \
    XX(JVM_GC_FULL_COUNT, "jvm_gc_full_collections_total", VG_COUNTER,                             \
       "Full (major, old generation) collections", "jvm")                                          \
    XX(JVM_GC_FULL_SECONDS, "jvm_gc_full_seconds_total", VG_COUNTER,                               \
       "Time spent in full collections", "jvm")                                                    \
    XX(JVM_THREADS_LIVE, "jvm_threads_live", VG_GAUGE, "Live Java threads", "jvm")                 \
    XX(JVM_THREADS_DAEMON, "jvm_threads_daemon", VG_GAUGE, "Live daemon Java threads", "jvm")      \
    XX(JVM_THREADS_STARTED, "jvm_threads_started_total", VG_COUNTER, "Java threads started",       \
       "jvm")                                                                                      \
    XX(JVM_CLASSES_LOADED, "jvm_classes_loaded", VG_GAUGE, "Classes loaded (shared included)",     \
       "jvm")                                                                                      \
    XX(JVM_CLASSES_UNLOADED, "jvm_classes_unloaded_total", VG_COUNTER, "Classes unloaded", "jvm")  \
    XX(JVM_SAFEPOINTS, "jvm_safepoints_total", VG_COUNTER, "Safepoints reached", "jvm")            \
    XX(JVM_SAFEPOINT_SECONDS, "jvm_safepoint_seconds_total", VG_COUNTER,                           \
       "Time application threads were stopped at safepoints", "jvm")                               \
    XX(JVM_JIT_SECONDS, "jvm_jit_compilation_seconds_total", VG_COUNTER,                           \
       "Time spent compiling (JIT)", "jvm")                                                        \
    XX(NODE_HEAP_USED, "nodejs_heap_used_bytes", VG_GAUGE,                                         \
       "V8 heap in use, garbage not yet collected included (heapUsed)", "node")                    \
    XX(NODE_HEAP_TOTAL, "nodejs_heap_total_bytes", VG_GAUGE, "V8 heap committed (heapTotal)",      \
       "node")

enum vg_metric_id {
#define VG__METRIC_ENUM(id, name, kind, help) VG_M_##id,
    VG_METRIC_MAP(VG__METRIC_ENUM)
#undef VG__METRIC_ENUM
#define VG__RT_METRIC_ENUM(id, name, kind, help, runtime) VG_M_##id,
        VG_RT_METRIC_MAP(VG__RT_METRIC_ENUM)
#undef VG__RT_METRIC_ENUM
            VG_METRIC_COUNT
};

struct vg_metric_def {
    enum vg_metric_id id;
    const char *name;
    enum vg_metric_kind kind;
    const char *help;
    const char *runtime; /* the adapter whose samples carry it, or NULL for /proc metrics */
};

extern const struct vg_metric_def vg_metric_defs[VG_METRIC_COUNT];

/* Looks a metric up by name (case-insensitive); also accepts short aliases such as "rss",
 * "cpu", "threads". Returns the id or -1. */
int vg_metric_lookup(const char *name);

/* Runtime samples: values a runtime adapter reads from the runtime itself (an EventCounter, a
 * meter's instrument, a HotSpot perf-data counter, V8's heap figures), named by a provider (an
 * EventSource or Meter name, "jvm", "node") and a name, compared case-insensitively. */
struct vg_rt_metric_ref {
    const char *provider;
    const char *name;
};

struct vg_rt_value {
    char *provider, *name; /* owned */
    double value;
    char *unit, *help; /* owned; NULL when the runtime gives none (for /metrics) */
    /* Counters the runtime reports as increments per interval (.NET "Sum" counters such as
     * exception-count): the running sum of every increment, a monotonic counter. */
    bool has_total;
    double total;
};

/* An ASP.NET Core request a runtime adapter saw start or end since the previous sample (the
 * AspNet* triggers count them). */
struct vg_rt_request {
    bool stop;            /* it ended (else it started) */
    int status;           /* stop: the response status code, -1 when unknown */
    uint64_t duration_ms; /* stop: how long it took */
    char *path;           /* owned */
};

struct vg_rt_values {
    struct vg_rt_value *v;
    size_t n, cap;
    struct vg_rt_request *req;
    size_t n_req, cap_req;
};

/* A meter time series' sample name (engine/runtimes/dotnet/session.c names them): "INSTRUMENT"
 * or "INSTRUMENT{TAGS}" (TAGS as the runtime sends them, "k=v,k=v"), followed by "@pNN" for a
 * histogram's NNth percentile. Instrument names never hold '{' or '@'; tag values may. */
struct vg_rt_series {
    size_t instrument_len;
    const char *tags; /* inside the braces, or NULL */
    size_t tags_len;
    int percentile; /* 0-100, or -1 when the name is not a histogram percentile */
};
void vg_rt_series_split(const char *name, struct vg_rt_series *out);

/* Sets provider/name to value (replacing an earlier value of the same pair). 0 or VG_ENOMEM. */
int vg_rt_values_set(struct vg_rt_values *vs, const char *provider, const char *name, double value);
/* The same, with the unit ("%", "MB", "B", ...) and a description; either may be NULL. */
int vg_rt_values_set_full(struct vg_rt_values *vs, const char *provider, const char *name,
                          double value, const char *unit, const char *help);
/* The value of provider/name, or NULL. vs may be NULL. */
const struct vg_rt_value *vg_rt_values_find(const struct vg_rt_values *vs, const char *provider,
                                            const char *name);
/* Adds inc to the running total of provider/name (which must have been set). */
void vg_rt_values_add_total(struct vg_rt_values *vs, const char *provider, const char *name,
                            double inc);
/* Sets dst's copy of src (value, unit, help and total). 0 or VG_ENOMEM. */
int vg_rt_values_copy(struct vg_rt_values *dst, const struct vg_rt_value *src);
/* Appends a request record (path copied). 0 or VG_ENOMEM. */
int vg_rt_values_add_request(struct vg_rt_values *vs, bool stop, int status, uint64_t duration_ms,
                             const char *path);
void vg_rt_values_clear(struct vg_rt_values *vs); /* empties, keeps the array */
void vg_rt_values_free(struct vg_rt_values *vs);  /* NULL-safe */

/* One timestamped observation of one process. */
struct vg_sample {
    uint64_t t_ms;  /* monotonic milliseconds */
    uint64_t valid; /* bit (1 << id) set when v[id] holds a value */
    double v[VG_METRIC_COUNT];
    const struct vg_rt_values *rt; /* the runtime's own samples, or NULL (borrowed) */
};

static inline bool vg_sample_has(const struct vg_sample *s, enum vg_metric_id id)
{
    return (s->valid >> id) & 1u;
}

/* Copies the runtime metrics (VG_RT_METRIC_MAP) found in rt into s (rt may be NULL); the others
 * of them are cleared from s->valid. */
void vg_sample_set_runtime(struct vg_sample *s, const struct vg_rt_values *rt);

#define VG_METRIC_BIT(id) ((uint64_t)1 << (id))

_Static_assert(VG_METRIC_COUNT <= 64, "metric masks are 64 bits");

#endif
