/* Layout: the dump types (which bytes of which mapping: the kernel's coredump_filter rules for
 * WithHeap, everything for Full, what a debugger needs for Mini and Triage), the notes (registers
 * of every thread, process info, auxv, mapped files), the ELF and program headers, and the file
 * offset of every segment. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/procfs.h>
#include <sys/time.h>
#include <unistd.h>

/* coredump_filter bits (core(5)). */
#define CD_F_ANON_PRIVATE (1u << 0)
#define CD_F_ANON_SHARED (1u << 1)
#define CD_F_FILE_PRIVATE (1u << 2)
#define CD_F_FILE_SHARED (1u << 3)
#define CD_F_ELF_HEADERS (1u << 4)
#define CD_F_HUGE_PRIVATE (1u << 5)
#define CD_F_HUGE_SHARED (1u << 6)

static const char *const type_names[] = {"WithHeap", "Full", "Mini", "Triage"};
static const char *const mode_names[] = {"Snapshot", "Stop"};

/* Index of s (case-insensitive) in names[n], or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

int vg_dump_type_parse(const char *s, enum vg_dump_type *out)
{
    int i = name_index(type_names, VG_ARRAY_SIZE(type_names), s);
    if (i < 0)
        return VG_EINVAL;
    *out = (enum vg_dump_type)i;
    return 0;
}

const char *vg_dump_type_name(enum vg_dump_type t)
{
    return (unsigned)t < VG_ARRAY_SIZE(type_names) ? type_names[t] : "?";
}

int vg_dump_mode_parse(const char *s, enum vg_dump_mode *out)
{
    int i = name_index(mode_names, VG_ARRAY_SIZE(mode_names), s);
    if (i < 0)
        return VG_EINVAL;
    *out = (enum vg_dump_mode)i;
    return 0;
}

const char *vg_dump_mode_name(enum vg_dump_mode m)
{
    return (unsigned)m < VG_ARRAY_SIZE(mode_names) ? mode_names[m] : "?";
}

#if defined(__x86_64__)

/* ---- layout ---------------------------------------------------------------------------------- */

/* Private anonymous memory: a page that was never populated holds nothing (probe.c). */
static int is_anon(const struct vg_map *m)
{
    if (m->path || m->shared || m->hugetlb)
        return 0;
    return !m->name || strcmp(m->name, "[heap]") == 0 || strncmp(m->name, "[stack", 6) == 0 ||
           strncmp(m->name, "[anon:", 6) == 0;
}

static int cd_add_seg(struct vg__cd_ctx *c, size_t map, uint64_t vaddr, uint64_t memsz,
                      uint64_t filesz)
{
    if (vg_grow((void **)&c->seg, &c->capseg, c->nseg, sizeof(*c->seg), 128))
        return VG_ENOMEM;
    const struct vg_map *m = &c->maps.v[map];
    struct vg__cd_seg *s = &c->seg[c->nseg++];
    memset(s, 0, sizeof(*s));
    s->vaddr = vaddr;
    s->memsz = memsz;
    s->filesz = filesz;
    s->flags = m->prot;
    s->map = map;
    s->probe = is_anon(m)                 ? VG__CD_PROBE_PAGEMAP
               : m->shared && !m->hugetlb ? VG__CD_PROBE_SEEK
                                          : VG__CD_PROBE_NONE;
    return 0;
}

static int is_deleted_name(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 10 && strcmp(path + n - 10, " (deleted)") == 0;
}

