/* What rules/ knows about a process when matching Filters (filled by engine/ discovery). */
#ifndef VG_PROC_INFO_H
#define VG_PROC_INFO_H

struct vg_proc_info {
    int pid;
    int nspid;              /* pid inside the process's own pid namespace (0 when unknown) */
    unsigned uid;           /* real uid */
    const char *name;       /* comm / executable name */
    const char *cmdline;    /* arguments joined with spaces */
    const char *runtime_id; /* .NET runtime instance cookie, or NULL */
    const char *managed_entry_point; /* .NET entry assembly, or NULL */
    const char *cgroup;              /* cgroup v2 path (or v1 memory path) */
    const char *user;                /* user name of uid, or NULL when unknown */
};

#endif
