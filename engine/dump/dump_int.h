/* Internals of the core writer (engine/dump/), one file per concern:
 *   coredump.c  the order of work (vg_coredump_write / vg_coredump_to_file), errors, timing
 *   freeze.c    ptrace: seize and interrupt every thread, registers, resume
 *   inject.c    ptrace: a system call run by a stopped thread (clone, wait4, madvise)
 *   snapshot.c  Snapshot mode: the checks before, the clone, releasing it as it is written
 *   limits.c    what a clone must fit in: seccomp filters, overcommit, memory and pids cgroups
 *   mem.c       reading the target's (or the clone's) memory
 *   probe.c     which pages hold data (pagemap): unpopulated ranges are not read at all
 *   layout.c    dump types, which bytes of which mapping, notes, ELF headers and offsets
 *   stream.c    memory read into a few buffers and written in file order (sink or sparse file)
 *   file.c      file output: the free-space floor, holes, and Stop mode's direct copy into a
 *               mapping of the file
 * They share one context per dump, struct vg__cd_ctx. /proc is read only through the toolkit in
 * engine/host/procfs.h. */
#ifndef VG_DUMP_INT_H
#define VG_DUMP_INT_H

#include "config/util.h"
#include "engine/dump/dump.h"
#include "engine/host/procfs.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define VG__CD_PAGE 4096u
#define VG__CD_CHUNK (4u << 20) /* one process_vm_readv and one write */
#define VG__CD_XSTATE_MAX (32u << 10)

/* Memory the dump may hold whatever the target's size: the copy buffers in flight, and what a
 * snapshot copies from the frozen target because a fork does not copy it. */
#define VG__CD_RING 6u                 /* chunks in flight: 24 MiB */
#define VG__CD_PRECOPY_MAX (16u << 20) /* MADV_DONTFORK / MADV_WIPEONFORK bytes */

#if defined(__x86_64__)

struct vg__cd_thread {
    pid_t tid;
    int stopped, gone;
    int released; /* detached (or found dead) at the end of the freeze */
    int sig;      /* signal dequeued by our stop: re-injected at detach */
    struct user_regs_struct regs;
    struct user_fpregs_struct fp;
    int have_fp;
    unsigned char *xstate;
    size_t xstate_len;
    unsigned long long sigpend, sighold;
    struct vg_proc_stat st;
};

struct vg__cd_seg {
    uint64_t vaddr, memsz, filesz, offset;
    unsigned flags;
    size_t map;    /* index in c->maps */
    int probe;     /* VG__CD_PROBE_*: how to find the pages that hold data (probe.c) */
    int precopied; /* the bytes come from overlays only (not in the clone) */
};

enum {
    VG__CD_PROBE_NONE = 0, /* read it all (private file mappings: the file is behind) */
    VG__CD_PROBE_PAGEMAP,  /* private anonymous: present or swapped pages */
    VG__CD_PROBE_SEEK,     /* shared: SEEK_DATA in the object mapped (/proc/PID/map_files) */
};

struct vg__cd_range {
    uint64_t lo, hi;
};

/* Bytes that replace what the memory source shows at [addr, addr + len). */
struct vg__cd_overlay {
    uint64_t addr;
    size_t len;
    char *data;
};

/* A copy buffer of VG__CD_CHUNK bytes (stream.c). */
struct vg__cd_chunk {
    struct vg__cd_chunk *next;
    size_t len;
    uint64_t addr, off; /* where the bytes come from, where they go in the file */
    char *buf;
};

/* Snapshot mode's clone (snapshot.c). */
struct vg__cd_snap {
    pid_t pid;                       /* the clone, in vigil's PID namespace; 0 when none */
    pid_t ns_pid;                    /* the clone as the target sees it (for the reap) */
    pid_t parent;                    /* the target thread that ran the clone */
    uint64_t sysaddr;                /* a syscall instruction, in the target and the clone */
    struct user_regs_struct regs;    /* the clone's registers: base of what it is made to run */
    int madvise_ok;                  /* the target's seccomp filter lets the clone madvise */
    int pagemap;                     /* /proc/CLONE/pagemap, -1 when not open */
    uint64_t release_lo, release_hi; /* written, not yet released (batched) */
};