/* The kernel's vma_dump_size() decision, from what /proc shows. */
static uint64_t filter_size(struct vg__cd_ctx *c, const struct vg_map *m)
{
    uint64_t whole = m->end - m->start;
    unsigned f = c->filter;
    if (m->name && (strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0))
        return whole;
    if (m->hugetlb)
        return (f & (m->shared ? CD_F_HUGE_SHARED : CD_F_HUGE_PRIVATE)) ? whole : 0;
    if (m->shared) {
        /* Shared anonymous memory is an unlinked shmem file. */
        int anon = !m->path || is_deleted_name(m->path);
        return (f & (anon ? CD_F_ANON_SHARED : CD_F_FILE_SHARED)) ? whole : 0;
    }
    /* Private file mappings with copied-on-write pages count as anonymous (anon_vma). */
    int cow = m->have_flags ? m->anon_cow : (m->prot & VG_MAP_W) != 0;
    if ((!m->path || cow) && (f & CD_F_ANON_PRIVATE))
        return whole;
    if (!m->path)
        return 0;
    if (f & CD_F_FILE_PRIVATE)
        return whole;
    if ((f & CD_F_ELF_HEADERS) && m->offset == 0 && vg__cd_is_elf(c, m->start))
        return VG__CD_PAGE;
    return 0;
}

/* Mini / Triage: ranges a debugger needs beyond whole mappings. Page-aligned outward. */
static int cd_want(struct vg__cd_ctx *c, uint64_t lo, uint64_t hi)
{
    lo &= ~(uint64_t)(VG__CD_PAGE - 1);
    hi = (hi + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1);
    if (lo >= hi)
        return 0;
    if (vg_grow((void **)&c->want, &c->capwant, c->nwant, sizeof(*c->want), 64))
        return VG_ENOMEM;
    c->want[c->nwant].lo = lo;
    c->want[c->nwant++].hi = hi;
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct vg__cd_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The dynamic loader's list of loaded objects (r_debug -> link_map chain) lives in loader
 * allocations outside any file mapping; debuggers walk it to find the shared libraries. */
static int cd_want_link_maps(struct vg__cd_ctx *c)
{
    uint64_t phdr = 0, phnum = 0, bias = 0, dyn = 0, rdebug = 0;
    int have_bias = 0;
    for (size_t i = 0; i + 16 <= c->auxv_len; i += 16) {
        uint64_t kv[2];
        memcpy(kv, c->auxv + i, 16);
        if (kv[0] == AT_PHDR)
            phdr = kv[1];
        else if (kv[0] == AT_PHNUM)
            phnum = kv[1];
    }
    if (!phdr || !phnum || phnum > 256)
        return 0;
    for (uint64_t i = 0; i < phnum; i++) {
        Elf64_Phdr ph;
        if (vg__cd_peek(c, phdr + i * sizeof(ph), &ph, sizeof(ph)))
            return 0;
        if (ph.p_type == PT_PHDR) {
            bias = phdr - ph.p_vaddr;
            have_bias = 1;
        } else if (ph.p_type == PT_DYNAMIC) {
            dyn = ph.p_vaddr;
        }
    }
    if (!dyn || !have_bias)
        return 0;
    dyn += bias;
    for (unsigned i = 0; i < 4096; i++) {
        Elf64_Dyn d;
        if (vg__cd_peek(c, dyn + i * sizeof(d), &d, sizeof(d)) || d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_DEBUG) {
            rdebug = d.d_un.d_ptr;
            break;
        }
    }
    uint64_t lm = 0;
    if (!rdebug || vg__cd_peek(c, rdebug + 8, &lm, 8))
        return 0;
    int rc = cd_want(c, rdebug, rdebug + 40);
    /* Public part of struct link_map: l_addr, l_name, l_ld, l_next, l_prev. The loader's
     * private fields follow; keep a generous slice of them for thread_db's TLS lookups. */
    for (unsigned n = 0; lm && n < 4096 && !rc; n++) {
        uint64_t f[5];
        if (vg__cd_peek(c, lm, f, sizeof(f)))
            break;
        rc = cd_want(c, lm, lm + 2048);
        if (!rc && f[1])
            rc = cd_want(c, f[1], f[1] + 256);
        lm = f[3];
    }
    return rc;
}

int vg__cd_plan_wants(struct vg__cd_ctx *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->nth && !rc; i++) {
        const struct vg__cd_thread *t = &c->th[i];
        if (t->gone)
            continue;
        uint64_t sp = t->regs.rsp;
        for (size_t j = 0; j < c->maps.n; j++) {
            const struct vg_map *m = &c->maps.v[j];
            if (sp >= m->start && sp < m->end) {
                /* From the stack pointer less the red zone up to the mapping's top. */
                rc = cd_want(c, sp >= m->start + 128 ? sp - 128 : m->start, m->end);
                break;
            }
        }
        /* Thread control block and static TLS around the thread pointer (thread_db). */
        if (!rc && t->regs.fs_base > VG__CD_PAGE)
            rc = cd_want(c, t->regs.fs_base - VG__CD_PAGE, t->regs.fs_base + 2 * VG__CD_PAGE);
    }
    if (!rc)
        rc = cd_want_link_maps(c);
    if (!rc && c->nwant > 1) {
        qsort(c->want, c->nwant, sizeof(c->want[0]), range_cmp);
        size_t o = 0;
        for (size_t i = 1; i < c->nwant; i++) {
            if (c->want[i].lo <= c->want[o].hi) {
                if (c->want[i].hi > c->want[o].hi)
                    c->want[o].hi = c->want[i].hi;
            } else {
                c->want[++o] = c->want[i];
            }
        }
        c->nwant = o + 1;
    }
    return rc;
}

