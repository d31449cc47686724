/* What the core writer's test binaries share: an in-memory sink and reading a core back. */
#ifndef VG_CORE_TEST_H
#define VG_CORE_TEST_H

#include "config/error.h"

#include <elf.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mem_sink {
    unsigned char *data;
    size_t len, cap;
    size_t limit;   /* return VG_EQUOTA beyond this many bytes (0: none) */
    pid_t kill_pid; /* killed, and waited for until its memory is gone, at the first write */
    int discard;    /* count only */
    int calls;
};

/* The text of a small /proc file ("" when it cannot be read). */
static inline void read_text(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    ssize_t r = fd >= 0 ? read(fd, buf, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[r > 0 ? r : 0] = '\0';
}

/* A status field in KiB ("VmHWM:", "RssShmem:") of /proc/PID/status, pid 0 for self. */
static inline uint64_t status_kb(pid_t pid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), pid ? "/proc/%d/status" : "/proc/self/status", (int)pid);
    read_text(path, buf, sizeof(buf));
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key) + 1, NULL, 10) : 0;
}

/* The state letter of /proc/PID/status ('?' when gone) and, optionally, its TracerPid. */
static inline char proc_state(pid_t pid, long *tracer)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    read_text(path, buf, sizeof(buf));
    const char *s = strstr(buf, "State:\t"), *tp = strstr(buf, "TracerPid:\t");
    if (tracer)
        *tracer = tp ? strtol(tp + 11, NULL, 10) : -1;
    return s ? s[7] : '?';
}

static inline int mem_write(void *ctx, const void *buf, size_t len)
{
    struct mem_sink *s = ctx;
    s->calls++;
    if (s->kill_pid > 0) {
        /* The process dies in the middle of the dump: wait until its memory is gone. */
        kill(s->kill_pid, SIGKILL);
        for (int i = 0; i < 2000; i++) {
            char st = proc_state(s->kill_pid, NULL);
            if (st == '?' || st == 'Z' || st == 'X')
                break;
            usleep(1000);
        }
        s->kill_pid = 0;
    }
    if (s->limit && s->len + len > s->limit)
        return VG_EQUOTA;
    if (s->discard) {
        s->len += len;
        return 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 20;
        while (cap < s->len + len)
            cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d)
            return VG_ENOMEM;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, len);
    s->len += len;
    return 0;
}

/* Reads n bytes at addr from the core's PT_LOADs (past filesz: zeros). 0, or -1 when absent
 * or when the core is not a well-formed ELF core. */
static inline int core_read(const unsigned char *core, size_t len, uint64_t addr, void *out,
                            size_t n)
{
    const Elf64_Ehdr *eh = (const void *)core;
    if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len)
        return -1;
    const Elf64_Phdr *ph = (const void *)(core + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || addr < ph[i].p_vaddr ||
            addr + n > ph[i].p_vaddr + ph[i].p_memsz)
            continue;
        uint64_t o = addr - ph[i].p_vaddr;
        if (o + n <= ph[i].p_filesz) {
            if (ph[i].p_offset + o + n > len)
                return -1;
            memcpy(out, core + ph[i].p_offset + o, n);
        } else if (o >= ph[i].p_filesz) {
            memset(out, 0, n);
        } else {
            return -1; /* straddles the end of the file bytes: never written so */
        }
        return 0;
    }
    return -1;
}

#endif
