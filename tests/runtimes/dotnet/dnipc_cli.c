/* Drives the .NET IPC layer (engine/runtimes/dotnet/ipc.h) from tests against real runtimes.
 *
 *   vg_dnipc_cli find PID
 *   vg_dnipc_cli info PID|@SOCKET
 *   vg_dnipc_cli dump PID|@SOCKET PATH TYPE
 *   vg_dnipc_cli getenv PID|@SOCKET NAME
 *   vg_dnipc_cli setenv PID|@SOCKET NAME VALUE
 *   vg_dnipc_cli resume PID|@SOCKET
 *   vg_dnipc_cli trace PID|@SOCKET OUT MS [PROVIDER [KEYWORDS [LEVEL [ARGS]]]]
 *   vg_dnipc_cli listen SOCKET [--exec CMD] [--no-resume] [--dump DIR TYPE] [--setenv N V]
 *                              [--getenv N] [--max N] [--delete] [--dump-after FILE]
 *
 * Output is KEY=VALUE lines (info uses NETCore.Client's property names so tests compare them
 * directly). listen prints one line per event, flushed, and runs until SIGTERM/SIGINT. Exit 0 on
 * success, 1 with the layer's message on stderr otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/error.h"
#include "config/log.h"
#include "engine/runtimes/dotnet/ipc.h"

static atomic_bool stop;
static char errbuf[1024];

static void on_signal(int sig)
{
    atomic_store(&stop, true);
}

static struct vg_dnipc_io io_with(int timeout_ms)
{
    errbuf[0] = 0;
    return (struct vg_dnipc_io){
        .timeout_ms = timeout_ms, .cancel = &stop, .err = errbuf, .errlen = sizeof(errbuf)};
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, errbuf[0] ? errbuf : vg_strerror(rc), vg_err_name(rc));
    return 1;
}

/* "PID" (connect mode through /proc) or "@PATH" (a socket path) */
static int target(const char *arg, struct vg_dnipc_endpoint *ep)
{
    if (arg[0] == '@') {
        vg_dnipc_endpoint_path(ep, arg + 1, NULL);
        return 0;
    }
    char path[4096], what[32];
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_find_socket("/proc", (pid_t)atoi(arg), path, sizeof(path), &io);
    if (rc < 0)
        return fail("find", rc);
    snprintf(what, sizeof(what), "pid %s", arg);
    vg_dnipc_endpoint_path(ep, path, what);
    return 0;
}

static void print_info(const char *prefix, const struct vg_dnipc_process_info *pi)
{
    char c[37];
    vg_dnipc_cookie_format(pi->cookie, c);
    printf("%sCommand=%u\n", prefix, pi->command);
    printf("%sProcessId=%" PRIu64 "\n", prefix, pi->pid);
    printf("%sRuntimeInstanceCookie=%s\n", prefix, c);
    printf("%sCommandLine=%s\n", prefix, pi->command_line);
    printf("%sOperatingSystem=%s\n", prefix, pi->os);
    printf("%sProcessArchitecture=%s\n", prefix, pi->arch);
    printf("%sManagedEntrypointAssemblyName=%s\n", prefix, pi->entry_assembly);
    printf("%sClrProductVersionString=%s\n", prefix, pi->clr_version);
    printf("%sPortableRuntimeIdentifier=%s\n", prefix, pi->rid);
    fflush(stdout);
}

static int cmd_info(const struct vg_dnipc_endpoint *ep)
{
    struct vg_dnipc_process_info pi;
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_process_info(ep, &io, &pi);
    if (rc < 0)
        return fail("info", rc);
    print_info("", &pi);
    vg_dnipc_process_info_free(&pi);
    return 0;
}

static int cmd_dump(const struct vg_dnipc_endpoint *ep, const char *path, const char *type)
{
    enum vg_dnipc_dump_type t;
    if (vg_dnipc_dump_type_parse(type, &t) < 0) {
        fprintf(stderr, "unknown dump type %s\n", type);
        return 2;
    }
    struct vg_dnipc_io io = io_with(300000);
    int rc = vg_dnipc_dump(ep, &io, path, t);
    if (rc < 0)
        return fail("dump", rc);
    printf("dumped=%s\n", path);
    return 0;
}

static int cmd_getenv(const struct vg_dnipc_endpoint *ep, const char *name)
{
    char *v = NULL;
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_get_env(ep, &io, name, &v);
    if (rc < 0)
        return fail("getenv", rc);
    printf("%s=%s\n", name, v);
    free(v);
    return 0;
}

static int cmd_setenv(const struct vg_dnipc_endpoint *ep, const char *name, const char *value)
{
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_set_env(ep, &io, name, value);
    if (rc < 0)
        return fail("setenv", rc);
    printf("set=%s\n", name);
    return 0;
}