struct vg__cd_ctx {
    pid_t pid;
    enum vg_dump_type type;
    enum vg_dump_mode mode; /* as asked, then as used */
    char *err;
    size_t errlen;
    char fallback[256]; /* why Snapshot was not used */
    vg_dump_write_cb write;
    void *wctx;
    uint64_t bytes;     /* the core's size */
    uint64_t data;      /* memory bytes read */
    uint64_t cow_bytes; /* the target's pages copied because of the clone */

    struct vg__cd_thread *th;
    size_t nth, capth;
    int frozen, detached;
    uint64_t t_freeze0, t_freeze1;

    unsigned filter;
    struct vg_maps pre, maps;
    struct vg__cd_seg *seg;
    size_t nseg, capseg;
    struct vg__cd_range *want; /* Mini / Triage extra ranges, sorted and merged */
    size_t nwant, capwant;
    struct vg__cd_overlay *ov; /* sorted by address, not overlapping */
    size_t nov, capov;
    uint64_t ov_bytes;
    char *auxv;
    size_t auxv_len;
    struct vg_proc_stat pst;
    struct vg_buf hdr; /* ELF header, program headers, notes, padding */

    pid_t mem_pid;          /* where memory is read: the target, or its clone */
    int memfd;              /* /proc/MEM_PID/mem, opened on first need */
    int no_vm_readv;        /* read and written with __atomic: copy threads share it */
    pthread_mutex_t err_mu; /* vg__cd_fail from concurrent copy threads */
    struct vg__cd_snap snap;

    /* File output (vg_coredump_to_file). */
    int fd;             /* output file, -1 for a plain sink */
    const char *path;   /* for messages */
    uint64_t keep_free; /* bytes the file system keeps free */
    uint64_t written;   /* bytes written since the last free-space check */
    /* Stop mode's direct path: memory is copied straight into a shared mapping of the output
     * file, so there is no second copy and no separate buffer to fault in. */
    int direct;            /* memory goes straight into the file mapping */
    int stage;             /* memfd the mapping is of when the file is not on tmpfs, or -1 */
    char *map;             /* file range [data_off_min, data_off_min + map_len) */
    uint64_t map_len;      /* bytes mapped (and fallocated) */
    uint64_t data_off_min; /* reserved room for headers and notes: where the data starts */
    size_t hdr_used;       /* c->hdr without the padding up to the data */
};

/* coredump.c */
uint64_t vg__cd_now_us(void);
/* Records the first error message (thread-safe) and returns rc. */
__attribute__((format(printf, 3, 4))) int vg__cd_fail(struct vg__cd_ctx *c, int rc, const char *fmt,
                                                      ...);
/* Records why Snapshot mode is not used (the first reason) and switches to Stop. */
__attribute__((format(printf, 2, 3))) void vg__cd_fallback(struct vg__cd_ctx *c, const char *fmt,
                                                           ...);
int vg__cd_exited(struct vg__cd_ctx *c);
/* True when pid is gone or a zombie. */
int vg__cd_process_gone(pid_t pid);
/* Reads and parses a /proc stat file: 0, -errno or VG_EPARSE. */
int vg__cd_stat(const char *path, struct vg_proc_stat *st);
/* MemAvailable in bytes, 0 when unknown. */
uint64_t vg__cd_mem_available(void);

