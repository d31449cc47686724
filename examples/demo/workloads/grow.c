/* Demo workload: grows its resident memory in steps (default 50 MB every 2 s, up to 400 MB),
 * touching every page so RSS really grows. Usage: vigil-demo-grow [STEP_MB] [INTERVAL_MS] [MAX_MB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long step = argc > 1 ? atol(argv[1]) : 50;
    long interval_ms = argc > 2 ? atol(argv[2]) : 2000;
    long max = argc > 3 ? atol(argv[3]) : 400;
    long total = 0;
    printf("vigil-demo-grow: pid %d, +%ld MB every %ld ms up to %ld MB\n", (int)getpid(), step,
           interval_ms, max);
    fflush(stdout);
    for (;;) {
        if (total + step <= max) {
            char *p = malloc((size_t)step << 20);
            if (!p)
                return 1;
            memset(p, 0x5a, (size_t)step << 20);
            total += step;
            printf("vigil-demo-grow: %ld MB\n", total);
            fflush(stdout);
        }
        usleep((useconds_t)interval_ms * 1000);
    }
}
