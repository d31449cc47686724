/* Internals shared by engine/coredump*.c: /proc readers for the core dump writer. */
#ifndef VG_COREDUMP_INT_H
#define VG_COREDUMP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VG__CD_PROT_R 4u /* same values as the ELF PF_* flags */
#define VG__CD_PROT_W 2u
#define VG__CD_PROT_X 1u

struct vg__cd_map {
    uint64_t start, end, offset;
    unsigned prot;  /* VG__CD_PROT_* */
    int shared;     /* 's' in maps */
    int anon_cow;   /* smaps "Anonymous:" > 0: private pages copied on write */
    int dontdump;   /* VmFlags dd / io / pf: the kernel never dumps these */
    int hugetlb;    /* VmFlags ht */
    int have_flags; /* the smaps fields above are known */
    char *path;     /* file name as /proc shows it, NULL for anonymous / [pseudo] mappings */
    char *name;     /* "[stack]", "[vdso]", "[heap]", ... or NULL */
};

struct vg__cd_maps {
    struct vg__cd_map *v;
    size_t n, cap;
};

/* Reads /proc/PID/maps (with_smaps=0) or /proc/PID/smaps (1, slower: also fills the flags).
 * Returns 0 or -errno (ENOENT when the process is gone). */
int vg__cd_read_maps(pid_t pid, int with_smaps, struct vg__cd_maps *out);
/* Copies the smaps-only fields of `from` into maps of `to` with the same range. */
void vg__cd_merge_flags(struct vg__cd_maps *to, const struct vg__cd_maps *from);
void vg__cd_maps_free(struct vg__cd_maps *m);

/* Reads a whole (proc) file into a malloc'd, NUL-terminated buffer. Returns 0 or -errno. */
int vg__cd_read_file(const char *path, char **data, size_t *len);

/* Fields of /proc/PID[/task/TID]/stat the core needs. */
struct vg__cd_stat {
    char state;
    int ppid, pgrp, session;
    unsigned long flags;
    unsigned long long utime, stime; /* clock ticks */
    long long cutime, cstime;
    long nice;
    unsigned long long arg_start, arg_end, env_start, env_end;
};
int vg__cd_read_stat(const char *path, struct vg__cd_stat *st);

#endif