/* freeze.c */
/* Turns a ptrace/process_vm_readv permission failure into a message that says what to fix. */
int vg__cd_perm_error(struct vg__cd_ctx *c, int rc, const char *what);
int vg__cd_list_tasks(pid_t pid, pid_t **out, size_t *n);
/* Seizes and stops every thread (threads started meanwhile included). */
int vg__cd_attach(struct vg__cd_ctx *c);
/* Resumes every thread; records the end of the freeze. Idempotent. */
void vg__cd_detach(struct vg__cd_ctx *c);
/* Registers, FP/xstate, per-thread stat and signal masks; xbuf has VG__CD_XSTATE_MAX bytes. */
int vg__cd_read_regs(struct vg__cd_ctx *c, struct vg__cd_thread *t, unsigned char *xbuf);
/* waitpid(tid, __WALL) without EINTR: 0 with *status, or VG_EEXITED when tid is gone. */
int vg__cd_wait(pid_t tid, int *status);

/* inject.c */
struct vg__cd_saved {
    struct user_regs_struct regs;
    uint64_t sigmask;
};
/* Runs system call nr(a[0..5]) in tid, which is in a ptrace-stop we control, from registers
 * `base` with the instruction pointer at sysaddr, and leaves tid in the syscall-exit-stop.
 * *ret: the call's return value (-errno on failure); *event (optional): the message of a
 * PTRACE_EVENT_CLONE/FORK stop met on the way; a signal met on the way is not delivered and is
 * returned in *sig (optional; 0 none). Returns 0, VG_EEXITED or another VG_E*. */
int vg__cd_inject(pid_t tid, const struct user_regs_struct *base, uint64_t sysaddr, long nr,
                  const uint64_t a[6], long *ret, unsigned long *event, int *sig);
/* A target thread about to run injected calls: saves its registers and signal mask, blocks
 * every signal, sets `options` (PTRACE_O_*). On failure the thread is left as it was. */
int vg__cd_inject_begin(pid_t tid, unsigned long options, struct vg__cd_saved *s);
/* Puts the thread back exactly as saved, in an interrupt stop like the one it was frozen in
 * (so an interrupted system call restarts on resume as the kernel would have done). A signal
 * that stopped it on the way is returned in *sig, to be delivered at detach. */
int vg__cd_inject_end(pid_t tid, const struct vg__cd_saved *s, int *sig);

/* limits.c */
/* Room left in vigil's own memory cgroup (UINT64_MAX: no limit). */
uint64_t vg__cd_self_mem_headroom(void);
/* Before the freeze: the clone's memory (overcommit, memory cgroup, the machine) and pids
 * (pids cgroup) fit. 0, or 1 with the reason recorded by vg__cd_fallback. */
int vg__cd_limits_check(struct vg__cd_ctx *c);
/* Frozen: what the target's seccomp filters (if any) answer for system call nr with arguments
 * a at instruction sysaddr. 0: allowed; 1: refused, *why says how ("returns EPERM", "kills the
 * process", "cannot be read: ..."). */
int vg__cd_seccomp_allows(pid_t tid, long nr, const uint64_t a[6], uint64_t sysaddr, char *why,
                          size_t whylen);

struct sock_filter;
struct seccomp_data;
/* Runs one classic BPF seccomp program on d: 0 with its return value, or -1 for a program it
 * does not accept (then nothing is assumed). Pure; tests/fuzz/fuzz_seccomp_bpf.c drives it. */
int vg__cd_bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d,
                   uint32_t *out);

/* snapshot.c */
/* Before the freeze. 0, or 1 with the reason recorded (Stop mode then). */
int vg__cd_snap_preflight(struct vg__cd_ctx *c);
/* Frozen, after the segments were planned: makes the target clone itself. 0 with c->snap set
 * (the caller resumes the target and reads the clone); 1 when refused (reason recorded; the
 * target is frozen and unchanged); VG_E* when the target died meanwhile. */
int vg__cd_snap_take(struct vg__cd_ctx *c);
/* [addr, addr + len) of the clone was written: the target's pages copied since the snapshot
 * are counted, and the clone lets go of them (so later writes cost the target nothing). */
