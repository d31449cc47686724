/* `vigil crash`: the kernel's core_pattern pipe handler (`vigil crash --install` sets it up).
 *
 * The kernel runs it for every process killed by a signal that dumps core, with the core on
 * stdin and the crash's facts as arguments. It loads the configuration, finds the ProcessCrash
 * rules whose filters and signals match, and runs their action lists with the daemon's own code
 * (engine/actions.c run lists on a loop of its own, Limits from the same SQLite state, so a crash
 * loop is throttled however many processes it takes). The core itself is the artifact of the
 * rule's CollectDump: read from stdin, checked against its own ELF headers (a truncated or
 * malformed core is reported and never committed) and streamed through the egress job ops every
 * artifact uses. When no rule matches, the crash goes to the handler that was configured before
 * (crash_install.c), or nowhere.
 *
 * What the kernel imposes: nothing else runs for that process until this returns (with
 * core_pipe_limit > 0, which --install sets, the process stays readable under /proc meanwhile,
 * which is where filters and names come from); so memory is bounded (RLIMIT_DATA, one 1 MiB
 * buffer), and time too (a timer stops the actions, an alarm ends the process). Stdout and
 * stderr are not open: the log goes to STATE_DIR/crash.log. */
#include "config/defaults.h"
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/cli/cli.h"
#include "engine/cli/core_stream.h"
#include "engine/cli/crash_int.h"
#include "engine/engine_int.h"
#include "engine/host/cgroup.h"
#include "engine/host/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIME_LIMIT_S 300
#define HARD_GRACE_S 15 /* after the time limit, for the actions to stop, before the alarm */
#define DEFAULT_MEMORY_MB 256
#define DEFAULT_PIPE_LIMIT 16
#define CORE_CHUNK (1u << 20)
#define LOG_ROTATE_BYTES (4u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vigil crash [--config-dir DIR]... [--state-dir DIR] [--time-limit S]\n"
            "                   [--memory-limit MB] %s\n"
            "       vigil crash --install [--config-dir DIR]... [--state-dir DIR]\n"
            "                   [--fallback previous|none] [--core-pipe-limit N] [--handler PATH]\n"
            "       vigil crash --uninstall [--config-dir DIR]... [--state-dir DIR]\n"
            "  The kernel's core_pattern handler: ProcessCrash rules get the crash, their\n"
            "  CollectDump ships the core from stdin. --install points core_pattern at this vigil\n"
            "  (remembering the previous handler, which gets the crashes no rule matches with\n"
            "  --fallback previous, the default); --uninstall restores it.\n"
            "  --time-limit S     stop the actions after S seconds (default %d)\n"
            "  --memory-limit MB  data size limit of the handler (default %d)\n",
            VG_CRASH_ARGS, DEFAULT_TIME_LIMIT_S, DEFAULT_MEMORY_MB);
}

/* ---- the crash's facts ---- */

struct crash {
    struct vg_crash_spec spec; /* the kernel's values */
    int pid, signo;
    struct vg_rt_target target;
    struct vg_proc_cgroup cgroup;
    bool from_proc; /* /proc/PID was readable */
    char key[96];   /* what its Limits are counted by */
    char signo_s[16], time_s[40], exe[PATH_MAX];
    const char *tokens[13];
};

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < lo || v > hi)
        return VG_EINVAL;
    *out = v;
    return 0;
}

/* FACTS is VG_CRASH_FACTS as the kernel expanded it (split in place). */
static int parse_facts(struct crash *c, char *facts, const char *comm, const char *path)
{
    const char *letters = VG_CRASH_FACT_CHARS;
    char *p = facts;
    for (size_t i = 0; letters[i]; i++) {
        char *colon = letters[i + 1] ? strchr(p, ':') : NULL;
        if (letters[i + 1] && !colon)
            return VG_EINVAL;
        if (colon)
            *colon = '\0';
        c->spec.v[(unsigned char)letters[i]] = p;
        p = colon ? colon + 1 : p + strlen(p);
    }
    c->spec.v['e'] = comm;
    c->spec.v['E'] = path;
    long pid, sig;
    if (parse_int(c->spec.v['P'], 1, INT_MAX, &pid) || parse_int(c->spec.v['s'], 1, 64, &sig))
        return VG_EINVAL;
    c->pid = (int)pid;
    c->signo = (int)sig;
    return 0;
}

