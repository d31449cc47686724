/* `vigil crash --install / --uninstall`, and the hand-off of a crash no rule wants to the core
 * handler that was configured before vigil (systemd-coredump, apport, a plain "core" file).
 *
 * core_pattern and core_pipe_limit are machine-wide: --install records what it replaces in
 * STATE_DIR/core_pattern.saved before it writes anything, writes core_pipe_limit first (so the
 * kernel waits for the handler and /proc/PID stays readable) and core_pattern last, and reads
 * both back; --uninstall restores them only while core_pattern is still the one it wrote. */
#include "engine/cli/crash_int.h"

#include "config/defaults.h"
#include "config/error.h"
#include "config/util.h"
#include "engine/host/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORE_PATTERN "/proc/sys/kernel/core_pattern"
#define CORE_PIPE_LIMIT "/proc/sys/kernel/core_pipe_limit"
#define CORE_USES_PID "/proc/sys/kernel/core_uses_pid"
/* the kernel's CORENAME_MAX_SIZE, terminating NUL included: a longer pattern is cut */
#define PATTERN_MAX 127
/* serializes two installs on this machine, whatever their state directories */
#define INSTALL_LOCK "/run/lock/vigil-crash-install.lock"

/* The first line of a /proc/sys file. */
static int read_line(const char *path, char *buf, size_t n)
{
    ssize_t len = vg_procfs_read(AT_FDCWD, path, buf, n);
    if (len < 0)
        return (int)len;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int write_line(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    return (size_t)n == len ? 0 : VG_EIO;
}

/* ---- the record ---- */

void vg__crash_record_free(struct vg_crash_record *r)
{
    if (!r)
        return;
    free(r->previous);
    free(r->installed);
    memset(r, 0, sizeof(*r));
}

int vg__crash_record_read(const char *state_dir, struct vg_crash_record *r)
{
    memset(r, 0, sizeof(*r));
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%s", state_dir, VG_CRASH_RECORD);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? VG_ENOENT : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return VG_EIO;
    buf[n] = '\0';
    bool have_prev = false;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(line, "previous_core_pattern") == 0) {
            free(r->previous);
            r->previous = vg_strdup(v);
            have_prev = true;
        } else if (strcmp(line, "previous_core_pipe_limit") == 0) {
            r->previous_pipe_limit = strtol(v, NULL, 10);
        } else if (strcmp(line, "fallback") == 0) {
            r->fallback = strcmp(v, "previous") == 0;
        } else if (strcmp(line, "installed_core_pattern") == 0) {
            free(r->installed);
            r->installed = vg_strdup(v);
        }
    }
    if (!have_prev || !r->previous || !r->installed) {
        vg__crash_record_free(r);
        return VG_EPARSE;
    }
    return 0;
}

static int record_write(const char *state_dir, const struct vg_crash_record *r, char *err,
                        size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/%s", state_dir, VG_CRASH_RECORD);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %.300s: %s", tmp, strerror(errno));
        return -errno;
    }
    char *text = vg_asprintf("# vigil crash --install replaced these; --uninstall restores them\n"
                             "previous_core_pattern=%s\nprevious_core_pipe_limit=%ld\n"
                             "fallback=%s\ninstalled_core_pattern=%s\n",
                             r->previous, r->previous_pipe_limit, r->fallback ? "previous" : "none",
                             r->installed);
    int rc = text ? 0 : VG_ENOMEM;
    if (!rc && (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) != 0))
        rc = VG_EIO;
    free(text);
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %.300s: %s", path, vg_strerror(rc));
    }
    return rc;
}

/* ---- specifiers ---- */

/* What vigil crash receives, so what it can hand over: the kernel's other specifiers (%f, %F)
 * cannot be passed on. */
static const char handed[] = VG_CRASH_FACT_CHARS "eE%";

/* The first specifier of pattern that a hand-off cannot fill, or 0. */
static char unknown_specifier(const char *pattern)
{
    for (const char *p = pattern; *p; p++)
        if (*p == '%' && p[1]) {
            if (!strchr(handed, p[1]))
                return p[1];
            p++;
        }
    return 0;
}

static char *expand(const char *tmpl, const struct vg_crash_spec *s)
{
    struct vg_buf b;
    vg_buf_init(&b);
    for (const char *p = tmpl; *p; p++) {
        if (*p != '%') {
            vg_buf_append(&b, p, 1);
            continue;
        }
        if (!p[1])
            break; /* a trailing % is dropped, as the kernel does */
        p++;
        if (*p == '%')
            vg_buf_append(&b, "%", 1);
        else if (s->v[(unsigned char)*p & 127])
            vg_buf_puts(&b, s->v[(unsigned char)*p & 127]);
    }
    return vg_buf_steal(&b);
}

