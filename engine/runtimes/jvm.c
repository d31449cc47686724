/* The JVM adapter (HotSpot: OpenJDK and its builds).
 *   detect:   the java launcher or libjvm.so mapped (any launcher; -XX:-UsePerfData JVMs too).
 *   sessions: the jvm_* metrics (rules/metric.h) from the JVM's perf-data file, read without
 *             attaching (engine/runtimes/jvm/perfdata.c); cheap, so open for every JVM.
 *   actions:  CollectGCDump -> GC.heap_dump (HPROF), CollectStacks -> Thread.print (PlainText),
 *             CollectTrace -> a JFR recording, through the attach protocol
 *             (engine/runtimes/jvm/attach.c) on a thread of the job's own. CollectDump stays
 *             native's core dump. */
#include "engine/runtimes/runtime.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/host/proc.h"
#include "engine/runtimes/jvm/attach.h"
#include "engine/runtimes/jvm/perfdata.h"
#include "rules/action.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const exe_names[] = {"java", NULL};
static const char *const map_markers[] = {"/libjvm.so", NULL};

/* ---- sessions: perf-data counters ---- */

/* A JVM creates its perf-data file early in startup; a JVM without one (-XX:-UsePerfData) is
 * asked again now and then, in case it was only young. */
#define REOPEN_MS 10000

struct vg_rt_session {
    struct vg_jvm_target t;
    struct vg_perfdata_file *f;
    uint64_t next_open_ms;
    bool said_missing;
};

static int jvm_session_open(uv_loop_t *loop, const struct vg_proc *p, void *data,
                            const struct vg_rt_needs *needs, struct vg_rt_session **out)
{
    struct vg_rt_session *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    int rc = vg_jvm_target_read(vg_proc_table_root(p->table), p->pid, &s->t);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void jvm_session_close(struct vg_rt_session *s)
{
    if (!s)
        return;
    vg_perfdata_close(s->f);
    free(s);
}

struct heap_sums {
    double used, committed, max;
    double gen_used[2], gen_committed[2];
};

/* sun.gc.generation.G.capacity / .maxCapacity / .space.S.used, whatever the collector's layout:
 * generation 0 is the young one, 1 the old one (Serial, Parallel, G1). */
static void sum_heap(const struct vg_perfdata *pd, struct heap_sums *h)
{
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < pd->n; i++) {
        const struct vg_perfdata_entry *e = &pd->entries[i];
        unsigned g, sp;
        int end = 0;
        if (e->is_string || strncmp(e->name, "sun.gc.generation.", 18) != 0)
            continue;
        double v = (double)e->value;
        if (sscanf(e->name, "sun.gc.generation.%u.space.%u.used%n", &g, &sp, &end) == 2 &&
            e->name[end] == '\0') {
            h->used += v;
            if (g < 2)
                h->gen_used[g] += v;
        } else if (sscanf(e->name, "sun.gc.generation.%u.capacity%n", &g, &end) == 1 &&
                   e->name[end] == '\0') {
            h->committed += v;
            if (g < 2)
                h->gen_committed[g] += v;
        } else if (sscanf(e->name, "sun.gc.generation.%u.maxCapacity%n", &g, &end) == 1 &&
                   e->name[end] == '\0') {
            h->max += v;
        }
    }
}

static void put_long(struct vg_rt_values *out, const struct vg_perfdata *pd, const char *metric,
                     const char *counter)
{
    int64_t v;
    if (vg_perfdata_long(pd, counter, &v) == 0)
        vg_rt_values_set(out, "jvm", metric, (double)v);
}

static void put_seconds(struct vg_rt_values *out, const struct vg_perfdata *pd, const char *metric,
                        const char *counter)
{
    int64_t v;
    if (vg_perfdata_long(pd, counter, &v) == 0)
        vg_rt_values_set(out, "jvm", metric, vg_perfdata_ticks_to_seconds(pd, v));
}

