/* The .NET adapter. Today: detection (the dotnet host, libcoreclr.so, or the runtime's diagnostic
 * socket for single-file apps that map no libcoreclr.so). The diagnostic-port protocol, sessions
 * and actions come with engine/runtimes/dotnet/. */
#include "engine/runtimes/runtime.h"

#include "engine/host/proc.h"
#include "engine/host/procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const exe_names[] = {"dotnet", NULL};
static const char *const map_markers[] = {"/libcoreclr.so", NULL};

/* The runtime listens on $TMPDIR/dotnet-diagnostic-{pid}-{start ticks}-socket, {pid} as seen in
 * its own PID namespace, reachable through its root. */
static bool has_socket(const struct vg_proc *p, const char *tmpdir)
{
    char rel[512];
    struct stat sb;
    snprintf(rel, sizeof(rel), "%d/root%s/dotnet-diagnostic-%d-%llu-socket", p->pid, tmpdir,
             p->ns_pid, (unsigned long long)p->start_ticks);
    return fstatat(vg_proc_table_root_fd(p->table), rel, &sb, 0) == 0 && S_ISSOCK(sb.st_mode);
}

/* TMPDIR from the process's environment, or "" when unset (bounded read). */
static void env_tmpdir(const struct vg_proc *p, char *out, size_t n)
{
    char buf[32768], rel[32];
    out[0] = '\0';
    snprintf(rel, sizeof(rel), "%d/environ", p->pid);
    ssize_t len = vg_procfs_read(vg_proc_table_root_fd(p->table), rel, buf, sizeof(buf));
    for (ssize_t i = 0; i < len;) {
        const char *e = buf + i;
        size_t el = strnlen(e, (size_t)(len - i));
        if (el > 7 && memcmp(e, "TMPDIR=", 7) == 0 && e[7] == '/') {
            snprintf(out, n, "%.*s", (int)(el - 7), e + 7);
            while (strlen(out) > 1 && out[strlen(out) - 1] == '/')
                out[strlen(out) - 1] = '\0';
            return;
        }
        i += (ssize_t)el + 1;
    }
}

static enum vg_rt_detect dotnet_detect(const struct vg_proc *p, bool marked, void **data)
{
    if (marked || has_socket(p, "/tmp"))
        return VG_RT_YES;
    char tmp[256];
    env_tmpdir(p, tmp, sizeof(tmp));
    return tmp[0] && strcmp(tmp, "/tmp") != 0 && has_socket(p, tmp) ? VG_RT_YES : VG_RT_NO;
}

const struct vg_runtime_type vg_runtime_dotnet = {
    .name = "dotnet",
    .display = ".NET",
    .exe_names = exe_names,
    .map_markers = map_markers,
    .detect = dotnet_detect,
};