/* The command line as the daemon shows it: arguments joined by spaces, at most 4 KiB. */
static char *read_cmdline(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    if (n <= 0)
        return vg_strdup("");
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return vg_strdup(buf);
}

/* The process as /proc shows it while the kernel holds it for us; what the kernel passed when
 * it is gone already (core_pipe_limit 0). */
static int read_process(struct crash *c)
{
    const struct vg_crash_spec *s = &c->spec;
    snprintf(c->exe, sizeof(c->exe), "%s", s->v['E'] ? s->v['E'] : "");
    for (char *x = c->exe; *x; x++)
        if (*x == '!')
            *x = '/'; /* the kernel's escape for '/' in %E */
    int rc = vg_rt_target_from_pid(&c->target, "/proc", c->pid);
    if (rc == 0) {
        c->from_proc = true;
        free(c->target.cmdline);
        c->target.cmdline = read_cmdline(c->pid);
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", c->pid);
        ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
        if (n > 0)
            vg_cgroup_parse_proc(buf, &c->cgroup);
        if (c->target.exe)
            snprintf(c->exe, sizeof(c->exe), "%s", c->target.exe);
        if (!c->target.cmdline)
            return VG_ENOMEM;
    } else {
        struct vg_rt_target *t = &c->target;
        long v;
        memset(t, 0, sizeof(*t));
        t->pid = c->pid;
        t->ns_pid = parse_int(s->v['p'], 1, INT_MAX, &v) == 0 ? (int)v : c->pid;
        t->uid = parse_int(s->v['u'], 0, INT_MAX, &v) == 0 ? (unsigned)v : 0;
        t->name = vg_strdup(s->v['e'] ? s->v['e'] : "");
        t->cmdline = vg_strdup("");
        t->exe = c->exe[0] ? vg_strdup(c->exe) : NULL;
        t->key = vg_asprintf("%d:%s", c->pid, s->v['t'] ? s->v['t'] : "0");
        t->proc_root = "/proc";
        t->runtime = &vg_runtime_native;
        if (!t->name || !t->cmdline || !t->key)
            return VG_ENOMEM;
    }
    /* each crash is a new process: a crash loop is counted by the program's name */
    snprintf(c->key, sizeof(c->key), "crash:%s", c->target.name);
    return 0;
}

