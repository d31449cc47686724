#include "engine/runtimes/node/detect.h"

#include "config/error.h"
#include "config/util.h"

#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_SYMBOL "node_module_register"
#define ARGV_MAX 256
#define FILE_MAX (256 * 1024)
#define PHNUM_MAX 256
#define DYN_MAX 1024
#define CHAIN_MAX (1u << 20)

static const struct {
    const char *name;
    int sig;
} signals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int vg_node_signal_number(const char *name)
{
    if (!name || !*name)
        return 0;
    if (isdigit((unsigned char)name[0])) {
        char *end;
        long v = strtol(name, &end, 10);
        return *end == '\0' && v > 0 && v < 65 ? (int)v : 0;
    }
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < VG_ARRAY_SIZE(signals); i++)
        if (strcasecmp(name, signals[i].name) == 0)
            return signals[i].sig;
    return 0;
}

size_t vg_node_split_nul(char *buf, size_t len, const char **argv, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n < max;) {
        argv[n++] = buf + i;
        i += strnlen(buf + i, len - i) + 1;
    }
    return n;
}

/* Node options that take a value (as the next argument when not given with "="). The list only
 * has to be long enough to find the script name after the common ones. */
static const char *const value_opts[] = {
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "-e",
    "--eval",
    "-p",
    "--print",
    "-C",
    "--conditions",
    "--title",
    "--input-type",
    "--env-file",
    "--redirect-warnings",
    "--diagnostic-dir",
    "--heapsnapshot-signal",
    "--report-signal",
    "--report-dir",
    "--report-directory",
    "--report-filename",
    "--inspect-port",
    "--debug-port",
    "--inspect-publish-uid",
    "--cpu-prof-dir",
    "--cpu-prof-name",
    "--heap-prof-dir",
    "--heap-prof-name",
    "--openssl-config",
    "--unhandled-rejections",
    "--dns-result-order",
    "--secure-heap",
    "--secure-heap-min",
    "--icu-data-dir",
    "--experimental-policy",
    "--watch-path",
    "--test-reporter",
    "--test-reporter-destination",
    "--disable-warning",
    "--stack-trace-limit",
    "--max-http-header-size",
    "--tls-cipher-list",
    "--tls-keylog",
    "--use-largepages",
    "--trace-event-categories",
    "--trace-event-file-pattern",
    "--heapsnapshot-near-heap-limit",
    "--experimental-sea-config",
    "--policy-integrity",
};

static bool takes_value(const char *name, size_t n)
{
    for (size_t i = 0; i < VG_ARRAY_SIZE(value_opts); i++)
        if (strlen(value_opts[i]) == n && strncmp(value_opts[i], name, n) == 0)
            return true;
    return false;
}

/* "[host:]port", "host", "[v6]:port". */
static void parse_hostport(const char *v, struct vg_node_options *o)
{
    const char *colon = NULL;
    char host[VG_NODE_HOST_MAX] = "";
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || (size_t)(close - v - 1) >= sizeof(host))
            return;
        memcpy(host, v + 1, (size_t)(close - v - 1));
        host[close - v - 1] = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(v, ':');
        size_t hl = colon ? (size_t)(colon - v) : strlen(v);
        bool all_digits = hl > 0;
        for (size_t i = 0; i < hl; i++)
            all_digits = all_digits && isdigit((unsigned char)v[i]);
        if (!colon && all_digits) { /* --inspect=9230 */
            long p = strtol(v, NULL, 10);
            if (p >= 0 && p < 65536)
                o->inspect_port = (int)p;
            return;
        }
        if (hl >= sizeof(host))
            return;
        memcpy(host, v, hl);
        host[hl] = '\0';
    }
    if (host[0])
        snprintf(o->inspect_host, sizeof(o->inspect_host), "%s", host);
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end == '\0' && p >= 0 && p < 65536)
            o->inspect_port = (int)p;
    }
}

static void apply(struct vg_node_options *o, const char *name, size_t n, const char *v,
                  bool *report_on_signal)
{
#define IS(lit) (n == sizeof(lit) - 1 && strncmp(name, lit, n) == 0)
    if (IS("--inspect") || IS("--inspect-brk") || IS("--inspect-wait")) {
        o->inspect = true;
        if (v)
            parse_hostport(v, o);
    } else if (IS("--inspect-port") || IS("--debug-port")) {
        if (v)
            parse_hostport(v, o);
    } else if (IS("--heapsnapshot-signal")) {
        o->heapsnapshot_signal = v ? vg_node_signal_number(v) : 0;
    } else if (IS("--report-on-signal")) {
        *report_on_signal = true;
    } else if (IS("--report-signal")) {
        o->report_signal = v ? vg_node_signal_number(v) : 0;
    } else if (IS("--diagnostic-dir")) {
        snprintf(o->diagnostic_dir, sizeof(o->diagnostic_dir), "%s", v ? v : "");
    } else if (IS("--report-dir") || IS("--report-directory")) {
        snprintf(o->report_dir, sizeof(o->report_dir), "%s", v ? v : "");
    }
#undef IS
}