int vg__cd_plan_map(struct vg__cd_ctx *c, size_t idx)
{
    const struct vg_map *m = &c->maps.v[idx];
    uint64_t whole = m->end - m->start;
    int readable =
        (m->prot & VG_MAP_R) && !m->dontdump && !(m->name && strncmp(m->name, "[vvar", 5) == 0);
    if (!readable)
        return cd_add_seg(c, idx, m->start, whole, 0);
    if (c->type == VG_DUMP_FULL)
        return cd_add_seg(c, idx, m->start, whole, whole);
    if (c->type == VG_DUMP_WITH_HEAP)
        return cd_add_seg(c, idx, m->start, whole, filter_size(c, m));

    /* Mini / Triage: what a debugger needs to unwind and name frames. */
    int cow = m->have_flags ? m->anon_cow : (m->prot & VG_MAP_W) != 0;
    if (m->name && (strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0))
        return cd_add_seg(c, idx, m->start, whole, whole);
    if (m->path && !m->shared && ((m->prot & VG_MAP_W) || cow))
        return cd_add_seg(c, idx, m->start, whole, whole); /* .data, .got, relro */
    if (!m->path && !m->name && !m->shared && idx > 0 && c->maps.v[idx - 1].path &&
        c->maps.v[idx - 1].end == m->start && (m->prot & VG_MAP_W) && whole <= (1u << 20))
        return cd_add_seg(c, idx, m->start, whole, whole); /* .bss beyond the file */

    /* Otherwise only the wanted ranges (stacks, TCBs, loader lists, ELF header), the rest as
     * holes, one PT_LOAD per piece. */
    uint64_t at = m->start;
    int rc = 0;
    if (m->path && m->offset == 0 && vg__cd_is_elf(c, m->start)) {
        rc = cd_add_seg(c, idx, m->start, VG__CD_PAGE, VG__CD_PAGE);
        at += VG__CD_PAGE;
    }
    for (size_t i = 0; i < c->nwant && !rc && at < m->end; i++) {
        uint64_t lo = c->want[i].lo > at ? c->want[i].lo : at;
        uint64_t hi = c->want[i].hi < m->end ? c->want[i].hi : m->end;
        if (lo >= hi)
            continue;
        if (lo > at)
            rc = cd_add_seg(c, idx, at, lo - at, 0);
        if (!rc)
            rc = cd_add_seg(c, idx, lo, hi - lo, hi - lo);
        at = hi;
    }
    if (!rc && at < m->end)
        rc = cd_add_seg(c, idx, at, m->end - at, 0);
    return rc;
}

