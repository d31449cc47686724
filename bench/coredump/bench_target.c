/* Benchmark target: MB megabytes of touched, non-zero heap and a heartbeat thread that measures
 * how long the process was frozen. The heartbeat wakes every 200 us; the largest gap between two
 * wake-ups since the last SIGUSR1 is printed on SIGUSR2 ("maxgap_us N"). Any freezing tool
 * (ptrace, gdb) shows up as one long gap, measured the same way for every tool.
 *   bench_target MB [thp]
 * thp: the heap is mapped with MADV_HUGEPAGE (transparent huge pages where the kernel allows). */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>

static atomic_ullong max_gap_us;
static volatile sig_atomic_t want_reset, want_report;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *heartbeat(void *arg)
{
    (void)arg;
    uint64_t last = now_us();
    for (;;) {
        struct timespec req = {0, 200 * 1000};
        nanosleep(&req, NULL);
        uint64_t t = now_us();
        if (t - last > atomic_load(&max_gap_us))
            atomic_store(&max_gap_us, t - last);
        last = t;
    }
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    want_reset = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    want_report = 1;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
    int thp = argc > 2 && strcmp(argv[2], "thp") == 0;
    size_t n = mb << 20;
    pthread_t t;
    /* Many 64 MiB blocks rather than one: like a real heap, several mappings. */
    size_t block = 64u << 20, blocks = (n + block - 1) / block;
    unsigned char **mem = calloc(blocks, sizeof(*mem));
    uint64_t x = 88172645463325252ull;
    for (size_t b = 0; b < blocks; b++) {
        if (thp) {
            /* 2 MiB aligned, so the whole block can be huge pages */
            unsigned char *m = mmap(NULL, block + (2u << 20), PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                return 1;
            mem[b] =
                (unsigned char *)(((uintptr_t)m + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
            madvise(mem[b], block, MADV_HUGEPAGE);
        } else {
            mem[b] = malloc(block);
        }
        if (!mem[b])
            return 1;
        uint64_t *p = (uint64_t *)mem[b];
        for (size_t i = 0; i < block / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[i] = x;
        }
    }
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    pthread_create(&t, NULL, heartbeat, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        pause();
        if (want_reset) {
            want_reset = 0;
            atomic_store(&max_gap_us, 0);
        }
        if (want_report) {
            want_report = 0;
            printf("maxgap_us %llu\n", (unsigned long long)atomic_load(&max_gap_us));
            fflush(stdout);
        }
    }
}