static void put_sum(struct vg_rt_values *out, const struct vg_perfdata *pd, const char *metric,
                    const char *a, const char *b)
{
    int64_t x, y;
    if (vg_perfdata_long(pd, a, &x) == 0 && vg_perfdata_long(pd, b, &y) == 0)
        vg_rt_values_set(out, "jvm", metric, (double)x + (double)y);
}

static void jvm_session_sample(struct vg_rt_session *s, struct vg_rt_values *out)
{
    uint64_t now = vg_mono_ms();
    if (!s->f && now >= s->next_open_ms) {
        char err[512];
        int rc = vg_perfdata_open(&s->t, &s->f, err, sizeof(err));
        if (rc < 0) {
            s->next_open_ms = now + REOPEN_MS;
            if (!s->said_missing)
                vg_log(VG_LOG_DEBUG, "runtime:jvm", "%s", err);
            s->said_missing = true;
        }
    }
    if (!s->f)
        return;
    struct vg_perfdata *pd;
    int rc = vg_perfdata_sample(s->f, &pd);
    if (rc == VG_EAGAIN) /* not initialized yet */
        return;
    if (rc < 0) {
        vg_log(VG_LOG_WARN, "runtime:jvm", "pid %d: perf data %s unreadable (%s): reopening",
               s->t.pid, vg_perfdata_file_path(s->f), vg_strerror(rc));
        vg_perfdata_close(s->f);
        s->f = NULL;
        s->next_open_ms = now + REOPEN_MS;
        return;
    }
    struct heap_sums h;
    sum_heap(pd, &h);
    if (h.committed > 0) {
        vg_rt_values_set(out, "jvm", "jvm_heap_used_bytes", h.used);
        vg_rt_values_set(out, "jvm", "jvm_heap_committed_bytes", h.committed);
        vg_rt_values_set(out, "jvm", "jvm_heap_max_bytes", h.max);
        vg_rt_values_set(out, "jvm", "jvm_young_used_bytes", h.gen_used[0]);
        vg_rt_values_set(out, "jvm", "jvm_young_committed_bytes", h.gen_committed[0]);
        vg_rt_values_set(out, "jvm", "jvm_old_used_bytes", h.gen_used[1]);
        vg_rt_values_set(out, "jvm", "jvm_old_committed_bytes", h.gen_committed[1]);
    }
    put_long(out, pd, "jvm_metaspace_used_bytes", "sun.gc.metaspace.used");
    put_long(out, pd, "jvm_metaspace_committed_bytes", "sun.gc.metaspace.capacity");
    put_long(out, pd, "jvm_gc_young_collections_total", "sun.gc.collector.0.invocations");
    put_seconds(out, pd, "jvm_gc_young_seconds_total", "sun.gc.collector.0.time");
    put_long(out, pd, "jvm_gc_full_collections_total", "sun.gc.collector.1.invocations");
    put_seconds(out, pd, "jvm_gc_full_seconds_total", "sun.gc.collector.1.time");
    put_long(out, pd, "jvm_threads_live", "java.threads.live");
    put_long(out, pd, "jvm_threads_daemon", "java.threads.daemon");
    put_long(out, pd, "jvm_threads_started_total", "java.threads.started");
    put_sum(out, pd, "jvm_classes_loaded", "java.cls.loadedClasses",
            "java.cls.sharedLoadedClasses");
    put_sum(out, pd, "jvm_classes_unloaded_total", "java.cls.unloadedClasses",
            "java.cls.sharedUnloadedClasses");
    put_long(out, pd, "jvm_safepoints_total", "sun.rt.safepoints");
    put_seconds(out, pd, "jvm_safepoint_seconds_total", "sun.rt.safepointTime");
    put_seconds(out, pd, "jvm_jit_compilation_seconds_total", "java.ci.totalTime");
    vg_perfdata_destroy(pd);
}

/* ---- actions through the attach protocol ---- */

enum jvm_op { OP_HEAP_DUMP, OP_STACKS, OP_JFR };