static int cmd_resume(const struct vg_dnipc_endpoint *ep)
{
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_resume_runtime(ep, &io);
    if (rc < 0)
        return fail("resume", rc);
    printf("resumed=1\n");
    return 0;
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, ctx) == len ? 0 : VG_EIO;
}

struct pump_arg {
    int fd;
    FILE *f;
    uint64_t bytes;
    int rc;
};

static void *pump_thread(void *p)
{
    struct pump_arg *a = p;
    struct vg_dnipc_io io = {.timeout_ms = -1};
    a->rc = vg_dnipc_pump(a->fd, &io, file_sink, a->f, &a->bytes);
    return NULL;
}

/* Starts a session, lets it stream for `ms`, stops it and reads the stream to its end. */
static int cmd_trace(const struct vg_dnipc_endpoint *ep, int argc, char **argv)
{
    const char *out = argv[0];
    int ms = atoi(argv[1]);
    struct vg_dnipc_provider prov = {
        .name = argc > 2 ? argv[2] : "Microsoft-Windows-DotNETRuntime",
        .keywords = argc > 3 ? strtoull(argv[3], NULL, 0) : 0x1, /* GC */
        .level = argc > 4 ? (uint32_t)atoi(argv[4]) : 4,
        .arguments = argc > 5 ? argv[5] : NULL,
    };
    struct vg_dnipc_trace_config cfg = {.buffer_mb = 16, .providers = &prov, .n_providers = 1};
    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    uint64_t sid = 0;
    int fd = -1;
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_collect_tracing(ep, &io, &cfg, &sid, &fd);
    if (rc < 0) {
        fclose(f);
        return fail("collect", rc);
    }
    printf("session=%" PRIu64 "\n", sid);
    fflush(stdout);
    struct pump_arg a = {.fd = fd, .f = f};
    pthread_t th;
    pthread_create(&th, NULL, pump_thread, &a);
    usleep((useconds_t)ms * 1000);
    io = io_with(5000);
    rc = vg_dnipc_stop_tracing(ep, &io, sid);
    if (rc < 0)
        fail("stop", rc);
    pthread_join(th, NULL);
    close(fd);
    fclose(f);
    if (rc < 0)
        return 1;
    if (a.rc < 0) {
        fprintf(stderr, "stream: %s\n", vg_strerror(a.rc));
        return 1;
    }
    printf("bytes=%" PRIu64 "\n", a.bytes);
    return 0;
}

/* ---- listen mode ----------------------------------------------------------------------------- */

struct listen_opts {
    const char *exec;
    bool no_resume;
    const char *dump_dir, *dump_type, *dump_after;
    const char *setenv_name, *setenv_value, *getenv_name;
};

struct listen_ctx {
    struct vg_dnipc_server *srv;
    struct listen_opts o;
};

struct job {
    struct listen_ctx *lc;
    struct vg_dnipc_runtime rt;
};

/* What vigil's daemon will do for a new runtime: learn about it, run what must run before the
 * app goes on, resume it, then act on it. */
static void *handle_runtime(void *p)
{
    struct job *j = p;
    struct listen_ctx *lc = j->lc;
    char c[37], what[64];
    vg_dnipc_cookie_format(j->rt.cookie, c);
    snprintf(what, sizeof(what), "runtime pid %" PRIu64, j->rt.pid);
    struct vg_dnipc_endpoint ep;
    vg_dnipc_server_endpoint(&ep, lc->srv, j->rt.cookie, what);
    struct vg_dnipc_process_info pi;
    struct vg_dnipc_io io = io_with(5000);
    int rc = vg_dnipc_process_info(&ep, &io, &pi);
    if (rc < 0) {
        fail("info", rc);
    } else {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "info %s ", c);
        print_info(prefix, &pi);
        vg_dnipc_process_info_free(&pi);
    }
    if (lc->o.exec) {
        char env[64];
        snprintf(env, sizeof(env), "%" PRIu64, j->rt.pid);
        setenv("VG_RUNTIME_PID", env, 1);
        int st = system(lc->o.exec);
        printf("exec %s status=%d\n", c, st);
        fflush(stdout);
    }
    if (lc->o.setenv_name) {
        io = io_with(5000);
        rc = vg_dnipc_set_env(&ep, &io, lc->o.setenv_name, lc->o.setenv_value);
        printf("setenv %s rc=%d\n", c, rc);
        fflush(stdout);
    }
    if (!lc->o.no_resume) {
        io = io_with(5000);
        rc = vg_dnipc_resume_runtime(&ep, &io);
        if (rc < 0)
            fail("resume", rc);
        printf("resumed %s rc=%d\n", c, rc);
        fflush(stdout);
    }
    if (lc->o.getenv_name) {
        char *v = NULL;
        io = io_with(5000);
        rc = vg_dnipc_get_env(&ep, &io, lc->o.getenv_name, &v);
        printf("getenv %s %s=%s rc=%d\n", c, lc->o.getenv_name, v ? v : "", rc);
        fflush(stdout);
        free(v);
    }
    /* a dump right after the resume would catch the CLR before it is initialised: wait for the
       test to say the app is up */
    for (int i = 0; lc->o.dump_dir && lc->o.dump_after && i < 600 && !atomic_load(&stop); i++) {
        if (access(lc->o.dump_after, F_OK) == 0)
            break;
        usleep(100000);
    }
    if (lc->o.dump_dir) {
        char path[4096];
        enum vg_dnipc_dump_type t = VG_DNIPC_DUMP_WITH_HEAP;
        vg_dnipc_dump_type_parse(lc->o.dump_type, &t);
        snprintf(path, sizeof(path), "%s/dump.%" PRIu64, lc->o.dump_dir, j->rt.pid);
        io = io_with(300000);
        rc = vg_dnipc_dump(&ep, &io, path, t);
        if (rc < 0)
            fail("dump", rc);
        printf("dumped %s %s rc=%d\n", c, path, rc);
        fflush(stdout);
    }
    free(j);
    return NULL;
}