int vg__cd_snap_release(struct vg__cd_ctx *c, uint64_t addr, uint64_t len, int flush);
/* Kills the clone and reaps it: as its tracer, then (a system call run briefly by one target
 * thread) as its parent, so the target never sees it. */
void vg__cd_snap_end(struct vg__cd_ctx *c);

/* mem.c */
/* From now on memory is read from pid (the target, or its clone). */
void vg__cd_set_source(struct vg__cd_ctx *c, pid_t pid);
/* Reads len bytes at addr; unreadable pages read as zeros (as the kernel leaves holes). */
int vg__cd_read_mem(struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len);
/* Small reads for the layout: 0 or -1. */
int vg__cd_peek(struct vg__cd_ctx *c, uint64_t addr, void *buf, size_t len);
int vg__cd_is_elf(struct vg__cd_ctx *c, uint64_t addr);
/* Copies [addr, addr + len) of the (frozen) source into an overlay: bytes a fork does not
 * copy. Returns 0 or VG_ENOMEM. */
int vg__cd_overlay_add(struct vg__cd_ctx *c, uint64_t addr, size_t len);
/* Applies the overlays to buf, which holds [addr, addr + len). */
void vg__cd_overlay_apply(const struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len);

/* probe.c */
/* Splits the segments of anonymous private mappings into the runs that hold data (present or
 * swapped pages) and those that never held any (no file bytes; a reader sees zeros). */
int vg__cd_probe(struct vg__cd_ctx *c);
/* Bytes of [addr, addr + len) mapped by the process of pagemap_fd alone (anonymous pages). */
uint64_t vg__cd_exclusive_bytes(int pagemap_fd, uint64_t addr, uint64_t len);

/* layout.c */
/* Mini / Triage: the extra ranges a debugger needs (stacks, TCBs, loader lists). */
int vg__cd_plan_wants(struct vg__cd_ctx *c);
/* The segment(s) of mapping idx. */
int vg__cd_plan_map(struct vg__cd_ctx *c, size_t idx);
/* Builds c->hdr and gives every segment its file offset. */
int vg__cd_layout(struct vg__cd_ctx *c);
/* Bytes the dump will copy, from the smaps read before the freeze. */
uint64_t vg__cd_estimate(struct vg__cd_ctx *c);
/* Blanks argv and the environment for Triage dumps. */
void vg__cd_redact(const struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len);

/* stream.c */
/* The headers and the memory, in file order, into the sink or the file (c->fd); in Stop mode
 * resumes the target once the last byte is read. */
int vg__cd_stream(struct vg__cd_ctx *c);

/* file.c */
/* Writes buf at off, all-zero pages as holes. Checks the free-space floor now and then. */
int vg__cd_file_write(struct vg__cd_ctx *c, const char *buf, size_t len, uint64_t off);
/* Headers at 0, size set (the end may be a hole). */
int vg__cd_file_finish(struct vg__cd_ctx *c, uint64_t size);
/* Fails with VG_ENOSPC when writing `need` more bytes would cross the free-space floor. */
int vg__cd_keep_free_check(struct vg__cd_ctx *c, uint64_t need);
/* Stop mode, before the freeze: fallocate and map the file's data range, faulted in. */
int vg__cd_map_prepare(struct vg__cd_ctx *c, uint64_t est);
/* While frozen: the layout must fit the prepared mapping (grown when needed). */
int vg__cd_map_fit(struct vg__cd_ctx *c);
void vg__cd_map_drop(struct vg__cd_ctx *c);
/* Frozen: copy into the mapping, resume, write the headers, punch holes for zero pages. */
int vg__cd_copy_direct(struct vg__cd_ctx *c);

#endif

/* coredump.c: the whole dump; path non-NULL for file output. */
int vg__cd_dump(pid_t pid, const struct vg_dump_opts *opts, vg_dump_write_cb write, void *ctx,
                int fd, const char *path, struct vg_dump_result *res, char *err, size_t errlen);

#endif