/* Walks node options; stops at the script name when stop_at_script. */
static void scan(const char *const *argv, size_t argc, bool stop_at_script,
                 struct vg_node_options *o, bool *report_on_signal)
{
    for (size_t i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0 || (a[0] != '-' && stop_at_script) || strcmp(a, "-") == 0)
            return;
        if (a[0] != '-')
            continue;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        /* node accepts "_" for "-" in option names */
        char name[64];
        if (n >= sizeof(name))
            continue;
        for (size_t k = 0; k < n; k++)
            name[k] = k >= 2 && a[k] == '_' ? '-' : a[k];
        name[n] = '\0';
        const char *v = eq ? eq + 1 : NULL;
        if (!v && takes_value(name, n) && i + 1 < argc)
            v = argv[++i];
        apply(o, name, n, v, report_on_signal);
    }
}

void vg_node_parse_options(const char *environ_opts, const char *const *argv, size_t argc,
                           struct vg_node_options *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->inspect_host, sizeof(out->inspect_host), "127.0.0.1");
    out->inspect_port = 9229;
    bool report_on_signal = false;
    if (environ_opts) {
        /* NODE_OPTIONS: space-separated, double quotes group (node's own rule). */
        char *copy = vg_strdup(environ_opts);
        const char *words[ARGV_MAX];
        size_t n = 0;
        char *p = copy;
        while (copy && *p && n < ARGV_MAX) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            char *w = p, *d = p;
            bool quoted = false;
            for (; *p && (quoted || *p != ' '); p++) {
                if (*p == '"')
                    quoted = !quoted;
                else if (*p == '\\' && quoted && p[1])
                    *d++ = *++p;
                else
                    *d++ = *p;
            }
            if (*p)
                p++;
            *d = '\0';
            words[n++] = w;
        }
        scan(words, n, false, out, &report_on_signal);
        free(copy);
    }
    if (argc > 1)
        scan(argv + 1, argc - 1, true, out, &report_on_signal);
    if (report_on_signal && !out->report_signal)
        out->report_signal = SIGUSR2;
    else if (!report_on_signal)
        out->report_signal = 0;
}

/* ---- ELF: a GNU hash lookup, reading only the few bytes it needs. ---- */

struct vmap {
    uint64_t vaddr, off, size;
};

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = (h << 5) + h + (unsigned char)*s;
    return h;
}

static int v2off(const struct vmap *m, size_t n, uint64_t vaddr, uint64_t *off)
{
    for (size_t i = 0; i < n; i++) {
        if (vaddr >= m[i].vaddr && vaddr - m[i].vaddr < m[i].size) {
            *off = m[i].off + (vaddr - m[i].vaddr);
            return 0;
        }
    }
    return VG_EPARSE;
}

int vg_node_elf_has_symbol(vg_node_read_fn rd, void *ctx, const char *name)
{
    Elf64_Ehdr eh;
    struct vmap maps[PHNUM_MAX];
    size_t nmaps = 0;
    uint64_t dyn_off = 0, dyn_size = 0;
    if (rd(ctx, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return VG_EPARSE;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > PHNUM_MAX)
        return VG_EPARSE;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (rd(ctx, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph)) < 0)
            return VG_EPARSE;
        if (ph.p_type == PT_LOAD)
            maps[nmaps++] = (struct vmap){ph.p_vaddr, ph.p_offset, ph.p_filesz};
        else if (ph.p_type == PT_DYNAMIC) {
            dyn_off = ph.p_offset;
            dyn_size = ph.p_filesz;
        }
    }
    if (!dyn_size)
        return 0; /* static: no dynamic symbols, so not a node binary */
    uint64_t gnuhash = 0, symtab = 0, strtab = 0, strsz = 0;
    for (uint64_t i = 0; i < dyn_size / sizeof(Elf64_Dyn) && i < DYN_MAX; i++) {
        Elf64_Dyn d;
        if (rd(ctx, &d, sizeof(d), dyn_off + i * sizeof(d)) < 0)
            return VG_EPARSE;
        if (d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_GNU_HASH)
            gnuhash = d.d_un.d_ptr;
        else if (d.d_tag == DT_SYMTAB)
            symtab = d.d_un.d_ptr;
        else if (d.d_tag == DT_STRTAB)
            strtab = d.d_un.d_ptr;
        else if (d.d_tag == DT_STRSZ)
            strsz = d.d_un.d_val;
    }
    uint64_t h_off, sym_off, str_off;
    if (!gnuhash || !symtab || !strtab || v2off(maps, nmaps, gnuhash, &h_off) < 0 ||
        v2off(maps, nmaps, symtab, &sym_off) < 0 || v2off(maps, nmaps, strtab, &str_off) < 0)
        return 0;
    uint32_t hdr[4]; /* nbuckets, symoffset, bloom words, bloom shift */
    if (rd(ctx, hdr, sizeof(hdr), h_off) < 0 || hdr[0] == 0 || hdr[0] > (1u << 24) ||
        hdr[2] > (1u << 24))
        return VG_EPARSE;
    uint32_t h = gnu_hash(name);
    uint64_t buckets = h_off + sizeof(hdr) + (uint64_t)hdr[2] * 8;
    uint64_t chains = buckets + (uint64_t)hdr[0] * 4;
    uint32_t idx;
    if (rd(ctx, &idx, 4, buckets + (uint64_t)(h % hdr[0]) * 4) < 0)
        return VG_EPARSE;
    if (idx < hdr[1])
        return 0;
    size_t name_len = strlen(name);
    char got[128];
    if (name_len + 1 > sizeof(got))
        return VG_EINVAL;
    for (uint32_t n = 0; n < CHAIN_MAX; n++, idx++) {
        uint32_t ch;
        if (idx < hdr[1] || rd(ctx, &ch, 4, chains + (uint64_t)(idx - hdr[1]) * 4) < 0)
            return VG_EPARSE;
        if ((ch | 1) == (h | 1)) {
            Elf64_Sym sym;
            if (rd(ctx, &sym, sizeof(sym), sym_off + (uint64_t)idx * sizeof(sym)) < 0)
                return VG_EPARSE;
            if (sym.st_name < strsz && strsz - sym.st_name > name_len &&
                rd(ctx, got, name_len + 1, str_off + sym.st_name) == 0 &&
                memcmp(got, name, name_len + 1) == 0)
                return sym.st_shndx != SHN_UNDEF ? 1 : 0;
        }
        if (ch & 1)
            return 0;
    }
    return VG_EPARSE;
}