/* ---- hand-off ---- */

static int handoff_pipe(const char *pattern, const struct vg_crash_spec *s, char *err,
                        size_t errlen)
{
    char *copy = vg_strdup(pattern + 1);
    char *argv[64];
    size_t argc = 0;
    if (!copy)
        return VG_ENOMEM;
    /* split at spaces first, then expand each word: what the kernel does since Linux 5.3 */
    for (char *w = strtok(copy, " "); w && argc < VG_ARRAY_SIZE(argv) - 1; w = strtok(NULL, " "))
        if (!(argv[argc++] = expand(w, s))) {
            free(copy);
            return VG_ENOMEM;
        }
    argv[argc] = NULL;
    free(copy);
    if (!argc) {
        snprintf(err, errlen, "the previous core_pattern \"%s\" names no program", pattern);
        return VG_EINVAL;
    }
    /* the kernel's environment for core handlers; stdin (the core) goes along as it is */
    char *envp[] = {"HOME=/", "TERM=linux", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", NULL};
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    execve(argv[0], argv, envp);
    int e = errno;
    snprintf(err, errlen, "cannot run the previous core handler %s: %s", argv[0], strerror(e));
    for (size_t i = 0; i < argc; i++)
        free(argv[i]);
    return -e;
}

static int handoff_file(const char *pattern, const struct vg_crash_spec *s, const char *proc_root,
                        char *err, size_t errlen)
{
    const char *limit_s = s->v['c'] ? s->v['c'] : "0";
    unsigned long long limit = strtoull(limit_s, NULL, 10);
    if (limit < 4096) /* the kernel writes no core file below a page of RLIMIT_CORE */
        return 0;
    if (s->v['d'] && strcmp(s->v['d'], "2") == 0 && pattern[0] != '/')
        return 0; /* suid_dumpable=2 cores only go to absolute paths */
    char *path = expand(pattern, s);
    char uses_pid[8] = "0";
    if (!path)
        return VG_ENOMEM;
    if (read_line(CORE_USES_PID, uses_pid, sizeof(uses_pid)) == 0 && atoi(uses_pid) &&
        !strstr(pattern, "%p") && s->v['p']) {
        char *with = vg_asprintf("%s.%s", path, s->v['p']);
        free(path);
        if (!(path = with))
            return VG_ENOMEM;
    }
    char cwd[64];
    snprintf(cwd, sizeof(cwd), "%s/%s/cwd", proc_root, s->v['P'] ? s->v['P'] : "0");
    int dfd = path[0] == '/' ? AT_FDCWD : open(cwd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && dfd != AT_FDCWD) {
        snprintf(err, errlen, "cannot write the core file %s: the crashed process's cwd: %s", path,
                 strerror(errno));
        free(path);
        return VG_ESRCH;
    }
    /* created as the crashed process's user, as the kernel does: never where it could not */
    uid_t uid = (uid_t)strtoul(s->v['u'] ? s->v['u'] : "0", NULL, 10);
    gid_t gid = (gid_t)strtoul(s->v['g'] ? s->v['g'] : "0", NULL, 10);
    setfsgid(gid);
    setfsuid(uid);
    int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = errno;
    setfsuid(0);
    setfsgid(0);
    if (dfd >= 0)
        close(dfd);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the core file %s: %s", path, strerror(e));
        free(path);
        return -e;
    }
    char *buf = malloc(1u << 20);
    int rc = buf ? 0 : VG_ENOMEM;
    unsigned long long done = 0;
    while (!rc && done < limit) {
        size_t want = limit - done < (1u << 20) ? (size_t)(limit - done) : (1u << 20);
        ssize_t n = read(0, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        for (ssize_t off = 0; off < n && !rc;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                rc = -errno;
            off += w > 0 ? w : 0;
        }
        done += (unsigned long long)n;
    }
    free(buf);
    close(fd);
    if (rc)
        snprintf(err, errlen, "writing the core file %s: %s", path, vg_strerror(rc));
    free(path);
    return rc;
}

int vg__crash_handoff(const struct vg_crash_record *r, const struct vg_crash_spec *s,
                      const char *proc_root, char *err, size_t errlen)
{
    const char *p = r->previous;
    if (!r->fallback || !p || !*p)
        return 0;
    if (p[0] == '|')
        return handoff_pipe(p, s, err, errlen);
    return handoff_file(p, s, proc_root, err, errlen);
}

/* ---- install / uninstall ---- */

static int lock_install(void)
{
    mkdir("/run/lock", 0755);
    int fd = open(INSTALL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        flock(fd, LOCK_EX);
    return fd;
}

static char *build_pattern(const struct vg_crash_install *o, char *err, size_t errlen)
{
    char self[PATH_MAX];
    const char *handler = o->handler;
    if (!handler) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            snprintf(err, errlen, "cannot find this vigil's path: %s", strerror(errno));
            return NULL;
        }
        self[n] = '\0';
        handler = self;
    }
    /* A state dir named by the configuration goes into the pattern too, when it fits: a
     * configuration broken later must not hide where the previous handler is recorded. */
    const char *state = o->state_dir_opt;
    if (!state && o->state_dir && strcmp(o->state_dir, VG_DEFAULT_STATE_DIR) != 0 &&
        !strpbrk(o->state_dir, " \t\n%"))
        state = o->state_dir;
    struct vg_buf b;
    char *pattern = NULL;
    for (;;) {
        vg_buf_init(&b);
        vg_buf_printf(&b, "|%s crash", handler);
        for (size_t i = 0; i < o->n_config_dirs; i++)
            vg_buf_printf(&b, " --config-dir %s", o->config_dirs[i]);
        if (state)
            vg_buf_printf(&b, " --state-dir %s", state);
        vg_buf_printf(&b, " %s", VG_CRASH_ARGS);
        pattern = vg_buf_steal(&b);
        if (!pattern || !state || state == o->state_dir_opt || strlen(pattern) <= PATTERN_MAX)
            break;
        free(pattern);
        pattern = NULL;
        state = NULL; /* too long with it: the configuration names it, as before */
    }
    const char *words[] = {handler, o->state_dir_opt};
    for (size_t i = 0; pattern && i < VG_ARRAY_SIZE(words) + o->n_config_dirs; i++) {
        const char *w = i < VG_ARRAY_SIZE(words) ? words[i] : o->config_dirs[i - 2];
        if (w && strpbrk(w, " \t\n%")) {
            snprintf(err, errlen,
                     "\"%s\" cannot go into core_pattern: the kernel splits it at spaces and "
                     "expands %%; use a path without them (a symlink)",
                     w);
            free(pattern);
            return NULL;
        }
    }
    if (pattern && strlen(pattern) > PATTERN_MAX) {
        snprintf(err, errlen,
                 "the core_pattern would be %zu characters, the kernel keeps %d: use shorter "
                 "paths (a symlink to vigil, --handler, a shorter --config-dir)",
                 strlen(pattern), PATTERN_MAX);
        free(pattern);
        return NULL;
    }
    if (!pattern)
        snprintf(err, errlen, "out of memory");
    return pattern;
}

