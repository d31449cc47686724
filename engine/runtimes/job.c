/* What every adapter's actions share: the target's facts, cancellation, and a thread of the job's
 * own that reports back on the loop thread. */
#include "engine/runtimes/runtime.h"

#include "config/error.h"
#include "config/util.h"
#include "engine/host/proc.h"

#include "engine/host/procfs.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

int vg_rt_target_init(struct vg_rt_target *t, const struct vg_proc *p)
{
    memset(t, 0, sizeof(*t));
    t->pid = p->pid;
    t->ns_pid = p->ns_pid;
    t->start_ticks = p->start_ticks;
    t->uid = (unsigned)p->uid;
    t->name = vg_strdup(p->name);
    t->cmdline = vg_strdup(p->cmdline ? p->cmdline : "");
    t->exe = p->exe ? vg_strdup(p->exe) : NULL;
    t->key = vg_strdup(p->key_str);
    struct vg_rt_facts f;
    vg_runtime_facts(p, &f);
    t->runtime_id = vg_strdup(f.runtime_id ? f.runtime_id : p->key_str);
    t->proc_root = vg_proc_table_root(p->table);
    t->runtime = p->runtime ? p->runtime : &vg_runtime_native;
    if (!t->name || !t->cmdline || !t->key || !t->runtime_id || (p->exe && !t->exe)) {
        vg_rt_target_free(t);
        return VG_ENOMEM;
    }
    return 0;
}

int vg_rt_target_from_pid(struct vg_rt_target *t, const char *proc_root, int pid)
{
    char path[PATH_MAX], buf[4096];
    memset(t, 0, sizeof(*t));
    snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    struct vg_proc_stat st;
    if (n <= 0 || vg_procfs_parse_stat(buf, (size_t)n, &st) != 0)
        return VG_ESRCH;
    t->pid = t->ns_pid = pid;
    t->start_ticks = st.start_ticks;
    t->proc_root = proc_root;
    t->runtime = &vg_runtime_native;
    struct vg_proc_status ps;
    snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
    n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    bool have = n > 0 && vg_procfs_parse_status(buf, (size_t)n, &ps) == 0;
    if (have && ps.nspid_count)
        t->ns_pid = ps.nspid[ps.nspid_count - 1];
    if (have && ps.uid[0] >= 0)
        t->uid = (unsigned)ps.uid[0];
    t->name = vg_strdup(have && ps.name[0] ? ps.name : st.comm);
    t->cmdline = vg_strdup("");
    t->key = vg_asprintf("%d:%llu", pid, (unsigned long long)st.start_ticks);
    t->runtime_id = t->key ? vg_strdup(t->key) : NULL;
    snprintf(path, sizeof(path), "%s/%d/exe", proc_root, pid);
    char exe[PATH_MAX];
    ssize_t el = readlink(path, exe, sizeof(exe) - 1);
    if (el > 0) {
        exe[el] = '\0';
        t->exe = vg_strdup(exe);
    }
    if (!t->name || !t->cmdline || !t->key || !t->runtime_id) {
        vg_rt_target_free(t);
        return VG_ENOMEM;
    }
    return 0;
}

int vg_rt_target_copy(struct vg_rt_target *dst, const struct vg_rt_target *src)
{
    *dst = *src;
    dst->name = vg_strdup(src->name ? src->name : "");
    dst->cmdline = vg_strdup(src->cmdline ? src->cmdline : "");
    dst->exe = src->exe ? vg_strdup(src->exe) : NULL;
    dst->key = vg_strdup(src->key ? src->key : "");
    dst->runtime_id = vg_strdup(src->runtime_id ? src->runtime_id : dst->key ? dst->key : "");
    if (!dst->name || !dst->cmdline || !dst->key || !dst->runtime_id || (src->exe && !dst->exe)) {
        vg_rt_target_free(dst);
        return VG_ENOMEM;
    }
    return 0;
}

void vg_rt_target_free(struct vg_rt_target *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->cmdline);
    free(t->exe);
    free(t->key);
    free(t->runtime_id);
    t->name = t->cmdline = t->exe = t->key = t->runtime_id = NULL;
}

int vg_rt_job_sink(void *ctx, const void *buf, size_t len)
{
    struct vg_rt_job *job = ctx;
    if (atomic_load(&job->cancelled))
        return VG_ECANCELED;
    return job->ops->write(job, buf, len);
}

void vg_rt_job_cancel(struct vg_rt_job *job)
{
    atomic_store(&job->cancelled, true);
    atomic_store(&job->stopping, true);
    if (job->runner && job->runner->cancel)
        job->runner->cancel(job);
}

void vg_rt_job_stop(struct vg_rt_job *job)
{
    atomic_store(&job->stopping, true);
}

/* ---- a thread per long job ---- */

struct job_thread {
    uv_async_t async; /* freed in its close callback (libuv's rule) */
    pthread_t thread;
    struct vg_rt_job *job;
    vg_rt_job_fn fn, after;
};

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_finished(uv_async_t *a)
{
    struct job_thread *jt = a->data;
    pthread_join(jt->thread, NULL);
    jt->after(jt->job);
    uv_close((uv_handle_t *)&jt->async, on_closed);
}

static void *job_main(void *arg)
{
    struct job_thread *jt = arg;
    jt->fn(jt->job);
    uv_async_send(&jt->async);
    return NULL;
}

int vg_rt_job_thread(struct vg_rt_job *job, vg_rt_job_fn fn, vg_rt_job_fn after)
{
    struct job_thread *jt = calloc(1, sizeof(*jt));
    if (!jt)
        return VG_ENOMEM;
    jt->job = job;
    jt->fn = fn;
    jt->after = after;
    jt->async.data = jt;
    if (uv_async_init(job->loop, &jt->async, on_finished) != 0) {
        free(jt);
        return VG_EIO;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* dumps and protocol parsers keep their big buffers on the heap: 1 MiB is plenty */
    pthread_attr_setstacksize(&attr, 1u << 20);
    int e = pthread_create(&jt->thread, &attr, job_main, jt);
    pthread_attr_destroy(&attr);
    if (e) {
        uv_close((uv_handle_t *)&jt->async, on_closed);
        return VG_EIO;
    }
    return 0;
}