static void make_tokens(struct crash *c)
{
    const struct vg_crash_spec *s = &c->spec;
    const char *name = vg_crash_signal_name(c->signo);
    snprintf(c->signo_s, sizeof(c->signo_s), "%d", c->signo);
    long t;
    time_t when = parse_int(s->v['t'], 0, LONG_MAX, &t) == 0 ? (time_t)t : time(NULL);
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(c->time_s, sizeof(c->time_s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *const tokens[] = {"$(Crash.Signal)",
                                  c->signo_s,
                                  "$(Crash.SignalName)",
                                  name ? name : c->signo_s,
                                  "$(Crash.Time)",
                                  c->time_s,
                                  "$(Crash.ThreadId)",
                                  s->v['i'] ? s->v['i'] : "",
                                  "$(Crash.Hostname)",
                                  s->v['h'] ? s->v['h'] : "",
                                  "$(Crash.ExecutablePath)",
                                  c->exe,
                                  NULL};
    memcpy(c->tokens, tokens, sizeof(tokens));
}

/* ---- CollectDump: the kernel's core, from stdin ---- */

/* stdin holds one core, which one CollectDump ships: the first to start takes it. */
static struct {
    atomic_bool taken;
    struct vg_rt_job *job; /* the one reading it (loop thread), for the time limit */
} core_source;

struct core_state {
    int rc;
    char err[512];
    uint64_t bytes;
};

static void core_work(struct vg_rt_job *job)
{
    struct core_state *st = job->state;
    if (atomic_exchange(&core_source.taken, true)) {
        st->rc = VG_EBUSY;
        snprintf(st->err, sizeof(st->err),
                 "the kernel hands over one core per crash, and another CollectDump of this "
                 "crash already took it");
        return;
    }
    char name[96];
    vg_rt_artifact_name(name, sizeof(name), "core_", job->target.pid, "");
    char *buf = malloc(CORE_CHUNK);
    if (!buf) {
        st->rc = VG_ENOMEM;
        return;
    }
    struct vg_core_stream cs;
    vg_core_stream_init(&cs);
    int rc = job->ops->open(job, name, "application/x-coredump");
    if (rc)
        snprintf(st->err, sizeof(st->err), "cannot open the artifact: %s", vg_strerror(rc));
    while (!rc) {
        if (atomic_load(&job->cancelled)) {
            rc = VG_ECANCELED;
            snprintf(st->err, sizeof(st->err),
                     "stopped after %llu bytes of the core (time limit): not shipped",
                     (unsigned long long)cs.seen);
            break;
        }
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&pfd, 1, 250) == 0)
            continue; /* the cancel flag again */
        ssize_t n = read(STDIN_FILENO, buf, CORE_CHUNK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(st->err, sizeof(st->err), "reading the core from stdin: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            rc = vg_core_stream_end(&cs, st->err, sizeof(st->err));
            break;
        }
        if ((rc = vg_core_stream_feed(&cs, buf, (size_t)n))) {
            snprintf(st->err, sizeof(st->err), "%s (in the first %llu bytes of stdin)", cs.error,
                     (unsigned long long)(cs.seen + (uint64_t)n));
            break;
        }
        rc = job->ops->write(job, buf, (size_t)n);
    }
    free(buf);
    st->bytes = cs.seen;
    if (rc)
        job->ops->abort(job); /* never shipped as if it were whole */
    else
        rc = job->ops->commit(job);
    st->rc = rc;
}

static void core_after(struct vg_rt_job *job)
{
    struct core_state *st = job->state;
    char **names = NULL, **values = NULL;
    size_t n = 0;
    core_source.job = NULL;
    if (st->rc == 0 && (names = calloc(1, sizeof(char *))) &&
        (values = calloc(1, sizeof(char *)))) {
        names[0] = vg_strdup("Bytes");
        values[0] = vg_asprintf("%llu", (unsigned long long)st->bytes);
        n = 1;
    }
    int rc = st->rc;
    char err[512];
    snprintf(err, sizeof(err), "%s", st->err[0] ? st->err : vg_strerror(rc));
    free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, names, values, n);
}

static int core_start(struct vg_rt_job *job)
{
    struct core_state *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    job->state = st;
    int rc = vg_rt_job_thread(job, core_work, core_after);
    if (rc) {
        free(st);
        job->state = NULL;
        return rc;
    }
    core_source.job = job;
    return 0;
}

static const struct vg_rt_action kernel_core = {"CollectDump", core_start, NULL, NULL, false};
static const struct vg_rt_action *const crash_actions[] = {&kernel_core, NULL};

/* ---- the handler ---- */

struct opts {
    struct vg_dirlist dirs;
    const char *state_dir;
    long time_limit_s, memory_mb, pipe_limit;
    bool install, uninstall, fallback;
    const char *handler;
};

/* The kernel starts handlers with stdin only: 1 and 2 must not be handed out by the first
 * open() (a log line would land in the state database). Returns whether stderr was closed. */
static bool sanitize_stdio(void)
{
    bool closed = fcntl(STDERR_FILENO, F_GETFD) < 0;
    for (int fd = 1; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_WRONLY);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
    return closed;
}

static void log_to_file(const char *state_dir)
{
    char path[PATH_MAX], old[PATH_MAX + 4];
    snprintf(path, sizeof(path), "%s/crash.log", state_dir);
    mkdir(state_dir, 0700);
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > LOG_ROTATE_BYTES) {
        snprintf(old, sizeof(old), "%s.1", path);
        rename(path, old);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO); /* Execute children's output joins it too */
        close(fd);
    }
}

