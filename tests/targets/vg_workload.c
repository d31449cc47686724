/* Scripted workload for the engine's integration tests: runs phases in order and prints the wall
 * clock (ms) at the start of each, so a test can compare the daemon's fires with what the
 * process really did. The first argument is a tag the tests' rules filter on (CommandLine
 * contains it), so parallel tests never see each other's processes.
 *
 * usage: vg_workload TAG PHASE...
 *   spin:S[:T] burn T threads (default 1) for S seconds
 *   sleep:S    sleep S seconds
 *   grow:MB    allocate and touch MB more        threads:N  start N threads that sleep
 *   fds:N      open N more descriptors           closefds   close them again
 *   hold       sleep until killed */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void *spin(void *arg)
{
    volatile unsigned long x = 0;
    double end = now_s(CLOCK_MONOTONIC) + *(double *)arg;
    while (now_s(CLOCK_MONOTONIC) < end)
        for (int i = 0; i < 1000000; i++)
            x += (unsigned long)i * 2654435761u;
    return NULL;
}

int main(int argc, char **argv)
{
    static int fds[4096];
    int nfds = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: vg_workload TAG PHASE...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *ph = argv[i];
        const char *colon = strchr(ph, ':');
        double arg = colon ? atof(colon + 1) : 0;
        printf("phase %s %.3f\n", ph, now_s(CLOCK_REALTIME));
        fflush(stdout);
        if (strncmp(ph, "spin:", 5) == 0) {
            const char *t = strchr(colon + 1, ':');
            int n = t ? atoi(t + 1) : 1;
            pthread_t th[64];
            for (int k = 1; k < n && k < 64; k++)
                if (pthread_create(&th[k], NULL, spin, &arg) != 0)
                    return 1;
            spin(&arg);
            for (int k = 1; k < n && k < 64; k++)
                pthread_join(th[k], NULL);
        } else if (strncmp(ph, "sleep:", 6) == 0) {
            struct timespec ts = {(time_t)arg, (long)((arg - (double)(time_t)arg) * 1e9)};
            nanosleep(&ts, NULL);
        } else if (strncmp(ph, "grow:", 5) == 0) {
            size_t n = (size_t)arg << 20;
            char *p = malloc(n);
            if (!p)
                return 1;
            memset(p, 0x5a, n); /* touch every page: RSS really grows */
        } else if (strncmp(ph, "threads:", 8) == 0) {
            for (int t = 0; t < (int)arg; t++) {
                pthread_t th;
                if (pthread_create(&th, NULL, sleeper, NULL) != 0)
                    return 1;
            }
        } else if (strncmp(ph, "fds:", 4) == 0) {
            for (int f = 0; f < (int)arg && nfds < 4096; f++)
                if ((fds[nfds++] = open("/dev/null", O_RDONLY)) < 0)
                    return 1;
        } else if (strcmp(ph, "closefds") == 0) {
            while (nfds > 0)
                close(fds[--nfds]);
        } else if (strncmp(ph, "await:", 6) == 0) {
            /* until the test creates the file: a phase that starts when the test says so */
            while (access(ph + 6, F_OK) != 0) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        } else if (strcmp(ph, "hold") == 0) {
            for (;;)
                pause();
        } else {
            fprintf(stderr, "vg_workload: unknown phase %s\n", ph);
            return 2;
        }
    }
    printf("done %.3f\n", now_s(CLOCK_REALTIME));
    fflush(stdout);
    return 0;
}
