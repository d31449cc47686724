/* Demo workload: burns one CPU after a short calm start, so a sustained-CPU rule fires only
 * after its window. Usage: vigil-demo-spin [SECONDS] (default: until killed). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    double limit = argc > 1 ? atof(argv[1]) : 0;
    sleep(2);
    printf("vigil-demo-spin: spinning (pid %d)\n", (int)getpid());
    fflush(stdout);
    volatile unsigned long x = 0;
    time_t start = time(NULL);
    for (;;) {
        for (int i = 0; i < 10000000; i++)
            x += (unsigned long)i * 2654435761u;
        if (limit > 0 && difftime(time(NULL), start) >= limit)
            break;
    }
    return (int)(x & 1);
}
