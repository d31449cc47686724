#include "fake_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fake_tree: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

static void mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                die("mkdir", tmp);
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        die("mkdir", tmp);
}

void fake_mkdir(const struct fake_tree *t, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", t->root, rel);
    mkdir_p(path);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdir_p(dir);
    }
    /* O_TRUNC without O_CREAT of a new inode: fds kept open by the table see the new text */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open", path);
    if (len && write(fd, data, len) != (ssize_t)len)
        die("write", path);
    close(fd);
}

void fake_write(const struct fake_tree *t, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", t->root, rel);
    write_bytes(path, text, strlen(text));
}

void fake_tree_init(struct fake_tree *t)
{
    snprintf(t->root, sizeof(t->root), "/tmp/vg-sampler-XXXXXX");
    if (!mkdtemp(t->root))
        die("mkdtemp", t->root);
    snprintf(t->proc, sizeof(t->proc), "%s/proc", t->root);
    snprintf(t->sys, sizeof(t->sys), "%s/sys", t->root);
    snprintf(t->cg, sizeof(t->cg), "%s/cgroup", t->root);
    fake_write(t, "proc/sys/kernel/random/boot_id", "11111111-2222-3333-4444-555555555555\n");
    fake_write(t, "sys/devices/system/cpu/online", "0-3\n");
    fake_mkdir(t, "cgroup");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void fake_tree_cleanup(struct fake_tree *t)
{
    nftw(t->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void fake_proc_write_stat(const struct fake_tree *t, const struct fake_proc *p)
{
    char rel[64], text[1024];
    snprintf(rel, sizeof(rel), "proc/%d/stat", p->pid);
    snprintf(text, sizeof(text),
             "%d (%s) %c %d %d %d 0 -1 %u %llu 0 %llu 0 %llu %llu 0 0 20 0 %d 0 %llu %llu %lld "
             "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
             p->pid, p->comm, p->state ? p->state : 'S', p->ppid, p->pid, p->pid, p->flags,
             (unsigned long long)p->minflt, (unsigned long long)p->majflt,
             (unsigned long long)p->utime, (unsigned long long)p->stime,
             p->threads ? p->threads : 1, (unsigned long long)p->start,
             (unsigned long long)p->vsize, (long long)p->rss_pages);
    fake_write(t, rel, text);
}

void fake_proc_write(const struct fake_tree *t, const struct fake_proc *p)
{
    char rel[512], text[2048];
    fake_proc_write_stat(t, p);

    char nspid[64];
    snprintf(nspid, sizeof(nspid), "%d", p->pid);
    snprintf(rel, sizeof(rel), "proc/%d/status", p->pid);
    snprintf(text, sizeof(text),
             "Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\nPPid:\t%d\n"
             "Uid:\t%d\t%d\t%d\t%d\nNSpid:\t%s\nThreads:\t%d\nCpus_allowed:\tff\n"
             "Cpus_allowed_list:\t%s\nvoluntary_ctxt_switches:\t%d\n"
             "nonvoluntary_ctxt_switches:\t%d\n",
             p->comm, p->pid, p->pid, p->ppid, p->uid, p->uid + 1, p->uid, p->uid,
             p->nspid ? p->nspid : nspid, p->threads ? p->threads : 1,
             p->cpus_allowed ? p->cpus_allowed : "0-3", 11 * p->pid, 7);
    fake_write(t, rel, text);

    snprintf(rel, sizeof(rel), "%s/proc/%d/cmdline", t->root, p->pid);
    write_bytes(rel, p->cmdline ? p->cmdline : "", p->cmdline ? p->cmdline_len : 0);

    snprintf(rel, sizeof(rel), "proc/%d/cgroup", p->pid);
    fake_write(t, rel, p->cgroup ? p->cgroup : "0::/\n");
    if (p->io) {
        snprintf(rel, sizeof(rel), "proc/%d/io", p->pid);
        fake_write(t, rel, p->io);
    }
    snprintf(rel, sizeof(rel), "proc/%d/maps", p->pid);
    fake_write(t, rel, p->maps ? p->maps : "");
    snprintf(rel, sizeof(rel), "proc/%d/root/tmp", p->pid);
    fake_mkdir(t, rel);
    snprintf(rel, sizeof(rel), "proc/%d/fd", p->pid);
    fake_mkdir(t, rel);
    for (int i = 0; i < p->nfds; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/proc/%d/fd/%d", t->root, p->pid, i);
        if (symlink("/dev/null", path) < 0 && errno != EEXIST)
            die("symlink", path);
    }
    if (p->exe) {
        char path[512];
        snprintf(path, sizeof(path), "%s/proc/%d/exe", t->root, p->pid);
        unlink(path);
        if (symlink(p->exe, path) < 0)
            die("symlink", path);
    }
}

void fake_proc_remove(const struct fake_tree *t, int pid)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/proc/%d", t->root, pid);
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
