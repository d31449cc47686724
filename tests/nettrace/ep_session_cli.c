/* ep_session_cli: one EventPipe session through vg_ep_session_run, for the session tests.
 *   ep_session_cli PID [--duration MS] [--provider NAME:KEYWORDS:LEVEL[:ARGS]]... [--out FILE]
 * Prints "counter PROVIDER NAME VALUE" for every EventCounters event as it arrives, then
 * "result rc=NAME stopped=0|1 complete=0|1 bytes=N events=N" and the error, if any. SIGTERM or
 * SIGINT stops the session (StopTracing). Default provider: System.Runtime counters every second.
 * Exit status: 0 when rc is 0, 3 for VG_EEXITED, 1 otherwise, 2 usage. */
#include "config/error.h"
#include "engine/runtimes/dotnet/eventpipe.h"
#include "engine/runtimes/dotnet/nettrace_events.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool stop;

static void on_signal(int sig)
{
    atomic_store(&stop, true);
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    m->tag = vg_ep_classify(m) == VG_EP_COUNTER;
    return 0;
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct vg_ep_counter c;
    if (vg_ep_counter_decode(ev, &c) == 0) {
        printf("counter %s %s %.17g\n", c.provider, c.name, c.value);
        fflush(stdout);
    }
    return 0;
}

static int file_write(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, ctx) == len ? 0 : VG_EIO;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    int pid = atoi(argv[1]);
    struct vg_dnipc_provider prov[8];
    size_t np = 0;
    struct vg_ep_session_config cfg = {.buffer_mb = 16};
    FILE *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
            cfg.duration_ms = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            if (!(out = fopen(argv[++i], "wb"))) {
                perror(argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--provider") && i + 1 < argc && np < 8) {
            /* NAME:KEYWORDS:LEVEL[:ARGS] (ARGS may hold ':') */
            char *s = argv[++i], *k = strchr(s, ':'), *l = k ? strchr(k + 1, ':') : NULL;
            if (!k || !l)
                goto usage;
            *k = *l = '\0';
            char *a = strchr(l + 1, ':');
            if (a)
                *a++ = '\0';
            prov[np++] =
                (struct vg_dnipc_provider){s, strtoull(k + 1, NULL, 0), (uint32_t)atoi(l + 1), a};
        } else {
            goto usage;
        }
    }
    if (!np)
        prov[np++] =
            (struct vg_dnipc_provider){"System.Runtime", 0, 4, "EventCounterIntervalSec=1"};
    cfg.providers = prov;
    cfg.n_providers = np;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char err[512] = "", path[4096];
    struct vg_dnipc_io io = {.timeout_ms = 5000, .err = err, .errlen = sizeof err};
    struct vg_dnipc_endpoint ep;
    int rc = vg_dnipc_find_socket("/proc", pid, path, sizeof path, &io);
    struct vg_ep_session_result res = {0};
    if (rc == 0) {
        char what[32];
        snprintf(what, sizeof what, "pid %d", pid);
        vg_dnipc_endpoint_path(&ep, path, what);
        struct vg_nettrace_callbacks cb = {.metadata = on_meta, .event = on_event};
        rc = vg_ep_session_run(&ep, &cfg, &cb, out ? file_write : NULL, out, &stop, &res, err,
                               sizeof err);
    }
    if (out && fclose(out) != 0 && rc == 0)
        rc = VG_EIO;
    printf("result rc=%s stopped=%d complete=%d bytes=%" PRIu64 " events=%" PRIu64 "\n",
           rc ? vg_err_name(rc) : "0", res.stopped, res.complete, res.bytes, res.stats.events);
    if (err[0])
        printf("error %s\n", err);
    return rc == 0 ? 0 : rc == VG_EEXITED ? 3 : 1;
usage:
    fprintf(stderr, "usage: ep_session_cli PID [--duration MS] "
                    "[--provider NAME:KEYWORDS:LEVEL[:ARGS]]... [--out FILE]\n");
    return 2;
}
