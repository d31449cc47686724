/* Test target for core dumps: several threads, each parked in its own named function (blocked in
 * nanosleep, blocked in read, spinning), a planted heap value and a planted stack value. Prints
 * one status line every 100 ms so a test can check it keeps running correctly after a dump:
 *   tick N reads R sleeps S spins X errors E
 * errors counts a short sleep, a failed or interrupted syscall, or a byte out of sequence.
 * `vg_target_threads churn` also creates and joins short-lived threads without pause, to race a
 * dumper's attach. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAP_MAGIC 0x5eed5eedcafef00dULL
#define STACK_MAGIC 0x57ac4b0b5eed1234ULL

struct planted {
    uint64_t magic;
    char tag[32];
    char pad[960];
};

struct planted *vg_planted;
static int pipe_fd[2];
static atomic_ulong n_reads, n_sleeps, n_spins, n_errors;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps 300 ms per round in a single nanosleep: after a dump the call must still complete with
 * the full duration (PTRACE_INTERRUPT restarts it). */
__attribute__((noinline)) static void sleeper_wait(void)
{
    volatile uint64_t stack_marker = STACK_MAGIC;
    for (;;) {
        struct timespec req = {0, 300 * 1000 * 1000};
        uint64_t t0 = mono_ms();
        int rc = nanosleep(&req, NULL);
        uint64_t dt = mono_ms() - t0;
        if (rc != 0 || dt < 300 || stack_marker != STACK_MAGIC) {
            fprintf(stderr, "sleeper: rc=%d errno=%d dt=%llu\n", rc, errno, (unsigned long long)dt);
            atomic_fetch_add(&n_errors, 1);
        }
        atomic_fetch_add(&n_sleeps, 1);
    }
}

static void *sleeper_thread(void *arg)
{
    (void)arg;
    sleeper_wait();
    return NULL;
}

/* Blocks in read(2) on a pipe the main thread feeds with a byte sequence. */
__attribute__((noinline)) static void pipe_reader(void)
{
    unsigned char expect = 0;
    for (;;) {
        unsigned char b;
        ssize_t n = read(pipe_fd[0], &b, 1);
        if (n != 1 || b != expect) {
            fprintf(stderr, "reader: n=%zd errno=%d byte=%u expected=%u\n", n, errno, b, expect);
            atomic_fetch_add(&n_errors, 1);
            expect = b;
        }
        expect++;
        atomic_fetch_add(&n_reads, 1);
    }
}

static void *reader_thread(void *arg)
{
    (void)arg;
    pipe_reader();
    return NULL;
}

__attribute__((noinline)) static void busy_spinner(void)
{
    volatile uint64_t x = 1;
    for (;;) {
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        atomic_fetch_add(&n_spins, 1);
    }
}

static void *spinner_thread(void *arg)
{
    (void)arg;
    busy_spinner();
    return NULL;
}

/* Waits on a condition nobody signals: a futex wait. */
__attribute__((noinline)) static void idle_waiter(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&cv, &mu);
}

static void *waiter_thread(void *arg)
{
    (void)arg;
    idle_waiter();
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    return NULL;
}

/* "churn" mode: threads are created and exit all the time, racing the dumper's attach. */
static void *churn_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            if (pthread_create(&t[i], NULL, short_lived, NULL) != 0)
                t[i] = 0;
        for (int i = 0; i < 8; i++)
            if (t[i])
                pthread_join(t[i], NULL);
    }
    return NULL;
}

__attribute__((noinline)) static void main_loop(void)
{
    unsigned char seq = 0;
    for (unsigned long tick = 0;; tick++) {
        struct timespec req = {0, 100 * 1000 * 1000};
        if (write(pipe_fd[1], &seq, 1) != 1)
            atomic_fetch_add(&n_errors, 1);
        seq++;
        printf("tick %lu reads %lu sleeps %lu spins %lu errors %lu\n", tick, atomic_load(&n_reads),
               atomic_load(&n_sleeps), atomic_load(&n_spins), atomic_load(&n_errors));
        fflush(stdout);
        while (nanosleep(&req, &req) != 0 && errno == EINTR)
            ;
    }
}

int main(int argc, char **argv)
{
    pthread_t t;
    void *(*fns[])(void *) = {sleeper_thread, reader_thread, spinner_thread, waiter_thread};
    const char *names[] = {"sleeper", "reader", "spinner", "waiter"};

    vg_planted = calloc(1, sizeof(*vg_planted));
    if (!vg_planted || pipe(pipe_fd) != 0)
        return 1;
    vg_planted->magic = HEAP_MAGIC;
    strcpy(vg_planted->tag, "planted-in-heap");
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (pthread_create(&t, NULL, fns[i], NULL) != 0)
            return 1;
        pthread_setname_np(t, names[i]);
    }
    if (argc > 1 && strcmp(argv[1], "churn") == 0 && pthread_create(&t, NULL, churn_thread, NULL))
        return 1;
    printf("ready pid %d\n", (int)getpid());
    fflush(stdout);
    main_loop();
    return 0;
}
