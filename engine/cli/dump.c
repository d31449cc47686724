/* `vigil dump`: a core of a running process to a file. Other destinations (egress) plug in as a
 * vg_dump_write_cb sink handed to vg_coredump_write(). */
#include "engine/cli/cli.h"
#include "engine/dump/dump.h"
#include "config/config.h"
#include "config/error.h"
#include "egress/egress.h"
#include "engine/cli/cli.h"
#include "rules/ruleset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: vigil dump PID [--type Full|WithHeap|Mini|Triage] [-o FILE]\n"
        "       vigil dump PID [--type T] --egress NAME [--config-dir DIR]... [--state-dir DIR]\n"
        "  --type T          what to include (default WithHeap: the process's coredump_filter)\n"
        "  -o FILE           output path (default ./core_YYYYMMDD_HHMMSS.PID); never overwritten\n"
        "  --egress NAME     stream the dump to the egress provider NAME of the configuration\n"
        "  --config-dir DIR  configuration holding the provider (repeatable; default /etc/vigil)\n"
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

static int artifact_sink(void *ctx, const void *buf, size_t len)
{
    return vg_artifact_write(ctx, buf, len);
}

/* Streams the core into an egress artifact: spooled within the quota, then uploaded. */
static int dump_to_egress(pid_t pid, enum vg_dump_type type, const char *provider,
                          const struct vg_dirlist *dirs, const char *state_dir)
{
    struct vg_config *cfg = NULL;
    struct vg_ruleset *rules = NULL;
    struct vg_egress *eg = NULL;
    struct vg_artifact *a = NULL;
    char err[512] = "", name[96], *path = NULL;
    struct vg_dump_result res;
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
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(name, sizeof(name), "core_%d_%s", (int)pid, stamp);
    if ((rc = vg_artifact_open(eg, provider, name, "application/x-coredump", NULL, 0, &a))) {
        fprintf(stderr, "vigil dump: cannot open artifact: %s\n", vg_strerror(rc));
        goto out;
    }
    rc = vg_coredump_write(pid, type, artifact_sink, a, &res, err, sizeof(err));
    if (rc) {
        const char *why = vg_artifact_error(a)[0] ? vg_artifact_error(a) : err;
        fprintf(stderr, "vigil dump: %s (%s)\n", why[0] ? why : vg_strerror(rc), vg_err_name(rc));
        vg_artifact_abort(a);
        goto out;
    }
    rc = vg_artifact_commit(a, &path, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vigil dump: upload failed: %s (%s)%s\n", err[0] ? err : vg_strerror(rc),
                vg_err_name(rc),
                rc == VG_ERETRY ? "; the upload stays spooled and `vigil run` or `vigil upload "
                                  "--resume` completes it"
                                : "");
        goto out;
    }
    printf("%s: %llu bytes, type %s, %u threads, freeze %llu us\n", path,
           (unsigned long long)res.bytes, vg_dump_type_name(type), res.threads,
           (unsigned long long)res.freeze_us);
    status = 0;
out:
    free(path);
    vg_egress_destroy(eg);
    vg_ruleset_destroy(rules);
    vg_config_destroy(cfg);
    return status;
}

static int cmd_dump(int argc, char **argv, struct vg_dirlist *dirsp)
{
    enum vg_dump_type type = VG_DUMP_WITH_HEAP;
    const char *out = NULL, *pid_arg = NULL, *egress = NULL, *state_dir = NULL;
    char defpath[64], err[512];
    struct vg_dump_result res;
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
    if (egress) {
        int st = dump_to_egress(pid, type, egress, dirsp, state_dir);
        return st;
    }
    if (dirsp->n || state_dir) {
        fprintf(stderr, "vigil dump: --config-dir and --state-dir go with --egress\n");
        return 2;
    }
    if (!out) {
        time_t now = time(NULL);
        struct tm tm;
        char stamp[32];
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
        snprintf(defpath, sizeof(defpath), "core_%s.%d", stamp, (int)pid);
        out = defpath;
    }
    int rc = vg_coredump_to_file(pid, type, out, &res, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vigil dump: %s (%s)\n", err[0] ? err : vg_strerror(rc), vg_err_name(rc));
        return 1;
    }
    printf("%s: %llu bytes, type %s, %u threads, %u segments, freeze %llu us, total %llu us\n", out,
           (unsigned long long)res.bytes, vg_dump_type_name(type), res.threads, res.segments,
           (unsigned long long)res.freeze_us, (unsigned long long)res.wall_us);
    return 0;
}

int vg_cmd_dump(int argc, char **argv)
{
    struct vg_dirlist dirs = {0};
    int st = cmd_dump(argc, argv, &dirs);
    vg_dirlist_free(&dirs);
    return st;
}
