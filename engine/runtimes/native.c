/* The native adapter: every process, whatever runs in it. It has no runtime samples (the sampler
 * reads /proc for everyone) and one action, CollectDump, by vigil's own ELF core writer
 * (engine/dump/): the one path every dump takes, from a rule, /dump or `vigil dump`. */
#include "engine/runtimes/runtime.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/dump/dump.h"
#include "engine/host/procfs.h"
#include "rules/action.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* rules/ validates the Type names; the writer has its own enum in the same order */
_Static_assert((int)VG_ACT_DUMP_WITH_HEAP == (int)VG_DUMP_WITH_HEAP &&
                   (int)VG_ACT_DUMP_FULL == (int)VG_DUMP_FULL &&
                   (int)VG_ACT_DUMP_MINI == (int)VG_DUMP_MINI &&
                   (int)VG_ACT_DUMP_TRIAGE == (int)VG_DUMP_TRIAGE,
               "dump type enums must agree");
_Static_assert((int)VG_ACT_DUMP_SNAPSHOT == (int)VG_DUMP_SNAPSHOT &&
                   (int)VG_ACT_DUMP_STOP == (int)VG_DUMP_STOP,
               "dump mode enums must agree");

void vg_rt_artifact_name(char *buf, size_t n, const char *prefix, int pid, const char *ext)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t secs = tv.tv_sec;
    gmtime_r(&secs, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
    snprintf(buf, n, "%s%s_%03d_%d%s", prefix ? prefix : "", stamp, (int)(tv.tv_usec / 1000), pid,
             ext ? ext : "");
}

static enum vg_rt_detect native_detect(const struct vg_proc *p, bool marked, void **data)
{
    return VG_RT_YES;
}

/* ---- CollectDump ---- */

struct dump_state {
    struct vg_dump_opts opts;
    int rc;
    char err[512];
    struct vg_dump_result res;
};

static void dump_work(struct vg_rt_job *job)
{
    struct dump_state *st = job->state;
    if (st->rc)
        return; /* refused at start; reported by dump_after */
    const char *path = job->ops->file_path ? job->ops->file_path(job) : NULL;
    if (path) {
        st->rc = vg_coredump_to_file(job->target.pid, &st->opts, path, &st->res, st->err,
                                     sizeof(st->err));
        return;
    }
    char name[96];
    vg_rt_artifact_name(name, sizeof(name), "core_", job->target.pid, "");
    st->rc = job->ops->open(job, name, "application/x-coredump");
    if (st->rc) {
        snprintf(st->err, sizeof(st->err), "cannot open the artifact: %s", vg_strerror(st->rc));
        return;
    }
    st->rc = vg_coredump_write(job->target.pid, &st->opts, vg_rt_job_sink, job, &st->res, st->err,
                               sizeof(st->err));
    if (st->rc) {
        job->ops->abort(job);
        return;
    }
    st->rc = job->ops->commit(job);
}

/* Outputs for the callers (the CLI summary, /operations); rules reference only EgressPath. */
#define DUMP_OUTPUTS 7

static void dump_after(struct vg_rt_job *job)
{
    struct dump_state *st = job->state;
    char **names = NULL, **values = NULL;
    size_t n = 0;
    if (st->rc == 0) {
        const struct vg_dump_result *r = &st->res;
        vg_log(VG_LOG_INFO, "action",
               "CollectDump: pid %d, %llu bytes, %u threads, mode %s, target frozen %llu ms%s%s",
               job->target.pid, (unsigned long long)r->bytes, r->threads,
               vg_dump_mode_name(r->mode), (unsigned long long)(r->freeze_us / 1000),
               r->fallback[0] ? "; not a snapshot: " : "", r->fallback);
        names = calloc(DUMP_OUTPUTS, sizeof(char *));
        values = calloc(DUMP_OUTPUTS, sizeof(char *));
        if (names && values) {
            const char *k[DUMP_OUTPUTS] = {
                "Bytes",    "Threads", "FreezeMicroseconds", "WallMicroseconds",
                "CowBytes", "Mode",    "FallbackReason"};
            uint64_t v[5] = {r->bytes, r->threads, r->freeze_us, r->wall_us, r->cow_bytes};
            for (; n < DUMP_OUTPUTS; n++) {
                names[n] = vg_strdup(k[n]);
                values[n] = n < 5    ? vg_asprintf("%llu", (unsigned long long)v[n])
                            : n == 5 ? vg_strdup(vg_dump_mode_name(r->mode))
                                     : vg_strdup(r->fallback);
            }
        }
    }
    int rc = st->rc;
    char err[512];
    snprintf(err, sizeof(err), "%s", st->err[0] ? st->err : vg_strerror(rc));
    free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, names, values, n);
}

static int dump_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_dump *set = job->settings;
    struct dump_state *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    st->opts.type = set ? (enum vg_dump_type)set->type : VG_DUMP_WITH_HEAP;
    st->opts.mode = set ? (enum vg_dump_mode)set->mode : VG_DUMP_SNAPSHOT;
    st->opts.keep_free = set && set->keep_free_set ? set->keep_free : VG_DUMP_KEEP_FREE_DEFAULT;
    if (set && set->writer == VG_ACT_WRITER_RUNTIME) {
        st->rc = VG_EUNSUPPORTED;
        snprintf(st->err, sizeof(st->err),
                 "Writer: Runtime needs a runtime that writes its own dumps (.NET); pid %d is %s",
                 job->target.pid, job->target.runtime ? job->target.runtime->display : "native");
    }
    job->state = st;
    int rc = vg_rt_job_thread(job, dump_work, dump_after);
    if (rc) {
        free(st);
        job->state = NULL;
    }
    return rc;
}

/* What would make the writer's ptrace attach fail, found without attaching: opening
 * /proc/PID/mem needs the same ptrace access (uid, CAP_SYS_PTRACE, Yama), and a process that
 * is already traced cannot be seized. */
static int dump_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    char path[PATH_MAX], buf[4096];
    snprintf(path, sizeof(path), "%s/%d/status", t->proc_root, t->pid);
    ssize_t len = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    struct vg_proc_status st;
    if (len <= 0 || vg_procfs_parse_status(buf, (size_t)len, &st) != 0) {
        snprintf(err, n, "pid %d: no such process", t->pid);
        return VG_ESRCH;
    }
    if (st.tracer_pid > 0) {
        snprintf(err, n, "pid %d is already traced by pid %d (a debugger or another dumper)",
                 t->pid, st.tracer_pid);
        return VG_EBUSY;
    }
    snprintf(path, sizeof(path), "%s/%d/mem", t->proc_root, t->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, n,
                 "cannot read the memory of pid %d (%s): vigil needs CAP_SYS_PTRACE or the "
                 "target's uid, and Yama's kernel.yama.ptrace_scope must allow it",
                 t->pid, strerror(e));
        return e == ENOENT || e == ESRCH ? VG_ESRCH : VG_EPERM;
    }
    close(fd);
    return 0;
}

static const struct vg_rt_action collect_dump = {"CollectDump", dump_start, NULL, dump_check,
                                                 false};

static const struct vg_rt_action *const native_actions[] = {&collect_dump, NULL};

const struct vg_runtime_type vg_runtime_native = {
    .name = "native",
    .display = "native",
    .detect = native_detect,
    .actions = native_actions,
};