/* ---- /proc ---- */

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return 0;
}

bool vg_node_name_like(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (strncmp(b, "nodejs", 6) == 0)
        b += 6;
    else if (strncmp(b, "node", 4) == 0)
        b += 4;
    else
        return false;
    /* "node", "nodejs", "node20", "node-20.11", "node (deleted)" */
    for (; *b && *b != ' '; b++)
        if (!isdigit((unsigned char)*b) && *b != '.' && *b != '-' && *b != 'v')
            return false;
    return true;
}

static int pread_all(void *ctx, void *buf, size_t len, uint64_t off)
{
    int fd = *(int *)ctx;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return VG_EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Executables already checked, by (dev, inode, mtime): the lookup reads a few pages, but a
 * machine starts many processes from the same binaries. */
#define CACHE_SIZE 32
static struct {
    dev_t dev;
    ino_t ino;
    int64_t mtime;
    int result;
} cache[CACHE_SIZE];
static size_t cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int exe_is_node(const char *exe_path)
{
    int fd = open(exe_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        if (cache[i].ino == st.st_ino && cache[i].dev == st.st_dev &&
            cache[i].mtime == (int64_t)st.st_mtime && cache[i].ino) {
            rc = cache[i].result;
            pthread_mutex_unlock(&cache_lock);
            goto out;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    rc = vg_node_elf_has_symbol(pread_all, &fd, NODE_SYMBOL);
    if (rc < 0)
        rc = 0; /* not an ELF we can read: not node */
    pthread_mutex_lock(&cache_lock);
    cache[cache_next].dev = st.st_dev;
    cache[cache_next].ino = st.st_ino;
    cache[cache_next].mtime = (int64_t)st.st_mtime;
    cache[cache_next].result = rc;
    cache_next = (cache_next + 1) % CACHE_SIZE;
    pthread_mutex_unlock(&cache_lock);
out:
    close(fd);
    return rc;
}

static const char *node_options_of(char *env, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (strncmp(env + i, "NODE_OPTIONS=", 13) == 0)
            return env + i + 13;
        i += strnlen(env + i, len - i) + 1;
    }
    return NULL;
}

int vg_node_detect(const char *proc_root, int pid, struct vg_node_options *opts)
{
    char path[PATH_MAX], exe[PATH_MAX];
    char *cmdline = NULL, *env = NULL;
    size_t clen = 0, elen = 0;
    const char *root = proc_root ? proc_root : "/proc";
    int rc;

    snprintf(path, sizeof(path), "%s/%d/exe", root, pid);
    ssize_t n = readlink(path, exe, sizeof(exe) - 1);
    if (n < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    exe[n] = '\0';

    cmdline = malloc(FILE_MAX);
    if (!cmdline)
        return VG_ENOMEM;
    snprintf(path, sizeof(path), "%s/%d/cmdline", root, pid);
    rc = read_small(path, cmdline, FILE_MAX, &clen);
    if (rc < 0)
        goto out;
    const char *argv[ARGV_MAX];
    size_t argc = vg_node_split_nul(cmdline, clen, argv, ARGV_MAX);
    if (!vg_node_name_like(exe) && !(argc && vg_node_name_like(argv[0]))) {
        rc = 0;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%d/exe", root, pid);
    rc = exe_is_node(path);
    if (rc <= 0 || !opts)
        goto out;
    env = malloc(FILE_MAX);
    if (!env) {
        rc = VG_ENOMEM;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%d/environ", root, pid);
    if (read_small(path, env, FILE_MAX, &elen) < 0)
        elen = 0;
    vg_node_parse_options(node_options_of(env, elen), argv, argc, opts);
    rc = 1;
out:
    free(env);
    free(cmdline);
    return rc;
}
