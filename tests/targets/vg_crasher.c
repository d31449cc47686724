/* vg_crasher: a program that crashes on purpose, for `vigil crash` (core_pattern) tests.
 *   vg_crasher segv|abort|fpe|quit [SECONDS]
 * Prints "ready PID" and crashes after SECONDS (default 0) in the function vg_crash_here, whose
 * local `marker` holds 0x5eedc0de5eedc0de, so gdb can check the core shows the crashing frame. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile int vg_zero = 0;

__attribute__((noinline)) static void vg_crash_here(const char *how)
{
    volatile unsigned long long marker = 0x5eedc0de5eedc0deULL;
    if (strcmp(how, "segv") == 0)
        *(volatile int *)(unsigned long)vg_zero = (int)marker;
    else if (strcmp(how, "abort") == 0)
        abort();
    else if (strcmp(how, "fpe") == 0)
        marker = marker / (unsigned long long)vg_zero;
    else if (strcmp(how, "quit") == 0)
        raise(SIGQUIT);
    fprintf(stderr, "vg_crasher: unknown way to crash: %s\n", how);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vg_crasher segv|abort|fpe|quit [SECONDS]\n");
        return 2;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (argc > 2)
        sleep((unsigned)atoi(argv[2]));
    vg_crash_here(argv[1]);
    return 1;
}