static int cd_note(struct vg_buf *b, const char *name, uint32_t type, const void *desc, size_t len)
{
    static const char zero[8];
    uint32_t h[3] = {(uint32_t)strlen(name) + 1, (uint32_t)len, type};
    int rc = vg_buf_append(b, h, sizeof(h));
    if (!rc)
        rc = vg_buf_append(b, name, h[0]);
    if (!rc && (h[0] & 3))
        rc = vg_buf_append(b, zero, 4 - (h[0] & 3));
    if (!rc && len)
        rc = vg_buf_append(b, desc, len);
    if (!rc && (len & 3))
        rc = vg_buf_append(b, zero, 4 - (len & 3));
    return rc;
}

static void ticks_to_tv(unsigned long long ticks, long hz, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ticks / (unsigned long long)hz);
    tv->tv_usec = (suseconds_t)((ticks % (unsigned long long)hz) * 1000000ull / (unsigned)hz);
}

static int cd_thread_notes(struct vg__cd_ctx *c, struct vg_buf *b, const struct vg__cd_thread *t)
{
    struct elf_prstatus pr;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    memset(&pr, 0, sizeof(pr));
    pr.pr_info.si_signo = SIGSTOP;
    pr.pr_cursig = SIGSTOP;
    pr.pr_sigpend = t->sigpend;
    pr.pr_sighold = t->sighold;
    pr.pr_pid = t->tid;
    pr.pr_ppid = c->pst.ppid;
    pr.pr_pgrp = c->pst.pgrp;
    pr.pr_sid = c->pst.session;
    ticks_to_tv(t->st.utime, hz, &pr.pr_utime);
    ticks_to_tv(t->st.stime, hz, &pr.pr_stime);
    ticks_to_tv(c->pst.cutime > 0 ? (unsigned long long)c->pst.cutime : 0, hz, &pr.pr_cutime);
    ticks_to_tv(c->pst.cstime > 0 ? (unsigned long long)c->pst.cstime : 0, hz, &pr.pr_cstime);
    _Static_assert(sizeof(pr.pr_reg) == sizeof(t->regs), "user_regs_struct is elf_gregset_t");
    memcpy(&pr.pr_reg, &t->regs, sizeof(pr.pr_reg));
    pr.pr_fpvalid = t->have_fp;
    return cd_note(b, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
}

static int cd_thread_fp_notes(struct vg_buf *b, const struct vg__cd_thread *t)
{
    int rc = 0;
    if (t->have_fp)
        rc = cd_note(b, "CORE", NT_PRFPREG, &t->fp, sizeof(t->fp));
    if (!rc && t->xstate)
        rc = cd_note(b, "LINUX", NT_X86_XSTATE, t->xstate, t->xstate_len);
    return rc;
}

static int cd_process_notes(struct vg__cd_ctx *c, struct vg_buf *b)
{
    char path[64], comm[32] = "", status[4096] = "";
    char cmdline[sizeof(((struct elf_prpsinfo *)0)->pr_psargs)]; /* read keeps a NUL */
    struct vg_proc_status st;
    struct elf_prpsinfo ps;
    siginfo_t si;
    struct vg_buf nf;
    int rc;

    vg_buf_init(&nf);
    memset(&ps, 0, sizeof(ps));
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
    if (vg_procfs_read(AT_FDCWD, path, comm, sizeof(comm)) > 0)
        comm[strcspn(comm, "\n")] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
    ssize_t slen = vg_procfs_read(AT_FDCWD, path, status, sizeof(status));
    if (slen > 0 && vg_procfs_parse_status(status, (size_t)slen, &st) == 0) {
        ps.pr_uid = st.uid[0] >= 0 ? (unsigned)st.uid[0] : 0;
        ps.pr_gid = st.gid[0] >= 0 ? (unsigned)st.gid[0] : 0;
    }
    static const char states[] = "RSDTZW";
    const char *sp = strchr(states, c->pst.state);
    ps.pr_state = (char)(sp && c->pst.state ? sp - states : 0);
    ps.pr_sname = c->pst.state ? c->pst.state : 'R';
    ps.pr_zomb = c->pst.state == 'Z';
    ps.pr_nice = (char)c->pst.nice;
    ps.pr_flag = c->pst.flags;
    ps.pr_pid = c->pid;
    ps.pr_ppid = c->pst.ppid;
    ps.pr_pgrp = c->pst.pgrp;
    ps.pr_sid = c->pst.session;
    memcpy(ps.pr_fname, comm, strnlen(comm, sizeof(ps.pr_fname) - 1));
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)c->pid);
    ssize_t cmdlen =
        c->type == VG_DUMP_TRIAGE ? 0 : vg_procfs_read(AT_FDCWD, path, cmdline, sizeof(cmdline));
    if (cmdlen > 0) {
        size_t n = (size_t)cmdlen;
        for (size_t i = 0; i < n; i++)
            ps.pr_psargs[i] = cmdline[i] ? cmdline[i] : ' ';
        while (n > 0 && ps.pr_psargs[n - 1] == ' ')
            ps.pr_psargs[--n] = '\0';
    }
    rc = cd_note(b, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
    if (rc)
        goto out;

    /* No signal caused this dump: report the stop, as a debugger's gcore does. */
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGSTOP;
    rc = cd_note(b, "CORE", NT_SIGINFO, &si, sizeof(si));
    if (rc)
        goto out;

    if (c->auxv_len) {
        rc = cd_note(b, "CORE", NT_AUXV, c->auxv, c->auxv_len);
        if (rc)
            goto out;
    }

    /* NT_FILE: count, page size, {start, end, file page offset}..., then the names. */
    uint64_t count = 0, page = VG__CD_PAGE;
    for (size_t i = 0; i < c->maps.n; i++)
        count += c->maps.v[i].path != NULL;
    rc = vg_buf_append(&nf, &count, 8);
    if (!rc)
        rc = vg_buf_append(&nf, &page, 8);
    for (size_t i = 0; i < c->maps.n && !rc; i++) {
        const struct vg_map *m = &c->maps.v[i];
        if (!m->path)
            continue;
        uint64_t v[3] = {m->start, m->end, m->offset / VG__CD_PAGE};
        rc = vg_buf_append(&nf, v, sizeof(v));
    }
    for (size_t i = 0; i < c->maps.n && !rc; i++)
        if (c->maps.v[i].path)
            rc = vg_buf_append(&nf, c->maps.v[i].path, strlen(c->maps.v[i].path) + 1);
    if (!rc)
        rc = cd_note(b, "CORE", NT_FILE, nf.data, nf.len);
out:
    vg_buf_free(&nf);
    return rc ? vg__cd_fail(c, rc, "building notes: %s", vg_strerror(rc)) : 0;
}