static bool is_vigil_pattern(const char *p)
{
    size_t n = strlen(p), m = strlen(" " VG_CRASH_ARGS);
    return p[0] == '|' && strstr(p, " crash ") && n > m &&
           strcmp(p + n - m, " " VG_CRASH_ARGS) == 0;
}

int vg__crash_install(const struct vg_crash_install *o)
{
    char err[512] = "", cur[256] = "", limit_s[32] = "0";
    struct vg_crash_record rec = {0}, old = {0};
    int status = 1, rc;
    int lock = -1;
    char *pattern = build_pattern(o, err, sizeof(err));
    if (!pattern)
        goto out;
    lock = lock_install();
    if ((rc = read_line(CORE_PATTERN, cur, sizeof(cur))) ||
        (rc = read_line(CORE_PIPE_LIMIT, limit_s, sizeof(limit_s)))) {
        snprintf(err, sizeof(err), "cannot read %s: %s", CORE_PATTERN, vg_strerror(rc));
        goto out;
    }
    bool have_old = vg__crash_record_read(o->state_dir, &old) == 0;
    if (strcmp(cur, pattern) == 0 && have_old) {
        printf("vigil crash: already installed: %s\n", cur);
        status = 0;
        goto out;
    }
    if (is_vigil_pattern(cur) && !(have_old && strcmp(cur, old.installed) == 0)) {
        snprintf(err, sizeof(err),
                 "core_pattern already runs another vigil crash (\"%s\"): run --uninstall with "
                 "its --config-dir/--state-dir first",
                 cur);
        goto out;
    }
    /* reinstalling over our own pattern keeps what was there before the first install */
    rec.previous = vg_strdup(have_old ? old.previous : cur);
    rec.previous_pipe_limit = have_old ? old.previous_pipe_limit : strtol(limit_s, NULL, 10);
    rec.fallback = o->fallback;
    rec.installed = vg_strdup(pattern);
    if (!rec.previous || !rec.installed) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    char bad = rec.fallback ? unknown_specifier(rec.previous) : 0;
    if (bad) {
        snprintf(err, sizeof(err),
                 "the current core_pattern \"%s\" uses %%%c, which vigil crash is not given and "
                 "cannot hand over: install with --fallback none (cores no rule wants are then "
                 "dropped)",
                 rec.previous, bad);
        goto out;
    }
    mkdir(o->state_dir, 0700);
    if (record_write(o->state_dir, &rec, err, sizeof(err)))
        goto out;
    long want = o->pipe_limit;
    long have = strtol(limit_s, NULL, 10);
    char want_s[32];
    snprintf(want_s, sizeof(want_s), "%ld", want);
    if ((have == 0 || have < want) && (rc = write_line(CORE_PIPE_LIMIT, want_s))) {
        snprintf(err, sizeof(err), "cannot write %s: %s", CORE_PIPE_LIMIT, vg_strerror(rc));
        goto undo;
    }
    char back[256] = "";
    if ((rc = write_line(CORE_PATTERN, pattern)) ||
        (rc = read_line(CORE_PATTERN, back, sizeof(back))) || strcmp(back, pattern) != 0) {
        snprintf(err, sizeof(err), "cannot write %s: %s", CORE_PATTERN,
                 rc ? vg_strerror(rc) : "the kernel kept another value");
        goto undo;
    }
    printf("vigil crash: installed %s=%s (was \"%s\"); %s=%ld; crashes no rule wants go %s\n",
           CORE_PATTERN, pattern, rec.previous, CORE_PIPE_LIMIT,
           have == 0 || have < want ? want : have,
           rec.fallback ? "to the previous handler" : "nowhere");
    status = 0;
    goto out;
undo:
    write_line(CORE_PATTERN, rec.previous);
    snprintf(limit_s, sizeof(limit_s), "%ld", rec.previous_pipe_limit);
    write_line(CORE_PIPE_LIMIT, limit_s);
    {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", o->state_dir, VG_CRASH_RECORD);
        unlink(path);
    }
out:
    if (status)
        fprintf(stderr, "vigil crash --install: %s\n", err[0] ? err : "failed");
    if (lock >= 0)
        close(lock);
    vg__crash_record_free(&rec);
    vg__crash_record_free(&old);
    free(pattern);
    return status;
}

