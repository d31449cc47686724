/* Execute {Path, Arguments, IgnoreExitCode, Timeout, Environment}: runs a program (no shell, an
 * argv array); output ExitCode.
 *
 * Arguments are split into words as the user wrote them, and $(...) tokens are substituted into
 * each word afterwards: a process name or command line (chosen by the watched process) can never
 * add, remove or unbalance arguments. The child gets a minimal environment (PATH, HOME, LANG and
 * the rule's Environment), never vigil's own (credentials, API keys), runs in a session of its
 * own, and that whole session is killed on Timeout, when the child exits (nothing it started
 * outlives the action) and at shutdown. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "rules/action.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct vg__exec_job {
    uv_process_t proc;
    uv_timer_t timer;
    struct vg_run *run;
    size_t idx;
    bool timed_out;
    int64_t exit_status;
    int term_signal;
    int closing;
    int pgid;                           /* the child's session and process group */
    struct vg__exec_job *next, **prevp; /* running children, for shutdown */
};

static void kill_group(int pgid)
{
    if (pgid > 0)
        kill(-pgid, SIGKILL);
}

void vg__execute_kill_all(struct vg_daemon *d)
{
    for (struct vg__exec_job *j = d->exec_jobs; j; j = j->next)
        kill_group(j->pgid);
}

/* The child's whole environment. */
#define CHILD_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Splits Arguments like a POSIX shell would split words (quotes and backslashes), without any
 * expansion: what the user wrote is what the program gets. */
int vg__split_args(const char *s, char ***out, size_t *n);
int vg__split_args(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct vg_buf w;
    vg_buf_init(&w);
    char **v = NULL;
    size_t cap = 0;
    bool in_word = false;
    char quote = 0;
    for (const char *p = s ? s : "";; p++) {
        char c = *p;
        bool end = c == '\0';
        if (end && quote) {
            vg_buf_free(&w);
            for (size_t i = 0; i < *n; i++)
                free(v[i]);
            free(v);
            *n = 0;
            return VG_EINVAL;
        }
        if (!end && quote) {
            if (c == quote)
                quote = 0;
            else if (c == '\\' && quote == '"' && (p[1] == '"' || p[1] == '\\'))
                vg_buf_append(&w, ++p, 1);
            else
                vg_buf_append(&w, p, 1);
            continue;
        }
        if (end || c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                if (*n + 2 > cap) {
                    cap = cap ? cap * 2 : 8;
                    char **nv = realloc(v, cap * sizeof(*nv));
                    if (!nv) {
                        vg_buf_free(&w);
                        return VG_ENOMEM;
                    }
                    v = nv;
                }
                v[(*n)++] = vg_buf_steal(&w);
                v[*n] = NULL;
                in_word = false;
            }
            if (end)
                break;
            continue;
        }
        in_word = true;
        if (c == '\'' || c == '"')
            quote = c;
        else if (c == '\\' && p[1])
            vg_buf_append(&w, ++p, 1);
        else
            vg_buf_append(&w, p, 1);
    }
    vg_buf_free(&w);
    *out = v;
    return 0;
}

static void job_closed(uv_handle_t *h)
{
    struct vg__exec_job *job = h->data;
    if (--job->closing > 0)
        return;
    struct vg_run *run = job->run;
    size_t idx = job->idx;
    const struct vg_act_execute *set = run->rule->actions[idx].settings;
    char *error = NULL;
    int rc = 0;
    if (job->timed_out) {
        rc = VG_ETIMEDOUT;
        error = vg_asprintf("timed out after %llu ms and was killed",
                            (unsigned long long)set->timeout_ms);
    } else if (job->term_signal) {
        rc = VG_EFATAL;
        error = vg_asprintf("killed by signal %d", job->term_signal);
    } else if (job->exit_status != 0 && !set->ignore_exit_code) {
        rc = VG_EFATAL;
        error = vg_asprintf("exited with code %lld", (long long)job->exit_status);
    }
    char **names = calloc(1, sizeof(char *)), **values = calloc(1, sizeof(char *));
    size_t n = 0;
    if (names && values) {
        names[0] = vg_strdup("ExitCode");
        values[0] = vg_asprintf(
            "%lld", (long long)(job->term_signal ? 128 + job->term_signal : job->exit_status));
        n = names[0] && values[0] ? 1 : 0;
    }
    free(job);
    vg__run_action_done(run, idx, rc, error, names, values, n);
    free(error);
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct vg__exec_job *job = p->data;
    kill_group(job->pgid); /* whatever it left running in its session goes with it */
    if (job->prevp) {
        *job->prevp = job->next;
        if (job->next)
            job->next->prevp = job->prevp;
        job->prevp = NULL;
    }
    job->exit_status = exit_status;
    job->term_signal = term_signal;
    job->closing = 2;
    uv_close((uv_handle_t *)&job->timer, job_closed);
    uv_close((uv_handle_t *)&job->proc, job_closed);
}

