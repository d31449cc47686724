/* What a snapshot's clone must fit in, checked before anything is done to the target:
 *   - memory: a fork charges the target's accountable private memory again under strict
 *     overcommit (vm.overcommit_memory=2); and every page the target writes while the clone
 *     lives is copied, in the target's memory cgroup. In the worst case (the target rewrites all
 *     of its anonymous memory before the dump is written) the clone costs that much memory
 *     again, plus page tables, so that much must be free: in the cgroup and on the machine.
 *   - pids: the clone is one more task in the target's pids cgroup (every level up to the root).
 *   - seccomp: a filter may answer clone() with an error or by killing the process; the filters
 *     are read (PTRACE_SECCOMP_GET_FILTER) and run on the exact call before it is made.
 * RLIMIT_NPROC, kernel.pid_max and threads-max are left to the clone's own EAGAIN, which falls
 * back to Stop mode like any refusal. */
#include "engine/dump/dump_int.h"

#include "config/error.h"
#include "engine/host/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

#define MiB(x) ((unsigned long long)((x) >> 20))

/* ---- memory ---------------------------------------------------------------------------------- */

static int overcommit_check(struct vg__cd_ctx *c)
{
    char buf[4096];
    if (vg_procfs_read(AT_FDCWD, "/proc/sys/vm/overcommit_memory", buf, sizeof(buf)) <= 0 ||
        atoi(buf) != 2)
        return 0;
    uint64_t charge = 0, limit_kb = 0, committed_kb = 0;
    for (size_t i = 0; i < c->pre.n; i++)
        if (c->pre.v[i].account && !c->pre.v[i].dontfork)
            charge += c->pre.v[i].end - c->pre.v[i].start;
    if (vg_procfs_read(AT_FDCWD, "/proc/meminfo", buf, sizeof(buf)) <= 0 ||
        !vg_procfs_field_u64(buf, "CommitLimit", &limit_kb) ||
        !vg_procfs_field_u64(buf, "Committed_AS", &committed_kb))
        return 0; /* the clone's own ENOMEM decides */
    uint64_t left = limit_kb > committed_kb ? (limit_kb - committed_kb) << 10 : 0;
    if (charge > left) {
        vg__cd_fallback(c,
                        "strict overcommit (vm.overcommit_memory=2): the clone would commit "
                        "%llu MiB, %llu MiB are left below CommitLimit",
                        MiB(charge), MiB(left));
        return 1;
    }
    return 0;
}

/* Limit and usage of the memory cgroup of /proc/PID (PID "self" too): 0 with both, else -1. */
static int cgroup_memory(const char *pid, uint64_t *limit, uint64_t *usage)
{
    char path[64], *text = NULL;
    struct vg_proc_cgroup pcg;
    struct vg_cgroup_cache *cache = NULL;
    struct vg_cgroup_stats cs;
    memset(&cs, 0, sizeof(cs));
    snprintf(path, sizeof(path), "/proc/%s/cgroup", pid);
    if (vg_procfs_read_alloc(AT_FDCWD, path, 1u << 16, &text, NULL) == 0 &&
        vg_cgroup_parse_proc(text, &pcg) == 0 &&
        vg_cgroup_cache_create("/sys/fs/cgroup", "/proc", &cache) == 0)
        vg_cgroup_get(cache, &pcg, VG_CG_MEM_CURRENT | VG_CG_MEM_MAX, &cs);
    vg_cgroup_cache_destroy(cache);
    free(text);
    if (!(cs.valid & VG_CG_MEM_MAX) || !(cs.valid & VG_CG_MEM_CURRENT))
        return -1;
    *limit = cs.mem_max;
    *usage = cs.mem_current;
    return 0;
}

uint64_t vg__cd_self_mem_headroom(void)
{
    uint64_t limit, usage;
    if (cgroup_memory("self", &limit, &usage) != 0)
        return UINT64_MAX;
    return limit > usage ? limit - usage : 0;
}

static int memory_check(struct vg__cd_ctx *c)
{
    /* Worst case: every anonymous page rewritten while the clone lives, plus its page tables
     * (8 bytes per 4 KiB page). */
    uint64_t anon = 0;
    for (size_t i = 0; i < c->pre.n; i++)
        if (!c->pre.v[i].dontfork && !c->pre.v[i].shared)
            anon += c->pre.v[i].anonymous;
    uint64_t need = anon + anon / 512;
    if (!need)
        return 0;

    char pid[16];
    uint64_t limit, usage;
    snprintf(pid, sizeof(pid), "%d", (int)c->pid);
    if (cgroup_memory(pid, &limit, &usage) == 0) {
        uint64_t left = limit > usage ? limit - usage : 0;
        if (need > left) {
            vg__cd_fallback(c,
                            "the memory cgroup has %llu MiB left below its limit; the clone may "
                            "need up to %llu MiB if the process rewrites its memory meanwhile",
                            MiB(left), MiB(need));
            return 1;
        }
    }
    uint64_t avail = vg__cd_mem_available();
    if (avail && need > avail) {
        vg__cd_fallback(c,
                        "the machine has %llu MiB available; the clone may need up to %llu MiB "
                        "if the process rewrites its memory meanwhile",
                        MiB(avail), MiB(need));
        return 1;
    }
    return 0;
}