int vg__crash_uninstall(const struct vg_crash_install *o)
{
    struct vg_crash_record rec;
    char cur[256] = "", limit_s[32];
    int rc = vg__crash_record_read(o->state_dir, &rec);
    if (rc == VG_ENOENT) {
        printf("vigil crash: not installed from %s (no %s): nothing to restore\n", o->state_dir,
               VG_CRASH_RECORD);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "vigil crash --uninstall: %s/%s cannot be read: %s\n", o->state_dir,
                VG_CRASH_RECORD, vg_strerror(rc));
        return 1;
    }
    int lock = lock_install();
    int status = 0;
    if ((rc = read_line(CORE_PATTERN, cur, sizeof(cur)))) {
        fprintf(stderr, "vigil crash --uninstall: cannot read %s: %s\n", CORE_PATTERN,
                vg_strerror(rc));
        status = 1;
    } else if (strcmp(cur, rec.installed) != 0) {
        /* someone changed it since: theirs now, not ours to overwrite */
        fprintf(stderr,
                "vigil crash --uninstall: %s changed since --install (now \"%s\"): left as it "
                "is\n",
                CORE_PATTERN, cur);
    } else {
        snprintf(limit_s, sizeof(limit_s), "%ld", rec.previous_pipe_limit);
        if ((rc = write_line(CORE_PATTERN, rec.previous)) ||
            (rc = write_line(CORE_PIPE_LIMIT, limit_s))) {
            fprintf(stderr, "vigil crash --uninstall: cannot restore %s: %s\n", CORE_PATTERN,
                    vg_strerror(rc));
            status = 1;
        } else {
            printf("vigil crash: restored %s=%s, %s=%ld\n", CORE_PATTERN, rec.previous,
                   CORE_PIPE_LIMIT, rec.previous_pipe_limit);
        }
    }
    if (status == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", o->state_dir, VG_CRASH_RECORD);
        unlink(path);
    }
    if (lock >= 0)
        close(lock);
    vg__crash_record_free(&rec);
    return status;
}