static void on_timeout(uv_timer_t *t)
{
    struct vg__exec_job *job = t->data;
    job->timed_out = true;
    kill_group(job->pgid);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* PATH, HOME, LANG and the rule's Environment (values expanded). */
static int child_env(struct vg_run *run, const struct vg_node *extra, char ***out, size_t *n,
                     char **err)
{
    size_t cap = 4 + (extra && extra->kind == VG_NODE_MAP ? extra->n : 0);
    char **env = calloc(cap, sizeof(char *));
    if (!env)
        return VG_ENOMEM;
    *n = 0;
    env[(*n)++] = vg_strdup(CHILD_PATH);
    env[(*n)++] = vg_strdup("HOME=/");
    env[(*n)++] = vg_strdup("LANG=C.UTF-8");
    for (size_t i = 0; extra && extra->kind == VG_NODE_MAP && i < extra->n; i++) {
        char *v = vg__run_expand(run, vg_node_str(extra->pairs[i].value), err);
        if (!v) {
            free_strv(env, *n);
            return VG_EINVAL;
        }
        /* a later variable of the same name replaces the default */
        size_t klen = strlen(extra->pairs[i].key);
        for (size_t k = 0; k < *n; k++)
            if (strncmp(env[k], extra->pairs[i].key, klen) == 0 && env[k][klen] == '=') {
                free(env[k]);
                env[k] = env[--*n];
                break;
            }
        env[(*n)++] = vg_asprintf("%s=%s", extra->pairs[i].key, v);
        free(v);
    }
    for (size_t k = 0; k < *n; k++)
        if (!env[k]) {
            free_strv(env, *n);
            return VG_ENOMEM;
        }
    *out = env;
    return 0;
}

static int execute_start(struct vg_run *run, size_t idx)
{
    const struct vg_act_execute *set = run->rule->actions[idx].settings;
    char *err = NULL;
    char *path = vg__run_expand(run, set->path, &err);
    char **argv = NULL, **env = NULL;
    size_t argc = 0, envc = 0;
    int rc = 0;
    struct vg__exec_job *job = NULL;
    if (!path) {
        vg__run_action_done(run, idx, VG_EINVAL, err, NULL, NULL, 0);
        goto out;
    }
    /* split what the user wrote, then substitute into whole words */
    if ((rc = vg__split_args(set->arguments ? set->arguments : "", &argv, &argc))) {
        vg__run_action_done(run, idx, rc, "Arguments has an unterminated quote", NULL, NULL, 0);
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < argc; i++) {
        char *x = vg__run_expand(run, argv[i], &err);
        if (!x) {
            vg__run_action_done(run, idx, VG_EINVAL, err, NULL, NULL, 0);
            goto out;
        }
        free(argv[i]);
        argv[i] = x;
    }
    if ((rc = child_env(run, set->environment, &env, &envc, &err))) {
        if (rc == VG_EINVAL) {
            vg__run_action_done(run, idx, rc, err, NULL, NULL, 0);
            rc = 0;
        }
        goto out;
    }
    char **envp = realloc(env, (envc + 1) * sizeof(char *));
    if (!envp) {
        rc = VG_ENOMEM;
        goto out;
    }
    env = envp;
    env[envc] = NULL;
    char **full = calloc(argc + 2, sizeof(char *));
    if (!full) {
        rc = VG_ENOMEM;
        goto out;
    }
    full[0] = path;
    for (size_t i = 0; i < argc; i++)
        full[i + 1] = argv[i];
    job = calloc(1, sizeof(*job));
    if (!job) {
        free(full);
        rc = VG_ENOMEM;
        goto out;
    }
    job->run = run;
    job->idx = idx;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 2}, /* the child's output joins vigil's log */
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o = {.exit_cb = on_child_exit,
                              .file = path,
                              .args = full,
                              .env = env,
                              .flags = UV_PROCESS_DETACHED, /* setsid: a group of its own */
                              .stdio_count = 3,
                              .stdio = stdio};
    job->proc.data = job;
    rc = uv_spawn(run->d->loop, &job->proc, &o);
    free(full);
    if (rc) {
        /* a failed spawn still initialized the handle: close it before reporting */
        char *msg = vg_asprintf("cannot start %s: %s", path, uv_strerror(rc));
        job->closing = 1;
        job->exit_status = 0;
        uv_close((uv_handle_t *)&job->proc, (uv_close_cb)free);
        vg__run_action_done(run, idx, VG_ENOENT, msg, NULL, NULL, 0);
        free(msg);
        rc = 0;
        goto out;
    }
    job->pgid = job->proc.pid;
    job->next = run->d->exec_jobs;
    job->prevp = &run->d->exec_jobs;
    if (job->next)
        job->next->prevp = &job->next;
    run->d->exec_jobs = job;
    uv_timer_init(run->d->loop, &job->timer);
    job->timer.data = job;
    if (set->timeout_ms)
        uv_timer_start(&job->timer, on_timeout, set->timeout_ms, 0);
    vg_log(VG_LOG_DEBUG, "action", "Execute: started %s (pid %d)", path, job->proc.pid);
out:
    free_strv(argv, argc);
    free_strv(env, envc);
    free(path);
    free(err);
    return rc;
}

const struct vg_action_runner vg__runner_execute = {"Execute", execute_start};