/* ---- pids ------------------------------------------------------------------------------------ */

/* The target's cgroup directory of the pids controller: v1 (root/pids + the "pids" line) or v2
 * (the unified hierarchy + the "0::" line). */
static int pids_dir(pid_t pid, char *out, size_t n)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    if (vg_procfs_read_alloc(AT_FDCWD, path, 1u << 16, &text, NULL) != 0)
        return -1;
    int found = -1;
    for (char *line = text, *next; line && *line && found < 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrl = c1 + 1, *rel = c2 + 1;
        struct stat sb;
        if (strcmp(line, "0") == 0 && !*ctrl) {
            static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
            for (int r = 0; r < 2 && found < 0; r++) {
                snprintf(out, n, "%s%s", roots[r], rel);
                char probe[600];
                snprintf(probe, sizeof(probe), "%s/cgroup.controllers", roots[r]);
                if (stat(probe, &sb) == 0 && stat(out, &sb) == 0)
                    found = 0;
            }
        } else {
            /* "pids" alone or in a comma-separated list */
            for (const char *p = strstr(ctrl, "pids"); p; p = strstr(p + 1, "pids")) {
                if ((p == ctrl || p[-1] == ',') && (p[4] == '\0' || p[4] == ',')) {
                    snprintf(out, n, "/sys/fs/cgroup/%s%s", ctrl, rel);
                    if (stat(out, &sb) == 0)
                        found = 0;
                    break;
                }
            }
        }
    }
    free(text);
    return found;
}

static int pids_check(struct vg__cd_ctx *c)
{
    char dir[512], path[600], buf[64];
    if (pids_dir(c->pid, dir, sizeof(dir)) != 0)
        return 0;
    /* Every level up to the mount: a parent's limit binds its children. */
    for (;;) {
        uint64_t max = 0, cur = 0;
        bool ok1 = false, ok2 = false;
        snprintf(path, sizeof(path), "%s/pids.max", dir);
        if (vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf)) > 0)
            vg_procfs_parse_u64(buf, &max, &ok1); /* "max": no limit, ok1 false */
        snprintf(path, sizeof(path), "%s/pids.current", dir);
        if (vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf)) > 0)
            vg_procfs_parse_u64(buf, &cur, &ok2);
        if (ok1 && ok2 && cur + 1 > max) {
            vg__cd_fallback(c, "the pids cgroup %s is at its limit (%llu of pids.max %llu)", dir,
                            (unsigned long long)cur, (unsigned long long)max);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            break;
        *slash = '\0';
        snprintf(path, sizeof(path), "%s/pids.max", dir);
        struct stat sb;
        if (stat(path, &sb) != 0)
            break; /* the hierarchy's root has no pids.max */
    }
    return 0;
}

int vg__cd_limits_check(struct vg__cd_ctx *c)
{
    if (overcommit_check(c) || memory_check(c) || pids_check(c))
        return 1;
    return 0;
}

/* ---- seccomp --------------------------------------------------------------------------------- */