/* Builds c->hdr: ELF header, program headers, [extended numbering section], notes, padding to
 * the first page-aligned segment, and gives every PT_LOAD its file offset. */
int vg__cd_layout(struct vg__cd_ctx *c)
{
    struct vg_buf notes;
    int rc = 0;
    vg_buf_init(&notes);

    /* The leader's notes come first: debuggers show the first thread as the current one. */
    size_t first = 0;
    for (size_t i = 0; i < c->nth; i++)
        if (c->th[i].tid == c->pid && !c->th[i].gone)
            first = i;
    while (first < c->nth && c->th[first].gone)
        first++;
    rc = cd_thread_notes(c, &notes, &c->th[first]);
    if (!rc)
        rc = cd_process_notes(c, &notes);
    if (!rc)
        rc = cd_thread_fp_notes(&notes, &c->th[first]);
    for (size_t i = 0; i < c->nth && !rc; i++) {
        if (i == first || c->th[i].gone)
            continue;
        rc = cd_thread_notes(c, &notes, &c->th[i]);
        if (!rc)
            rc = cd_thread_fp_notes(&notes, &c->th[i]);
    }
    if (rc)
        goto out;

    size_t phnum = c->nseg + 1;
    int extnum = phnum >= PN_XNUM;
    uint64_t off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
    uint64_t shoff = 0;
    if (extnum) {
        shoff = off;
        off += sizeof(Elf64_Shdr);
    }
    uint64_t note_off = off;
    off += notes.len;
    off = (off + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1);
    if (c->map && off <= c->data_off_min)
        off = c->data_off_min; /* the data goes where the file mapping already is */
    uint64_t data_off = off;
    for (size_t i = 0; i < c->nseg; i++) {
        c->seg[i].offset = off;
        off += c->seg[i].filesz;
    }

    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof(eh));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_CORE;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = extnum ? PN_XNUM : (Elf64_Half)phnum;
    if (extnum) {
        eh.e_shoff = shoff;
        eh.e_shentsize = sizeof(Elf64_Shdr);
        eh.e_shnum = 1;
        eh.e_shstrndx = SHN_UNDEF;
    }
    rc = vg_buf_append(&c->hdr, &eh, sizeof(eh));

    Elf64_Phdr ph;
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_NOTE;
    ph.p_offset = note_off;
    ph.p_filesz = notes.len;
    ph.p_align = 4;
    if (!rc)
        rc = vg_buf_append(&c->hdr, &ph, sizeof(ph));
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        memset(&ph, 0, sizeof(ph));
        ph.p_type = PT_LOAD;
        ph.p_flags = c->seg[i].flags;
        ph.p_offset = c->seg[i].offset;
        ph.p_vaddr = c->seg[i].vaddr;
        ph.p_filesz = c->seg[i].filesz;
        ph.p_memsz = c->seg[i].memsz;
        ph.p_align = VG__CD_PAGE;
        rc = vg_buf_append(&c->hdr, &ph, sizeof(ph));
    }
    if (!rc && extnum) {
        Elf64_Shdr sh;
        memset(&sh, 0, sizeof(sh));
        sh.sh_type = SHT_NULL;
        sh.sh_info = (Elf64_Word)phnum;
        rc = vg_buf_append(&c->hdr, &sh, sizeof(sh));
    }
    if (!rc)
        rc = vg_buf_append(&c->hdr, notes.data, notes.len);
    c->hdr_used = c->hdr.len;
    while (!rc && c->hdr.len < data_off) {
        static const char zero[512];
        size_t n = data_off - c->hdr.len;
        rc = vg_buf_append(&c->hdr, zero, n < sizeof(zero) ? n : sizeof(zero));
    }