static void bound_resources(const struct opts *o)
{
    /* the hard end: the kernel waits for this process, whatever hangs */
    alarm((unsigned)(o->time_limit_s + HARD_GRACE_S));
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 2);
#endif
#if !defined(__SANITIZE_ADDRESS__)
    /* (a sanitizer's shadow memory would not fit) */
    struct rlimit rl = {.rlim_cur = (rlim_t)o->memory_mb << 20,
                        .rlim_max = (rlim_t)o->memory_mb << 20};
    setrlimit(RLIMIT_DATA, &rl);
#endif
}

static void on_time_limit(uv_timer_t *t)
{
    struct vg_daemon *d = t->data;
    vg_log(VG_LOG_ERROR, "crash",
           "time limit reached: stopping the actions (a core not complete by now is not shipped)");
    if (core_source.job)
        vg_rt_job_cancel(core_source.job);
    vg__execute_kill_all(d);
}

static bool matches(const struct vg_rule *r, const struct crash *c)
{
    if (!r->trigger.type || !(r->trigger.type->flags & VG_TRIGGER_CRASH) ||
        !vg_trigger_crash(&r->trigger, c->signo))
        return false;
    const struct vg_rt_target *t = &c->target;
    bool v2 = c->cgroup.v2[0] && strcmp(c->cgroup.v2, "/") != 0;
    struct vg_proc_info info = {
        .pid = t->pid,
        .nspid = t->ns_pid,
        .uid = t->uid,
        .name = t->name,
        .cmdline = t->cmdline,
        .runtime_id = t->key,
        .cgroup = v2 || !c->cgroup.v1_memory[0] ? c->cgroup.v2 : c->cgroup.v1_memory,
    };
    return vg_rule_matches(r, &info);
}

/* Starts every matching rule that its Limits allow; returns how many rules matched. Limits are
 * read and the fire recorded under a lock: crashes handled at the same time count each other. */
static size_t fire_rules(struct vg_daemon *d, struct crash *c)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/crash.lock", d->state_dir);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock >= 0)
        flock(lock, LOCK_EX);
    size_t matched = 0;
    const struct vg_ruleset *rs = d->gen->rules;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const struct vg_rule *r = &rs->rules[i];
        if (!matches(r, c))
            continue;
        matched++;
        uint64_t now = vg_wall_ms(), last;
        struct vg_limits lim;
        struct vg_trigger_persist tp;
        size_t nf;
        int verdict = vg__limits_load(d, r, c->key, c->pid, now, &lim, &tp, &last, &nf);
        if (verdict == 0)
            verdict = vg_limits_begin(&lim, now);
        vg_limits_free(&lim);
        if (verdict != VG_LIMIT_OK) {
            static const char *const why[] = {"", "busy", "throttled (ActionCount)", "in cooldown",
                                              "finished"};
            vg_log(VG_LOG_WARN, "crash",
                   "rule %s matches the crash of pid %d (%s) but is %s: its actions do not run "
                   "and the core is dropped",
                   r->name, c->pid, c->target.name,
                   verdict > 0 && verdict < 5 ? why[verdict] : vg_strerror(verdict));
            continue;
        }
        d->counters.rules_fired++;
        vg_log(VG_LOG_INFO, "rules", "rule %s fired for pid %d (%s)", r->name, c->pid,
               c->target.name);
        struct vg_rt_target t;
        int rc = vg_rt_target_copy(&t, &c->target);
        if (rc == 0)
            rc = vg__run_begin(d, NULL, r, &t, c->key, now, NULL, c->tokens);
        if (rc)
            vg_log(VG_LOG_ERROR, "crash", "rule %s: cannot start its actions: %s", r->name,
                   vg_strerror(rc));
        vg_rt_target_free(&t);
    }
    if (lock >= 0)
        close(lock);
    return matched;
}

