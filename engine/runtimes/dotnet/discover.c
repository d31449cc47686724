/* Connect mode: where a runtime's default diagnostic socket is, as seen from vigil. See ipc.h. */
#include "engine/runtimes/dotnet/ipc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/error.h"
#include "config/util.h"

/* /proc files read here are small; environ is bounded so a huge environment cannot make us
 * allocate without limit (TMPDIR past the first 1 MiB is not looked for). */
#define ENVIRON_MAX (1u << 20)

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    size_t n = 0;
    int rc = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = errno == ESRCH ? VG_ESRCH : -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    if (len)
        *len = n;
    return rc;
}

/* Field 22 (starttime) of /proc/PID/stat: after the last ')' (comm may hold anything) field 3
 * starts, so starttime is the 20th field from there. */
static int read_start_time(const char *proc_root, pid_t pid, unsigned long long *out)
{
    char path[256], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int)pid);
    int rc = read_small(path, buf, sizeof(buf), NULL);
    if (rc < 0)
        return rc;
    char *p = strrchr(buf, ')');
    if (!p)
        return VG_EPARSE;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return VG_EPARSE;
        if (field == 22) {
            char *end;
            errno = 0;
            *out = strtoull(p, &end, 10);
            return errno || end == p ? VG_EPARSE : 0;
        }
        while (*p && *p != ' ')
            p++;
    }
    return VG_EPARSE;
}

/* The pid the process has in its own (innermost) pid namespace: the last NSpid value. */
static int read_nspid(const char *proc_root, pid_t pid, long *out)
{
    char path[256], buf[4096];
    snprintf(path, sizeof(path), "%s/%d/status", proc_root, (int)pid);
    int rc = read_small(path, buf, sizeof(buf), NULL);
    if (rc < 0)
        return rc;
    *out = pid;
    char *line = strstr(buf, "\nNSpid:");
    if (!line)
        return 0; /* kernel without NSpid: no namespaces to cross */
    char *p = line + 7, *end;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            break;
        long v = strtol(p, &end, 10);
        *out = v;
        p = end;
    }
    return 0;
}

/* The boottime offset of the process's time namespace, in clock ticks (the runtime reads its
 * start time through that namespace). 0 when there is none. */
static long long read_boottime_offset_ticks(const char *proc_root, pid_t pid)
{
    char path[256], buf[256];
    snprintf(path, sizeof(path), "%s/%d/timens_offsets", proc_root, (int)pid);
    if (read_small(path, buf, sizeof(buf), NULL) < 0)
        return 0;
    const char *p = strstr(buf, "boottime");
    long long sec = 0, nsec = 0;
    if (!p || sscanf(p, "boottime %lld %lld", &sec, &nsec) != 2)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    long long ns = sec * 1000000000LL + nsec;
    long long tick = 1000000000LL / hz;
    return ns >= 0 ? ns / tick : -((-ns + tick - 1) / tick);
}

/* TMPDIR from the initial environment, into out (unchanged when unset or empty). */
static void read_tmpdir(const char *proc_root, pid_t pid, char *out, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%d/environ", proc_root, (int)pid);
    char *buf = malloc(ENVIRON_MAX + 1);
    size_t len = 0;
    if (!buf)
        return;
    if (read_small(path, buf, ENVIRON_MAX + 1, &len) == 0) {
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
            if (strncmp(buf + i, "TMPDIR=", 7) == 0 && buf[i + 7]) {
                snprintf(out, n, "%s", buf + i + 7);
                break;
            }
        }
    }
    free(buf);
}

void vg_dnipc_tmpdir(const char *proc_root, pid_t pid, char *out, size_t n)
{
    snprintf(out, n, "/tmp");
    read_tmpdir(proc_root, pid, out, n);
    size_t l = strlen(out);
    while (l > 1 && out[l - 1] == '/')
        out[--l] = 0;
}

int vg_dnipc_find_socket(const char *proc_root, pid_t pid, char *out, size_t n,
                         const struct vg_dnipc_io *io)
{
    unsigned long long start;
    long nspid;
    int rc = read_start_time(proc_root, pid, &start);
    if (rc == 0)
        rc = read_nspid(proc_root, pid, &nspid);
    if (rc < 0) {
        vg__dnipc_seterr(io, "pid %d: cannot read %s/%d: %s", (int)pid, proc_root, (int)pid,
                         vg_strerror(rc));
        return rc;
    }
    char tmpdir[2048] = "/tmp";
    read_tmpdir(proc_root, pid, tmpdir, sizeof(tmpdir));
    size_t tl = strlen(tmpdir);
    while (tl > 1 && tmpdir[tl - 1] == '/')
        tmpdir[--tl] = 0;
    /* a relative TMPDIR is relative to the runtime's working directory */
    const char *base = tmpdir[0] == '/' ? "root" : "cwd";
    const char *sep = tmpdir[0] == '/' ? "" : "/";

    long long off = read_boottime_offset_ticks(proc_root, pid);
    /* With a time-namespace offset, the runtime rounded (start + offset) once; we hold both
     * rounded separately: the key is one of two neighbours. */
    unsigned long long keys[2] = {start + (unsigned long long)off,
                                  start + (unsigned long long)off + 1};
    size_t nkeys = off ? 2 : 1;
    int found = VG_ENOENT;
    for (size_t i = 0; i < nkeys; i++) {
        int len = snprintf(out, n, "%s/%d/%s%s%s/dotnet-diagnostic-%ld-%llu-socket", proc_root,
                           (int)pid, base, sep, tmpdir, nspid, keys[i]);
        if (len < 0 || (size_t)len >= n) {
            vg__dnipc_seterr(io, "pid %d: the socket path is too long", (int)pid);
            return VG_ENAMETOOLONG;
        }
        struct stat st;
        if (stat(out, &st) == 0) {
            if (S_ISSOCK(st.st_mode))
                return 0;
            found = VG_ENOENT;
        } else if (errno == EACCES) {
            found = VG_EACCES;
        }
    }
    if (found == VG_EACCES)
        vg__dnipc_seterr(io,
                         "pid %d: permission denied looking for its diagnostic socket under "
                         "%s/%d/%s (run vigil as root or as the process's user)",
                         (int)pid, proc_root, (int)pid, base);
    else
        vg__dnipc_seterr(io,
                         "pid %d: no diagnostic socket %s%s/dotnet-diagnostic-%ld-%llu-socket "
                         "(not a .NET process, DOTNET_EnableDiagnostics=0, or still starting)",
                         (int)pid, tmpdir[0] == '/' ? "" : "./", tmpdir, nspid, keys[0]);
    return found;
}
