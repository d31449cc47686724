/* Reading the target's memory (Stop mode) or its clone's (Snapshot mode): process_vm_readv first
 * for the target (fast, one syscall per chunk), /proc/PID/mem for the clone and for what
 * process_vm_readv cannot read (it forces access like a debugger), and zeros for what neither
 * can (as the kernel leaves holes). Called by several copy threads at once. Also the overlays:
 * bytes copied from the frozen target that the clone does not have. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__)

static ssize_t mem_pread(struct vg__cd_ctx *c, void *buf, size_t len, uint64_t addr)
{
    int fd = __atomic_load_n(&c->memfd, __ATOMIC_ACQUIRE);
    if (fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)c->mem_pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        int none = -1;
        if (!__atomic_compare_exchange_n(&c->memfd, &none, fd, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            close(fd); /* another copy thread was first */
            fd = none;
        }
    }
    return pread(fd, buf, len, (off_t)addr);
}

/* The source went away: the target (Stop mode), or the clone (killed, e.g. by the OOM killer,
 * which prefers it). */
static int source_gone(struct vg__cd_ctx *c)
{
    if (c->mem_pid != c->pid)
        return vg__cd_fail(c, VG_EEXITED,
                           "the snapshot clone %d of pid %d was killed during the dump (out of "
                           "memory?)",
                           (int)c->mem_pid, (int)c->pid);
    return vg__cd_exited(c);
}

void vg__cd_set_source(struct vg__cd_ctx *c, pid_t pid)
{
    if (c->memfd >= 0)
        close(c->memfd);
    c->memfd = -1;
    c->mem_pid = pid;
    /* process_vm_readv pins what it reads (FOLL_PIN), and the kernel then gives the reader a
     * private copy of a page shared copy-on-write ("unshare"): read from the clone, every page
     * would be copied once more, costing time and memory. /proc/PID/mem takes plain references:
     * no copy, and faster here (measured in bench/coredump/RESULTS.md). */
    c->no_vm_readv = pid != c->pid;
}

int vg__cd_read_mem(struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n;
        int no_vm_readv = __atomic_load_n(&c->no_vm_readv, __ATOMIC_RELAXED);
        if (!no_vm_readv) {
            struct iovec l = {buf + got, len - got};
            struct iovec r = {(void *)(uintptr_t)(addr + got), len - got};
            n = process_vm_readv(c->mem_pid, &l, 1, &r, 1, 0);
            if (n < 0) {
                int e = errno;
                if (e == ESRCH)
                    return source_gone(c);
                if (e == EPERM || e == ENOSYS) {
                    /* e.g. seccomp: the ptrace path still works */
                    __atomic_store_n(&c->no_vm_readv, 1, __ATOMIC_RELAXED);
                    continue;
                }
                if (e != EFAULT && e != EIO)
                    return vg__cd_fail(c, -e, "reading memory of %d: %s", (int)c->pid, strerror(e));
                n = 0;
            }
        } else {
            n = mem_pread(c, buf + got, len - got, addr + got);
            if (n < 0 && errno != EIO && errno != EFAULT) {
                int e = errno;
                if (vg__cd_process_gone(c->mem_pid))
                    return source_gone(c);
                if (e == EPERM || e == EACCES)
                    return vg__cd_perm_error(c, -e, "read the memory of");
                return vg__cd_fail(c, -e, "reading /proc/%d/mem: %s", (int)c->mem_pid, strerror(e));
            }
            if (n <= 0) {
                if (vg__cd_process_gone(c->mem_pid))
                    return source_gone(c);
                n = 0;
            }
        }
        got += (size_t)n;
        if (got < len) {
            uint64_t a = addr + got;
            size_t pg = VG__CD_PAGE - (size_t)(a & (VG__CD_PAGE - 1));
            if (pg > len - got)
                pg = len - got;
            if (no_vm_readv || mem_pread(c, buf + got, pg, a) != (ssize_t)pg)
                memset(buf + got, 0, pg);
            got += pg;
        }
    }
    return 0;
}

int vg__cd_is_elf(struct vg__cd_ctx *c, uint64_t addr)
{
    unsigned char m[4];
    struct iovec l = {m, 4}, r = {(void *)(uintptr_t)addr, 4};
    if (process_vm_readv(c->mem_pid, &l, 1, &r, 1, 0) != 4 && mem_pread(c, m, 4, addr) != 4)
        return 0;
    return memcmp(m, ELFMAG, SELFMAG) == 0;
}

int vg__cd_peek(struct vg__cd_ctx *c, uint64_t addr, void *buf, size_t len)
{
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    if (process_vm_readv(c->mem_pid, &l, 1, &r, 1, 0) == (ssize_t)len)
        return 0;
    return mem_pread(c, buf, len, addr) == (ssize_t)len ? 0 : -1;
}

/* ---- overlays: bytes that replace what the source shows ---- */

int vg__cd_overlay_add(struct vg__cd_ctx *c, uint64_t addr, size_t len)
{
    if (!len)
        return 0;
    char *data = malloc(len);
    if (!data || vg_grow((void **)&c->ov, &c->capov, c->nov, sizeof(*c->ov), 8)) {
        free(data);
        return VG_ENOMEM;
    }
    int rc = vg__cd_read_mem(c, addr, data, len);
    if (rc) {
        free(data);
        return rc;
    }
    size_t i = c->nov;
    while (i > 0 && c->ov[i - 1].addr > addr)
        i--;
    memmove(&c->ov[i + 1], &c->ov[i], (c->nov - i) * sizeof(*c->ov));
    c->ov[i].addr = addr;
    c->ov[i].len = len;
    c->ov[i].data = data;
    c->nov++;
    c->ov_bytes += len;
    return 0;
}

void vg__cd_overlay_apply(const struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len)
{
    for (size_t i = 0; i < c->nov; i++) {
        const struct vg__cd_overlay *o = &c->ov[i];
        if (o->addr >= addr + len)
            break;
        uint64_t lo = o->addr > addr ? o->addr : addr;
        uint64_t hi = o->addr + o->len < addr + len ? o->addr + o->len : addr + len;
        if (lo < hi)
            memcpy(buf + (lo - addr), o->data + (lo - o->addr), hi - lo);
    }
}

#endif
