/* The /proc toolkit: one way to read a /proc, cgroup or sysfs file, and one parser per /proc
 * format (stat, status, maps/smaps), shared by discovery (proc.c), the sampler, cgroups, the
 * runtime adapters and the core writer (engine/dump/). Pure functions: no libuv, no globals, safe
 * from any thread. Parsers take text plus a length, never read past it and never trust it
 * (tests/fuzz/fuzz_proc_parse.c drives every one of them). */
#ifndef VG_PROCFS_H
#define VG_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- reading ---- */

/* Reads at most cap-1 bytes of dirfd/rel (dirfd may be AT_FDCWD with an absolute path) into buf
 * and NUL-terminates. One read: /proc seq files and regular files fill the buffer when they can.
 * Returns the length or -errno. */
ssize_t vg_procfs_read(int dirfd, const char *rel, char *buf, size_t cap);

/* Reads the whole of dirfd/rel (files such as maps or smaps come in pieces) into a malloc'd,
 * NUL-terminated buffer; a file longer than `max` bytes is -EFBIG.
 * Returns 0 or -errno; *len (optional) gets the length. */
int vg_procfs_read_alloc(int dirfd, const char *rel, size_t max, char **data, size_t *len);

/* ---- numbers and "Key: value" lines ---- */

const char *vg_procfs_skip_ws(const char *s);
/* Reads an unsigned decimal (saturating at UINT64_MAX). *ok says whether a digit was there.
 * Returns the position after the number. */
const char *vg_procfs_parse_u64(const char *s, uint64_t *out, bool *ok);
/* The text after "key" at the start of a line (after an optional ':' and blanks), or NULL. */
const char *vg_procfs_field(const char *text, const char *key);
/* vg_procfs_field + an unsigned decimal. Returns true when found. */
bool vg_procfs_field_u64(const char *text, const char *key, uint64_t *out);
/* vg_procfs_field + a hexadecimal mask (SigCgt, CapEff...). Returns true when found. */
bool vg_procfs_field_hex(const char *text, const char *key, uint64_t *out);

/* ---- /proc/PID[/task/TID]/stat ---- */

#define VG_PROC_NAME_MAX 64

struct vg_proc_stat {
    char comm[VG_PROC_NAME_MAX];
    char state;
    int ppid, pgrp, session;
    unsigned flags;
    uint64_t minflt, majflt;
    uint64_t utime, stime;  /* clock ticks */
    int64_t cutime, cstime; /* clock ticks */
    int64_t nice;
    int64_t num_threads;
    uint64_t start_ticks; /* since boot, clock ticks */
    uint64_t vsize;       /* bytes */
    int64_t rss_pages;
    uint64_t arg_start, arg_end, env_start, env_end; /* 0 when the kernel hides them */
};

/* Parses one stat line (len bytes, NUL not required). The comm may hold spaces and parentheses,
 * so it ends at the last ")". Fields after rss are optional (older kernels, hidden values).
 * Returns 0 or VG_EPARSE (truncated or malformed). */
int vg_procfs_parse_stat(const char *text, size_t len, struct vg_proc_stat *out);

/* ---- /proc/PID/status ---- */

#define VG_PROC_NSPID_MAX 8

struct vg_proc_status {
    char name[VG_PROC_NAME_MAX];  /* Name:, the kernel's escaping undone */
    int uid[4], gid[4];           /* real, effective, saved, filesystem; -1 when absent */
    int nspid[VG_PROC_NSPID_MAX]; /* NSpid: outermost first */
    int nspid_count;
    int tracer_pid;
    uint64_t sig_cgt, sig_blk, sig_pnd; /* caught / blocked / pending signal masks */
};

/* Parses a status file (len bytes). Missing fields stay at their defaults (-1 ids, 0 masks, no
 * name). Returns 0 or VG_EPARSE when the text has no Name: line at all. */
int vg_procfs_parse_status(const char *text, size_t len, struct vg_proc_status *out);

/* ---- /proc/PID/maps and smaps ---- */

#define VG_MAP_R 4u /* the ELF PF_* values */
#define VG_MAP_W 2u
#define VG_MAP_X 1u

struct vg_map {
    uint64_t start, end, offset;
    unsigned prot;  /* VG_MAP_* */
    int shared;     /* 's' in maps */
    int anon_cow;   /* smaps "Anonymous:" > 0: private pages copied on write */
    int dontdump;   /* VmFlags dd / io / pf: the kernel never dumps these */
    int hugetlb;    /* VmFlags ht */
    int have_flags; /* the smaps fields above are known */
    char *path;     /* file name as /proc shows it, NULL for anonymous / [pseudo] mappings */
    char *name;     /* "[stack]", "[vdso]", "[heap]", ... or NULL */
};

struct vg_maps {
    struct vg_map *v;
    size_t n, cap;
};

/* Parses maps (smaps=false) or smaps (true: also the flags) text of len bytes, appending to out
 * (zero it first). Malformed lines are skipped. Returns 0 or VG_ENOMEM (out then freed). */
int vg_procfs_parse_maps(const char *text, size_t len, bool smaps, struct vg_maps *out);
/* Reads and parses proc_root/PID/maps or smaps (dirfd: the proc root or AT_FDCWD for /proc).
 * Returns 0 or -errno (ENOENT when the process is gone) or VG_ENOMEM. */
int vg_procfs_read_maps(int dirfd, pid_t pid, bool smaps, struct vg_maps *out);
/* Copies the smaps-only fields of `from` into the mappings of `to` with the same range. */
void vg_maps_merge_flags(struct vg_maps *to, const struct vg_maps *from);
void vg_maps_free(struct vg_maps *m); /* NULL-safe; leaves *m empty */

#endif
