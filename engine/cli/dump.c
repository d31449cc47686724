/* `vigil dump`: a core of a running process to a file or an egress provider, by the same runner
 * rules and /dump use (the native runtime's CollectDump). */
#include "config/defaults.h"
#include "engine/cli/cli.h"
#include "engine/cli/core_stream.h"
#include "engine/cli/progress.h"
#include "engine/dump/dump.h"
#include "engine/engine_int.h"
#include "config/config.h"
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"
#include "rules/ruleset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: vigil dump PID [--type Full|WithHeap|Mini|Triage] [--mode Snapshot|Stop]\n"
           "                      [-o FILE] [--keep-free SIZE]\n"
           "       vigil dump PID [--type T] [--mode M] --egress NAME [--config-dir DIR]...\n"
           "                      [--state-dir DIR]\n"
           "  --type T          what to include (default WithHeap: the process's coredump_filter)\n"
           "  --mode M          Snapshot (default): the process is frozen for milliseconds and a\n"
           "                    copy-on-write clone of it is dumped; Stop: frozen until copied\n"
           "  -o FILE           output path (default ./core_YYYYMMDD_HHMMSS_mmm_PID); never "
           "overwritten\n"
           "  --keep-free SIZE  free space -o leaves on its file system (default 15%% of it, at\n"
           "                    most 4GiB; 0: none), e.g. 2GiB\n"
           "  --egress NAME     stream the dump to the egress provider NAME of the configuration\n"
           "  --config-dir DIR  configuration holding the provider (repeatable; "
           "default " VG_DEFAULT_CONFIG_DIR ")\n"
           "  --state-dir DIR   upload state and spool (default Storage.StateDir)\n");
}

static int parse_pid(const char *s, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > INT_MAX)
        return VG_EINVAL;
    *out = (pid_t)v;
    return 0;
}

/* ---- one dump, through the same runner as rules and /dump (engine/runtimes/native.c) ---- */

struct cli_job {
    struct vg_egress_job *ej; /* --egress */
    struct vg_rt_job file;    /* -o FILE */
    const char *path;
    struct vg_act_collect_dump settings;
    int rc;
    char err[512];
    char *location;
    unsigned long long out[5]; /* Bytes, Threads, FreezeMicroseconds, WallMicroseconds, CowBytes */
    char mode[16];
    char fallback[256];
    /* progress on a terminal: the egress ops wrapped to count what goes through */
    struct vg_progress prog;
    struct vg_core_stream cs; /* the core's headers say how long it will be */
    const struct vg_rt_job_ops *inner;
    struct vg_egress *eg;
    uv_timer_t timer;
};

static void take_outputs(struct cli_job *cj, char **names, char **values, size_t n)
{
    static const char *const keys[5] = {"Bytes", "Threads", "FreezeMicroseconds",
                                        "WallMicroseconds", "CowBytes"};
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 5; k++)
            if (strcmp(names[i], keys[k]) == 0)
                cj->out[k] = strtoull(values[i], NULL, 10);
        if (strcmp(names[i], "Mode") == 0)
            snprintf(cj->mode, sizeof(cj->mode), "%s", values[i]);
        if (strcmp(names[i], "FallbackReason") == 0)
            snprintf(cj->fallback, sizeof(cj->fallback), "%s", values[i]);
        if (strcmp(names[i], "EgressPath") == 0 && !cj->location)
            cj->location = vg_strdup(values[i]);
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
}

static void end(struct cli_job *cj, int rc, const char *error, char **names, char **values,
                size_t n)
{
    cj->rc = rc;
    if (rc)
        snprintf(cj->err, sizeof(cj->err), "%s", error ? error : vg_strerror(rc));
    take_outputs(cj, names, values, n);
}

static int file_unused(struct vg_rt_job *j)
{
    return VG_ESTATE;
}

static int file_open(struct vg_rt_job *j, const char *name, const char *type)
{
    return VG_ESTATE;
}

static int file_write(struct vg_rt_job *j, const void *b, size_t n)
{
    return VG_ESTATE;
}

static void file_abort(struct vg_rt_job *j)
{
}

static const char *file_path(struct vg_rt_job *j)
{
    return ((struct cli_job *)j->caller)->path;
}

static void file_done(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                      size_t n)
{
    end(j->caller, rc, error, names, values, n);
}

