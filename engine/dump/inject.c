/* A system call run by a thread we hold in a ptrace-stop: its registers point the thread at a
 * `syscall` instruction already in its memory (nothing is written into the process), it is
 * resumed with PTRACE_SYSCALL through the entry and exit stops, and the result is read back.
 *
 * For a thread of the target (inject_begin / inject_end) everything is put back exactly: the
 * registers, the signal mask (every signal is blocked meanwhile, so no handler can run) and the
 * kind of stop. The last point matters for a thread frozen inside a system call: the kernel
 * decides to restart it (rax = -ERESTARTSYS -> rip - 2) on the way out of the stop it was frozen
 * in; after an injected call the thread is in a syscall-exit-stop instead, where that decision
 * may not be taken again. So the thread is brought back into an interrupt stop (PTRACE_INTERRUPT
 * + PTRACE_CONT) with its registers restored, and the kernel takes the decision itself when the
 * thread is detached. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#if defined(__x86_64__)

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#define PTRACE_SYSCALL_INFO_ENTRY 1
#define PTRACE_SYSCALL_INFO_EXIT 2
#endif
#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif

/* The head of struct ptrace_syscall_info: enough to tell entry from exit. */
struct syscall_info_head {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t instruction_pointer, stack_pointer;
    union {
        struct {
            uint64_t nr, args[6];
        } entry;
        struct {
            int64_t rval;
            uint8_t is_error;
        } exit;
    } u;
};

static int ptrace_err(void)
{
    return errno == ESRCH ? VG_EEXITED : -errno;
}

int vg__cd_inject(pid_t tid, const struct user_regs_struct *base, uint64_t sysaddr, long nr,
                  const uint64_t a[6], long *ret, unsigned long *event, int *sig)
{
    struct user_regs_struct r = *base;
    r.rip = sysaddr;
    r.rax = (unsigned long long)nr;
    r.orig_rax = (unsigned long long)-1; /* not in a system call: nothing to restart */
    r.rdi = a[0];
    r.rsi = a[1];
    r.rdx = a[2];
    r.r10 = a[3];
    r.r8 = a[4];
    r.r9 = a[5];
    if (sig)
        *sig = 0;
    if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0 || ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
        return ptrace_err();
    int entered = 0;
    for (int rounds = 0; rounds < 64; rounds++) {
        int st, rc = vg__cd_wait(tid, &st); /* a stop, or VG_EEXITED */
        if (rc)
            return rc;
        int ev = st >> 16, s = WSTOPSIG(st);
        if (s == (SIGTRAP | 0x80)) {
            struct syscall_info_head info;
            memset(&info, 0, sizeof(info));
            long n = ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(info), &info);
            int exiting = n > 0 ? info.op == PTRACE_SYSCALL_INFO_EXIT : entered;
            if (exiting) {
                if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0)
                    return ptrace_err();
                *ret = (long)r.rax;
                return 0;
            }
            entered = 1;
        } else if (ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_FORK ||
                   ev == PTRACE_EVENT_VFORK) {
            unsigned long msg = 0;
            if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) < 0)
                return ptrace_err();
            if (event)
                *event = msg;
        } else if (ev == 0 && s != SIGTRAP) {
            /* A signal-delivery-stop (only SIGKILL and SIGSTOP get past the blocked mask):
             * not delivered now; the caller sends it on at the end. */
            if (sig && !*sig)
                *sig = s;
        }
        if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
            return ptrace_err();
    }
    return VG_EAGAIN;
}

int vg__cd_inject_begin(pid_t tid, unsigned long options, struct vg__cd_saved *s)
{
    uint64_t all = ~(uint64_t)0;
    if (ptrace(PTRACE_GETREGS, tid, 0, &s->regs) < 0 ||
        ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(s->sigmask), &s->sigmask) < 0 ||
        ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(all), &all) < 0)
        return ptrace_err(); /* nothing changed yet */
    if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)(options | PTRACE_O_TRACESYSGOOD)) < 0) {
        int rc = ptrace_err();
        ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(s->sigmask), &s->sigmask);
        return rc;
    }
    return 0;
}

int vg__cd_inject_end(pid_t tid, const struct vg__cd_saved *s, int *sig)
{
    if (ptrace(PTRACE_SETOPTIONS, tid, 0, 0) < 0 || ptrace(PTRACE_SETREGS, tid, 0, &s->regs) < 0 ||
        ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(s->sigmask), &s->sigmask) < 0 ||
        ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 || ptrace(PTRACE_CONT, tid, 0, 0) < 0)
        return ptrace_err();
    for (int rounds = 0; rounds < 64; rounds++) {
        int st, rc = vg__cd_wait(tid, &st); /* a stop, or VG_EEXITED */
        if (rc)
            return rc;
        if ((st >> 16) == PTRACE_EVENT_STOP)
            return 0;
        if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP) {
            /* A signal-delivery-stop is as good a stop: detach delivers the signal. */
            if (sig)
                *sig = WSTOPSIG(st);
            return 0;
        }
        if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
            return ptrace_err();
    }
    return VG_EAGAIN;
}

#endif
