/* Shared between proc.c, sampler.c and cgroup.c only. */
#ifndef VG_PROC_INT_H
#define VG_PROC_INT_H

#include "engine/host/proc.h"

#include <sys/types.h>

/* Reads one of the process's files (VG__PF_STAT, _STATUS, _IO) through a kept fd when there is
 * one; otherwise opens it and keeps the fd while the table's budget allows. -ESRCH or -ENOENT
 * mean the process is gone. Returns the length or -errno. */
ssize_t vg__proc_read(struct vg_proc *p, int which, char *buf, size_t cap);
/* Reads proc_root/PID/rel without keeping the fd (for rare files such as smaps_rollup). */
ssize_t vg__proc_read_rel(struct vg_proc *p, const char *rel, char *buf, size_t cap);
/* Counts entries of proc_root/PID/fd. Returns the count or -errno. */
int vg__proc_count_fds(struct vg_proc *p);
/* Re-reads and parses stat into p->st. Returns 0, VG_EEXITED (gone or pid reused) or -errno. */
int vg__proc_refresh_stat(struct vg_proc *p);

#endif
