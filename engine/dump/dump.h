/* Native ELF core dumps of a live process (x86_64 Linux). Two modes:
 *   - Snapshot (the default): every thread is frozen with PTRACE_SEIZE + PTRACE_INTERRUPT
 *     (syscalls stay restartable), registers are read, then the target itself is made to create
 *     a copy-on-write clone of its address space (a clone() system call injected through ptrace,
 *     with no exit signal, traced, killed with vigil). The target runs on after a few
 *     milliseconds whatever its size; the memory is read from the clone at leisure, then the
 *     clone is killed and reaped. Any reason not to (see docs/dumps.md) falls back to Stop.
 *   - Stop: the target stays frozen until its memory is copied.
 * The core is produced as a strictly sequential byte stream into a sink, so it can go straight
 * into an upload, or written directly into a file (sparse: pages never populated and all-zero
 * pages are holes). Memory use is bounded (a few tens of MB) whatever the target's size.
 * Thread-safe (no globals); never calls libuv. The calling thread becomes the target's tracer for
 * the duration of the call. */
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

/* How the target is held while its memory is read. */
enum vg_dump_mode {
    VG_DUMP_SNAPSHOT = 0, /* copy-on-write clone: frozen for milliseconds */
    VG_DUMP_STOP,         /* frozen until the memory is copied */
};

/* Case-insensitive "Full", "WithHeap", "Mini", "Triage". Returns 0 or VG_EINVAL. */
int vg_dump_type_parse(const char *s, enum vg_dump_type *out);
/* "WithHeap", "Full", "Mini", "Triage"; "?" for anything else. */
const char *vg_dump_type_name(enum vg_dump_type t);
/* Case-insensitive "Snapshot", "Stop". Returns 0 or VG_EINVAL. */
int vg_dump_mode_parse(const char *s, enum vg_dump_mode *out);
/* "Snapshot", "Stop"; "?" for anything else. */
const char *vg_dump_mode_name(enum vg_dump_mode m);

/* Free space vg_coredump_to_file leaves on the output's file system unless told otherwise: like
 * Storage.KeepFree, 15% of the file system, at most 4 GiB. */
#define VG_DUMP_KEEP_FREE_DEFAULT UINT64_MAX

struct vg_dump_opts {
    enum vg_dump_type type;
    enum vg_dump_mode mode;
    /* File output: bytes that must stay free on the file system (0: none;
     * VG_DUMP_KEEP_FREE_DEFAULT: the default rule above). Ignored by vg_coredump_write. */
    uint64_t keep_free;
};

/* The sink: receives the core in order, in pieces of any size. Returns 0 or a VG_E* code (e.g.
 * VG_ENOSPC, VG_EQUOTA), which aborts the dump and is returned by vg_coredump_write. Called only
 * from the thread that called vg_coredump_write, never concurrently. */
typedef int (*vg_dump_write_cb)(void *ctx, const void *buf, size_t len);

struct vg_dump_result {
    uint64_t bytes;         /* bytes of the core (the file's size; holes included) */
    uint64_t data;          /* memory bytes read from the target (or its clone) */
    uint64_t freeze_us;     /* first thread stopped -> last thread resumed */
    uint64_t wall_us;       /* whole call */
    uint64_t cow_bytes;     /* Snapshot: the target's pages copied on write while the clone lived */
    unsigned threads;       /* threads in the core */
    unsigned segments;      /* PT_LOAD program headers */
    enum vg_dump_mode mode; /* the mode used */
    /* Why Snapshot was asked for and Stop used ("" otherwise), e.g. "the target runs under a
     * seccomp filter that does not allow clone". */
    char fallback[256];
};

/* Writes a core of `pid` into the sink. opts NULL: WithHeap, Snapshot. `res` (optional) is
 * filled on success and, as far as known, on failure. On failure `err` (optional) receives a
 * human message. Errors: VG_ESRCH (no such process), VG_EPERM / VG_EACCES (ptrace not allowed;
 * the message says why: another user, CAP_SYS_PTRACE, Yama ptrace_scope, already traced),
 * VG_EEXITED (the process exited during a Stop dump), VG_EUNSUPPORTED (not x86_64), VG_ENOMEM,
 * or whatever the sink returned. The target is always resumed, and a snapshot clone killed and
 * reaped, before this returns. */
int vg_coredump_write(pid_t pid, const struct vg_dump_opts *opts, vg_dump_write_cb write, void *ctx,
                      struct vg_dump_result *res, char *err, size_t errlen);

/* Writes to `path` (created with O_EXCL, mode 0600, fsync'ed before returning), sparse. In Stop
 * mode, when memory allows, the file is fallocated and mapped before the freeze and the memory
 * is copied straight into it (one copy, the shortest freeze); otherwise, and in Snapshot mode,
 * it streams like vg_coredump_write with bounded buffers. A partial file is removed on failure.
 * Disk full, or the keep_free floor reached, is VG_ENOSPC; disk quota VG_EQUOTA. */
int vg_coredump_to_file(pid_t pid, const struct vg_dump_opts *opts, const char *path,
                        struct vg_dump_result *res, char *err, size_t errlen);

#endif