struct jvm_job {
    enum jvm_op op;
    const char *settings; /* JFR settings name */
    uint64_t duration_ms; /* JFR */
    int rc;
    char err[1024];
    uint64_t bytes;
};

static void jvm_work(struct vg_rt_job *job)
{
    struct jvm_job *st = job->state;
    struct vg_jvm_target t;
    struct vg_jvm_attach_opts o = {.cancel = &job->cancelled, .stop = &job->stopping};
    struct vg_jvm_file_result res = {0};
    int pid = job->target.pid;
    st->rc = vg_jvm_target_read(job->target.proc_root, pid, &t);
    if (st->rc == 0 && t.start_ticks != job->target.start_ticks)
        st->rc = VG_EEXITED;
    if (st->rc < 0) {
        snprintf(st->err, sizeof(st->err), "pid %d is gone", pid);
        return;
    }
    char name[128];
    const char *ctype = "application/octet-stream";
    if (st->op == OP_HEAP_DUMP) {
        vg_rt_artifact_name(name, sizeof(name), "", pid, ".hprof");
    } else if (st->op == OP_STACKS) {
        vg_rt_artifact_name(name, sizeof(name), "", pid, ".stacks.txt");
        ctype = "text/plain";
    } else {
        vg_rt_artifact_name(name, sizeof(name), "", pid, ".jfr");
    }
    st->rc = job->ops->open(job, name, ctype);
    if (st->rc) {
        snprintf(st->err, sizeof(st->err), "cannot open the artifact: %s", vg_strerror(st->rc));
        return;
    }
    switch (st->op) {
    case OP_HEAP_DUMP:
        st->rc = vg_jvm_heap_dump(&t, &o, NULL, false, vg_rt_job_sink, job, &res, st->err,
                                  sizeof(st->err));
        break;
    case OP_STACKS:
        st->rc = vg_jvm_thread_print(&t, &o, true, vg_rt_job_sink, job, st->err, sizeof(st->err));
        break;
    case OP_JFR:
        st->rc = vg_jvm_jfr_record(&t, &o, st->settings, st->duration_ms, NULL, vg_rt_job_sink, job,
                                   &res, st->err, sizeof(st->err));
        break;
    }
    st->bytes = res.bytes;
    if (st->rc) {
        job->ops->abort(job);
        return;
    }
    st->rc = job->ops->commit(job);
    if (st->rc && !st->err[0])
        snprintf(st->err, sizeof(st->err), "storing the artifact: %s", vg_strerror(st->rc));
}

static void jvm_after(struct vg_rt_job *job)
{
    struct jvm_job *st = job->state;
    int rc = st->rc;
    char err[1024];
    snprintf(err, sizeof(err), "%s", st->err[0] ? st->err : vg_strerror(rc));
    if (rc == 0)
        vg_log(VG_LOG_INFO, "action", "%s: pid %d (JVM), %llu bytes", job->type, job->target.pid,
               (unsigned long long)st->bytes);
    free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, NULL, NULL, 0);
}

static int start(struct vg_rt_job *job, struct jvm_job *st)
{
    job->state = st;
    int rc = vg_rt_job_thread(job, jvm_work, jvm_after);
    if (rc) {
        free(st);
        job->state = NULL;
    }
    return rc;
}

static void nothing(struct vg_rt_job *job)
{
}

/* Settings a JVM cannot honour fail the action at once, saying so. */
static int refuse(struct vg_rt_job *job, struct jvm_job *st, const char *why)
{
    st->rc = VG_EUNSUPPORTED;
    snprintf(st->err, sizeof(st->err), "%s on pid %d (JVM): %s", job->type, job->target.pid, why);
    job->state = st;
    /* done must not come from inside start(): report from the job's thread */
    int rc = vg_rt_job_thread(job, nothing, jvm_after);
    if (rc) {
        free(st);
        job->state = NULL;
    }
    return rc;
}

static int gcdump_start(struct vg_rt_job *job)
{
    struct jvm_job *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    st->op = OP_HEAP_DUMP;
    return start(job, st);
}

