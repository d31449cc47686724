/* Test driver for the JVM protocol layer (engine/runtimes/jvm): every call the tests make to a
 * real JVM goes through here, so the tests exercise exactly the library code.
 *
 *   vg_jvm_cli perf PID                        counters as "name=value" (jcmd PerfCounter.print's
 * form) vg_jvm_cli jcmd PID LINE                   a diagnostic command's output to stdout
 *   vg_jvm_cli threads PID OUT                 Thread.print -l into OUT
 *   vg_jvm_cli heapdump PID OUT [--all]        GC.heap_dump into OUT
 *   vg_jvm_cli jfr PID OUT SECONDS [SETTINGS]  a JFR recording into OUT
 * Options (before the command): --dir D (scratch directory in the JVM's view), --limit BYTES (the
 * sink fails with VG_EQUOTA past it), --cancel-after MS, --attach-timeout MS, --command-timeout MS.
 * Errors print "error: VG_NAME: message" on stderr and exit 1. OUT is created with O_EXCL. */
#include "config/error.h"
#include "engine/runtimes/jvm/attach.h"
#include "engine/runtimes/jvm/perfdata.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct out {
    int fd;
    uint64_t written, limit;
};

static int sink(void *ctx, const void *buf, size_t len)
{
    struct out *o = ctx;
    if (o->limit && o->written + len > o->limit)
        return VG_EQUOTA;
    const char *p = buf;
    while (len) {
        ssize_t n = write(o->fd, p, len);
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        o->written += (uint64_t)n;
    }
    return 0;
}

static atomic_bool cancel_flag;
static unsigned cancel_after_ms;

static void *canceller(void *arg)
{
    struct timespec ts = {.tv_sec = cancel_after_ms / 1000,
                          .tv_nsec = (long)(cancel_after_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&cancel_flag, true);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: vg_jvm_cli [--dir D] [--limit BYTES] [--cancel-after MS] "
                    "[--attach-timeout MS] [--command-timeout MS] "
                    "perf|jcmd|threads|heapdump|jfr PID ...\n");
    return 2;
}

static int print_perf(const struct vg_jvm_target *t)
{
    char err[512];
    struct vg_perfdata_file *f;
    struct vg_perfdata *pd;
    int rc = vg_perfdata_open(t, &f, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "error: %s: %s\n", vg_err_name(rc), err);
        return 1;
    }
    rc = vg_perfdata_sample(f, &pd);
    if (rc < 0) {
        fprintf(stderr, "error: %s: sampling %s of pid %d\n", vg_err_name(rc),
                vg_perfdata_file_path(f), t->pid);
        vg_perfdata_close(f);
        return 1;
    }
    printf("# file=%s entries=%zu used=%" PRIu32 "\n", vg_perfdata_file_path(f), pd->n, pd->used);
    for (size_t i = 0; i < pd->n; i++) {
        const struct vg_perfdata_entry *e = &pd->entries[i];
        if (e->is_string)
            printf("%s=\"%s\"\n", e->name, e->str);
        else
            printf("%s=%" PRId64 "\n", e->name, e->value);
        printf("#meta %s units=%u variability=%u supported=%d\n", e->name, e->units, e->variability,
               e->supported);
    }
    vg_perfdata_destroy(pd);
    vg_perfdata_close(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    struct out o = {.fd = -1};
    struct vg_jvm_attach_opts opts = {.cancel = &cancel_flag};
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--limit") == 0)
            o.limit = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--cancel-after") == 0)
            cancel_after_ms = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--attach-timeout") == 0)
            opts.attach_timeout_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--command-timeout") == 0)
            opts.command_timeout_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (argc - i < 2)
        return usage();
    const char *cmd = argv[i];
    int pid = atoi(argv[i + 1]);
    char **rest = argv + i + 2;
    int nrest = argc - i - 2;

    struct vg_jvm_target t;
    int rc = vg_jvm_target_read(NULL, pid, &t);
    if (rc < 0) {
        fprintf(stderr, "error: %s: reading /proc/%d\n", vg_err_name(rc), pid);
        return 1;
    }
    if (strcmp(cmd, "perf") == 0)
        return print_perf(&t);

    if (cancel_after_ms) {
        pthread_t th;
        pthread_create(&th, NULL, canceller, NULL);
        pthread_detach(th);
    }
    char err[1024] = "";
    struct vg_jvm_file_result res = {0};
    if (strcmp(cmd, "jcmd") == 0 && nrest == 1) {
        o.fd = 1;
        rc = vg_jvm_jcmd(&t, &opts, rest[0], sink, &o, NULL, 0, err, sizeof(err));
    } else if (nrest >= 1 && (strcmp(cmd, "threads") == 0 || strcmp(cmd, "heapdump") == 0 ||
                              strcmp(cmd, "jfr") == 0)) {
        o.fd = open(rest[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (o.fd < 0) {
            perror(rest[0]);
            return 1;
        }
        if (strcmp(cmd, "threads") == 0)
            rc = vg_jvm_thread_print(&t, &opts, true, sink, &o, err, sizeof(err));
        else if (strcmp(cmd, "heapdump") == 0)
            rc = vg_jvm_heap_dump(&t, &opts, dir, nrest > 1 && strcmp(rest[1], "--all") == 0, sink,
                                  &o, &res, err, sizeof(err));
        else if (nrest >= 2)
            rc = vg_jvm_jfr_record(&t, &opts, nrest > 2 ? rest[2] : NULL,
                                   strtoull(rest[1], NULL, 10) * 1000, dir, sink, &o, &res, err,
                                   sizeof(err));
        else
            return usage();
        close(o.fd);
    } else {
        return usage();
    }
    if (rc < 0) {
        fprintf(stderr, "error: %s: %s\n", vg_err_name(rc), err);
        return 1;
    }
    fprintf(stderr, "ok: %" PRIu64 " bytes\n", o.written);
    return 0;
}