out:
    vg_buf_free(&notes);
    return rc ? vg__cd_fail(c, rc, "building the core layout: %s", vg_strerror(rc)) : 0;
}

void vg__cd_redact(const struct vg__cd_ctx *c, uint64_t addr, char *buf, size_t len)
{
    const uint64_t r[2][2] = {{c->pst.arg_start, c->pst.arg_end},
                              {c->pst.env_start, c->pst.env_end}};
    for (int i = 0; i < 2; i++) {
        uint64_t lo = r[i][0] > addr ? r[i][0] : addr;
        uint64_t hi = r[i][1] < addr + len ? r[i][1] : addr + len;
        if (lo < hi)
            memset(buf + (lo - addr), 0, hi - lo);
    }
}

uint64_t vg__cd_estimate(struct vg__cd_ctx *c)
{
    uint64_t est = 0;
    for (size_t i = 0; i < c->pre.n; i++) {
        const struct vg_map *m = &c->pre.v[i];
        if (!(m->prot & VG_MAP_R) || m->dontdump || (m->name && strncmp(m->name, "[vvar", 5) == 0))
            continue;
        uint64_t n = c->type == VG_DUMP_FULL        ? m->end - m->start
                     : c->type == VG_DUMP_WITH_HEAP ? filter_size(c, m)
                                                    : 0;
        /* unpopulated pages are not read (probe.c) */
        if (n && is_anon(m) && m->have_flags && m->anonymous + m->swap < n)
            n = m->anonymous + m->swap;
        est += n;
    }
    return est;
}

#endif