int vg__cd_bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d,
                   uint32_t *out)
{
    uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = {0};
    const unsigned char *data = (const unsigned char *)d;
    for (size_t pc = 0, steps = 0; pc < n && steps <= n; pc++, steps++) {
        const struct sock_filter *i = &f[pc];
        uint32_t k = i->k, src = BPF_SRC(i->code) == BPF_X ? X : k;
        switch (BPF_CLASS(i->code)) {
        case BPF_LD:
        case BPF_LDX: {
            uint32_t v;
            if (BPF_MODE(i->code) == BPF_ABS && BPF_SIZE(i->code) == BPF_W &&
                BPF_CLASS(i->code) == BPF_LD) {
                if (k > sizeof(*d) - 4 || (k & 3))
                    return -1;
                memcpy(&v, data + k, 4);
            } else if (BPF_MODE(i->code) == BPF_LEN && BPF_SIZE(i->code) == BPF_W) {
                v = sizeof(*d);
            } else if (BPF_MODE(i->code) == BPF_IMM) {
                v = k;
            } else if (BPF_MODE(i->code) == BPF_MEM) {
                if (k >= BPF_MEMWORDS)
                    return -1;
                v = M[k];
            } else {
                return -1;
            }
            if (BPF_CLASS(i->code) == BPF_LD)
                A = v;
            else
                X = v;
            break;
        }
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS)
                return -1;
            M[k] = BPF_CLASS(i->code) == BPF_ST ? A : X;
            break;
        case BPF_ALU:
            switch (BPF_OP(i->code)) {
            case BPF_ADD:
                A += src;
                break;
            case BPF_SUB:
                A -= src;
                break;
            case BPF_MUL:
                A *= src;
                break;
            case BPF_DIV:
                if (!src) {
                    *out = 0; /* the kernel's checker ends such a program with 0 */
                    return 0;
                }
                A /= src;
                break;
            case BPF_MOD:
                if (!src) {
                    *out = 0;
                    return 0;
                }
                A %= src;
                break;
            case BPF_OR:
                A |= src;
                break;
            case BPF_AND:
                A &= src;
                break;
            case BPF_XOR:
                A ^= src;
                break;
            case BPF_LSH:
                A = src >= 32 ? 0 : A << src;
                break;
            case BPF_RSH:
                A = src >= 32 ? 0 : A >> src;
                break;
            case BPF_NEG:
                A = -A;
                break;
            default:
                return -1;
            }
            break;
        case BPF_JMP: {
            size_t jump;
            if (BPF_OP(i->code) == BPF_JA) {
                jump = k;
            } else {
                int taken;
                switch (BPF_OP(i->code)) {
                case BPF_JEQ:
                    taken = A == src;
                    break;
                case BPF_JGT:
                    taken = A > src;
                    break;
                case BPF_JGE:
                    taken = A >= src;
                    break;
                case BPF_JSET:
                    taken = (A & src) != 0;
                    break;
                default:
                    return -1;
                }
                jump = taken ? i->jt : i->jf;
            }
            if (jump >= n - pc)
                return -1;
            pc += jump;
            break;
        }
        case BPF_RET:
            *out = BPF_RVAL(i->code) == BPF_A ? A : k;
            return BPF_RVAL(i->code) == BPF_X ? -1 : 0;
        case BPF_MISC:
            if (BPF_MISCOP(i->code) == BPF_TAX)
                X = A;
            else
                A = X;
            break;
        }
    }
    return -1; /* fell off the end: the kernel never accepts such a program */
}

/* The kernel's precedence: the most restrictive action of all filters wins. */
static int32_t action_rank(uint32_t ret)
{
    return (int32_t)(ret & SECCOMP_RET_ACTION_FULL);
}

static const char *action_text(uint32_t ret, char *buf, size_t n)
{
    switch (ret & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_KILL_PROCESS:
        return "would kill the process on";
    case SECCOMP_RET_KILL_THREAD:
        return "would kill the thread on";
    case SECCOMP_RET_TRAP:
        return "answers SIGSYS to";
    case SECCOMP_RET_ERRNO:
        snprintf(buf, n, "answers %s to", strerror((int)(ret & SECCOMP_RET_DATA)));
        return buf;
    case SECCOMP_RET_USER_NOTIF:
        return "hands to a supervisor";
    case SECCOMP_RET_TRACE:
        return "hands to a tracer";
    default:
        return "does not allow";
    }
}

int vg__cd_seccomp_allows(pid_t tid, long nr, const uint64_t a[6], uint64_t sysaddr, char *why,
                          size_t whylen)
{
    char path[64], buf[4096];
    uint64_t mode = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    if (vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf)) <= 0 ||
        !vg_procfs_field_u64(buf, "Seccomp", &mode) || mode == 0)
        return 0;
    if (mode == 1) {
        snprintf(why, whylen, "(strict mode) forbids");
        return 1;
    }
    struct seccomp_data d;
    memset(&d, 0, sizeof(d));
    d.nr = (int)nr;
    d.arch = AUDIT_ARCH_X86_64;
    d.instruction_pointer = sysaddr;
    memcpy(d.args, a, sizeof(d.args));
    uint32_t verdict = SECCOMP_RET_ALLOW;
    for (unsigned long idx = 0; idx < 512; idx++) {
        long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)idx, NULL);
        if (n < 0 && errno == ENOENT)
            break; /* past the last filter */
        if (n <= 0 || n > BPF_MAXINSNS) {
            snprintf(why, whylen, "cannot be read (%s) to know whether it allows",
                     n < 0 ? strerror(errno) : "empty");
            return 1;
        }
        struct sock_filter *prog = calloc((size_t)n, sizeof(*prog));
        uint32_t r = 0;
        int ok = prog && ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)idx, prog) == n &&
                 vg__cd_bpf_run(prog, (size_t)n, &d, &r) == 0;
        free(prog);
        if (!ok) {
            snprintf(why, whylen, "cannot be evaluated to know whether it allows");
            return 1;
        }
        if (action_rank(r) < action_rank(verdict))
            verdict = r;
    }
    uint32_t act = verdict & SECCOMP_RET_ACTION_FULL;
    if (act == SECCOMP_RET_ALLOW || act == SECCOMP_RET_LOG)
        return 0;
    char tmp[64];
    snprintf(why, whylen, "%s", action_text(verdict, tmp, sizeof(tmp)));
    return 1;
}

#endif
