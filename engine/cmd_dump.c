/* `vigil dump`: a core of a running process to a file. Other destinations (egress) plug in as a
 * vg_dump_write_cb sink handed to vg_coredump_write(). */
#include "engine/cmd_dump.h"
#include "engine/coredump.h"
#include "config/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vigil dump PID [--type Full|WithHeap|Mini|Triage] [-o FILE]\n"
            "  --type T   what to include (default WithHeap: the process's coredump_filter)\n"
            "  -o FILE    output path (default ./core_YYYYMMDD_HHMMSS.PID); never overwritten\n");
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

int vg_cmd_dump(int argc, char **argv)
{
    enum vg_dump_type type = VG_DUMP_WITH_HEAP;
    const char *out = NULL, *pid_arg = NULL;
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