static int handle(struct opts *o, char *facts, const char *comm, const char *path)
{
    bool to_file = sanitize_stdio();
    bound_resources(o);
    signal(SIGPIPE, SIG_IGN);
    struct crash c;
    memset(&c, 0, sizeof(c));
    char err[512] = "";
    int status = 1;
    uv_loop_t loop;
    uv_timer_t timer;
    bool loop_ok = false;
    char *errors = NULL;
    size_t matched = 0;
    bool broken = false; /* no state or configuration: the previous handler still gets it */
    struct vg_daemon_options dopts = {
        .config_dirs = o->dirs.v, .n_config_dirs = o->dirs.n, .state_dir = o->state_dir};
    struct vg_daemon dd, *d = &dd;
    memset(d, 0, sizeof(*d));
    d->opts = &dopts;
    if (!(d->state_dir = vg__state_dir(&dopts)))
        return 1;
    if (to_file)
        log_to_file(d->state_dir);
    if (parse_facts(&c, facts, comm, path)) {
        vg_log(VG_LOG_ERROR, "crash",
               "unexpected arguments \"%s\": core_pattern must end with %s (vigil crash "
               "--install writes it)",
               facts, VG_CRASH_ARGS);
        status = 2;
        goto out;
    }
    make_tokens(&c);
    if (read_process(&c)) {
        vg_log(VG_LOG_ERROR, "crash", "pid %d: out of memory", c.pid);
        goto out;
    }
    vg_log(VG_LOG_INFO, "crash", "pid %d (%s, pid %d in its namespace, uid %u) crashed: %s%s",
           c.pid, c.target.name, c.target.ns_pid, c.target.uid,
           vg_crash_signal_name(c.signo) ? vg_crash_signal_name(c.signo) : "signal ",
           vg_crash_signal_name(c.signo) ? "" : c.signo_s);
    if (!c.from_proc)
        vg_log(VG_LOG_WARN, "crash",
               "pid %d is gone from /proc: filters see only what the kernel passed (name, uid); "
               "set core_pipe_limit above 0 (vigil crash --install does) so the kernel keeps it "
               "until vigil crash returns",
               c.pid);
    /* the runtime decides the artifact's metadata; every action reads the dead process's core */
    static struct vg_runtime_type crash_rt;
    int root = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const struct vg_runtime_type *rt = c.from_proc && root >= 0
                                           ? vg_runtime_marked(root, c.pid, c.target.exe)
                                           : &vg_runtime_native;
    if (root >= 0)
        close(root);
    crash_rt = (struct vg_runtime_type){
        .name = rt->name, .display = rt->display, .actions = crash_actions};
    c.target.runtime = &crash_rt;

    if (uv_loop_init(&loop) != 0)
        goto out;
    loop_ok = true;
    d->loop = &loop;
    if (vg_state_open(d->state_dir, &d->state, err, sizeof(err))) {
        vg_log(VG_LOG_ERROR, "state", "%s", err);
        broken = true;
        goto fallback;
    }
    if (vg__gen_build(d, &d->gen, &errors)) {
        vg_log(VG_LOG_ERROR, "crash", "the configuration is not valid:\n%s", errors ? errors : "?");
        broken = true;
        goto fallback;
    }
    if (!(matched = fire_rules(d, &c))) {
        vg_log(VG_LOG_INFO, "crash", "no ProcessCrash rule matches pid %d (%s, %s)", c.pid,
               c.target.name, c.signo_s);
        goto fallback;
    }
    uv_timer_init(&loop, &timer);
    timer.data = d;
    uv_timer_start(&timer, on_time_limit, (uint64_t)o->time_limit_s * 1000, 0);
    uv_unref((uv_handle_t *)&timer); /* the runs keep the loop going, not the timer */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    status = d->counters.actions_failed ? 1 : 0;
    vg_log(VG_LOG_INFO, "crash", "pid %d: %zu rule%s matched, %llu fired, %llu action%s failed",
           c.pid, matched, matched == 1 ? "" : "s", (unsigned long long)d->counters.rules_fired,
           (unsigned long long)d->counters.actions_failed,
           d->counters.actions_failed == 1 ? "" : "s");
    goto out;

fallback:
    /* nothing of vigil's wants this crash: where it went before, if anywhere */
    vg__gen_unref(d->gen);
    d->gen = NULL;
    vg_state_close(d->state);
    d->state = NULL;
    {
        struct vg_crash_record rec;
        int rc = vg__crash_record_read(d->state_dir, &rec);
        status = broken ? 1 : 0;
        if (rc == 0 && rec.fallback && rec.previous[0]) {
            vg_log(VG_LOG_INFO, "crash", "pid %d: handed to the previous handler \"%s\"", c.pid,
                   rec.previous);
            rc = vg__crash_handoff(&rec, &c.spec, "/proc", err, sizeof(err));
            if (rc) {
                vg_log(VG_LOG_ERROR, "crash", "pid %d: %s", c.pid, err);
                status = 1;
            }
        } else if (rc == 0 || rc == VG_ENOENT) {
            vg_log(VG_LOG_INFO, "crash", "pid %d: the core is dropped (%s)", c.pid,
                   rc ? "no handler recorded by --install" : "--fallback none");
        } else {
            vg_log(VG_LOG_ERROR, "crash", "%s/%s: %s; the core is dropped", d->state_dir,
                   VG_CRASH_RECORD, vg_strerror(rc));
        }
        vg__crash_record_free(&rec);
    }
out:
    vg__gen_unref(d->gen);
    vg_state_close(d->state);
    if (loop_ok && uv_loop_close(&loop) != 0)
        vg_log(VG_LOG_WARN, "crash", "event loop closed with handles still open");
    vg_rt_target_free(&c.target);
    free(errors);
    free(d->state_dir);
    return status;
}

