/* Target process for the API tests: touches a heap of the requested size (so a Full dump has
 * that much to write), parks threads in a named function, and takes commands on stdin so a test
 * can change its thread count (which the ThreadCount trigger watches):
 *   spawn N   start N more parked threads        -> "threads T"
 *   join      stop and join all parked threads   -> "threads T"
 * EOF on stdin ends the process. Prints "ready pid P threads T" once set up. */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARKED 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool stop_parked;
static pthread_t parked[MAX_PARKED];
static int n_parked;
volatile unsigned char *vg_api_heap; /* global so the optimizer keeps the touched pages */

/* Each parked thread waits here, so gdb shows this frame in every one of them. */
__attribute__((noinline)) static void vg_api_parked_wait(void)
{
    pthread_mutex_lock(&mu);
    while (!stop_parked)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void *parked_main(void *arg)
{
    (void)arg;
    vg_api_parked_wait();
    return NULL;
}

static int spawn(int n)
{
    for (int i = 0; i < n && n_parked < MAX_PARKED; i++) {
        if (pthread_create(&parked[n_parked], NULL, parked_main, NULL) != 0)
            return -1;
        char name[16];
        snprintf(name, sizeof(name), "api-parked-%d", n_parked);
        pthread_setname_np(parked[n_parked], name);
        n_parked++;
    }
    return 0;
}

static void join_all(void)
{
    pthread_mutex_lock(&mu);
    stop_parked = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n_parked; i++)
        pthread_join(parked[i], NULL);
    n_parked = 0;
    stop_parked = false;
}

int main(int argc, char **argv)
{
    long heap_mb = 0, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--heap-mb") == 0)
            heap_mb = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = strtol(argv[i + 1], NULL, 10);
    }
    if (heap_mb > 0) {
        size_t len = (size_t)heap_mb << 20;
        vg_api_heap = malloc(len);
        if (!vg_api_heap)
            return 1;
        /* distinct bytes per page: nothing for the kernel to merge or leave unbacked */
        for (size_t off = 0; off < len; off += 4096)
            memset((void *)(vg_api_heap + off), (int)(off >> 12) & 0xff, 4096);
    }
    if (spawn((int)threads) != 0)
        return 1;
    printf("ready pid %d threads %d\n", (int)getpid(), n_parked + 1);
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof(line), stdin)) {
        if (strncmp(line, "spawn ", 6) == 0) {
            if (spawn(atoi(line + 6)) != 0)
                return 1;
        } else if (strncmp(line, "join", 4) == 0) {
            join_all();
        }
        printf("threads %d\n", n_parked + 1);
        fflush(stdout);
    }
    join_all();
    return 0;
}
