/* ProcessCrash: a process was killed by a signal whose default action dumps core. It never fires
 * from samples: the kernel runs `vigil crash` (core_pattern) with the crashed process's facts,
 * and that command asks vg_trigger_crash() whether the signal is one the rule wants. */
#include "rules/trigger_int.h"

#include "config/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The signals whose default action is "core" (signal(7)): the only ones core_pattern sees. */
static const struct {
    int signo;
    const char *name;
} core_signals[] = {
    {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"}, {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"}, {SIGSEGV, "SIGSEGV"}, {SIGXCPU, "SIGXCPU"},
    {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
};

const char *vg_crash_signal_name(int signo)
{
    for (size_t i = 0; i < VG_ARRAY_SIZE(core_signals); i++)
        if (core_signals[i].signo == signo)
            return core_signals[i].name;
    return NULL;
}

struct crash_cfg {
    struct vg_strlist signals;
    uint64_t mask; /* bit signo */
};

static const struct vg_field crash_fields[] = {
    {VG__FLD("Signals", VG_FIELD_STRLIST, struct crash_cfg, signals), VG__NOSET,
     .help = "a list of signals such as SIGSEGV, SIGABRT (names or numbers)"},
};

/* "SIGSEGV", "segv" or "11" -> 11; 0 when it is none of the core signals; -1 when not a
 * signal at all. */
static int parse_signal(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end != s && !*end && !errno) {
        if (v < 1 || v > 64)
            return -1;
        return vg_crash_signal_name((int)v) ? (int)v : 0;
    }
    const char *bare = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < VG_ARRAY_SIZE(core_signals); i++)
        if (strcasecmp(core_signals[i].name + 3, bare) == 0)
            return core_signals[i].signo;
    static const char *const others[] = {"HUP",  "INT",  "KILL", "USR1",   "USR2", "PIPE",
                                         "ALRM", "TERM", "CHLD", "CONT",   "STOP", "TSTP",
                                         "TTIN", "TTOU", "URG",  "VTALRM", "PROF", "WINCH",
                                         "IO",   "POLL", "PWR",  "STKFLT", "IOT"};
    for (size_t i = 0; i < VG_ARRAY_SIZE(others); i++)
        if (strcasecmp(others[i], bare) == 0)
            return strcasecmp(bare, "IOT") == 0 ? SIGABRT : 0;
    return -1;
}

static size_t crash_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct crash_cfg *c = p;
    size_t errs = 0;
    if (c->signals.n == 0) { /* every signal that dumps core */
        for (size_t i = 0; i < VG_ARRAY_SIZE(core_signals); i++)
            c->mask |= 1ull << core_signals[i].signo;
        return 0;
    }
    for (size_t i = 0; i < c->signals.n; i++) {
        int s = parse_signal(c->signals.v[i]);
        if (s > 0) {
            c->mask |= 1ull << s;
            continue;
        }
        vg_diag_err(cx->diags, cx->pos, cx->path,
                    s < 0 ? "Signals[%zu]: \"%s\" is not a signal (a name such as SIGSEGV or a "
                            "number 1-64)"
                          : "Signals[%zu]: %s never produces a core dump, so the kernel never "
                            "reports it to vigil crash (core signals: SIGQUIT, SIGILL, SIGTRAP, "
                            "SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS)",
                    i, c->signals.v[i]);
        errs++;
    }
    return errs;
}

static bool crash_fires(const void *p, int signo)
{
    const struct crash_cfg *c = p;
    return signo > 0 && signo < 64 && (c->mask & (1ull << signo));
}

/* What a rule can still do once the process is gone: ship the core the kernel hands over, and
 * run programs. */
static const char *const crash_actions[] = {"CollectDump", "Execute", NULL};

const struct vg_trigger_type vg__trigger_crash = {
    .name = "ProcessCrash",
    .flags = VG_TRIGGER_CRASH,
    .summary = "a process crashed with a signal that dumps core (through vigil crash)",
    .fields = crash_fields,
    .n_fields = VG_ARRAY_SIZE(crash_fields),
    .config_size = sizeof(struct crash_cfg),
    .check = crash_check,
    .crash = crash_fires,
    .actions = crash_actions,
};
