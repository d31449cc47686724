/* /proc readers for the core dump writer: maps, smaps flags, stat. */
#include "engine/dump/dump_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vg__cd_read_file(const char *path, char **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    buf = malloc(cap + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *data = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    free(buf);
    close(fd);
    return rc;
}

static int is_header_line(const char *l)
{
    /* Mapping lines start with a lowercase hex address; smaps keys start with a capital. */
    return isdigit((unsigned char)l[0]) || (l[0] >= 'a' && l[0] <= 'f');
}

static int parse_map_line(char *line, struct vg__cd_map *m)
{
    unsigned long long start, end, off;
    char perms[8];
    int pos = 0;
    memset(m, 0, sizeof(*m));
    if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %*u%n", &start, &end, perms, &off, &pos) != 4)
        return -EINVAL;
    m->start = start;
    m->end = end;
    m->offset = off;
    m->prot = (perms[0] == 'r' ? VG__CD_PROT_R : 0) | (perms[1] == 'w' ? VG__CD_PROT_W : 0) |
              (perms[2] == 'x' ? VG__CD_PROT_X : 0);
    m->shared = perms[3] == 's';
    const char *p = line + pos;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '/') {
        m->path = strdup(p);
        if (!m->path)
            return -ENOMEM;
    } else if (*p) {
        m->name = strdup(p);
        if (!m->name)
            return -ENOMEM;
    }
    return 0;
}

static int maps_push(struct vg__cd_maps *ms, const struct vg__cd_map *m)
{
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 64;
        struct vg__cd_map *v = realloc(ms->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        ms->v = v;
        ms->cap = cap;
    }
    ms->v[ms->n++] = *m;
    return 0;
}

static void parse_vmflags(const char *p, struct vg__cd_map *m)
{
    m->have_flags = 1;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!p[0] || !p[1])
            break;
        if ((p[0] == 'd' && p[1] == 'd') || (p[0] == 'i' && p[1] == 'o') ||
            (p[0] == 'p' && p[1] == 'f'))
            m->dontdump = 1;
        if (p[0] == 'h' && p[1] == 't')
            m->hugetlb = 1;
        while (*p && *p != ' ')
            p++;
    }
}

int vg__cd_read_maps(pid_t pid, int with_smaps, struct vg__cd_maps *out)
{
    char path[64];
    char *data = NULL;
    int rc;
    struct vg__cd_map *cur = NULL;
    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, with_smaps ? "smaps" : "maps");
    rc = vg__cd_read_file(path, &data, NULL);
    if (rc)
        return rc;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (is_header_line(line)) {
            struct vg__cd_map m;
            rc = parse_map_line(line, &m);
            if (rc == -EINVAL)
                continue;
            if (!rc)
                rc = maps_push(out, &m);
            if (rc) {
                free(m.path);
                free(m.name);
                goto out;
            }
            cur = &out->v[out->n - 1];
        } else if (cur && strncmp(line, "Anonymous:", 10) == 0) {
            cur->anon_cow = strtoull(line + 10, NULL, 10) > 0;
        } else if (cur && strncmp(line, "VmFlags:", 8) == 0) {
            parse_vmflags(line + 8, cur);
        }
    }
out:
    free(data);
    if (rc)
        vg__cd_maps_free(out);
    return rc;
}

void vg__cd_merge_flags(struct vg__cd_maps *to, const struct vg__cd_maps *from)
{
    size_t j = 0;
    /* Both lists are sorted by address. */
    for (size_t i = 0; i < to->n; i++) {
        struct vg__cd_map *m = &to->v[i];
        while (j < from->n && from->v[j].start < m->start)
            j++;
        if (j < from->n && from->v[j].start == m->start && from->v[j].end == m->end) {
            m->anon_cow = from->v[j].anon_cow;
            m->dontdump = from->v[j].dontdump;
            m->hugetlb = from->v[j].hugetlb;
            m->have_flags = from->v[j].have_flags;
        }
    }
}

void vg__cd_maps_free(struct vg__cd_maps *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].path);
        free(m->v[i].name);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

int vg__cd_read_stat(const char *path, struct vg__cd_stat *st)
{
    char *data = NULL;
    int rc = vg__cd_read_file(path, &data, NULL);
    memset(st, 0, sizeof(*st));
    if (rc)
        return rc;
    /* comm may contain spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(data, ')');
    if (!p || !p[1]) {
        free(data);
        return -EINVAL;
    }
    p += 2;
    /* Field numbers as in proc(5); p points at field 3. */
    unsigned long long f[52] = {0};
    long long sf[52] = {0};
    char state = *p;
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " \n", &save); tok && field < 52;
         tok = strtok_r(NULL, " \n", &save), field++) {
        if (field == 3)
            continue;
        f[field] = strtoull(tok, NULL, 10);
        sf[field] = strtoll(tok, NULL, 10);
    }
    st->state = state;
    st->ppid = (int)sf[4];
    st->pgrp = (int)sf[5];
    st->session = (int)sf[6];
    st->flags = (unsigned long)f[9];
    st->utime = f[14];
    st->stime = f[15];
    st->cutime = sf[16];
    st->cstime = sf[17];
    st->nice = (long)sf[19];
    st->arg_start = f[48];
    st->arg_end = f[49];
    st->env_start = f[50];
    st->env_end = f[51];
    free(data);
    return 0;
}
