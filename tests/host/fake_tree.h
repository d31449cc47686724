/* Builds fake /proc, /sys and /sys/fs/cgroup trees in a temp dir for the sampler unit tests. */
#ifndef VG_TEST_FAKE_TREE_H
#define VG_TEST_FAKE_TREE_H

#include <stddef.h>
#include <stdint.h>

struct fake_tree {
    char root[256];
    char proc[300];
    char sys[300];
    char cg[300];
};

struct fake_proc {
    int pid;
    int ppid;
    const char *comm;
    unsigned flags;
    char state;
    uint64_t utime, stime;
    uint64_t start;
    int threads;
    uint64_t vsize;
    int64_t rss_pages;
    uint64_t minflt, majflt;
    const char *nspid;   /* e.g. "4242\t17\t1"; NULL = the pid */
    const char *cmdline; /* args separated by '\0' (length below); NULL = empty */
    size_t cmdline_len;
    const char *cgroup;       /* /proc/PID/cgroup text; NULL = "0::/\n" */
    const char *io;           /* NULL = no io file */
    const char *maps;         /* NULL = empty */
    const char *exe;          /* symlink target; NULL = none */
    const char *cpus_allowed; /* NULL = "0-3" */
    int nfds;
    int uid;
};

void fake_tree_init(struct fake_tree *t);
void fake_tree_cleanup(struct fake_tree *t);
/* Writes (or rewrites in place, keeping the inode) root-relative file rel. */
void fake_write(const struct fake_tree *t, const char *rel, const char *text);
void fake_mkdir(const struct fake_tree *t, const char *rel);
void fake_proc_write(const struct fake_tree *t, const struct fake_proc *p);
/* Rewrites only stat (in place). */
void fake_proc_write_stat(const struct fake_tree *t, const struct fake_proc *p);
void fake_proc_remove(const struct fake_tree *t, int pid);

#endif