int vg_cmd_crash(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config-dir", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"time-limit", required_argument, NULL, 'T'},
        {"memory-limit", required_argument, NULL, 'M'},
        {"install", no_argument, NULL, 'i'},
        {"uninstall", no_argument, NULL, 'u'},
        {"fallback", required_argument, NULL, 'f'},
        {"core-pipe-limit", required_argument, NULL, 'L'},
        {"handler", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {.time_limit_s = DEFAULT_TIME_LIMIT_S,
                     .memory_mb = DEFAULT_MEMORY_MB,
                     .pipe_limit = DEFAULT_PIPE_LIMIT,
                     .fallback = true};
    int c, status = 2;
    optind = 1;
    /* '+': options end at FACTS, so a crashed program named "-x" is not taken for one */
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            vg_dirlist_add(&o.dirs, optarg);
            break;
        case 's':
            o.state_dir = optarg;
            break;
        case 'T':
            if (parse_int(optarg, 1, 86400, &o.time_limit_s)) {
                fprintf(stderr, "vigil crash: --time-limit expects seconds, 1-86400\n");
                goto out;
            }
            break;
        case 'M':
            if (parse_int(optarg, 16, 1 << 20, &o.memory_mb)) {
                fprintf(stderr, "vigil crash: --memory-limit expects MiB, at least 16\n");
                goto out;
            }
            break;
        case 'i':
            o.install = true;
            break;
        case 'u':
            o.uninstall = true;
            break;
        case 'f':
            if (strcmp(optarg, "previous") && strcmp(optarg, "none")) {
                fprintf(stderr, "vigil crash: --fallback expects previous or none\n");
                goto out;
            }
            o.fallback = strcmp(optarg, "previous") == 0;
            break;
        case 'L':
            if (parse_int(optarg, 1, 1 << 20, &o.pipe_limit)) {
                fprintf(stderr, "vigil crash: --core-pipe-limit expects a number above 0\n");
                goto out;
            }
            break;
        case 'H':
            o.handler = optarg;
            break;
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (o.install || o.uninstall) {
        if (o.install == o.uninstall || optind != argc) {
            usage(stderr);
            goto out;
        }
        struct vg_daemon_options dopts = {
            .config_dirs = o.dirs.v, .n_config_dirs = o.dirs.n, .state_dir = o.state_dir};
        char *state_dir = vg__state_dir(&dopts);
        struct vg_crash_install in = {.config_dirs = o.dirs.v,
                                      .n_config_dirs = o.dirs.n,
                                      .state_dir_opt = o.state_dir,
                                      .state_dir = state_dir,
                                      .handler = o.handler,
                                      .fallback = o.fallback,
                                      .pipe_limit = o.pipe_limit};
        status = !state_dir ? 1 : o.install ? vg__crash_install(&in) : vg__crash_uninstall(&in);
        free(state_dir);
        goto out;
    }
    if (argc - optind != 3) {
        usage(stderr);
        goto out;
    }
    status = handle(&o, argv[optind], argv[optind + 1], argv[optind + 2]);
out:
    vg_dirlist_free(&o.dirs);
    return status;
}