/* What a JVM cannot honour in the settings, or NULL. */
static const char *stacks_problem(const void *settings)
{
    const struct vg_act_collect_stacks *set = settings;
    if (set && set->format != VG_STACKS_PLAIN_TEXT)
        return "only Format PlainText (Thread.print) is supported for JVMs; Json and Speedscope "
               "are .NET's formats";
    return NULL;
}

static const char *trace_problem(const void *settings)
{
    const struct vg_act_collect_trace *set = settings;
    if (set && set->providers)
        return "Providers are .NET EventPipe providers; a JVM records JFR with the settings "
               "Profile selects";
    if (set && set->stopping_event)
        return "StoppingEvent is not supported for JFR recordings";
    return NULL;
}

static int stacks_start(struct vg_rt_job *job)
{
    struct jvm_job *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    st->op = OP_STACKS;
    const char *why = stacks_problem(job->settings);
    return why ? refuse(job, st, why) : start(job, st);
}

static int trace_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_trace *set = job->settings;
    struct jvm_job *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    st->op = OP_JFR;
    st->settings = "default";
    st->duration_ms = set ? set->duration_ms : 30000;
    /* dotnet-monitor's profiles: Cpu asks for sampling detail, JFR's "profile" settings. */
    if (set && set->profile && strcasestr(set->profile, "cpu"))
        st->settings = "profile";
    const char *why = trace_problem(job->settings);
    return why ? refuse(job, st, why) : start(job, st);
}

/* Cheap checks before a caller commits to streaming: the settings, and the listener's rule on
 * credentials (root, or the JVM's own effective uid and gid). */
static int check_common(const struct vg_rt_target *t, const char *problem, const char *type,
                        char *err, size_t errlen)
{
    struct vg_jvm_target jt;
    if (problem) {
        snprintf(err, errlen, "%s on pid %d (JVM): %s", type, t->pid, problem);
        return VG_EUNSUPPORTED;
    }
    int rc = vg_jvm_target_read(t->proc_root, t->pid, &jt);
    if (rc < 0) {
        snprintf(err, errlen, "pid %d: %s", t->pid, vg_strerror(rc));
        return rc;
    }
    if (geteuid() != 0 && (geteuid() != jt.euid || getegid() != jt.egid)) {
        snprintf(err, errlen,
                 "pid %d runs as uid %u gid %u: its attach listener accepts only those ids or "
                 "root, and vigil runs as uid %u gid %u",
                 t->pid, (unsigned)jt.euid, (unsigned)jt.egid, (unsigned)geteuid(),
                 (unsigned)getegid());
        return VG_EPERM;
    }
    return 0;
}

static int gcdump_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return check_common(t, NULL, "CollectGCDump", err, n);
}

static int stacks_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return check_common(t, stacks_problem(settings), "CollectStacks", err, n);
}

static int trace_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return check_common(t, trace_problem(settings), "CollectTrace", err, n);
}

static const struct vg_rt_action collect_gcdump = {"CollectGCDump", gcdump_start, NULL,
                                                   gcdump_check, false};
static const struct vg_rt_action collect_stacks = {"CollectStacks", stacks_start, NULL,
                                                   stacks_check, false};
/* a JFR recording can end early (DELETE ?stop=true, durationSeconds=-1) and be kept */
static const struct vg_rt_action collect_trace = {"CollectTrace", trace_start, NULL, trace_check,
                                                  true};

static const struct vg_rt_action *const jvm_actions[] = {&collect_gcdump, &collect_stacks,
                                                         &collect_trace, NULL};

const struct vg_runtime_type vg_runtime_jvm = {
    .name = "jvm",
    .display = "JVM",
    .exe_names = exe_names,
    .map_markers = map_markers,
    .session_open = jvm_session_open,
    .session_sample = jvm_session_sample,
    .session_close = jvm_session_close,
    .cheap_samples = true,
    .actions = jvm_actions,
};
