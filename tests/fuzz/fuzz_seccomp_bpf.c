/* libFuzzer target for the seccomp filter evaluator of Snapshot mode (engine/dump/limits.c,
 * vg__cd_bpf_run): the kernel hands vigil a target's classic BPF programs through
 * PTRACE_SECCOMP_GET_FILTER, and vigil runs them on the clone() it is about to inject. The input
 * is a struct seccomp_data (64 bytes) followed by the program's instructions (8 bytes each); any
 * program must end in a verdict or a refusal, never read outside the data, the scratch memory
 * or the program, never loop. */
#include "engine/dump/dump_int.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seccomp_data d;
    if (size < sizeof(d))
        return 0;
    memcpy(&d, data, sizeof(d));
    size_t n = (size - sizeof(d)) / sizeof(struct sock_filter);
    if (n > BPF_MAXINSNS)
        n = BPF_MAXINSNS;
    /* a copy of exactly n instructions, so ASan sees any read past the program */
    struct sock_filter *prog = malloc(n ? n * sizeof(*prog) : 1);
    if (!prog)
        return 0;
    memcpy(prog, data + sizeof(d), n * sizeof(*prog));
    uint32_t ret;
    vg__cd_bpf_run(prog, n, &d, &ret);
    free(prog);
    return 0;
}