static const struct vg_rt_job_ops file_ops = {
    .open = file_open,
    .write = file_write,
    .commit = file_unused,
    .abort = file_abort,
    .file_path = file_path,
    .done = file_done,
};

static void egress_finished(struct vg_egress_job *ej, int rc, const char *error, char **names,
                            char **values, size_t n)
{
    end(ej->ctx, rc, error, names, values, n);
}

/* ---- progress: the egress job ops, counted on their way ---- */

static struct cli_job *cj_of(struct vg_rt_job *j)
{
    return ((struct vg_egress_job *)j->caller)->ctx; /* vg__egress_job_init: caller = ej */
}

static int prog_open(struct vg_rt_job *j, const char *name, const char *type)
{
    return cj_of(j)->inner->open(j, name, type);
}

static int prog_write(struct vg_rt_job *j, const void *buf, size_t len)
{
    struct cli_job *cj = cj_of(j);
    vg_core_stream_feed(&cj->cs, buf, len); /* a malformed stream only leaves the total unknown */
    vg_progress_set(&cj->prog, cj->cs.seen, vg_core_stream_expected(&cj->cs), false);
    return cj->inner->write(j, buf, len);
}

static int prog_commit(struct vg_rt_job *j)
{
    struct cli_job *cj = cj_of(j);
    vg_progress_set(&cj->prog, cj->cs.seen, 0, true);
    vg_progress_phase(&cj->prog, "uploading", 0);
    return cj->inner->commit(j);
}

static void prog_abort(struct vg_rt_job *j)
{
    cj_of(j)->inner->abort(j);
}

static void prog_done(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                      size_t n)
{
    cj_of(j)->inner->done(j, rc, error, names, values, n);
}

static const struct vg_rt_job_ops progress_ops = {
    .open = prog_open,
    .write = prog_write,
    .commit = prog_commit,
    .abort = prog_abort,
    .file_path = NULL,
    .done = prog_done,
};

/* Redraws while nothing flows (the rate falls), follows an upload's parts, and a file dump's
 * size: the writer maps the file and copies the target's memory into it while it is frozen,
 * which nothing outside it can count, so that line shows the file and the time only. */
static void on_progress_timer(uv_timer_t *t)
{
    struct cli_job *cj = t->data;
    struct vg_progress *p = &cj->prog;
    if (cj->path) {
        struct stat sb;
        if (stat(cj->path, &sb) == 0)
            vg_progress_set(p, (uint64_t)sb.st_size, 0, true);
        return;
    }
    pthread_mutex_lock(&p->mu);
    bool uploading = strcmp(p->phase, "uploading") == 0;
    uint64_t done = p->done;
    pthread_mutex_unlock(&p->mu);
    struct vg_egress_upload_info *u = NULL;
    size_t n = 0;
    if (uploading && vg_egress_uploads(cj->eg, 1, &u, &n) == 0 && n == 1 &&
        strcmp(u->state, "uploading") == 0)
        vg_progress_set(p, u->bytes_done, u->size, true);
    else
        vg_progress_set(p, done, 0, true);
    vg_egress_uploads_free(u, n);
}

