/* Internals of the core writer (engine/dump/), one file per concern:
 *   coredump.c  the order of work (vg_coredump_write / vg_coredump_to_file), errors, timing
 *   freeze.c    ptrace: seize and interrupt every thread, registers, resume
 *   mem.c       reading the target's memory (process_vm_readv, /proc/PID/mem)
 *   layout.c    dump types, which bytes of which mapping, notes, ELF headers and offsets
 *   stream.c    the memory copied into buffers and handed to a sink, in file order
 *   file.c      the direct file path: memory copied straight into a mapping of the output file
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
#define VG__CD_CHUNK (4u << 20) /* one process_vm_readv and one sink call */
#define VG__CD_XSTATE_MAX (32u << 10)

#if defined(__x86_64__)

struct vg__cd_thread {
    pid_t tid;
    int stopped, gone;
    int sig; /* signal dequeued by our stop: re-injected at detach */
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
};

struct vg__cd_range {
    uint64_t lo, hi;
};

/* A copy buffer of VG__CD_CHUNK bytes (stream.c). */
struct vg__cd_chunk {
    struct vg__cd_chunk *next;
    size_t len;
    char *buf;
};

struct vg__cd_ctx {
    pid_t pid;
    enum vg_dump_type type;
    char *err;
    size_t errlen;
    vg_dump_write_cb write;
    void *wctx;
    uint64_t bytes;

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
    char *auxv;
    size_t auxv_len;
    struct vg_proc_stat pst;
    struct vg_buf hdr; /* ELF header, program headers, notes, padding */

    struct vg__cd_chunk *warm; /* copy buffers faulted in before the freeze */
    size_t nwarm, budget;      /* chunks */
    int memfd;                 /* /proc/PID/mem, opened on first need */
    int no_vm_readv;           /* read and written with __atomic: copy threads share it */
    pthread_mutex_t err_mu;    /* vg__cd_fail from concurrent copy threads */

    /* File output (vg_coredump_to_file): memory is copied straight into a shared mapping of
     * the output file, so there is no second copy and no separate buffer to fault in. */
    int fd;                /* output file, -1 for a plain sink */
    int direct;            /* memory goes straight into the file mapping */
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

/* mem.c */
/* Reads len bytes at addr; unreadable pages read as zeros (as the kernel leaves holes). */
int vg__cd_read_mem(struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len);
/* Small reads for the layout: 0 or -1. */
int vg__cd_peek(struct vg__cd_ctx *c, uint64_t addr, void *buf, size_t len);
int vg__cd_is_elf(struct vg__cd_ctx *c, uint64_t addr);

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
void vg__cd_chunk_free_list(struct vg__cd_chunk *k);
/* Allocates the copy buffer budget and, with warm, faults chunks in before the freeze. */
void vg__cd_warm_chunks(struct vg__cd_ctx *c, uint64_t est, int warm);
/* Frozen: headers, then the memory through the sink; resumes the target once copied. */
int vg__cd_stream(struct vg__cd_ctx *c);

/* file.c */
/* Before the freeze: fallocate and map the file's data range, faulted in. */
int vg__cd_map_prepare(struct vg__cd_ctx *c, uint64_t est);
/* While frozen: the layout must fit the prepared mapping (grown when needed). */
int vg__cd_map_fit(struct vg__cd_ctx *c);
void vg__cd_map_drop(struct vg__cd_ctx *c);
/* Frozen: copy into the mapping, resume, write the headers. */
int vg__cd_copy_direct(struct vg__cd_ctx *c);

#endif

/* coredump.c: the whole dump; fd >= 0 is file output (straight into the file when possible). */
int vg__cd_dump(pid_t pid, enum vg_dump_type type, vg_dump_write_cb write, void *ctx, int fd,
                struct vg_dump_result *res, char *err, size_t errlen);

#endif