static void on_added(void *ctx, const struct vg_dnipc_runtime *rt)
{
    struct listen_ctx *lc = ctx;
    char c[37];
    vg_dnipc_cookie_format(rt->cookie, c);
    printf("added %s pid=%" PRIu64 " host_pid=%d uid=%u\n", c, rt->pid, (int)rt->host_pid,
           (unsigned)rt->uid);
    fflush(stdout);
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return;
    j->lc = lc;
    j->rt = *rt;
    pthread_t th;
    if (pthread_create(&th, NULL, handle_runtime, j) == 0)
        pthread_detach(th);
    else
        free(j);
}

static void on_removed(void *ctx, const struct vg_dnipc_runtime *rt)
{
    char c[37];
    vg_dnipc_cookie_format(rt->cookie, c);
    printf("removed %s pid=%" PRIu64 "\n", c, rt->pid);
    fflush(stdout);
}

static int cmd_listen(int argc, char **argv)
{
    struct listen_ctx lc = {0};
    struct vg_dnipc_server_opts so = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--exec") && i + 1 < argc)
            lc.o.exec = argv[++i];
        else if (!strcmp(argv[i], "--no-resume"))
            lc.o.no_resume = true;
        else if (!strcmp(argv[i], "--dump") && i + 2 < argc) {
            lc.o.dump_dir = argv[++i];
            lc.o.dump_type = argv[++i];
        } else if (!strcmp(argv[i], "--setenv") && i + 2 < argc) {
            lc.o.setenv_name = argv[++i];
            lc.o.setenv_value = argv[++i];
        } else if (!strcmp(argv[i], "--getenv") && i + 1 < argc)
            lc.o.getenv_name = argv[++i];
        else if (!strcmp(argv[i], "--max") && i + 1 < argc)
            so.max_connections = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump-after") && i + 1 < argc)
            lc.o.dump_after = argv[++i];
        else if (!strcmp(argv[i], "--delete"))
            so.delete_existing = true;
        else {
            fprintf(stderr, "listen: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char err[512] = "";
    int rc = vg_dnipc_server_open(argv[0], &so, &lc.srv, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "listen: %s (%s)\n", err, vg_err_name(rc));
        return 1;
    }
    printf("listening %s\n", argv[0]);
    fflush(stdout);
    struct vg_dnipc_server_cbs cbs = {on_added, on_removed, &lc};
    rc = vg_dnipc_server_serve(lc.srv, &cbs, &stop);
    vg_dnipc_server_destroy(lc.srv);
    printf("stopped rc=%d\n", rc);
    return rc < 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vg_log_level = VG_LOG_DEBUG;
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of dnipc_cli.c\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "listen"))
        return cmd_listen(argc - 2, argv + 2);
    if (!strcmp(cmd, "find")) {
        char path[4096];
        struct vg_dnipc_io io = io_with(1000);
        int rc = vg_dnipc_find_socket("/proc", (pid_t)atoi(argv[2]), path, sizeof(path), &io);
        if (rc < 0)
            return fail("find", rc);
        printf("socket=%s\n", path);
        return 0;
    }
    struct vg_dnipc_endpoint ep;
    if (target(argv[2], &ep) != 0)
        return 1;
    if (!strcmp(cmd, "info"))
        return cmd_info(&ep);
    if (!strcmp(cmd, "dump") && argc == 5)
        return cmd_dump(&ep, argv[3], argv[4]);
    if (!strcmp(cmd, "getenv") && argc == 4)
        return cmd_getenv(&ep, argv[3]);
    if (!strcmp(cmd, "setenv") && argc == 5)
        return cmd_setenv(&ep, argv[3], argv[4]);
    if (!strcmp(cmd, "resume"))
        return cmd_resume(&ep);
    if (!strcmp(cmd, "trace") && argc >= 5)
        return cmd_trace(&ep, argc - 3, argv + 3);
    fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
    return 2;
}