/* Runs the dump on a loop of its own until it ended. Returns 0 or the start error. */
static int run_dump(pid_t pid, struct cli_job *cj, struct vg_egress *eg, const char *provider)
{
    uv_loop_t loop;
    struct vg_rt_target t;
    int rc = vg_rt_target_from_pid(&t, "/proc", pid);
    if (rc) {
        snprintf(cj->err, sizeof(cj->err), "pid %d: %s", (int)pid,
                 rc == VG_ESRCH || rc == VG_ENOENT ? "no such process" : vg_strerror(rc));
        return rc == VG_ENOENT ? VG_ESRCH : rc;
    }
    if (uv_loop_init(&loop) != 0) {
        vg_rt_target_free(&t);
        return VG_EIO;
    }
    vg_progress_init(&cj->prog, "dumping");
    cj->prog.sizes_only = cj->path != NULL;
    vg_core_stream_init(&cj->cs);
    cj->eg = eg;
    if (eg) {
        cj->ej = calloc(1, sizeof(*cj->ej));
        rc = cj->ej ? vg__egress_job_init(cj->ej, &loop, &t, "CollectDump", &cj->settings, eg,
                                          provider, NULL)
                    : VG_ENOMEM;
        if (rc == 0) {
            cj->ej->ctx = cj;
            cj->ej->finished = egress_finished;
            if (cj->prog.on) {
                cj->inner = cj->ej->job.ops;
                cj->ej->job.ops = &progress_ops;
            }
            rc = vg__egress_job_start(cj->ej);
        }
    } else {
        struct vg_rt_job *j = &cj->file;
        j->loop = &loop;
        rc = vg_rt_target_copy(&j->target, &t);
        j->type = "CollectDump";
        j->settings = &cj->settings;
        j->ops = &file_ops;
        j->caller = cj;
        atomic_init(&j->cancelled, false);
        atomic_init(&j->stopping, false);
        j->runner = vg_runtime_action(&vg_runtime_native, "CollectDump");
        if (rc == 0)
            rc = j->runner->start(j);
    }
    vg_rt_target_free(&t);
    if (rc == 0 && cj->prog.on) {
        uv_timer_init(&loop, &cj->timer);
        cj->timer.data = cj;
        uv_timer_start(&cj->timer, on_progress_timer, 0, 200);
        uv_unref((uv_handle_t *)&cj->timer); /* the dump keeps the loop going, not the timer */
    }
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    else
        snprintf(cj->err, sizeof(cj->err), "cannot start the dump: %s", vg_strerror(rc));
    if (rc == 0 && cj->prog.on) {
        uv_close((uv_handle_t *)&cj->timer, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        /* a file dump quicker than the first redraw still shows what it wrote */
        struct stat sb;
        if (cj->path && stat(cj->path, &sb) == 0)
            vg_progress_set(&cj->prog, (uint64_t)sb.st_size, 0, true);
    }
    vg_progress_end(&cj->prog);
    vg__egress_job_free(cj->ej);
    vg_rt_target_free(&cj->file.target);
    uv_loop_close(&loop);
    return rc;
}

/* One line on stdout; why it is not a snapshot, if it is not, on a second one. */
static void summary(const char *where, const struct cli_job *cj)
{
    printf("%s: %llu bytes, type %s, mode %s, %llu threads, freeze %llu us, total %llu us", where,
           cj->out[0], vg_dump_type_name((enum vg_dump_type)cj->settings.type),
           cj->mode[0] ? cj->mode : "?", cj->out[1], cj->out[2], cj->out[3]);
    if (strcmp(cj->mode, "Snapshot") == 0)
        printf(", target copied %llu KiB meanwhile", cj->out[4] >> 10);
    printf("\n");
    if (cj->fallback[0])
        printf("not a snapshot: %s\n", cj->fallback);
}

/* Streams the core into an egress artifact: spooled within the quota, then uploaded. */
static int dump_to_egress(pid_t pid, struct cli_job *cjp, const char *provider,
                          const struct vg_dirlist *dirs, const char *state_dir)
{
    struct vg_config *cfg = NULL;
    struct vg_ruleset *rules = NULL;
    struct vg_egress *eg = NULL;
    char err[512] = "";
    struct cli_job cj = *cjp;
    int status = 1;
    if (vg_cli_load(dirs, 0, &cfg, &rules) != 0)
        goto out;
    if (!vg_config_egress(cfg, provider)) {
        fprintf(stderr, "vigil dump: no egress provider named \"%s\" in the configuration\n",
                provider);
        goto out;
    }
    struct vg_storage_settings storage = cfg->settings.storage;
    if (state_dir)
        storage.state_dir = state_dir;
    int rc = vg_egress_create(cfg->settings.egress, cfg->settings.n_egress, &storage, &eg, err,
                              sizeof(err));
    if (rc) {
        fprintf(stderr, "vigil dump: %s\n", err[0] ? err : vg_strerror(rc));
        goto out;
    }
    rc = run_dump(pid, &cj, eg, provider);
    if (rc || cj.rc) {
        rc = rc ? rc : cj.rc;
        fprintf(stderr, "vigil dump: %s (%s)%s\n", cj.err[0] ? cj.err : vg_strerror(rc),
                vg_err_name(rc),
                rc == VG_ERETRY ? "; the upload stays spooled and `vigil run` or `vigil upload "
                                  "--resume` completes it"
                                : "");
        goto out;
    }
    summary(cj.location, &cj);
    status = 0;
out:
    free(cj.location);
    vg_egress_destroy(eg);
    vg_ruleset_destroy(rules);
    vg_config_destroy(cfg);
    return status;
}

static int cmd_dump(int argc, char **argv, struct vg_dirlist *dirsp)
{
    enum vg_dump_type type = VG_DUMP_WITH_HEAP;
    enum vg_dump_mode mode = VG_DUMP_SNAPSHOT;
    struct cli_job cj = {0};
    const char *out = NULL, *pid_arg = NULL, *egress = NULL, *state_dir = NULL;
    char defpath[96];
    pid_t pid;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--type") == 0 || strcmp(a, "-t") == 0) {
            if (++i == argc || vg_dump_type_parse(argv[i], &type)) {
                fprintf(stderr, "vigil dump: --type expects Full, WithHeap, Mini or Triage\n");
                return 2;
            }
        } else if (strncmp(a, "--type=", 7) == 0) {
            if (vg_dump_type_parse(a + 7, &type)) {
                fprintf(stderr, "vigil dump: --type expects Full, WithHeap, Mini or Triage\n");
                return 2;
            }
        } else if (strcmp(a, "--mode") == 0 || strncmp(a, "--mode=", 7) == 0) {
            const char *v = a[6] == '=' ? a + 7 : ++i < argc ? argv[i] : NULL;
            if (!v || vg_dump_mode_parse(v, &mode)) {
                fprintf(stderr, "vigil dump: --mode expects Snapshot or Stop\n");
                return 2;
            }
        } else if (strcmp(a, "--keep-free") == 0 || strncmp(a, "--keep-free=", 12) == 0) {
            const char *v = a[11] == '=' ? a + 12 : ++i < argc ? argv[i] : NULL;
            if (!v || vg_parse_size(v, &cj.settings.keep_free)) {
                fprintf(stderr, "vigil dump: --keep-free expects a size, e.g. 2GiB or 0\n");
                return 2;
            }
            cj.settings.keep_free_set = true;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (++i == argc) {
                usage(stderr);
                return 2;
            }
            out = argv[i];
        } else if (strcmp(a, "--egress") == 0 || strcmp(a, "--config-dir") == 0 ||
                   strcmp(a, "--state-dir") == 0) {
            if (++i == argc) {
                usage(stderr);
                return 2;
            }
            if (a[2] == 'e')
                egress = argv[i];
            else if (a[2] == 's')
                state_dir = argv[i];
            else
                vg_dirlist_add(dirsp, argv[i]);
        } else if (a[0] == '-' || pid_arg) {
            fprintf(stderr, "vigil dump: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            pid_arg = a;
        }
    }
    if (!pid_arg || parse_pid(pid_arg, &pid)) {
        if (pid_arg)
            fprintf(stderr, "vigil dump: '%s' is not a process id\n", pid_arg);
        usage(stderr);
        return 2;
    }
    if (egress && out) {
        fprintf(stderr, "vigil dump: -o and --egress exclude each other\n");
        return 2;
    }
    cj.settings.type = (int)type;
    cj.settings.mode = (int)mode;
    if (egress && cj.settings.keep_free_set) {
        fprintf(stderr, "vigil dump: --keep-free goes with -o (an egress has Storage.KeepFree)\n");
        return 2;
    }
    if (egress)
        return dump_to_egress(pid, &cj, egress, dirsp, state_dir);
    if (dirsp->n || state_dir) {
        fprintf(stderr, "vigil dump: --config-dir and --state-dir go with --egress\n");
        return 2;
    }
    if (!out) {
        vg_rt_artifact_name(defpath, sizeof(defpath), "core_", (int)pid, "");
        out = defpath;
    }
    cj.path = out;
    int rc = run_dump(pid, &cj, NULL, NULL);
    free(cj.location);
    if (rc || cj.rc) {
        rc = rc ? rc : cj.rc;
        fprintf(stderr, "vigil dump: %s (%s)\n", cj.err[0] ? cj.err : vg_strerror(rc),
                vg_err_name(rc));
        return 1;
    }
    summary(out, &cj);
    return 0;
}

int vg_cmd_dump(int argc, char **argv)
{
    struct vg_dirlist dirs = {0};
    /* the runner's progress lines are for the daemon's log; the command prints its own summary */
    if (vg_log_level > VG_LOG_WARN)
        vg_log_level = VG_LOG_WARN;
    int st = cmd_dump(argc, argv, &dirs);
    vg_dirlist_free(&dirs);
    return st;
}
