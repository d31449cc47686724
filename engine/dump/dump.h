/* Native ELF core dumps of a live process (x86_64 Linux), without stopping it for longer than the
 * memory copy: every thread is frozen with PTRACE_SEIZE + PTRACE_INTERRUPT (syscalls stay
 * restartable), registers and memory are read, the threads are detached and run on. The core is
 * produced as a strictly sequential byte stream into a sink, so it can go straight into an
 * upload, or written directly into a file. Thread-safe (no globals); never calls libuv. */
#ifndef VG_COREDUMP_H
#define VG_COREDUMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* dotnet-monitor CollectDump `Type` names. */
enum vg_dump_type {
    VG_DUMP_WITH_HEAP = 0, /* the target's /proc/PID/coredump_filter (kernel semantics) */
    VG_DUMP_FULL,          /* every readable mapping, file-backed text included */
    VG_DUMP_MINI,          /* stacks, data/relro of loaded files, ELF headers, vdso */
    VG_DUMP_TRIAGE,        /* Mini, with argv/environment and the command line blanked */
};

/* Case-insensitive "Full", "WithHeap", "Mini", "Triage". Returns 0 or VG_EINVAL. */
int vg_dump_type_parse(const char *s, enum vg_dump_type *out);
/* "WithHeap", "Full", "Mini", "Triage"; "?" for anything else. */
const char *vg_dump_type_name(enum vg_dump_type t);

/* The sink: receives the core in order, in pieces of any size. Returns 0 or a VG_E* code (e.g.
 * VG_ENOSPC, VG_EQUOTA), which aborts the dump and is returned by vg_coredump_write. Called only
 * from the thread that called vg_coredump_write, never concurrently. */
typedef int (*vg_dump_write_cb)(void *ctx, const void *buf, size_t len);

struct vg_dump_result {
    uint64_t bytes;     /* bytes handed to the sink */
    uint64_t freeze_us; /* first thread stopped -> last thread resumed */
    uint64_t wall_us;   /* whole call */
    unsigned threads;   /* threads in the core */
    unsigned segments;  /* PT_LOAD program headers */
};

/* Writes a core of `pid` into the sink. `res` (optional) is filled on success and, as far as
 * known, on failure. On failure `err` (optional) receives a human message. Errors: VG_ESRCH (no
 * such process), VG_EPERM / VG_EACCES (ptrace not allowed; the message says why: another user,
 * CAP_SYS_PTRACE, Yama ptrace_scope, already traced), VG_EEXITED (the process exited during the
 * dump), VG_EUNSUPPORTED (not x86_64), VG_ENOMEM, or whatever the sink returned. The target is
 * always detached and resumed before this returns. */
int vg_coredump_write(pid_t pid, enum vg_dump_type type, vg_dump_write_cb write, void *ctx,
                      struct vg_dump_result *res, char *err, size_t errlen);

/* Writes to `path` (created with O_EXCL, mode 0600, fsync'ed before returning). Faster than a
 * sink: the file is fallocated and mapped before the freeze and the memory is copied straight into
 * it (no buffer of the dump's size, one copy); the data then starts at a page-aligned offset after
 * room reserved for the headers (a hole where unused). Where that is not possible (no fallocate,
 * not enough memory) it streams like vg_coredump_write. A partial file is removed on failure.
 * Disk full is VG_ENOSPC, disk quota VG_EQUOTA. */
int vg_coredump_to_file(pid_t pid, enum vg_dump_type type, const char *path,
                        struct vg_dump_result *res, char *err, size_t errlen);

#endif
