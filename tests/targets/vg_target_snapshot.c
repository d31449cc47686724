/* Test target for snapshot dumps. One mode per property a test checks:
 *   counter N     N threads, each rewriting its counter as fast as it can, in order, in four
 *                 places: a global (.data), the heap, a private anonymous mapping and its stack.
 *                 At any instant data >= heap >= mmap >= stack >= data - 1 for every thread; a
 *                 core taken at one instant shows the same. Prints, per thread:
 *                   addr I DATA HEAP MMAP STACK      (hex addresses)
 *   waiter        counts SIGCHLD and what waitpid(-1, WNOHANG) returns, with a child of its own
 *                 (alive, asleep), and prints every 50 ms:
 *                   waiter sigchld S reaped R other O fds F child C tick T
 *                 (other: waitpid results besides 0; fds: entries in /proc/self/fd)
 *   sparse        a 64 GiB MAP_NORESERVE mapping with 64 pages touched (one per GiB, value
 *                 0x5a5a..+i), 16 MiB written then zeroed (populated zero pages), and 1 GiB of
 *                 shared anonymous memory with 4 pages touched (one per 256 MiB, 0x5b5b..+i);
 *                   sparse BASE ZEROS SHARED
 *   big MB        MB MiB of heap filled with non-zero data
 *   commit MB     MB MiB of private writable memory committed (overcommit) but never touched
 *   seccomp ACT   a seccomp filter answering clone() with ACT (errno | kill | allow-other: a
 *                 filter that forbids only an unrelated call), then ticks
 *   dontfork      1 MiB MADV_DONTFORK and 1 MiB MADV_WIPEONFORK, each filled with a pattern;
 *                   dontfork DF WF
 * Every mode then prints "ready" and, except counter and waiter, "tick N" every 100 ms. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

volatile uint64_t vg_counter_data[MAX_THREADS];
static volatile uint64_t *counter_heap, *counter_mmap;

static void ms_sleep(long ms)
{
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&req, &req) != 0 && errno == EINTR)
        ;
}

static void ticks(void)
{
    for (unsigned long n = 0;; n++) {
        printf("tick %lu\n", n);
        fflush(stdout);
        ms_sleep(100);
    }
}

/* ---- counter ---- */

static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static void *counter_thread(void *arg)
{
    size_t i = (size_t)arg;
    volatile uint64_t stack_counter = 0;
    pthread_mutex_lock(&print_mu);
    printf("addr %zu %p %p %p %p\n", i, (void *)&vg_counter_data[i], (void *)&counter_heap[i],
           (void *)&counter_mmap[i], (void *)&stack_counter);
    fflush(stdout);
    pthread_mutex_unlock(&print_mu);
    for (uint64_t v = 1;; v++) {
        vg_counter_data[i] = v;
        counter_heap[i] = v;
        counter_mmap[i] = v;
        stack_counter = v;
    }
    return NULL;
}

static int run_counter(int n)
{
    if (n < 1 || n > MAX_THREADS)
        n = 4;
    counter_heap = calloc(MAX_THREADS, sizeof(uint64_t));
    counter_mmap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!counter_heap || counter_mmap == MAP_FAILED)
        return 1;
    pthread_t t;
    for (int i = 0; i < n; i++)
        pthread_create(&t, NULL, counter_thread, (void *)(size_t)i);
    ms_sleep(200);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
    return 0;
}

/* ---- waiter ---- */

static atomic_ulong n_sigchld;

static void on_sigchld(int sig)
{
    (void)sig;
    atomic_fetch_add(&n_sigchld, 1);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own fd */
}

static int run_waiter(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    unsigned long reaped = 0, other = 0;
    printf("ready\n");
    fflush(stdout);
    for (unsigned long tick = 0;; tick++) {
        for (int k = 0; k < 50; k++) {
            int st;
            pid_t r = waitpid(-1, &st, WNOHANG);
            if (r > 0)
                reaped++;
            else if (r != 0)
                other++;
            ms_sleep(1);
        }
        printf("waiter sigchld %lu reaped %lu other %lu fds %d child %d tick %lu\n",
               atomic_load(&n_sigchld), reaped, other, count_fds(), (int)child, tick);
        fflush(stdout);
    }
    return 0;
}

/* ---- sparse, big, commit ---- */

static int run_sparse(void)
{
    size_t gib = 1ull << 30, n = 64;
    unsigned char *base = mmap(NULL, n * gib, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < n; i++)
        *(uint64_t *)(base + i * gib) = 0x5a5a5a5a5a5a0000ull + i;
    size_t zlen = 16u << 20;
    unsigned char *zeros =
        mmap(NULL, zlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (zeros == MAP_FAILED)
        return 1;
    memset(zeros, 0xff, zlen);
    memset(zeros, 0, zlen);
    unsigned char *shared =
        mmap(NULL, gib, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (shared == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < 4; i++)
        *(uint64_t *)(shared + i * (gib / 4)) = 0x5b5b5b5b5b5b0000ull + i;
    printf("sparse %p %p %p\nready\n", (void *)base, (void *)zeros, (void *)shared);
    fflush(stdout);
    ticks();
    return 0;
}

static int run_big(size_t mb)
{
    uint64_t x = 88172645463325252ull;
    for (size_t b = 0; b < mb; b++) {
        uint64_t *p = malloc(1u << 20);
        if (!p)
            return 1;
        for (size_t i = 0; i < (1u << 20) / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[i] = x | 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    ticks();
    return 0;
}

static int run_commit(size_t mb)
{
    void *p = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    printf("ready\n");
    fflush(stdout);
    ticks();
    return 0;
}

/* ---- seccomp ---- */

static int run_seccomp(const char *act)
{
    uint32_t nr = SYS_clone, ret = SECCOMP_RET_ERRNO | EPERM;
    if (strcmp(act, "kill") == 0)
        ret = SECCOMP_RET_KILL_PROCESS;
    else if (strcmp(act, "allow-other") == 0)
        nr = SYS_acct, ret = SECCOMP_RET_ERRNO | EPERM;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, ret),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    ticks();
    return 0;
}

/* ---- dontfork ---- */

static int run_dontfork(void)
{
    size_t len = 1u << 20;
    unsigned char *df = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *wf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (df == MAP_FAILED || wf == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < len; i++) {
        df[i] = (unsigned char)(0xd0 + i % 13);
        wf[i] = (unsigned char)(0x70 + i % 11);
    }
    if (madvise(df, len, MADV_DONTFORK) != 0 || madvise(wf, len, MADV_WIPEONFORK) != 0)
        return 1;
    printf("dontfork %p %p\nready\n", (void *)df, (void *)wf);
    fflush(stdout);
    ticks();
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "";
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
    if (strcmp(mode, "counter") == 0)
        return run_counter(atoi(arg));
    if (strcmp(mode, "waiter") == 0)
        return run_waiter();
    if (strcmp(mode, "sparse") == 0)
        return run_sparse();
    if (strcmp(mode, "big") == 0)
        return run_big(strtoul(arg, NULL, 10));
    if (strcmp(mode, "commit") == 0)
        return run_commit(strtoul(arg, NULL, 10));
    if (strcmp(mode, "seccomp") == 0)
        return run_seccomp(arg);
    if (strcmp(mode, "dontfork") == 0)
        return run_dontfork();
    fprintf(stderr, "usage: vg_target_snapshot counter N | waiter | sparse | big MB | commit MB | "
                    "seccomp errno|kill|allow-other | dontfork\n");
    return 2;
}
