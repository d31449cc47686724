/* Test driver for engine/runtimes/node: runs one collection against a real node process and
 * prints one JSON line with the outcome. The artifact is written to OUT.partial and renamed to
 * OUT only when the collection succeeded, so a test can tell a claimed artifact from a partial.
 *
 *   node_probe [--proc-root R] [--allow-activation] [--timeout-ms N] [--idle-ms N]
 *              [--activation-ms N] [--cancel-after-ms N] CMD PID [ARGS]
 *   CMD: detect | find | usage | snapshot OUT | profile MS OUT | report OUT | signal OUT
 */
#include "config/error.h"
#include "engine/runtimes/node/collect.h"
#include "engine/runtimes/node/detect.h"
#include "engine/runtimes/node/inspector.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_bool cancel_flag;
static unsigned cancel_after_ms;

static void *canceller(void *arg)
{
    (void)arg;
    struct timespec ts = {cancel_after_ms / 1000, (long)(cancel_after_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&cancel_flag, true);
    return NULL;
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, ctx) == len ? 0 : VG_EIO;
}

static void report(json_t *o, int rc, const char *err)
{
    json_object_set_new(o, "ok", json_boolean(rc == 0));
    if (rc < 0) {
        json_object_set_new(o, "error", json_string(vg_err_name(rc)));
        json_object_set_new(o, "message", json_string(err));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

static int usage(void)
{
    fprintf(stderr, "usage: node_probe [options] detect|find|usage|snapshot|profile|report|signal "
                    "PID [ARGS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct vg_node_collect_opts o = {0};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--allow-activation") == 0)
            o.allow_activation = true;
        else if (i + 1 < argc && strcmp(argv[i], "--proc-root") == 0)
            o.proc_root = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--timeout-ms") == 0)
            o.timeout_ms = (uint32_t)atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--idle-ms") == 0)
            o.idle_ms = (uint32_t)atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--activation-ms") == 0)
            o.activation_ms = (uint32_t)atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--cancel-after-ms") == 0)
            cancel_after_ms = (unsigned)atol(argv[++i]);
        else
            return usage();
    }
    if (argc - i < 2)
        return usage();
    const char *cmd = argv[i];
    int pid = atoi(argv[i + 1]);
    char **rest = argv + i + 2;
    int nrest = argc - i - 2;
    char err[VG_NODE_ERR_MAX] = "";
    json_t *out = json_object();
    int rc = 0;
    o.cancel = &cancel_flag;
    if (cancel_after_ms) {
        pthread_t t;
        pthread_create(&t, NULL, canceller, NULL);
        pthread_detach(t);
    }

    if (strcmp(cmd, "detect") == 0) {
        struct vg_node_options no;
        rc = vg_node_detect(o.proc_root, pid, &no);
        json_object_set_new(out, "node", json_boolean(rc == 1));
        if (rc == 1)
            json_object_set_new(out, "options",
                                json_pack("{sbsssisisissss}", "inspect", no.inspect, "inspect_host",
                                          no.inspect_host, "inspect_port", no.inspect_port,
                                          "heapsnapshot_signal", no.heapsnapshot_signal,
                                          "report_signal", no.report_signal, "diagnostic_dir",
                                          no.diagnostic_dir, "report_dir", no.report_dir));
        snprintf(err, sizeof(err), "%s", rc < 0 ? vg_strerror(rc) : "");
        report(out, rc < 0 ? rc : 0, err);
        return rc < 0;
    }
    if (strcmp(cmd, "find") == 0) {
        struct vg_node_options no;
        struct vg_node_endpoint ep;
        struct vg_cdp_opts copts = {0, 0, &cancel_flag};
        rc = vg_node_detect(o.proc_root, pid, &no);
        if (rc == 1)
            rc = vg_node_inspector_find(o.proc_root, pid, &no, &copts, &ep, err, sizeof(err));
        else if (rc == 0)
            rc = VG_ENOTFOUND;
        if (rc == 0)
            json_object_set_new(
                out, "endpoint",
                json_pack("{sssiss}", "host", ep.addr.host, "port", ep.addr.port, "path", ep.path));
        report(out, rc, err);
        return rc < 0;
    }

    const char *dest = NULL;
    uint32_t duration = 0;
    if (strcmp(cmd, "snapshot") == 0 || strcmp(cmd, "report") == 0 || strcmp(cmd, "signal") == 0) {
        if (nrest < 1)
            return usage();
        dest = rest[0];
    } else if (strcmp(cmd, "profile") == 0) {
        if (nrest < 2)
            return usage();
        duration = (uint32_t)atol(rest[0]);
        dest = rest[1];
    } else if (strcmp(cmd, "usage") != 0) {
        return usage();
    }
    char partial[4096];
    FILE *f = NULL;
    if (dest) {
        snprintf(partial, sizeof(partial), "%s.partial", dest);
        f = fopen(partial, "w");
        if (!f) {
            perror(partial);
            return 2;
        }
    }
    uint64_t bytes = 0;
    if (strcmp(cmd, "signal") == 0) {
        rc = vg_node_snapshot_by_signal(pid, &o, file_sink, f, &bytes, err, sizeof(err));
    } else {
        struct vg_node_session *s = NULL;
        rc = vg_node_session_open(pid, &o, &s, err, sizeof(err));
        if (rc == 0 && strcmp(cmd, "usage") == 0) {
            uint64_t used = 0, total = 0;
            rc = vg_node_heap_usage(s, &used, &total, err, sizeof(err));
            json_object_set_new(out, "used", json_integer((json_int_t)used));
            json_object_set_new(out, "total", json_integer((json_int_t)total));
        } else if (rc == 0 && strcmp(cmd, "snapshot") == 0) {
            rc = vg_node_heap_snapshot(s, file_sink, f, &bytes, err, sizeof(err));
        } else if (rc == 0 && strcmp(cmd, "profile") == 0) {
            rc = vg_node_cpu_profile(s, duration, file_sink, f, &bytes, err, sizeof(err));
        } else if (rc == 0 && strcmp(cmd, "report") == 0) {
            rc = vg_node_report(s, file_sink, f, &bytes, err, sizeof(err));
        }
        if (s) {
            uint64_t exposure = 0;
            char cerr[VG_NODE_ERR_MAX] = "";
            int crc = vg_node_session_close(s, &exposure, cerr, sizeof(cerr));
            json_object_set_new(out, "exposure_ms", json_integer((json_int_t)exposure));
            if (crc < 0)
                json_object_set_new(out, "close_error", json_string(cerr));
            if (rc == 0 && crc < 0) {
                rc = crc;
                snprintf(err, sizeof(err), "%s", cerr);
            }
        }
    }
    json_object_set_new(out, "bytes", json_integer((json_int_t)bytes));
    if (f) {
        if (fclose(f) != 0 && rc == 0)
            rc = VG_EIO;
        if (rc == 0 && rename(partial, dest) < 0)
            rc = VG_EIO;
    }
    report(out, rc, err);
    return rc < 0;
}
